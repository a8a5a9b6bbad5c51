"""Real Prometheus and Pushgateway processes for integration tests.

Both come from Debian's packages (``prometheus``, ``prometheus-pushgateway``),
listen on loopback ports chosen by the caller, keep their data in a
temporary directory and are stopped when the context exits.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator


def wait_http(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@contextlib.contextmanager
def running(command: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(ready_url)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def pushgateway(port: int, workdir: Path) -> Iterator[str]:
    """A Pushgateway on ``127.0.0.1:port``; yields its URL."""
    url = f"http://127.0.0.1:{port}"
    command = ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}"]
    with running(command, f"{url}/-/ready", workdir / "pushgateway.log"):
        yield url


@contextlib.contextmanager
def prometheus(config: Path, port: int, workdir: Path) -> Iterator[str]:
    """A Prometheus on ``127.0.0.1:port`` with ``config``; yields its URL."""
    url = f"http://127.0.0.1:{port}"
    command = [
        "prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
    ]
    with running(command, f"{url}/-/ready", workdir / "prometheus.log"):
        yield url


def query(base_url: str, expr: str) -> dict:
    """Evaluate ``expr`` with Prometheus's HTTP API; return the JSON answer."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
