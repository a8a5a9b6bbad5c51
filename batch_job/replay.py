"""Bounded replay of the sample topic into least-squares statistics.

Where a replay stops: at the start of a run :func:`take_snapshot` records,
for every partition, the earliest retained offset and the end offset
(with ``read_committed``, the last stable offset: open transactions are not
waited for and aborted ones are skipped). :func:`replay_partitions` reads
from the first up to, not including, the second and stops (pauses) a
partition as soon as the consumer's *position* reaches it; records at or past the snapshot that
arrive in the same fetch are dropped. Comparing positions, not the last
record's offset, is what makes transaction markers and compacted gaps
harmless.

The replay assigns partitions by hand (no consumer group, no commits), so
it never moves the online learner's offsets. Every partition yields a
:class:`PartitionResult` (the QR state of its valid samples, counts,
rejections by reason): results are additive and are merged in partition
order (:func:`merge`), so the model is bit-identical whatever the number
of worker processes, and partitions could as well be reduced on separate
machines.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from kafka import KafkaConsumer, TopicPartition

from streamtrain import wire
from streamtrain.clients import make_consumer
from streamtrain.errors import StreamtrainError
from streamtrain.leastsquares import DEFAULT_BLOCK_ROWS, QRAccumulator
from streamtrain.settings import StreamSettings

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
MAX_POLL_RECORDS = 5000


class ReplayError(StreamtrainError):
    """The topic cannot be replayed (missing, or a partition stalls)."""


@dataclass(frozen=True)
class PartitionRange:
    """Offsets of one partition to replay: ``start <= offset < end``."""

    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class Snapshot:
    """The offsets a run replays, taken once when it starts."""

    topic: str
    ranges: tuple[PartitionRange, ...]


@dataclass
class PartitionResult:
    """What one partition contributed.

    ``state`` is a :meth:`QRAccumulator.to_state`; ``last_offset`` is the
    offset of the last record read (None if none), ``records`` counts every
    record read below the snapshot, valid or not.
    """

    partition: int
    start: int
    end: int
    records: int = 0
    samples: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    last_offset: int | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReplayResult:
    """All partitions merged, in partition order."""

    snapshot: Snapshot
    partitions: list[PartitionResult]
    accumulator: QRAccumulator

    @property
    def samples(self) -> int:
        return sum(p.samples for p in self.partitions)

    @property
    def rejected(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for part in self.partitions:
            total.update(part.rejected)
        return dict(sorted(total.items()))


def replay_consumer(settings: StreamSettings) -> KafkaConsumer:
    """A group-less, never-committing consumer reading committed data only."""
    return make_consumer(
        settings,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=MAX_POLL_RECORDS,
    )


def take_snapshot(consumer: KafkaConsumer, topic: str) -> Snapshot:
    """Earliest and end offsets of every partition of ``topic``, now.

    :raises ReplayError: if the topic does not exist.
    """
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ReplayError(f"topic {topic!r} does not exist or has no partitions")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    begin = consumer.beginning_offsets(tps)
    end = consumer.end_offsets(tps)
    ranges = tuple(PartitionRange(tp.partition, begin[tp], end[tp]) for tp in tps)
    for r in ranges:
        log.info("snapshot topic=%s partition=%d start=%d end=%d",
                 topic, r.partition, r.start, r.end)
    return Snapshot(topic, ranges)


def replay_partitions(
    settings: StreamSettings,
    topic: str,
    parts: Sequence[PartitionRange],
    *,
    block_rows: int,
    idle_timeout_s: float,
) -> list[PartitionResult]:
    """Read the given partitions, each from ``start`` to ``end`` (exclusive),
    with one consumer assigned to all of them.

    Every partition has its own :class:`QRAccumulator`, filled in offset
    order, so the results do not depend on how fetches interleave. Valid
    samples are added; invalid ones are counted by
    :attr:`SampleError.reason` and skipped. A partition that reaches its end
    is paused.

    :raises ReplayError: if no record arrives for ``idle_timeout_s`` while
        a position is still below its end.
    """
    results = {p.partition: PartitionResult(p.partition, p.start, p.end) for p in parts}
    accs = {p.partition: QRAccumulator(settings.dim, block_rows=block_rows) for p in parts}
    todo = {TopicPartition(topic, p.partition): p for p in parts if p.end > p.start}
    if todo:
        consumer = replay_consumer(settings)
        try:
            _read_ranges(consumer, todo, settings, accs, results, idle_timeout_s)
        finally:
            consumer.close()
    for part in parts:
        result = results[part.partition]
        result.state = accs[part.partition].to_state()
        log.info(
            "replayed topic=%s partition=%d offsets=[%d,%d) records=%d samples=%d rejected=%s",
            topic, part.partition, part.start, part.end, result.records, result.samples,
            result.rejected,
        )
    return [results[p.partition] for p in parts]


def _read_ranges(
    consumer: KafkaConsumer,
    todo: dict[TopicPartition, PartitionRange],
    settings: StreamSettings,
    accs: dict[int, QRAccumulator],
    results: dict[int, PartitionResult],
    idle_timeout_s: float,
) -> None:
    """Poll until every position reaches its snapshot end."""
    consumer.assign(list(todo))
    for tp, part in todo.items():
        consumer.seek(tp, part.start)
    active = set(todo)
    last_progress = time.monotonic()
    while active:
        fetched = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        for tp, records in fetched.items():
            if not records:
                continue
            end = todo[tp].end
            kept = records if records[-1].offset < end else [r for r in records if r.offset < end]
            if kept:
                _train_on(kept, settings, accs[tp.partition], results[tp.partition])
                last_progress = time.monotonic()
        done = {tp for tp in active if consumer.position(tp) >= todo[tp].end}
        if done:
            consumer.pause(*done)
            active -= done
        if active and time.monotonic() - last_progress > idle_timeout_s:
            stalled = sorted((tp.partition, consumer.position(tp), todo[tp].end) for tp in active)
            raise ReplayError(
                f"no records for {idle_timeout_s}s from topic={next(iter(active)).topic}; "
                f"(partition, position, expected end): {stalled}"
            )


def _train_on(
    records: list, settings: StreamSettings, acc: QRAccumulator, result: PartitionResult
) -> None:
    """Decode a fetched batch, add the valid rows, count the rejections.

    A decoded row whose squared norm ``|x|^2 + 1 + y^2`` overflows float64
    is skipped as ``non_finite_update`` (the reason the online learner
    gives): it would make every least-squares statistic infinite, so no
    model could be fitted with it.
    """
    values = [r.value if r.value is not None else b"" for r in records]
    batch = wire.decode_batch(values, settings.dim, max_bytes=settings.max_message_bytes)
    usable = representable_rows(batch.X, batch.y)
    acc.add(batch.X[usable], batch.y[usable])
    reasons = {position: error.reason for position, error in batch.errors.items()}
    reasons.update({int(p): NON_FINITE_UPDATE for p in batch.index[~usable]})
    for position, reason in reasons.items():
        result.rejected[reason] = result.rejected.get(reason, 0) + 1
        log.debug("skipped topic=%s partition=%d offset=%d reason=%s",
                  records[position].topic, records[position].partition,
                  records[position].offset, reason)
    result.records += len(records)
    result.samples += int(usable.sum())
    result.last_offset = records[-1].offset


NON_FINITE_UPDATE = "non_finite_update"


def representable_rows(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row mask: True where ``|x|^2 + 1 + y^2`` is finite in float64."""
    with np.errstate(over="ignore"):
        norms = np.einsum("ij,ij->i", X, X) + 1.0 + y * y
    return np.isfinite(norms)


def merge(snapshot: Snapshot, parts: list[PartitionResult], dim: int,
          block_rows: int) -> ReplayResult:
    """Merge per-partition results in partition order (deterministic)."""
    parts = sorted(parts, key=lambda p: p.partition)
    acc = QRAccumulator(dim, block_rows=block_rows)
    for part in parts:
        acc = acc.merge(QRAccumulator.from_state(part.state, block_rows))
    return ReplayResult(snapshot, parts, acc)


def replay(
    settings: StreamSettings,
    snapshot: Snapshot,
    *,
    workers: int = 1,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    idle_timeout_s: float = 60.0,
) -> ReplayResult:
    """Replay every partition of ``snapshot``, in ``workers`` processes.

    With one worker everything runs in this process, one consumer reading
    all partitions; with more, partition ``i`` goes to worker
    ``i % workers``, a fresh (spawned) process with its own consumer.
    """
    workers = max(1, min(workers, len(snapshot.ranges)))
    groups = [snapshot.ranges[i::workers] for i in range(workers)]
    kwargs = {"block_rows": block_rows, "idle_timeout_s": idle_timeout_s}
    if workers == 1:
        parts = replay_partitions(settings, snapshot.topic, groups[0], **kwargs)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(replay_partitions, settings, snapshot.topic, group, **kwargs)
                       for group in groups]
            parts = [part for future in futures for part in future.result()]
    return merge(snapshot, parts, settings.dim, block_rows)
