"""Fault: members join and leave the consumer group during a stream.

Up to three ``python -m consumer`` processes share one group and one
checkpoint directory while the test releases the stream chunk by chunk,
so every join and leave happens with messages still flowing. Leaves are
clean (SIGTERM: revoke, checkpoint, exit 0) or crashes (SIGKILL: the
partitions move after the session timeout, from the last checkpoint).
"""

from __future__ import annotations

import signal
from pathlib import Path

from streamtrain.checkpoint import CheckpointStore
from tests.faults import GatedProducer, wait_for
from tests.integration import test_consumer_recovery as recovery
from tests.integration.test_consumer import samples
from tests.integration.test_consumer_recovery import (
    CHUNK,
    PARTITIONS,
    assert_exactly_once,
    checkpointed,
    start,
)

started = recovery.started  # the fixture: processes are killed after the test

SMALL_CHUNK = CHUNK // 2


def assignments(log: Path) -> int:
    """How many times a member's log says it was assigned partitions."""
    return log.read_text().count("assigned topic=") if log.exists() else 0


def join(started, kafka_settings, topic, tmp_path, name, store, stream):
    """Start member ``name``; wait until it owns partitions and learns."""
    before = checkpointed(store)
    process = start(started, kafka_settings, topic, tmp_path, name, "--checkpoint-every", "300")
    wait_for(lambda: assignments(tmp_path / f"{name}.log") >= 1, what=f"{name} assigned")
    stream.release()
    wait_for(lambda: checkpointed(store) > before, what=f"progress after {name} joined")
    return process


def test_faults_members_join_and_leave_no_state_lost_or_applied_twice(
        kafka_settings, make_topics, topic_name, tmp_path, started):
    """Injects: member A starts; B joins; C joins (three members); B leaves
    with SIGTERM; A is SIGKILLed; D joins; all while the stream flows.
    Checks: B exits 0; every partition's checkpoint equals an in-process
    uninterrupted run bit for bit (no partition state lost, none applied
    twice); the counts add up to exactly what was produced; C saw more
    than one assignment (partitions moved to it)."""
    topic, _ = make_topics(topic_name, partitions=PARTITIONS)
    X, y = samples(16 * SMALL_CHUNK, seed=31)
    store = CheckpointStore(tmp_path / "ckpt", topic)
    stream = GatedProducer(kafka_settings, topic, X, y, PARTITIONS, SMALL_CHUNK)
    try:
        stream.release(2)
        a = join(started, kafka_settings, topic, tmp_path, "a", store, stream)
        b = join(started, kafka_settings, topic, tmp_path, "b", store, stream)
        c = join(started, kafka_settings, topic, tmp_path, "c", store, stream)

        # a clean leave, then a crash, each with messages in flight
        stream.release(2)
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=60) == 0
        stream.release(2)
        wait_for(lambda: checkpointed(store) >= stream.produced - 3 * 300, what="progress")
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        killed_at = checkpointed(store)
        stream.release(2)
        d = join(started, kafka_settings, topic, tmp_path, "d", store, stream)
    finally:
        stream.join()
    assert killed_at < len(y)

    wait_for(lambda: checkpointed(store) == len(y), what="the group to catch up")
    for member in (c, d):
        member.send_signal(signal.SIGTERM)
        assert member.wait(timeout=60) == 0
    assert_exactly_once(store, X, y)
    assert assignments(tmp_path / "c.log") >= 2
