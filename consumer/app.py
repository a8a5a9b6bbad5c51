"""The online learner: a consumer-group member that learns from every sample.

:func:`run` is the whole service; tests drive it in-process with their own
registry, clocks, stop event and client factories.

The loop, per poll: fetch records; for each partition, trim what was
already applied, decode the batch, predict-then-update sample by sample,
dead-letter the rejects; flush the dead letters; checkpoint when
``checkpoint_every`` messages or ``checkpoint_interval`` seconds have
passed; commit the checkpointed offsets (for lag tools only: positions come
from the checkpoints); update the lag gauges; stop when asked.

Exactly-once model updates: a partition's checkpoint holds its model and
the next offset together, and on assignment the consumer seeks to that
offset, so after a crash the messages after the checkpoint are applied
again to the model they were not yet applied to. Dead letters and metric
counters of those re-read messages happen again (at least once).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from consumer.metrics import ConsumerMetrics
from consumer.partition import BatchOutcome, PartitionState, fresh_records, learn_batch
from consumer.rebalance import StateListener
from consumer.settings import ConsumerSettings
from streamtrain import deadletter
from streamtrain.deadletter import Rejection
from streamtrain.checkpoint import CheckpointStore, StaleCheckpointError
from streamtrain.clients import make_consumer, make_producer
from streamtrain.errors import ConfigError, StreamtrainError
from streamtrain.learners import (
    Learner, LearnerConfig, learner_from_payload, make_learner,
)
from streamtrain.metrics import serve

log = logging.getLogger(__name__)

SERVICE = "consumer"
POLL_TIMEOUT_MS = 200
RETRY_FIRST_S = 0.2
"""Pause after the first failed poll; it doubles with each failure in a row."""
RETRY_MAX_S = 5.0
"""Longest pause between polls while the broker cannot be reached."""
RETRY_REPORT_S = 30.0
"""While polls keep failing, a warning at most this often."""
FIRST_ASSIGNMENT_GRACE_S = 60.0
DEAD_LETTER_MAX_BLOCK_MS = 15_000
"""How long a dead-letter send may wait for the topic's metadata before it fails."""


class DeadLetterError(StreamtrainError):
    """A rejected message could not be written to the dead-letter topic."""


@dataclass
class RunSummary:
    """What a run did: messages read, samples applied, rejections, and the
    final state of the partitions it owned at the end."""

    messages: int = 0
    samples: int = 0
    rejected: int = 0
    partitions: dict[int, dict[str, Any]] = field(default_factory=dict)


class Worker:
    """The partitions this member owns, their states, and what to do with them.

    One lock guards the states: the main loop holds it while it learns and
    checkpoints, the rebalance callbacks while they adopt or release
    partitions. Nothing that waits for the consumer's network thread runs
    under it.
    """

    def __init__(self, settings: ConsumerSettings, store: CheckpointStore,
                 metrics: ConsumerMetrics, producer: Any, wall: Callable[[], float]):
        self.settings = settings
        self.config: LearnerConfig = settings.learner_config()
        self.store = store
        self.metrics = metrics
        self.producer = producer
        self.dead_letters_in_flight: list[tuple[Rejection, Any]] = []
        self.dead_letter_failure: DeadLetterError | None = None
        self.counted_damage: set[tuple] = set()
        self.wall = wall
        self.consumer: Any = None
        self.states: dict[int, PartitionState] = {}
        self.lock = threading.RLock()
        self.fatal: StreamtrainError | None = None
        self.to_commit: dict[int, int] = {}
        self.assignments = 0

    # rebalance side
    def adopt(self, partitions: list[int]) -> None:
        """Load each partition's checkpoint and seek to its offset."""
        with self.lock:
            for partition in partitions:
                try:
                    state = self._load(partition)
                except StreamtrainError as error:
                    log.error("cannot adopt partition=%d: %s", partition, error)
                    self.fatal = error
                    continue
                self.states[partition] = state
                self.metrics.assigned(partition, state.learner.loss_smoothed)
                self._seek(state)
            self.assignments += 1
        if partitions:
            log.info("assigned topic=%s partitions=%s", self.settings.topic, partitions)

    def release(self, partitions: list[int], save: bool) -> None:
        """Checkpoint (if ``save``) and forget each partition."""
        with self.lock:
            if save:
                self._checkpoint_released(partitions)
            for partition in partitions:
                self.states.pop(partition, None)
                self.to_commit.pop(partition, None)
                self.metrics.revoked(partition)
        if partitions:
            log.info("released topic=%s partitions=%s saved=%s", self.settings.topic,
                     partitions, save)

    def _checkpoint_released(self, partitions: list[int]) -> None:
        """Checkpoint partitions being given up. Runs in the rebalance
        callback, so a refused write is logged, not raised: the partitions
        resume from their last good checkpoint wherever they go next."""
        try:
            self.checkpoint([p for p in partitions if p in self.states])
        except StreamtrainError as error:
            log.error("topic=%s: checkpoint of released partitions %s failed; they resume "
                      "from their last good checkpoint: %s", self.settings.topic, partitions,
                      error)

    def _load(self, partition: int) -> PartitionState:
        loaded = self.store.load(partition)
        self._count_fallbacks(partition, loaded.skipped)
        if loaded.payload is None:
            learner = make_learner(self.config, self.settings.dim)
            return PartitionState(self.settings.topic, partition, learner, 0)
        learner = learner_from_payload(loaded.payload["learner"])
        self._check_compatible(partition, learner)
        offset = int(loaded.payload["next_offset"])
        log.info("loaded checkpoint topic=%s partition=%d offset=%d samples=%d from %s",
                 self.settings.topic, partition, offset, learner.samples, loaded.path)
        return PartitionState(self.settings.topic, partition, learner, offset)

    def _count_fallbacks(self, partition: int, skipped: list[str]) -> None:
        """Count each damaged file once, however often the partition is
        assigned again (a new group often rebalances twice at start)."""
        files = (self.store.latest_path(partition), self.store.previous_path(partition))
        identity = tuple(_file_identity(path) for path in files)
        new = {(partition, description, identity) for description in skipped}
        self.metrics.checkpoint_fallbacks.inc(len(new - self.counted_damage))
        self.counted_damage |= new

    def _check_compatible(self, partition: int, learner: Learner) -> None:
        if learner.config.relevant() != self.config.relevant() or (
                learner.dim != self.settings.dim):
            raise ConfigError(
                f"checkpoint of partition {partition} was made by {learner.config.relevant()} "
                f"with dim {learner.dim}; this run is configured with "
                f"{self.config.relevant()} and dim {self.settings.dim}: use the same "
                f"settings or another --checkpoint-dir"
            )

    def _seek(self, state: PartitionState) -> None:
        tp = TopicPartition(state.topic, state.partition)
        if state.next_offset > 0:
            self.consumer.seek(tp, state.next_offset)
        else:
            self.consumer.seek_to_beginning(tp)

    # main-loop side
    def learn(self, partition: int, records: list) -> BatchOutcome | None:
        """Apply one fetched batch of ``partition``; None if not owned."""
        state = self.states.get(partition)
        if state is None:
            return None
        outcome = learn_batch(state, fresh_records(state, records), self.settings.dim,
                              self.settings.max_message_bytes)
        self.metrics.update_seconds.observe_many(outcome.durations)
        self.metrics.learned(partition, outcome.applied, outcome.squared_error,
                             state.learner.loss_smoothed)
        for rejection in outcome.rejections:
            self._send_dead_letter(rejection)
            self.metrics.dead_letters.labels(rejection.reason).inc()
        return outcome

    def _send_dead_letter(self, rejection: Rejection) -> None:
        """Hand ``rejection`` to the producer; a refused send (the topic
        missing, metadata unavailable) is a :class:`DeadLetterError`."""
        try:
            future = deadletter.send(
                self.producer, self.settings.dead_letter_topic, rejection, SERVICE)
        except KafkaError as error:
            self.dead_letter_failure = self.dead_letter_failure or DeadLetterError(
                f"dead letter for topic={rejection.topic} partition={rejection.partition} "
                f"offset={rejection.offset} was not delivered to "
                f"{self.settings.dead_letter_topic}: {error!r}")
            raise self.dead_letter_failure from None
        self.dead_letters_in_flight.append((rejection, future))

    def confirm_dead_letters(self) -> None:
        """Wait for every dead letter sent so far to be acknowledged.

        :raises DeadLetterError: if one was not delivered, now and at every
            later call: no checkpoint of this process may then be written,
            so the message is read and dead-lettered again after a restart.
        """
        self.producer.flush()
        in_flight, self.dead_letters_in_flight = self.dead_letters_in_flight, []
        for rejection, future in in_flight:
            if future.failed() and self.dead_letter_failure is None:
                self.dead_letter_failure = DeadLetterError(
                    f"dead letter for topic={rejection.topic} partition={rejection.partition} "
                    f"offset={rejection.offset} was not delivered to "
                    f"{self.settings.dead_letter_topic}: {future.exception!r}")
        if self.dead_letter_failure is not None:
            raise self.dead_letter_failure

    def pending(self) -> int:
        return sum(state.pending for state in self.states.values())

    def checkpoint(self, partitions: list[int] | None = None) -> None:
        """Checkpoint the given (default: all) owned partitions that changed,
        then rewrite the combined model. Dead letters are flushed first, so
        a checkpoint never passes a rejected message that was not delivered."""
        chosen = [p for p in (self.states if partitions is None else partitions)
                  if p in self.states and self.states[p].pending]
        if not chosen:
            return
        self.confirm_dead_letters()
        started = time.perf_counter()
        for partition in chosen:
            self._save(self.states[partition])
        model = self.store.write_combined(self.config.kind)
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        self.metrics.last_checkpoint.set(self.wall())
        if model is not None:
            self.metrics.weights_norm.set(float((model.weights @ model.weights) ** 0.5))

    def _save(self, state: PartitionState) -> None:
        try:
            self.store.save(state.partition, state.next_offset, state.learner.to_payload())
        except StaleCheckpointError as error:
            log.error("checkpoint refused topic=%s partition=%d offset=%d: %s",
                      state.topic, state.partition, state.next_offset, error)
            return
        state.pending = 0
        self.to_commit[state.partition] = state.next_offset
        log.debug("checkpoint topic=%s partition=%d offset=%d samples=%d", state.topic,
                  state.partition, state.next_offset, state.learner.samples)

    def take_commits(self) -> dict[TopicPartition, OffsetAndMetadata]:
        with self.lock:
            commits, self.to_commit = self.to_commit, {}
        topic = self.settings.topic
        return {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1)
                for p, o in commits.items()}

    def update_lag(self) -> None:
        with self.lock:
            for partition, state in self.states.items():
                end = self.consumer.highwater(TopicPartition(state.topic, partition))
                if end is not None:
                    self.metrics.lag.labels(str(partition)).set(max(0, end - state.next_offset))

    def summary_states(self) -> dict[int, dict[str, Any]]:
        with self.lock:
            return {p: {"next_offset": s.next_offset, "learner": s.learner.to_payload()}
                    for p, s in self.states.items()}


class Loop:
    """The main loop of :func:`run`, in named steps."""

    def __init__(self, settings: ConsumerSettings, worker: Worker, consumer: Any,
                 stop: threading.Event, clock: Callable[[], float]):
        self.settings = settings
        self.worker = worker
        self.consumer = consumer
        self.stop = stop
        self.clock = clock
        self.summary = RunSummary()
        self.last_checkpoint = clock()
        self.last_message = clock()
        self.seen_assignments = 0
        self.failed_polls = 0
        self.reported_failure: float | None = None

    def run(self) -> RunSummary:
        while not self.stop.is_set():
            records = self.poll()
            if self.worker.fatal is not None:
                raise self.worker.fatal
            self.step(records)
            if self.finished():
                break
        self.finish()
        return self.summary

    def poll(self) -> dict:
        """Fetch records. A retriable client error (the broker unreachable or
        restarting, the group coordinator moving) is never fatal: it is
        logged and the poll is retried after a pause that doubles from
        :data:`RETRY_FIRST_S` to :data:`RETRY_MAX_S`, for as long as it
        takes. Other client errors propagate."""
        try:
            records = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        except KafkaError as error:
            if not getattr(error, "retriable", False):
                raise
            self._back_off(error)
            return {}
        if self.failed_polls:
            log.info("topic=%s: polling works again after %d failed attempts",
                     self.settings.topic, self.failed_polls)
            self.failed_polls, self.reported_failure = 0, None
        return records

    def _back_off(self, error: KafkaError) -> None:
        self.failed_polls += 1
        now = self.clock()
        if self.reported_failure is None or now - self.reported_failure >= RETRY_REPORT_S:
            log.warning("topic=%s: poll failed (%d in a row), retrying: %r",
                        self.settings.topic, self.failed_polls, error)
            self.reported_failure = now
        self.stop.wait(min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (self.failed_polls - 1)))

    def step(self, records: dict) -> None:
        # learn
        with self.worker.lock:
            rejected = self.summary.rejected
            for tp, batch in records.items():
                if self.stop.is_set():
                    break
                self._learn(tp.partition, batch)
            if self.summary.rejected != rejected:
                self.worker.confirm_dead_letters()

            # checkpoint
            if self._checkpoint_due():
                self.worker.checkpoint()
                self.last_checkpoint = self.clock()

        # commit, lag
        self.commit()
        self.worker.update_lag()
        if records:
            self.last_message = self.clock()

    def _learn(self, partition: int, batch: list) -> None:
        limit = self.settings.max_messages
        if limit is not None:
            batch = batch[: max(0, limit - self.summary.messages)]
        outcome = self.worker.learn(partition, batch)
        if outcome is None:
            return
        self.summary.messages += len(batch)
        self.summary.samples += outcome.applied
        self.summary.rejected += len(outcome.rejections)

    def _checkpoint_due(self) -> bool:
        pending = self.worker.pending()
        return pending >= self.settings.checkpoint_every or (
            pending and self.clock() - self.last_checkpoint >= self.settings.checkpoint_interval)

    def finished(self) -> bool:
        limit, idle = self.settings.max_messages, self.settings.until_idle
        if limit is not None and self.summary.messages >= limit:
            log.info("read %d messages, the limit: stopping", self.summary.messages)
            return True
        if self.worker.assignments != self.seen_assignments:
            self.seen_assignments = self.worker.assignments
            self.last_message = self.clock()
        if idle is None:
            return False
        # Before the first assignment the group may still be forming (on a
        # new broker the offsets topic is created first): allow a grace.
        patience = idle if self.worker.assignments else idle + FIRST_ASSIGNMENT_GRACE_S
        if self.clock() - self.last_message >= patience:
            log.info("no message for %.1f s: stopping", patience)
            return True
        return False

    def commit(self, wait: bool = False) -> None:
        """Commit the checkpointed offsets: asynchronously while running,
        synchronously (``wait``) at the end. Failures are logged only: the
        committed offsets serve lag tools, positions come from checkpoints."""
        commits = self.worker.take_commits()
        if not commits:
            return
        try:
            if wait:
                self.consumer.commit(commits)
            else:
                self.consumer.commit_async(commits, callback=_log_commit_failure)
        except KafkaError as error:
            log.warning("offset commit failed: %r", error)

    def finish(self) -> None:
        """Checkpoint everything, commit, and keep the final states."""
        with self.worker.lock:
            self.worker.checkpoint()
        self.commit(wait=True)
        self.summary.partitions = self.worker.summary_states()


def _file_identity(path: Any) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def wait_for_topic(consumer: Any, topic: str, stop: threading.Event,
                   clock: Callable[[], float], report_every: float = 30.0) -> bool:
    """Wait until the broker's metadata lists ``topic``'s partitions.

    Subscribing before then gives an empty assignment that kafka-python
    only revisits at its next metadata refresh (minutes later). Returns
    False if ``stop`` was set first.
    """
    reported = None
    while not stop.is_set():
        if consumer.partitions_for_topic(topic):
            return True
        if reported is None or clock() - reported >= report_every:
            log.warning("topic=%s has no partitions in the cluster metadata yet: waiting", topic)
            reported = clock()
        stop.wait(0.5)
    return False


def _log_commit_failure(offsets: dict, result: Any) -> None:
    if isinstance(result, Exception):
        log.warning("offset commit of %s failed: %r", sorted(tp.partition for tp in offsets),
                    result)


def run(
    settings: ConsumerSettings,
    *,
    registry: CollectorRegistry | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    consumer_factory: Callable[..., Any] = make_consumer,
    producer_factory: Callable[..., Any] = make_producer,
) -> RunSummary:
    """Run the online learner until ``stop`` is set or a stop condition
    (``max_messages``, ``until_idle``) holds; checkpoint, commit and return.

    :raises StreamtrainError: on a setting or checkpoint that cannot work.
    """
    registry = registry if registry is not None else CollectorRegistry()
    stop = stop if stop is not None else threading.Event()
    metrics = ConsumerMetrics(registry, settings.learner_config())
    if settings.metrics_port:
        serve(registry, settings.metrics_port, settings.metrics_address)
    store = CheckpointStore(settings.checkpoint_dir, settings.topic, clock=wall)
    producer = producer_factory(settings, max_block_ms=DEAD_LETTER_MAX_BLOCK_MS)
    worker = Worker(settings, store, metrics, producer, wall)
    consumer = consumer_factory(
        settings, group_id=settings.group_id, session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=min(3000, settings.session_timeout_ms // 4),
        max_partition_fetch_bytes=max(1 << 20, settings.max_message_bytes + 64))
    worker.consumer = consumer
    log.info("starting topic=%s group=%s learner=%s checkpoint_dir=%s", settings.topic,
             settings.group_id, worker.config.relevant(), settings.checkpoint_dir)
    try:
        if not wait_for_topic(consumer, settings.topic, stop, clock):
            return RunSummary()
        consumer.subscribe([settings.topic], listener=StateListener(worker))
        return Loop(settings, worker, consumer, stop, clock).run()
    finally:
        consumer.close()
        producer.close()
