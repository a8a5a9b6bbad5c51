"""The foundation against a real broker: topics, encoded samples, rejection."""

import numpy as np
import pytest

from streamtrain import wire
from streamtrain.clients import make_admin, make_producer
from streamtrain.errors import TopicConfigError
from streamtrain.topics import TopicSpec, ensure_topics, sample_topic
from tests.helpers import consume_all


def topic_config(settings, topic):
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = make_admin(settings)
    try:
        described = admin.describe_topics([topic])[0]
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, None)
        configs = admin.describe_configs([resource], config_filter="all")["topic"][topic]
        return len(described["partitions"]), configs["retention.ms"]["value"]
    finally:
        admin.close()


def test_sample_topic_is_created_with_partitions_and_infinite_retention(kafka_settings, topic_name):
    admin = make_admin(kafka_settings)
    try:
        assert ensure_topics(admin, [sample_topic(topic_name, 3)]) == [topic_name]
        assert ensure_topics(admin, [sample_topic(topic_name, 3)]) == []
    finally:
        admin.close()
    assert topic_config(kafka_settings, topic_name) == (3, "-1")


def test_existing_topic_with_other_settings_is_a_clear_error(kafka_settings, topic_name):
    admin = make_admin(kafka_settings)
    try:
        ensure_topics(admin, [sample_topic(topic_name, 2)])
        with pytest.raises(TopicConfigError, match="exists with 2 partitions, expected 4"):
            ensure_topics(admin, [sample_topic(topic_name, 4)])
        with pytest.raises(TopicConfigError, match="retention.ms=-1, expected retention.ms=1000"):
            ensure_topics(admin, [TopicSpec(topic_name, 2, {"retention.ms": "1000"})])
    finally:
        admin.close()


def test_encoded_samples_round_trip_through_the_broker(kafka_settings, make_topics, topic_name):
    topic, _ = make_topics(topic_name, partitions=2)
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=50)
    producer = make_producer(kafka_settings)
    for i, value in enumerate(wire.encode_many(X, y, first_id=0)):
        producer.send(topic, value=value, partition=i % 2)
    producer.flush()
    producer.close()

    records = consume_all(kafka_settings, topic, 2, expected=50)
    batch = wire.decode_batch([r.value for r in records], dim=4)
    assert batch.errors == {}
    by_id = {wire.decode(r.value, 4).id: (batch.X[i], batch.y[i]) for i, r in enumerate(records)}
    assert sorted(by_id) == list(range(50))
    for i in range(50):
        assert by_id[i][0].tobytes() == X[i].tobytes() and by_id[i][1] == y[i]


def test_invalid_message_through_the_broker_is_rejected_with_its_reason(
    kafka_settings, make_topics, topic_name
):
    topic, _ = make_topics(topic_name)
    good = wire.encode([1.0, 2.0], 3.0)
    bad = {
        b"\x00garbage-bytes-that-are-not-a-sample!!": "bad_magic",
        good[:-8]: "length_mismatch",
        wire.encode([1.0, 2.0, 3.0], 1.0): "wrong_dimension",
        good[:24] + np.float64(np.nan).tobytes() + good[32:]: "non_finite",
    }
    producer = make_producer(kafka_settings)
    for value in [good, *bad]:
        producer.send(topic, value=value)
    producer.flush()
    producer.close()

    records = consume_all(kafka_settings, topic, 1, expected=5)
    batch = wire.decode_batch([r.value for r in records], dim=2)
    assert batch.index.tolist() == [0]
    got = {records[pos].value: err.reason for pos, err in batch.errors.items()}
    assert got == bad
