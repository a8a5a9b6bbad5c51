"""The learning state of one partition and how a fetched batch updates it.

``next_offset`` is the offset of the next record to read: every record
below it has been applied to ``learner`` (or rejected) exactly once.
Records are applied one at a time, in offset order; a batch that starts
below ``next_offset`` (re-delivered after a seek) is trimmed first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamtrain import wire
from streamtrain.deadletter import Rejection
from streamtrain.learners import Learner

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
    durations: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Seconds of each applied update."""


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
    values = [r.value or b"" for r in records]
    decoded = wire.decode_batch(values, dim, max_bytes=max_bytes)
    for position, error in decoded.errors.items():
        outcome.rejections.append(_rejection(state, records[position], error.reason,
                                             error.detail))

    # learn: one clock read per sample, in the learner's loop
    learner = state.learner
    learned = learner.learn_many(learner.rows(decoded.X), decoded.y.tolist(), timer)
    index = decoded.index
    for row, error in learned.rejected:
        outcome.rejections.append(_rejection(state, records[int(index[row])], error.reason,
                                             str(error)))
    outcome.durations = learned.durations()

    # advance
    outcome.applied, outcome.squared_error = learned.applied, learned.squared_error
    state.next_offset = records[-1].offset + 1
    state.pending += len(records)
    return outcome


DEAD_LETTER_VALUE_LIMIT = 1_000_000
"""Longest value a dead letter carries: the producer's default request limit
(1 MiB) less room for the key and headers. A longer rejected message would
make the producer refuse the dead letter (and the consumer stop at the same
offset after every restart), so its dead letter holds its first
``DEAD_LETTER_VALUE_LIMIT`` bytes and the detail says so."""


def _rejection(state: PartitionState, record: Any, reason: str, detail: str) -> Rejection:
    log.warning("rejected topic=%s partition=%d offset=%d reason=%s: %s",
                state.topic, state.partition, record.offset, reason, detail)
    value = record.value
    if value is not None and len(value) > DEAD_LETTER_VALUE_LIMIT:
        detail = (f"{detail} (the dead letter holds the first {DEAD_LETTER_VALUE_LIMIT} "
                  f"of {len(value)} bytes)")
        value = value[:DEAD_LETTER_VALUE_LIMIT]
    return Rejection(reason=reason, detail=detail, topic=state.topic,
                     partition=state.partition, offset=record.offset,
                     value=value, key=record.key)
