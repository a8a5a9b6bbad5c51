"""Fixtures shared by all tests: a real Kafka broker and per-test topics.

The broker comes from, in this order: ``KAFKA_BOOTSTRAP_SERVERS``; a
testcontainers Kafka (KRaft) if a Docker engine answers; the project's own
launcher (``streamtrain.localkafka``) on a free port and a fresh data
directory, stopped at the end of the session.

Tests under ``tests/integration`` are marked ``integration``, so
``pytest -m "not integration"`` runs the unit tests alone.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from streamtrain import localkafka
from streamtrain.clients import make_admin
from streamtrain.settings import KafkaSettings
from streamtrain.topics import dead_letter_topic, ensure_topics, sample_topic

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # any failure means: no usable Docker engine
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the whole session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    data_dir = tmp_path_factory.mktemp("kafka")
    info = localkafka.up(port=free_port(), data_dir=data_dir)
    try:
        yield info.bootstrap
    finally:
        localkafka.down(data_dir)


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses (the test's name and a random part)."""
    base = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:80]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_topics(kafka_settings: KafkaSettings):
    """Create a sample topic (and its dead-letter topic) for one test."""

    def create(name: str, partitions: int = 1) -> tuple[str, str]:
        admin = make_admin(kafka_settings)
        try:
            ensure_topics(admin, [sample_topic(name, partitions), dead_letter_topic(name + ".dlq")])
        finally:
            admin.close()
        return name, name + ".dlq"

    return create
