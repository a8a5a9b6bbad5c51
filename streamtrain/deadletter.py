"""The dead-letter topic: where rejected messages go, with their reason.

A dead-lettered record keeps the original value (and key) byte for byte;
its headers say why and where it came from:

==================  ==========================================
header              value (UTF-8)
==================  ==========================================
``reason``          one of :data:`streamtrain.wire.REASONS`, or
                    ``non_finite_update``
``detail``          what was found and what was expected
``source.topic``    topic of the original message
``source.partition`` its partition
``source.offset``   its offset
``service``         the service that rejected it
==================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaProducer


@dataclass(frozen=True, slots=True)
class Rejection:
    """One message a service refused, and why."""

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


def headers(rejection: Rejection, service: str) -> list[tuple[str, bytes]]:
    return [
        ("reason", rejection.reason.encode()),
        ("detail", rejection.detail[:1000].encode()),
        ("source.topic", rejection.topic.encode()),
        ("source.partition", str(rejection.partition).encode()),
        ("source.offset", str(rejection.offset).encode()),
        ("service", service.encode()),
    ]


def send(producer: KafkaProducer, topic: str, rejection: Rejection, service: str):
    """Send ``rejection`` to ``topic``; returns the producer's future."""
    return producer.send(
        topic, value=rejection.value or b"", key=rejection.key,
        headers=headers(rejection, service),
    )


def parse_headers(record_headers) -> dict[str, str]:
    """Headers of a dead-lettered record as a dict of strings."""
    return {key: value.decode() for key, value in record_headers or []}
