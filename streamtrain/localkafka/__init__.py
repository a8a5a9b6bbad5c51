"""A real single-node Apache Kafka broker for machines without Docker.

The official Kafka jars are resolved from Maven Central with the machine's
``mvn`` into a cache outside the repository (``~/.cache/streamtrain`` or
``$STREAMTRAIN_CACHE_DIR``), once per Kafka version. :func:`up` formats a
data directory for one KRaft node that is both broker and controller,
starts the JVM in the background and waits until an admin client can list
topics. The broker's pid, ports and bootstrap address are kept in
``DATA_DIR/broker.json``; :func:`down` stops that process with SIGTERM and
waits for it to exit.

Guarantees: ``up`` on a data directory whose broker runs returns the
running broker's address and starts nothing; ``up`` on a stopped data
directory restarts the broker on its existing data (no re-format), so a
stop and start loses no acknowledged message; ``down`` returns only when
the process is gone.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from streamtrain.errors import StreamtrainError

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.2"
LOG4J_VERSION = "2.24.3"
DEFAULT_PORT = 9092
HEAP = "-Xmx768m"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0

_ARTIFACTS = (
    ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    ("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
    ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
    ("org.apache.logging.log4j", "log4j-api", LOG4J_VERSION),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
)


class LocalKafkaError(StreamtrainError):
    """The local broker cannot be installed, started or stopped."""


@dataclass(frozen=True)
class BrokerInfo:
    """What ``broker.json`` in a data directory records of a started broker."""

    pid: int
    port: int
    controller_port: int
    bootstrap: str
    kafka_version: str
    data_dir: str


def cache_dir() -> Path:
    """Where resolved jars live: ``$STREAMTRAIN_CACHE_DIR`` or ``~/.cache/streamtrain``."""
    root = os.environ.get("STREAMTRAIN_CACHE_DIR") or Path.home() / ".cache" / "streamtrain"
    return Path(root)


def default_data_dir() -> Path:
    return cache_dir() / "broker"


def resolve_jars() -> Path:
    """Return the directory of the Kafka jars, resolving them if needed.

    :raises LocalKafkaError: if Maven is missing or cannot resolve them.
    """
    lib = cache_dir() / f"kafka-{KAFKA_VERSION}" / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "Maven (mvn) is not on PATH; it resolves the Kafka jars once "
            "(Debian: apt-get install maven)"
        )
    project = lib.parent / "resolve"
    project.mkdir(parents=True, exist_ok=True)
    (project / "pom.xml").write_text(_pom())
    log.info("resolving Apache Kafka %s from Maven Central into %s", KAFKA_VERSION, lib)
    result = subprocess.run(
        [mvn, "-B", "-q", "dependency:copy-dependencies", f"-DoutputDirectory={lib}"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise LocalKafkaError(f"Maven could not resolve the Kafka jars:\n{tail}")
    marker.write_text(KAFKA_VERSION)
    return lib


def _pom() -> str:
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in _ARTIFACTS
    )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>streamtrain.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def java_command() -> str:
    """Path of a ``java`` of version 17 or newer.

    :raises LocalKafkaError: if there is none.
    """
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            "Java is not on PATH; Kafka 4 needs a JDK or JRE 17+ "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True)
    first = (
        (result.stderr or result.stdout).splitlines()[0] if result.stderr or result.stdout else ""
    )
    major = _java_major(first)
    if major is not None and major < 17:
        raise LocalKafkaError(f"Kafka 4 needs Java 17 or newer, found: {first}")
    return java


def _java_major(version_line: str) -> int | None:
    parts = version_line.split('"')
    if len(parts) < 2:
        return None
    head = parts[1].split(".")
    number = head[1] if head[0] == "1" and len(head) > 1 else head[0]
    return int(number) if number.isdigit() else None


def classpath() -> str:
    """The Java class path of the broker and its tools."""
    return str(resolve_jars() / "*")


def read_info(data_dir: Path) -> BrokerInfo | None:
    path = data_dir / "broker.json"
    if not path.exists():
        return None
    return BrokerInfo(**json.loads(path.read_text()))


def is_running(info: BrokerInfo | None) -> bool:
    """True if the recorded process is alive and is a Kafka JVM."""
    if info is None:
        return False
    try:
        cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline


def up(port: int = DEFAULT_PORT, data_dir: Path | None = None) -> BrokerInfo:
    """Start (or reuse) the broker of ``data_dir`` and wait until it serves.

    Steps: reuse a running broker; check the port; resolve jars; format
    storage on first use; start the JVM; wait for an admin client.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    # Reuse a broker already running on this data directory.
    info = read_info(data_dir)
    if is_running(info):
        log.info("broker already running at %s (pid %s)", info.bootstrap, info.pid)
        return info

    # Refuse a port that something else holds.
    if not _port_free(port):
        raise LocalKafkaError(f"port {port} is already in use; pass --port with a free one")
    java = java_command()
    lib = resolve_jars()
    data_dir.mkdir(parents=True, exist_ok=True)

    # Write the configuration, format on first use, start the JVM.
    controller_port = _free_port()
    properties = _write_properties(data_dir, port, controller_port)
    if not (data_dir / "log" / "meta.properties").exists():
        _format_storage(java, lib, data_dir, properties)
    process = _start_jvm(java, lib, data_dir, properties)
    info = BrokerInfo(
        pid=process.pid,
        port=port,
        controller_port=controller_port,
        bootstrap=f"localhost:{port}",
        kafka_version=KAFKA_VERSION,
        data_dir=str(data_dir),
    )
    (data_dir / "broker.json").write_text(json.dumps(asdict(info), indent=2))

    # Wait until it answers client requests.
    _wait_ready(process, info, data_dir)
    return info


def down(data_dir: Path | None = None, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Stop the broker of ``data_dir`` cleanly; True if one was running.

    Sends SIGTERM (a controlled shutdown) and waits; only if the process is
    still there after ``timeout_s`` does it send SIGKILL, and says so.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    info = read_info(data_dir)
    if not is_running(info):
        return False
    os.kill(info.pid, signal.SIGTERM)
    if not _wait_exit(info.pid, timeout_s):
        log.warning("broker pid %s ignored SIGTERM for %.0f s; killing it", info.pid, timeout_s)
        os.kill(info.pid, signal.SIGKILL)
        _wait_exit(info.pid, 10.0)
    return True


def kill(data_dir: Path | None = None) -> bool:
    """SIGKILL the broker of ``data_dir`` (a crash, for fault tests)."""
    data_dir = (data_dir or default_data_dir()).resolve()
    info = read_info(data_dir)
    if not is_running(info):
        return False
    os.kill(info.pid, signal.SIGKILL)
    _wait_exit(info.pid, 10.0)
    return True


def log_tail(data_dir: Path, lines: int = 40) -> str:
    """The last lines of the broker's logs (server log, then JVM output)."""
    chunks = []
    for name in ("server.log", "jvm.out"):
        path = data_dir / name
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            chunks.append(f"--- {path} ---\n" + "\n".join(text))
    return "\n".join(chunks) or "(no log written)"


def _write_properties(data_dir: Path, port: int, controller_port: int) -> Path:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@localhost:{controller_port}",
        "listeners": f"PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://localhost:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir / "log"),
        "num.partitions": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.check.interval.ms": "300000",
        "message.max.bytes": str(2 << 20),
    }
    path = data_dir / "server.properties"
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return path


def _format_storage(java: str, lib: Path, data_dir: Path, properties: Path) -> None:
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    result = subprocess.run(
        [
            java,
            "-Xmx256m",
            "-cp",
            str(lib / "*"),
            *_log_options(data_dir),
            "kafka.tools.StorageTool",
            "format",
            "-c",
            str(properties),
            "-t",
            cluster_id,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-3000:]
        raise LocalKafkaError(f"formatting the storage in {data_dir} failed:\n{output}")


def _log_options(data_dir: Path) -> list[str]:
    config = resources.files("streamtrain.localkafka") / "log4j2.xml"
    return [f"-Dlog4j2.configurationFile={config}", f"-Dkafka.logs.dir={data_dir}"]


def _start_jvm(java: str, lib: Path, data_dir: Path, properties: Path) -> subprocess.Popen:
    command = [
        java,
        "-Xms256m",
        HEAP,
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        *_log_options(data_dir),
        "-cp",
        str(lib / "*"),
        "kafka.Kafka",
        str(properties),
    ]
    with open(data_dir / "jvm.out", "ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _wait_ready(process: subprocess.Popen, info: BrokerInfo, data_dir: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalKafkaError(
                f"the broker exited with code {process.returncode} while starting\n"
                + log_tail(data_dir)
            )
        if _answers(info.bootstrap):
            log.info("broker ready at %s (pid %s)", info.bootstrap, info.pid)
            return
        time.sleep(0.5)
    process.terminate()
    raise LocalKafkaError(
        f"the broker did not answer within {READY_TIMEOUT_S:.0f} s\n" + log_tail(data_dir)
    )


def _answers(bootstrap: str) -> bool:
    """True if an admin client can list the broker's topics."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, _, port = bootstrap.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished == pid:
                return True
        except ChildProcessError:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return True
        time.sleep(0.2)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
