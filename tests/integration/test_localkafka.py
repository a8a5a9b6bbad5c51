"""The launcher itself: up is idempotent, down leaves no process behind."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from streamtrain import localkafka
from tests.conftest import free_port


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamtrain.localkafka", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def kafka_processes(data_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "kafka.Kafka" in line and str(data_dir) in line]


def test_up_twice_reuses_the_broker_and_down_leaves_no_process(tmp_path):
    port = free_port()
    first = cli("up", "--port", str(port), "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"localhost:{port}"
    pid = localkafka.read_info(tmp_path).pid

    second = cli("up", "--port", str(port), "--data-dir", str(tmp_path))
    assert second.returncode == 0 and second.stdout.strip() == f"localhost:{port}"
    assert localkafka.read_info(tmp_path).pid == pid

    status = json.loads(cli("status", "--data-dir", str(tmp_path)).stdout)
    assert status["running"] and status["bootstrap"] == f"localhost:{port}"

    assert cli("down", "--data-dir", str(tmp_path)).returncode == 0
    assert kafka_processes(tmp_path) == []
    assert not Path(f"/proc/{pid}").exists() or localkafka._is_zombie(pid)
    stopped = cli("status", "--data-dir", str(tmp_path))
    assert stopped.returncode == 3 and json.loads(stopped.stdout)["running"] is False


def test_up_on_a_taken_port_says_so(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = cli("up", "--port", str(port), "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
