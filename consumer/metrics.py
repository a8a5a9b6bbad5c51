"""The consumer's Prometheus metrics, exactly as listed in docs/metrics.md.

All metrics live on the registry given to :class:`ConsumerMetrics`.
Per-partition series are created when a partition is assigned and removed
when it is revoked, so labels stay bounded. Counters count what *this
process* did, from zero at start (the Prometheus convention); a partition
revoked and later assigned again to the same process continues from its
earlier totals. Messages re-read after a crash are counted again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from streamtrain import wire
from streamtrain.learners import LearnerConfig, NonFiniteUpdate

UPDATE_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2)
CHECKPOINT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class LatencyHistogram(Collector):
    """A histogram fed many observations at once.

    ``prometheus_client.Histogram.observe`` costs more than an update of
    the model; this collector keeps plain bucket counts that the learner
    loop adds to once per batch, and exposes them as a regular histogram.
    Non-finite or negative durations are ignored.
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]):
        self.name = name
        self.documentation = documentation
        self.bounds = list(buckets)
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe_many(self, durations: Sequence[float] | np.ndarray) -> None:
        """Add every duration (seconds) in one pass."""
        values = np.asarray(durations, dtype=np.float64)
        if values.size == 0:
            return
        values = values[np.isfinite(values) & (values >= 0)]
        slots = np.searchsorted(self.bounds, values, side="left")
        for slot, count in enumerate(np.bincount(slots, minlength=len(self.counts)).tolist()):
            self.counts[slot] += count
        self.total += float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative, buckets = 0, []
        for bound, count in zip(self.bounds + [math.inf], list(self.counts)):
            cumulative += count
            buckets.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets,
                                    sum_value=self.total)


class ConsumerMetrics:
    """The consumer's metric families on ``registry``."""

    def __init__(self, registry: CollectorRegistry, config: LearnerConfig) -> None:
        self.samples = Counter("streamtrain_online_samples_total",
                               "samples learned (predicted, then trained on)",
                               ["partition"], registry=registry)
        self.squared_error = Counter(
            "streamtrain_online_squared_error_total",
            "running sum of prequential squared errors", ["partition"], registry=registry)
        self.loss_smoothed = Gauge("streamtrain_online_loss_smoothed",
                                   "exponentially smoothed squared error", ["partition"],
                                   registry=registry)
        self.weights_norm = Gauge("streamtrain_online_weights_norm",
                                  "L2 norm of the combined model's weights", registry=registry)
        self.dead_letters = Counter("streamtrain_consumer_dead_letters_total",
                                    "messages sent to the dead-letter topic", ["reason"],
                                    registry=registry)
        for reason in (*wire.REASONS, NonFiniteUpdate.reason):
            self.dead_letters.labels(reason)
        self.lag = Gauge("streamtrain_consumer_lag_records",
                         "end offset minus next offset to read", ["partition"],
                         registry=registry)
        self.update_seconds = LatencyHistogram(
            "streamtrain_consumer_update_seconds", "time of one sample's predict-and-update",
            UPDATE_BUCKETS)
        registry.register(self.update_seconds)
        self.last_checkpoint = Gauge("streamtrain_consumer_last_checkpoint_timestamp_seconds",
                                     "when the last checkpoint was written", registry=registry)
        self.checkpoint_seconds = Histogram("streamtrain_consumer_checkpoint_duration_seconds",
                                            "time to write a checkpoint",
                                            buckets=CHECKPOINT_BUCKETS, registry=registry)
        self.checkpoint_fallbacks = Counter(
            "streamtrain_consumer_checkpoint_fallbacks_total",
            "damaged checkpoints skipped for the previous one", registry=registry)
        self._totals: dict[str, list] = {}
        info = Info("streamtrain_consumer", "learner settings", registry=registry)
        info.info({key: str(value) for key, value in config.to_payload().items()})

    def learned(self, partition: int, count: int, squared_error: float, smoothed: float) -> None:
        """Count a batch of applied updates of ``partition``."""
        label = str(partition)
        if count:
            self.samples.labels(label).inc(count)
            self.squared_error.labels(label).inc(squared_error)
            totals = self._totals.setdefault(label, [0, 0.0])
            totals[0] += count
            totals[1] += squared_error
        if math.isfinite(smoothed):
            self.loss_smoothed.labels(label).set(smoothed)

    def assigned(self, partition: int, smoothed: float) -> None:
        """Create the series of a newly assigned partition. A partition this
        process owned before continues from its earlier totals, so its
        counters never go down while the process lives."""
        label = str(partition)
        count, squared_error = self._totals.get(label, (0, 0.0))
        self.samples.labels(label).inc(count)
        self.squared_error.labels(label).inc(squared_error)
        if math.isfinite(smoothed):
            self.loss_smoothed.labels(label).set(smoothed)

    def revoked(self, partition: int) -> None:
        """Remove every series of ``partition``."""
        label = str(partition)
        for family in (self.samples, self.squared_error, self.loss_smoothed, self.lag):
            try:
                family.remove(label)
            except KeyError:
                pass
