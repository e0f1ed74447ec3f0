#!/usr/bin/env bash
# The whole test suite on a fresh machine: a virtualenv with the project and its test tools,
# Debian's Chromium for the browser tests, a Redis (the running one, or one started here),
# then lint (ruff), types (mypy --strict on app/) and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Debian packages the suite needs: chromium (browser tests), redis-server (tests that stop and
# restart their own Redis), docker-compose (validates docker-compose.yml; no engine needed),
# nginx (runs deploy/nginx.conf in front of two clockwall processes).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Use the Redis on 127.0.0.1:6379 when one answers; otherwise start a throwaway one.
redis_ping() { .venv/bin/python -c "import redis,sys; redis.Redis(port=$1, socket_connect_timeout=1).ping()" 2>/dev/null; }
if [ -z "${CLOCKWALL_TEST_REDIS:-}" ]; then
  if redis_ping 6379; then
    export CLOCKWALL_TEST_REDIS=redis://127.0.0.1:6379
  else
    port=6391
    dir=$(mktemp -d)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null || true' EXIT
    for _ in $(seq 50); do redis_ping "$port" && break; sleep 0.1; done
    export CLOCKWALL_TEST_REDIS=redis://127.0.0.1:$port
    echo "started a Redis for the tests on 127.0.0.1:$port"
  fi
fi

.venv/bin/ruff check app tests bench
.venv/bin/ruff format --check app tests bench
.venv/bin/mypy
HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} .venv/bin/python -m pytest "$@"
