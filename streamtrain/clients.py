"""Factories of kafka-python clients configured from :class:`KafkaSettings`.

Services receive these factories (or the clients they make) as arguments,
so tests can hand them clients of their own.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from streamtrain.settings import KafkaSettings, kafka_client_config


def make_admin(settings: KafkaSettings, **overrides: Any) -> KafkaAdminClient:
    return KafkaAdminClient(**kafka_client_config(settings), **overrides)


def make_producer(settings: KafkaSettings, **overrides: Any) -> KafkaProducer:
    """An idempotent producer with ``acks=all`` unless overridden."""
    config: dict[str, Any] = {"acks": "all", "enable_idempotence": True, "linger_ms": 5}
    config.update(overrides)
    return KafkaProducer(**kafka_client_config(settings), **config)


def make_consumer(settings: KafkaSettings, **overrides: Any) -> KafkaConsumer:
    """A consumer that never commits on its own and starts at the earliest
    offset when it has nothing else to go by."""
    config: dict[str, Any] = {"enable_auto_commit": False, "auto_offset_reset": "earliest"}
    config.update(overrides)
    return KafkaConsumer(**kafka_client_config(settings), **config)
