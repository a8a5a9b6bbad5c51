"""The producer's Prometheus metrics (names as in docs/metrics.md)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class ProducerMetrics:
    """Counters and the latency histogram, registered on one registry."""

    sent: Counter
    acked: Counter
    send_errors: Counter
    latency: Histogram
    rows_skipped: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ProducerMetrics:
        prefix = "streamtrain_producer_"
        return cls(
            sent=Counter(
                prefix + "samples_sent", "samples handed to the Kafka client", registry=registry
            ),
            acked=Counter(
                prefix + "samples_acked", "samples acknowledged by the broker", registry=registry
            ),
            send_errors=Counter(
                prefix + "send_errors", "samples whose delivery failed", registry=registry
            ),
            latency=Histogram(
                prefix + "send_latency_seconds",
                "send to acknowledgement",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            rows_skipped=Counter(
                prefix + "rows_skipped", "malformed file rows skipped", registry=registry
            ),
        )
