"""Security basics of the running services against the real broker:
secrets never reach the logs, the SASL/SSL settings reach the Kafka
clients, and the metrics endpoint listens only on the configured address.
(That the container runs as a non-root user is checked in
tests/unit/test_monitoring_files.py.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry

from consumer.app import run
from consumer.settings import ConsumerSettings
from streamtrain.clients import make_consumer, make_producer
from tests.conftest import free_port
from tests.helpers import produce_arrays
from tests.integration.test_consumer import samples, settings_for

ROOT = Path(__file__).resolve().parents[2]
SASL_SECRET = "sasl-Secret-4711-d0c5"
SSL_SECRET = "ssl-Secret-4712-a9e1"
SERVICES = {
    "producer": ["-m", "producer", "--count", "10"],
    "consumer": ["-m", "consumer", "--until-idle", "5"],
    "batch_job": ["-m", "batch_job", "run"],
}


def secret_env(kafka_settings, tmp_path: Path) -> dict[str, str]:
    """SASL over plaintext with both passwords set, DEBUG logging, against
    the real (plaintext) broker: every connection fails in the handshake."""
    return {
        **os.environ, "PYTHONPATH": str(ROOT),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "alice", "KAFKA_SASL_PASSWORD": SASL_SECRET,
        "KAFKA_SSL_PASSWORD": SSL_SECRET, "STREAMTRAIN_LOG_LEVEL": "DEBUG",
        "STREAMTRAIN_TOPIC": "security-probe", "CONSUMER_CHECKPOINT_DIR": str(tmp_path / "c"),
        "BATCH_MODELS_DIR": str(tmp_path / "m"), "BATCH_IDLE_TIMEOUT_S": "5",
    }


def run_for(commands: dict[str, list[str]], env: dict[str, str],
            seconds: float) -> dict[str, str]:
    """Run every command at once for ``seconds``, then SIGTERM (SIGKILL 5 s
    later); return each one's combined stdout and stderr."""
    processes = {
        name: subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, args in commands.items()
    }
    time.sleep(seconds)
    outputs = {}
    for name, process in processes.items():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            outputs[name] = process.communicate(timeout=5)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            outputs[name] = process.communicate(timeout=10)[0]
    return outputs


def test_services_at_debug_never_log_kafka_secrets(kafka_settings, tmp_path):
    """Injects: KAFKA_SASL_PASSWORD and KAFKA_SSL_PASSWORD, SASL_PLAINTEXT
    with PLAIN, DEBUG log level, and the real plaintext broker (each
    connection fails in the SASL handshake), for the producer, the consumer
    and the batch job CLIs, each for 8 s. Checks: each service logged its
    attempts (the handshake failure proves the SASL settings reached its
    client), and neither secret appears anywhere in its stdout or stderr."""
    outputs = run_for(SERVICES, secret_env(kafka_settings, tmp_path), seconds=8)

    for name, output in outputs.items():
        assert "Sasl" in output, f"{name} made no SASL attempt:\n{output[-2000:]}"
        assert SASL_SECRET not in output, name
        assert SSL_SECRET not in output, name


def test_consumer_service_hands_security_settings_to_its_clients(tmp_path):
    """Injects: consumer settings with SASL_SSL, user, mechanism and both
    passwords, and client factories that build real (unconnected)
    kafka-python clients and keep their config. Checks: the dead-letter
    producer and the group consumer the service builds both carry every
    security setting."""
    configs = []

    def recording(factory):
        def build(settings, **overrides):
            client = factory(settings, api_version=(4, 0), **overrides)
            configs.append(dict(client.config))
            return client
        return build

    settings = ConsumerSettings(
        bootstrap_servers="127.0.0.1:1", checkpoint_dir=tmp_path / "ckpt",
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username="alice",
        sasl_password=SASL_SECRET, ssl_password=SSL_SECRET)
    stop = threading.Event()
    stop.set()
    run(settings, registry=CollectorRegistry(), stop=stop,
        producer_factory=recording(make_producer), consumer_factory=recording(make_consumer))

    assert len(configs) == 2
    for config in configs:
        assert config["security_protocol"] == "SASL_SSL"
        assert config["sasl_mechanism"] == "SCRAM-SHA-256"
        assert config["sasl_plain_username"] == "alice"
        assert config["sasl_plain_password"] == SASL_SECRET
        assert config["ssl_password"] == SSL_SECRET


def listening(pid: int, port: int) -> list[str]:
    """Addresses process ``pid`` listens on at TCP ``port``."""
    return [c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


def other_addresses() -> list[str]:
    """This machine's IPv4 addresses outside the loopback network."""
    return [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family == socket.AF_INET and not a.address.startswith("127.")]


def refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        return True
    return False


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def assert_bound_to_loopback_only(pid: int, port: int) -> None:
    assert listening(pid, port) == ["127.0.0.1"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200 and b"streamtrain_" in response.read()
    for address in other_addresses():
        assert refused(address, port), address


def test_consumer_metrics_endpoint_listens_only_on_configured_address(
        kafka_settings, make_topics, topic_name, tmp_path):
    """Injects: --metrics-address 127.0.0.1 on a running consumer. Checks:
    its only listening socket on the metrics port is bound to 127.0.0.1,
    /metrics answers there, and connections to the machine's other IPv4
    addresses on that port are refused."""
    topic, dlq = make_topics(topic_name, partitions=1)
    X, y = samples(50, seed=31)
    produce_arrays(kafka_settings, topic, X, y)
    port = free_port()
    settings = settings_for(kafka_settings, topic, dlq, tmp_path, metrics_port=port,
                            metrics_address="127.0.0.1", until_idle=4.0)
    worker = threading.Thread(target=run, args=(settings,),
                              kwargs={"registry": CollectorRegistry()})
    worker.start()
    try:
        wait_for(lambda: listening(os.getpid(), port))
        assert_bound_to_loopback_only(os.getpid(), port)
    finally:
        worker.join(timeout=60)


def test_producer_metrics_endpoint_listens_only_on_configured_address(
        kafka_settings, topic_name, tmp_path):
    """Injects: ``python -m producer --metrics-address 127.0.0.1`` publishing
    slowly. Checks: the process's only listening socket on the metrics port
    is bound to 127.0.0.1, /metrics answers there, and the machine's other
    IPv4 addresses refuse connections on that port."""
    port = free_port()
    command = [sys.executable, "-m", "producer", "--bootstrap-servers",
               kafka_settings.bootstrap_servers, "--topic", topic_name, "--count", "1000",
               "--rate", "20", "--metrics-port", str(port), "--metrics-address", "127.0.0.1"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: process.poll() is None and listening(process.pid, port))
        assert_bound_to_loopback_only(process.pid, port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
