"""Prometheus plumbing shared by the services.

Each service builds its metrics on a :class:`CollectorRegistry` it is
given (tests pass a fresh one and read values from it) and serves them
with :func:`serve` on a configurable address and port. Metric names are
listed in ``docs/metrics.md``; all start with ``streamtrain_``.
"""

from __future__ import annotations

import logging
import math

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


def serve(registry: CollectorRegistry, port: int, address: str = "0.0.0.0") -> int:
    """Serve ``/metrics`` for ``registry`` in a background thread.

    :returns: the port actually bound (useful with ``port=0``).
    """
    server, _ = start_http_server(port, addr=address, registry=registry)
    bound = server.server_address[1]
    log.info("metrics served on http://%s:%d/metrics", address, bound)
    return bound


def finite_or_none(value: float) -> float | None:
    """``value`` if finite, else None: never observe NaN into a metric."""
    return value if math.isfinite(value) else None
