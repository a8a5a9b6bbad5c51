"""A corpus of hostile messages mixed into valid samples on a three-partition
topic, read by the online learner and by the batch job against the real
broker.

The corpus covers every way a message can be bad: no bytes, garbage,
truncated, another schema version, unknown flags, another dimension, NaN
and infinity in features and target, finite values so large that an
update overflows, messages over the services' size limit (but accepted by
the broker: the topics allow 2 MiB, the services 4 KiB), and valid headers
whose declared length lies.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from batch_job.job import run_once
from batch_job.settings import BatchSettings
from consumer.app import run
from consumer.partition import DEAD_LETTER_VALUE_LIMIT
from streamtrain import wire
from streamtrain.checkpoint import CheckpointStore
from streamtrain.clients import make_admin, make_producer
from streamtrain.deadletter import parse_headers
from streamtrain.learners import LearnerConfig, make_learner
from streamtrain.topics import TopicSpec, dead_letter_topic, ensure_topics, sample_topic
from tests.helpers import consume_all
from tests.integration.test_consumer import samples, settings_for

DIM = 5
PARTITIONS = 3
VALID = 600
SERVICE_LIMIT = 4096
TOPIC_LIMIT = 2 << 20


@dataclass(frozen=True)
class Hostile:
    """One bad message and the reason every service must give for it."""

    name: str
    value: bytes
    reason: str


def with_byte(data: bytes, offset: int, value: int) -> bytes:
    changed = bytearray(data)
    changed[offset] = value
    return bytes(changed)


def with_float(data: bytes, offset: int, value: float) -> bytes:
    changed = bytearray(data)
    struct.pack_into("<d", changed, offset, value)
    return bytes(changed)


def with_dim(data: bytes, dim: int) -> bytes:
    changed = bytearray(data)
    struct.pack_into("<I", changed, 4, dim)
    return bytes(changed)


def corpus() -> list[Hostile]:
    """Every class of hostile message, with its expected reason."""
    good = wire.encode(np.arange(1.0, DIM + 1.0), 2.5, id=7)
    rng = np.random.default_rng(99)
    garbage = b"\xff" + rng.bytes(len(good) - 1)
    feature = wire.HEADER_SIZE + 8
    return [
        Hostile("empty", b"", "empty"),
        Hostile("garbage, short", b"\x89PNG\r\n\x1a\n" + rng.bytes(29), "bad_magic"),
        Hostile("garbage, exact sample size", garbage, "bad_magic"),
        Hostile("text", b"{\"x\": [1, 2, 3, 4, 5], \"y\": 1.0}", "bad_magic"),
        Hostile("truncated inside the header", good[:20], "truncated"),
        Hostile("truncated inside the features", good[:-3], "length_mismatch"),
        Hostile("schema version 2", with_byte(good, 2, 2), "unsupported_version"),
        Hostile("schema version 0", with_byte(good, 2, 0), "unsupported_version"),
        Hostile("unknown flag bit", with_byte(good, 3, 0x80), "bad_flags"),
        Hostile("one feature more", wire.encode(np.ones(DIM + 1), 1.0), "wrong_dimension"),
        Hostile("one feature less", wire.encode(np.ones(DIM - 1), 1.0), "wrong_dimension"),
        Hostile("NaN feature", with_float(good, feature, float("nan")), "non_finite"),
        Hostile("+inf feature", with_float(good, feature + 16, float("inf")), "non_finite"),
        Hostile("NaN target", with_float(good, 24, float("nan")), "non_finite"),
        Hostile("-inf target", with_float(good, 24, float("-inf")), "non_finite"),
        Hostile("huge features and target",
                wire.encode(np.full(DIM, 1e200), 1e300), "non_finite_update"),
        Hostile("huge target", wire.encode(np.ones(DIM), -1e300), "non_finite_update"),
        Hostile("oversized, 64 KiB", wire.encode(np.ones(8188), 1.0), "oversized"),
        Hostile("oversized, 1.5 MiB", wire.encode(np.ones(196_604), 1.0), "oversized"),
        Hostile("header says dim 6, body holds 5", with_dim(good, DIM + 1),
                "length_mismatch"),
        Hostile("header says 2^32-1 features", with_dim(good, 0xFFFF_FFFF), "length_mismatch"),
        Hostile("valid sample plus trailing bytes", good + b"\0" * 5, "length_mismatch"),
        Hostile("valid header, no body", good[:wire.HEADER_SIZE], "length_mismatch"),
    ]


@dataclass
class Stream:
    """What was produced: per partition, the valid rows in order; per
    (partition, offset), the hostile message there."""

    X: np.ndarray
    y: np.ndarray
    valid_rows: dict[int, list[int]]
    hostile: dict[tuple[int, int], tuple[Hostile, bytes]]
    sizes: dict[int, int]


@pytest.fixture
def hostile_topic(kafka_settings, topic_name):
    """A 3-partition sample topic and its dead-letter topic, both accepting
    messages up to 2 MiB."""
    big = {"max.message.bytes": str(TOPIC_LIMIT)}
    sample = sample_topic(topic_name, PARTITIONS)
    dead = dead_letter_topic(topic_name + ".dlq")
    admin = make_admin(kafka_settings)
    try:
        ensure_topics(admin, [TopicSpec(sample.name, PARTITIONS, {**sample.configs, **big}),
                              TopicSpec(dead.name, 1, {**dead.configs, **big})])
    finally:
        admin.close()
    return topic_name, topic_name + ".dlq"


def produce_mixed(kafka_settings, topic: str) -> Stream:
    """Produce VALID samples round robin with the corpus scattered among
    them at random positions (fixed seed); every message has a key."""
    X, y = samples(VALID, seed=21)
    values = wire.encode_many(X, y, first_id=0)
    messages: list = [("valid", i) for i in range(VALID)]
    rng = np.random.default_rng(5)
    for item in corpus():
        messages.insert(int(rng.integers(0, len(messages) + 1)), ("hostile", item))
    producer = make_producer(kafka_settings, max_request_size=TOPIC_LIMIT)
    sent = []
    try:
        for number, (kind, item) in enumerate(messages):
            partition = number % PARTITIONS
            value = values[item] if kind == "valid" else item.value
            key = f"key-{number}".encode()
            sent.append((kind, item, key,
                         producer.send(topic, value=value, key=key, partition=partition)))
        producer.flush()
        stream = Stream(X, y, {p: [] for p in range(PARTITIONS)}, {}, Counter())
        for kind, item, key, future in sent:
            meta = future.get(timeout=30)
            stream.sizes[meta.partition] += 1
            if kind == "valid":
                stream.valid_rows[meta.partition].append(item)
            else:
                stream.hostile[(meta.partition, meta.offset)] = (item, key)
    finally:
        producer.close()
    return stream


def reference(stream: Stream) -> dict[int, dict]:
    """Per-partition learner state of a run over the valid samples alone."""
    states = {}
    for partition, rows in stream.valid_rows.items():
        learner = make_learner(LearnerConfig(), DIM)
        for x, target in zip(learner.rows(stream.X[rows]), stream.y[rows].tolist()):
            learner.learn(x, target)
        states[partition] = learner.to_payload()
    return states


def expected_counts() -> Counter:
    return Counter(item.reason for item in corpus())


def test_hostile_corpus_decodes_to_the_documented_reasons():
    """Injects: each corpus message into the decoder alone. Checks: each is
    rejected with its documented reason (the overflowing ones decode, and
    are rejected later, by the update)."""
    for item in corpus():
        if item.reason == "non_finite_update":
            assert wire.decode(item.value, DIM, max_bytes=SERVICE_LIMIT).dim == DIM
            continue
        with pytest.raises(wire.SampleError) as caught:
            wire.decode(item.value, DIM, max_bytes=SERVICE_LIMIT)
        assert caught.value.reason == item.reason, item.name


def test_hostile_input_consumer_dead_letters_each_and_learns_valid_only(
        kafka_settings, hostile_topic, tmp_path):
    """Injects: the corpus scattered among 600 valid samples on 3 partitions
    (topic limit 2 MiB, consumer --max-message-bytes 4096). Checks: the
    consumer runs to the end; every hostile message is in the dead-letter
    topic once, with its reason, its original value (the first 1,000,000
    bytes of the 1.5 MiB one, the detail saying so) and key, and its source
    partition and offset; each partition model equals, bit for bit, a run
    over that partition's valid samples alone; the dead-letter counter by
    reason equals the corpus, and is 0 for every other reason."""
    topic, dlq = hostile_topic
    stream = produce_mixed(kafka_settings, topic)
    registry = CollectorRegistry()
    settings = settings_for(kafka_settings, topic, dlq, tmp_path,
                            max_message_bytes=SERVICE_LIMIT, until_idle=3.0)

    summary = run(settings, registry=registry)

    assert summary.samples == VALID and summary.rejected == len(corpus())
    expected = reference(stream)
    store = CheckpointStore(tmp_path / "ckpt", topic)
    for partition in range(PARTITIONS):
        payload = store.load(partition).payload
        assert payload["learner"] == expected[partition], f"partition {partition}"
        assert payload["next_offset"] == stream.sizes[partition]
    assert_dead_letters(kafka_settings, dlq, topic, stream)
    counts = expected_counts()
    for reason in (*wire.REASONS, "non_finite_update"):
        got = registry.get_sample_value("streamtrain_consumer_dead_letters_total",
                                        {"reason": reason})
        assert got == counts.get(reason, 0), reason


def assert_dead_letters(kafka_settings, dlq: str, topic: str, stream: Stream) -> None:
    letters = consume_all(kafka_settings, dlq, 1, expected=len(stream.hostile) + 1,
                          timeout_s=15)
    assert len(letters) == len(stream.hostile)
    for record in letters:
        headers = parse_headers(record.headers)
        where = (int(headers["source.partition"]), int(headers["source.offset"]))
        item, key = stream.hostile[where]
        assert headers["reason"] == item.reason, item.name
        assert headers["source.topic"] == topic and headers["service"] == "consumer"
        assert record.key == key and headers["detail"], item.name
        if len(item.value) <= DEAD_LETTER_VALUE_LIMIT:
            assert record.value == item.value, item.name
        else:
            assert record.value == item.value[:DEAD_LETTER_VALUE_LIMIT], item.name
            assert f"first {DEAD_LETTER_VALUE_LIMIT} of {len(item.value)} bytes" in (
                headers["detail"])


def test_hostile_input_batch_job_skips_and_counts_the_corpus(
        kafka_settings, hostile_topic, tmp_path):
    """Injects: the same mixed stream, replayed by the batch job with
    --max-message-bytes 4096. Checks: the run succeeds; the rejections by
    reason equal the corpus; the model is trained on the 600 valid samples
    alone (weights equal numpy's least squares on them within 1e-9)."""
    topic, _ = hostile_topic
    stream = produce_mixed(kafka_settings, topic)
    settings = BatchSettings(bootstrap_servers=kafka_settings.bootstrap_servers, topic=topic,
                             dim=DIM, max_message_bytes=SERVICE_LIMIT,
                             models_dir=str(tmp_path / "models"), idle_timeout_s=30)

    report = run_once(settings)

    meta = report.model.metadata
    assert meta["rejected"] == dict(sorted(expected_counts().items()))
    assert report.model.samples == VALID
    assert sum(part["records"] for part in meta["offsets"]) == VALID + len(corpus())
    A = np.hstack([stream.X, np.ones((VALID, 1))])
    solution = np.linalg.lstsq(A, stream.y, rcond=None)[0]
    assert np.allclose(report.model.weights, solution[:-1], rtol=1e-9, atol=1e-12)
    assert report.model.bias == pytest.approx(solution[-1], rel=1e-9)
    assert Path(report.path).exists()


def test_hostile_undeliverable_dead_letter_stops_the_learner_before_its_checkpoint(
    kafka_settings, make_topics, topic_name, tmp_path
):
    """Injects: a bad message while the dead-letter topic does not exist
    (the broker does not create topics on its own). Checks: the learner
    exits 1 naming the undelivered dead letter, and no checkpoint passes
    the bad message's offset, so a restart (once the topic exists) reads and
    dead-letters it again: nothing rejected is lost."""
    import subprocess
    import sys

    from streamtrain import wire
    from streamtrain.checkpoint import CheckpointStore
    from tests.helpers import consume_all, produce_values

    topic, _ = make_topics(topic_name)
    missing = topic + ".missing-dlq"
    good = [wire.encode([float(i), 1.0], float(i)) for i in range(20)]
    produce_values(kafka_settings, topic, good[:10] + [b"junk"] + good[10:])
    command = [sys.executable, "-m", "consumer", "--bootstrap-servers",
               kafka_settings.bootstrap_servers, "--topic", topic, "--dead-letter-topic", missing,
               "--group-id", topic, "--checkpoint-dir", str(tmp_path), "--dim", "2",
               "--until-idle", "3"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "offset=10 was not delivered" in first.stderr
    saved = CheckpointStore(tmp_path, topic=topic).load(0).payload
    assert saved is None or saved["next_offset"] <= 10

    from streamtrain.clients import make_admin
    from streamtrain.topics import dead_letter_topic, ensure_topics

    admin = make_admin(kafka_settings)
    ensure_topics(admin, [dead_letter_topic(missing)])
    admin.close()
    second = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-3000:]
    assert [r.value for r in consume_all(kafka_settings, missing, 1, expected=1)] == [b"junk"]
    assert CheckpointStore(tmp_path, topic=topic).load(0).payload["next_offset"] == 21
