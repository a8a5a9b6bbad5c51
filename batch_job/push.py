"""Pushing a run's outcome to a Prometheus Pushgateway.

Metrics are those of the batch section of ``docs/metrics.md``, grouped by
job ``streamtrain_batch`` alone (no ``instance`` label: the batch job is a
service-level job; scrape the Pushgateway with ``honor_labels: true``).

- On success :func:`push_success` *replaces* the group (HTTP PUT) with
  this run's values: nothing from an older run lingers (an online MSE that
  could not be computed this time is absent, not stale), and a failure
  timestamp pushed earlier is cleared.
- On failure :func:`push_failure` *adds* (HTTP POST) the failure timestamp
  alone, so the last success timestamp and its statistics survive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import push_to_gateway, pushadd_to_gateway

from streamtrain.errors import StreamtrainError
from streamtrain.wire import REASONS

log = logging.getLogger(__name__)

JOB = "streamtrain_batch"


class PushError(StreamtrainError):
    """The Pushgateway did not accept the metrics."""


@dataclass(frozen=True)
class RunOutcome:
    """What a successful run pushes; None values are not pushed."""

    finished_at: float
    duration_s: float
    samples: int
    rejected: dict[str, int]
    mse: float | None
    online_mse: float | None
    online_weights_distance: float | None


def success_registry(outcome: RunOutcome) -> CollectorRegistry:
    """A fresh registry holding the success metrics of ``outcome``."""
    registry = CollectorRegistry()
    _gauge(registry, "last_success_timestamp_seconds", "End of the last successful run",
           outcome.finished_at)
    _gauge(registry, "duration_seconds", "Duration of the last successful run",
           outcome.duration_s)
    _gauge(registry, "samples", "Samples trained on in the last run", outcome.samples)
    rejected = Gauge("streamtrain_batch_rejected_samples",
                     "Invalid samples skipped in the last run", ["reason"], registry=registry)
    for reason in sorted(set(REASONS) | set(outcome.rejected)):
        rejected.labels(reason=reason).set(outcome.rejected.get(reason, 0))
    _gauge(registry, "mse", "Batch model's MSE on the replayed data", outcome.mse)
    _gauge(registry, "online_mse", "Online model's MSE on the same data", outcome.online_mse)
    _gauge(registry, "online_weights_distance",
           "L2 distance between online and batch weights and bias",
           outcome.online_weights_distance)
    return registry


def _gauge(registry: CollectorRegistry, name: str, text: str, value: float | None) -> None:
    if value is not None:
        Gauge(f"streamtrain_batch_{name}", text, registry=registry).set(value)


def push_success(url: str, outcome: RunOutcome, *, timeout_s: float = 10.0) -> None:
    """Replace the job's group with this run's metrics.

    :raises PushError: naming the URL and the cause.
    """
    _send(push_to_gateway, url, success_registry(outcome), timeout_s)
    log.info("pushed success metrics to %s job=%s", url, JOB)


def push_failure(url: str, finished_at: float, *, timeout_s: float = 10.0) -> None:
    """Add the failure timestamp to the job's group; keep everything else.

    :raises PushError: naming the URL and the cause.
    """
    registry = CollectorRegistry()
    _gauge(registry, "last_failure_timestamp_seconds", "End of the last failed run", finished_at)
    _send(pushadd_to_gateway, url, registry, timeout_s)
    log.info("pushed failure timestamp to %s job=%s", url, JOB)


def _send(method, url: str, registry: CollectorRegistry, timeout_s: float) -> None:
    try:
        method(url, job=JOB, registry=registry, timeout=timeout_s)
    except OSError as error:
        raise PushError(f"cannot push metrics to Pushgateway {url}: {error}") from None
