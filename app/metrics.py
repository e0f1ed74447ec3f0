"""Prometheus metrics, one registry per app (so several apps in one test process never clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            "clockwall_webhooks_total",
            "Webhook deliveries by outcome and event type: a documented Clockify event, "
            "'other' (unknown), 'invalid' (malformed) or 'unauthenticated' (token refused)",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.apply_seconds = Histogram(
            "clockwall_apply_seconds",
            "Time to apply one entry to the store",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "clockwall_sse_clients", "SSE clients connected", registry=self.registry
        )
        self.sse_dropped = Counter(
            "clockwall_sse_dropped_total",
            "SSE clients dropped for being too slow",
            registry=self.registry,
        )
        self.stream_lag = Gauge(
            "clockwall_change_stream_lag_seconds",
            "Age of the newest change event when this process read it",
            registry=self.registry,
        )
        self.poller_requests = Counter(
            "clockwall_poller_requests_total",
            "Clockify API requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.budget_left = Gauge(
            "clockwall_api_budget_remaining",
            "Clockify API requests left in the rolling hour",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "clockwall_api_rate_limited_total", "HTTP 429 answers", registry=self.registry
        )
        self.poll_rows_skipped = Counter(
            "clockwall_poll_rows_skipped_total",
            "Malformed entries from Clockify the poller skipped, by source",
            ["source"],
            registry=self.registry,
        )
        self.reconcile_repairs = Counter(
            "clockwall_reconcile_repairs_total",
            "Entries repaired by reconcile",
            registry=self.registry,
        )
        self.last_poll = Gauge(
            "clockwall_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll",
            registry=self.registry,
        )
