"""docker-compose.yml is valid and wires two replicas behind a proxy set up for SSE.

No Docker engine runs here, so `docker-compose config` (Debian's docker-compose) validates the
file without starting it; the nginx settings that SSE depends on are checked as text.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed; tests/run.sh installs it (apt)")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.slow
def test_services_and_redis_persistence(compose: dict) -> None:
    services = compose["services"]
    assert {"redis", "app1", "app2", "proxy"} <= set(services)
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "healthcheck" in redis
    for name in ("app1", "app2"):
        app = services[name]
        assert app["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert app["depends_on"]["redis"]["condition"] == "service_healthy"


def test_proxy_is_configured_for_sse() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    events = conf.split("location = /events", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off" in events
    assert "gzip off" in events
    assert "proxy_read_timeout 1h" in events
    assert "proxy_http_version 1.1" in events
    assert "server app1:8000" in conf and "server app2:8000" in conf
