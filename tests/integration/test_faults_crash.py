"""Fault: the online learner is SIGKILLed again and again during a stream.

Each test starts ``python -m consumer`` processes against a 3-partition
topic that a thread fills in chunks, kills them at points drawn from a
seeded RNG (some as soon as a checkpoint write is seen in progress), and
finally lets one process read to the end. The checks compare every
partition's checkpoint with an uninterrupted run computed in-process.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from streamtrain.checkpoint import CheckpointStore
from tests.faults import kill_inside_write, leftover_writes, wait_for
from tests.integration import test_consumer_recovery as recovery
from tests.integration.test_consumer import samples
from tests.integration.test_consumer_recovery import (
    CHUNK,
    PARTITIONS,
    assert_exactly_once,
    checkpointed,
    produce_slowly,
    start,
)

started = recovery.started  # the fixture: processes are killed after the test


def interrupted_writes(store: CheckpointStore) -> int:
    """Traces of writes a kill cut short: temporary files left behind, and
    partitions whose latest file is missing while ``.prev`` exists."""
    orphans = [p for p in store.partitions()
               if not store.latest_path(p).exists() and store.previous_path(p).exists()]
    return len(leftover_writes(store.directory)) + len(orphans)


def kill_repeatedly(kafka_settings, topic, tmp_path, started, kills, seed, same_group):
    """Start a consumer, let it make progress, kill it; ``kills`` times.

    Odd kills wait for a checkpoint write in progress; even ones come at
    a random delay. Returns, per kill, the checkpointed total at the kill
    and whether that kill left a trace of an interrupted write.
    """
    rng = random.Random(seed)
    store = CheckpointStore(tmp_path / "ckpt", topic)
    history = []
    for kill in range(kills):
        group = f"g-{topic}" if same_group else f"g-{topic}-{kill}"
        before, traces = checkpointed(store), interrupted_writes(store)
        process = start(started, kafka_settings, topic, tmp_path, "run", "--checkpoint-every",
                        str(rng.choice((7, 20, 50))), "--group-id", group)
        wait_for(lambda before=before: checkpointed(store) > before,
                 what="progress after a restart")
        if kill % 2:
            kill_inside_write(process, store.directory, timeout=rng.uniform(0.2, 1.5))
        else:
            time.sleep(rng.uniform(0.0, 1.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        history.append((checkpointed(store), interrupted_writes(store) > traces))
    return history


def finish(kafka_settings, topic, tmp_path, started, total):
    """One last consumer reads to the end; SIGTERM; it must exit 0."""
    store = CheckpointStore(tmp_path / "ckpt", topic)
    process = start(started, kafka_settings, topic, tmp_path, "run", "--checkpoint-interval",
                    "0.3", "--group-id", f"g-{topic}-final")
    wait_for(lambda: checkpointed(store) == total, what="the final consumer to catch up")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    return store


def run_scenario(kafka_settings, make_topics, topic_name, tmp_path, started, *, chunks, kills,
                 seed, same_group):
    topic, _ = make_topics(topic_name, partitions=PARTITIONS)
    X, y = samples(chunks * CHUNK, seed=seed)
    producer = produce_slowly(kafka_settings, topic, X, y, pause=0.5)
    try:
        history = kill_repeatedly(kafka_settings, topic, tmp_path, started, kills, seed,
                                  same_group)
    finally:
        producer.join()
    assert len(history) == kills
    assert all(at < len(y) for at, _ in history), history
    store = finish(kafka_settings, topic, tmp_path, started, len(y))
    assert_exactly_once(store, X, y)
    return history


def test_faults_consumer_killed_many_times_models_bit_for_bit(
        kafka_settings, make_topics, topic_name, tmp_path, started):
    """Injects: 8 SIGKILLs of the consumer at seeded random points of a
    3-partition stream (every 7 to 50 messages a checkpoint, odd kills
    aimed at a checkpoint write in progress), a restart after each.
    Checks: each partition's checkpoint (weights, bias, optimizer state,
    counts, loss statistics) equals an uninterrupted in-process run bit
    for bit, and the sample counts add up to exactly what was produced."""
    history = run_scenario(kafka_settings, make_topics, topic_name, tmp_path, started,
                           chunks=12, kills=8, seed=11, same_group=False)
    print("kills (checkpointed total, interrupted a write):", history)


@pytest.mark.slow
def test_faults_consumer_killed_ten_times_same_group_models_bit_for_bit(
        kafka_settings, make_topics, topic_name, tmp_path, started):
    """Injects: 10 SIGKILLs as in the short variant, every restart in the
    same consumer group (so each waits for the dead member's session to
    expire), over a longer stream. Checks: bit-for-bit models, exact
    counts, and that at least one kill landed inside a checkpoint write
    (a temporary file or a lone ``.prev`` was left behind)."""
    history = run_scenario(kafka_settings, make_topics, topic_name, tmp_path, started,
                           chunks=16, kills=10, seed=23, same_group=True)
    assert any(inside for _, inside in history), history
