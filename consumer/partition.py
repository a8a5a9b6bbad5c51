"""The learning state of one partition and how a fetched batch updates it.

``next_offset`` is the offset of the next record to read: every record
below it has been applied to ``learner`` (or rejected) exactly once.
Records are applied one at a time, in offset order; a batch that starts
below ``next_offset`` (re-delivered after a seek) is trimmed first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from streamtrain import wire
from streamtrain.deadletter import Rejection
from streamtrain.learners import Learner, NonFiniteUpdate

log = logging.getLogger(__name__)


@dataclass
class PartitionState:
    """Model, optimizer state, loss statistics and position of one partition."""

    topic: str
    partition: int
    learner: Learner
    next_offset: int
    pending: int = 0
    """Messages consumed since the last checkpoint (0: the checkpoint is current)."""


@dataclass
class BatchOutcome:
    """What one batch did: updates applied, their squared errors, rejections."""

    applied: int = 0
    squared_error: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)


def fresh_records(state: PartitionState, records: Sequence[Any]) -> Sequence[Any]:
    """The records at or after ``state.next_offset`` (a fetch after a seek
    may return older ones)."""
    if records and records[0].offset < state.next_offset:
        return [r for r in records if r.offset >= state.next_offset]
    return records


def learn_batch(
    state: PartitionState,
    records: Sequence[Any],
    dim: int,
    max_bytes: int,
    timer: Callable[[], float] = time.perf_counter,
) -> BatchOutcome:
    """Decode ``records`` at once, then predict-and-update sample by sample.

    Steps: decode the batch; apply the valid samples in offset order,
    timing each update; collect the rejections (decoding failures and
    non-finite updates, which change nothing); advance ``next_offset`` past
    the last record.
    """
    outcome = BatchOutcome()
    if not records:
        return outcome

    # decode
    values = [r.value if r.value is not None else b"" for r in records]
    decoded = wire.decode_batch(values, dim, max_bytes=max_bytes)
    for position, error in decoded.errors.items():
        outcome.rejections.append(_rejection(state, records[position], error.reason,
                                             error.detail))

    # learn: one clock read per sample, the time since the previous one
    learner, durations = state.learner, outcome.durations
    learn, record = learner.learn, durations.append
    squared_sum, applied = 0.0, 0
    rows, targets = learner.rows(decoded.X), decoded.y.tolist()
    previous = timer()
    for position, x, y in zip(decoded.index.tolist(), rows, targets):
        try:
            squared = learn(x, y)
        except NonFiniteUpdate as error:
            outcome.rejections.append(_rejection(state, records[position], error.reason,
                                                 str(error)))
            previous = timer()
            continue
        now = timer()
        record(now - previous)
        previous = now
        squared_sum += squared
        applied += 1

    # advance
    outcome.applied, outcome.squared_error = applied, squared_sum
    state.next_offset = records[-1].offset + 1
    state.pending += len(records)
    return outcome


def _rejection(state: PartitionState, record: Any, reason: str, detail: str) -> Rejection:
    log.warning("rejected topic=%s partition=%d offset=%d reason=%s: %s",
                state.topic, state.partition, record.offset, reason, detail)
    return Rejection(reason=reason, detail=detail, topic=state.topic,
                     partition=state.partition, offset=record.offset,
                     value=record.value, key=record.key)
