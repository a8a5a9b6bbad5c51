"""A smoke check: one encoded sample through a real broker and back."""

from __future__ import annotations

import time

from streamtrain import wire
from streamtrain.clients import make_admin, make_consumer, make_producer
from streamtrain.settings import KafkaSettings
from streamtrain.topics import ensure_topics, sample_topic

CHECK_TOPIC = "streamtrain-check"


def round_trip(bootstrap_servers: str, timeout_s: float = 30.0) -> dict:
    """Produce one sample, read it back from its offset, compare.

    :returns: what was sent, what came back and where it was stored.
    :raises RuntimeError: if the sample does not come back intact.
    """
    settings = KafkaSettings(bootstrap_servers=bootstrap_servers)
    admin = make_admin(settings)
    try:
        ensure_topics(admin, [sample_topic(CHECK_TOPIC, 1)])
    finally:
        admin.close()

    # Send one sample and wait for the broker's acknowledgement.
    sent = wire.Sample(x=[0.5, -0.0, 1e308], y=3.25, event_time_ms=int(time.time() * 1000), id=1)
    producer = make_producer(settings)
    meta = producer.send(
        CHECK_TOPIC, wire.encode(sent.x, sent.y, event_time_ms=sent.event_time_ms, id=sent.id)
    ).get(timeout=timeout_s)
    producer.close()

    # Read it back from the offset the broker gave it.
    got = _read_at(settings, meta.partition, meta.offset, len(sent.x), timeout_s)
    same = list(got.x) == list(sent.x) and got.y == sent.y and got.id == sent.id
    if not same:
        raise RuntimeError(f"sample came back changed: sent {sent}, got {got}")
    return {
        "topic": CHECK_TOPIC,
        "partition": meta.partition,
        "offset": meta.offset,
        "bytes": wire.encoded_size(len(sent.x)),
        "x": list(got.x),
        "y": got.y,
        "id": got.id,
        "event_time_ms": got.event_time_ms,
        "round_trip": "ok",
    }


def _read_at(
    settings: KafkaSettings, partition: int, offset: int, dim: int, timeout_s: float
) -> wire.Sample:
    from kafka import TopicPartition

    consumer = make_consumer(settings)
    try:
        tp = TopicPartition(CHECK_TOPIC, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset == offset:
                    return wire.decode(record.value, dim)
    finally:
        consumer.close()
    raise RuntimeError(
        f"sample at {CHECK_TOPIC}[{partition}]@{offset} not read within {timeout_s} s"
    )
