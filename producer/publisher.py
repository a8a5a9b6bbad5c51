"""Publishing blocks of samples to Kafka and accounting for every one.

:class:`Publisher` encodes each block in one pass, hands the messages to
an injected ``KafkaProducer`` without waiting, and counts acknowledgements
and failures from the futures the client returns. Guarantees:

- ``sent`` counts samples handed to the client (including one it refused
  at once); after :meth:`Publisher.run` returns, every sent sample is
  either in ``acked`` or in ``failed``: none is left unaccounted for.
- The first delivery failure stops the run, since an idempotent producer
  whose batch failed cannot keep the order of what follows. It is noticed
  when acknowledgements are collected (after every block), so up to one
  more block may be sent; the run still flushes and accounts for every
  sample in flight.
- :meth:`Publisher.request_stop` (called from a signal handler) stops the
  run before the next message; what was already sent is flushed.
- With a rate, message ``i`` is sent at ``start + i / rate``: evenly
  spaced, and a backlog of more than :data:`MAX_BACKLOG_S` (a stall) is
  dropped from the schedule rather than sent as a burst.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from kafka.errors import KafkaError, KafkaTimeoutError

from producer.encoding import encode_block
from producer.errors import InputError
from producer.metrics import ProducerMetrics
from producer.sources import Block, Source

log = logging.getLogger(__name__)

MAX_BACKLOG_S = 0.1
"""A paced run that falls further behind than this restarts its schedule."""
LATENCY_SAMPLE_EVERY = 16
"""Samples whose id is a multiple of this have their send latency observed."""
WALL_BLOCK_S = 0.1
"""With a rate, a block holds at most this many seconds of samples, so a
wall-clock event time is at most this old when its sample is sent."""


@dataclass
class RunStats:
    """What a run did; ``failed`` is ``sent - acked`` once the run is over."""

    topic: str
    sent: int = 0
    acked: int = 0
    delivery_errors: int = 0
    skipped_rows: int = 0
    failed: int = 0
    stopped_by: str = ""
    first_error: str | None = None
    input_error: str | None = None
    duration_s: float = 0.0

    def report(self) -> dict[str, Any]:
        """The machine-readable summary printed as one JSON line."""
        rate = self.sent / self.duration_s if self.duration_s > 0 else 0.0
        return {
            "sent": self.sent,
            "acknowledged": self.acked,
            "failed": self.failed,
            "skipped_rows": self.skipped_rows,
            "delivery_errors": self.delivery_errors,
            "topic": self.topic,
            "stopped_by": self.stopped_by,
            "duration_seconds": round(self.duration_s, 3),
            "rate_per_second": round(rate, 1),
            "first_error": self.first_error,
            "input_error": self.input_error,
        }


class Observer(Protocol):
    """Told about progress after every block and once at the end."""

    def update(self, stats: RunStats) -> None: ...

    def close(self, stats: RunStats) -> None: ...


@dataclass(frozen=True)
class PublishOptions:
    """How to publish; see the ``--key``, ``--rate``, ``--event-time`` flags.

    :param partitions: for round robin, the topic's partition count: sample
        ``i`` goes to partition ``i % partitions``. None lets the client
        choose (by key hash, or sticky batches without a key).
    :param event_time: ``"wall"``, ``"none"``, or a start in milliseconds
        of a fixed clock that advances ``1000 / rate`` ms per sample (1 ms
        when the rate is 0), which makes the bytes reproducible.
    """

    topic: str
    count: int = 0
    rate: float = 0.0
    block_size: int = 2048
    partitions: int | None = None
    event_time: str = "wall"
    flush_timeout_s: float = 150.0


@dataclass
class Clocks:
    """Injected time: a monotonic clock and the wall clock in milliseconds."""

    monotonic: Callable[[], float] = time.perf_counter
    wall_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)


class Publisher:
    """Sends a source's samples through one Kafka producer (see module).

    Delivery is accounted without a callback per message (which would cost
    the client's I/O thread a fifth of its throughput): the futures the
    client returns wait in send order and are collected in the main
    thread after every block and after the final flush. One sample in
    :data:`LATENCY_SAMPLE_EVERY` gets a callback that observes its latency.
    """

    def __init__(
        self,
        producer: Any,
        options: PublishOptions,
        metrics: ProducerMetrics,
        *,
        observers: list[Observer] | None = None,
        clocks: Clocks | None = None,
    ) -> None:
        self._producer = producer
        self._options = options
        self._metrics = metrics
        self._observers = observers or []
        self._clocks = clocks or Clocks()
        self._stop = threading.Event()
        self._pending: deque[Any] = deque()
        self._pending_first_id = 0
        self.stats = RunStats(topic=options.topic)

    def request_stop(self, reason: str) -> None:
        """Stop before the next message; safe from signal handlers."""
        if not self._stop.is_set():
            self.stats.stopped_by = reason
            self._stop.set()

    def run(self, source: Source) -> RunStats:
        """Publish until the count, the end of input, or a stop; then flush.

        Steps: send block after block; flush and wait for every
        acknowledgement; account for what was not acknowledged.
        """
        started = self._clocks.monotonic()
        # send
        try:
            self._send_all(source)
        except InputError as error:
            self.stats.input_error = str(error)
            self.request_stop("bad input")
        finally:
            self._account_skips(source)

        # flush
        self._flush()
        self._collect()

        # account
        self.stats.failed = self.stats.sent - self.stats.acked
        self.stats.duration_s = self._clocks.monotonic() - started
        for observer in self._observers:
            observer.close(self.stats)
        return self.stats

    def _send_all(self, source: Source) -> None:
        count, pacer = self._options.count, self._pacer()
        while not self._stop.is_set():
            remaining = count - self.stats.sent if count else self._options.block_size
            if remaining <= 0:
                self.request_stop("count reached")
                break
            block = source.next_block(min(remaining, self._block_size()))
            if block is None:
                self.request_stop("end of input")
                break
            self._send_block(block, pacer)
            self._collect()
            self._account_skips(source)
            for observer in self._observers:
                observer.update(self.stats)

    def _send_block(self, block: Block, pacer: Pacer | None) -> None:
        """Hand the block's messages to the client; keep their futures."""
        values = encode_block(
            block.X, block.y, first_id=block.first_id, event_times_ms=self._event_times(block)
        )
        topic, keys, partitions = self._options.topic, block.keys, self._options.partitions
        send, now, stop = self._producer.send, self._clocks.monotonic, self._stop
        keep, observe = self._pending.append, self._observe_latency
        sent = before = self.stats.sent
        sample_id = block.first_id
        try:
            for offset, value in enumerate(values):
                if stop.is_set():
                    break
                if pacer is not None:
                    pacer.wait(sent)
                sample_id = block.first_id + offset
                future = send(
                    topic,
                    value=value,
                    key=keys[offset] if keys is not None else None,
                    partition=sample_id % partitions if partitions else None,
                )
                sent += 1
                keep(future)
                if sample_id % LATENCY_SAMPLE_EVERY == 0:
                    future.add_callback(observe, now())
        except KafkaError as error:
            sent += 1
            self._record_error(sample_id, error, refused=True)
        finally:
            self.stats.sent = sent
            self._metrics.sent.inc(sent - before)

    def _collect(self) -> None:
        """Account for the futures that are done, oldest first."""
        pending, acked, errors = self._pending, 0, 0
        while pending and pending[0].is_done:
            error = pending.popleft().exception
            if error is None:
                acked += 1
            else:
                errors += 1
                self._record_error(self._pending_first_id, error)
            self._pending_first_id += 1
        self.stats.acked += acked
        self._metrics.acked.inc(acked)

    def _observe_latency(self, started: float, _metadata: Any) -> None:
        self._metrics.latency.observe(max(self._clocks.monotonic() - started, 0.0))

    def _record_error(self, sample_id: int, error: BaseException, refused: bool = False) -> None:
        self.stats.delivery_errors += 1
        self._metrics.send_errors.inc()
        if self.stats.first_error is None:
            self.stats.first_error = f"sample {sample_id}: {error!r}"
            log.error(
                "delivery failed topic=%s sample=%d%s: %r; stopping",
                self._options.topic, sample_id, " (refused by the client)" if refused else "",
                error,
            )
        self.request_stop("delivery error")

    def _flush(self) -> None:
        """Wait for the acknowledgement (or failure) of every sent sample."""
        try:
            self._producer.flush(timeout=self._options.flush_timeout_s)
        except KafkaTimeoutError:
            log.error(
                "topic=%s: samples not confirmed within %.0f s",
                self._options.topic,
                self._options.flush_timeout_s,
            )
        except KafkaError as error:
            log.error("topic=%s: flush failed: %r", self._options.topic, error)

    def _account_skips(self, source: Source) -> None:
        skipped = source.skipped_rows - self.stats.skipped_rows
        if skipped > 0:
            self.stats.skipped_rows += skipped
            self._metrics.rows_skipped.inc(skipped)

    def _block_size(self) -> int:
        if self._options.rate > 0:
            return max(1, min(self._options.block_size, int(self._options.rate * WALL_BLOCK_S)))
        return self._options.block_size

    def _pacer(self) -> Pacer | None:
        if self._options.rate <= 0:
            return None
        return Pacer(self._options.rate, self._clocks.monotonic, self._stop.wait)

    def _event_times(self, block: Block) -> np.ndarray | int | None:
        mode = self._options.event_time
        if mode == "none":
            return None
        if mode == "wall":
            return self._clocks.wall_ms()
        ids = np.arange(block.first_id, block.first_id + len(block), dtype=np.int64)
        if self._options.rate > 0:
            return int(mode) + (ids * 1000 / self._options.rate).astype(np.int64)
        return int(mode) + ids


class Pacer:
    """Message ``i`` is due at ``start + i / rate`` (see the module)."""

    def __init__(
        self, rate: float, clock: Callable[[], float], sleep: Callable[[float], Any]
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[float, int] | None = None

    def wait(self, index: int) -> None:
        """Return when message ``index`` is due."""
        now = self._clock()
        if self._origin is None:
            self._origin = (now, index)
        start, first = self._origin
        delay = start + (index - first) * self._interval - now
        if delay > 0:
            self._sleep(delay)
        elif delay < -MAX_BACKLOG_S:
            self._origin = (now, index)
