"""Small helpers for integration tests: write arrays to a topic, read it back."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from kafka import TopicPartition

from streamtrain import wire
from streamtrain.clients import make_consumer, make_producer
from streamtrain.settings import KafkaSettings


def produce_values(
    settings: KafkaSettings, topic: str, values: Sequence[bytes], partitions: int = 1
) -> None:
    """Send raw values round robin over ``partitions``; wait for every ack."""
    producer = make_producer(settings)
    try:
        futures = [
            producer.send(topic, value=value, partition=i % partitions)
            for i, value in enumerate(values)
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()


def produce_arrays(
    settings: KafkaSettings, topic: str, X: np.ndarray, y: np.ndarray, partitions: int = 1
) -> None:
    """Encode the rows of ``X``/``y`` (ids 0..n-1) and send them round robin."""
    produce_values(settings, topic, wire.encode_many(X, y, first_id=0), partitions)


def consume_all(
    settings: KafkaSettings, topic: str, partitions: int, expected: int, timeout_s: float = 60
) -> list:
    """Read records from the beginning of every partition until ``expected``
    have arrived or ``timeout_s`` has passed; return them."""
    consumer = make_consumer(settings)
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    records: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
