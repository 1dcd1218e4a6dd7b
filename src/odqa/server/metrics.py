"""The server's Prometheus metrics, in a registry of each app's own (GET /metrics renders it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("odqa_requests", "HTTP requests answered", ["endpoint", "method", "status"],
                                registry=self.registry)
        self.errors = Counter("odqa_errors", "Requests answered with an error", ["endpoint", "kind"],
                              registry=self.registry)
        self.latency = Histogram("odqa_request_seconds", "Time to answer a request", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("odqa_batch_size", "Questions per ask_batch call (micro-batching)",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.stage = Histogram("odqa_stage_seconds", "Seconds of one batch's stage", ["stage"],
                               buckets=LATENCY_BUCKETS, registry=self.registry)
