"""The monitoring configuration against a real Prometheus and Pushgateway.

Injects: a producer and an online learner running on a real topic (with a
few invalid messages), and one batch-job push. Checks: Prometheus, loaded
with the project's scrape jobs and alert rules (targets pointed at those
processes), scrapes them; every dashboard query (Grafana macros
substituted) and every alert expression evaluates without error; the loss
panels return data; every rule evaluates with health "ok".
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests import servers
from tests.conftest import free_port
from tests.helpers import produce_arrays, produce_values

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
MACROS = {"$__rate_interval": "20s", "$__interval": "5s", "$__range": "5m"}
DIM = 3


def service(*args: str, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prometheus_config(path: Path, targets: dict[str, str]) -> Path:
    """The project's prometheus.yml with targets on loopback and 1 s scrapes."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / "alerts.yml")]
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    path.write_text(yaml.safe_dump(config))
    return path


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "streamtrain.json").read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for macro, value in MACROS.items():
                expr = expr.replace(macro, value)
            queries.append((panel["title"], expr))
    return queries


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def wait_for(base: str, expr: str, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = servers.query(base, expr)
        if answer.get("status") == "success" and answer["data"]["result"]:
            return answer
        time.sleep(1)
    raise AssertionError(f"{expr} returned no data within {timeout_s} s")


@pytest.fixture
def pipeline(kafka_settings, make_topics, topic_name, tmp_path):
    """A producer and a learner running on a fresh topic, a batch push, and
    Prometheus scraping them with the project's configuration."""
    topic, dead_letters = make_topics(topic_name, partitions=2)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, DIM))
    produce_arrays(kafka_settings, topic, X, X @ np.array([1.0, -2.0, 0.5]) + 0.3, partitions=2)
    produce_values(kafka_settings, topic, [b"", b"garbage-garbage-garbage-garbage!!"])
    common = ["--bootstrap-servers", kafka_settings.bootstrap_servers, "--topic", topic,
              "--dead-letter-topic", dead_letters, "--dim", str(DIM)]
    ports = {"consumer": free_port(), "producer": free_port(), "pushgateway": free_port(),
             "prometheus": free_port()}
    checkpoints = tmp_path / "checkpoints"
    processes = [
        service("consumer", *common, "--group-id", topic, "--checkpoint-dir", str(checkpoints),
                "--checkpoint-interval", "1", "--metrics-port", str(ports["consumer"]),
                "--metrics-address", "127.0.0.1", log=tmp_path / "consumer.log"),
        service("producer", *common, "--count", "0", "--rate", "200", "--seed", "1",
                "--metrics-port", str(ports["producer"]), "--metrics-address", "127.0.0.1",
                "--progress", "off", log=tmp_path / "producer.log"),
    ]
    try:
        with servers.pushgateway(ports["pushgateway"], tmp_path) as gateway:
            servers.wait_http(f"http://127.0.0.1:{ports['consumer']}/metrics")
            _wait_file(checkpoints / "model.json")
            batch = subprocess.run(
                [sys.executable, "-m", "batch_job", "run", *common, "--models-dir",
                 str(tmp_path / "models"), "--online-model", str(checkpoints / "model.json"),
                 "--pushgateway", gateway], capture_output=True, text=True, timeout=300)
            assert batch.returncode == 0, batch.stderr[-3000:]
            targets = {
                "streamtrain-consumer": f"127.0.0.1:{ports['consumer']}",
                "streamtrain-producer": f"127.0.0.1:{ports['producer']}",
                "streamtrain-pushgateway": f"127.0.0.1:{ports['pushgateway']}",
                "prometheus": f"127.0.0.1:{ports['prometheus']}",
            }
            config = prometheus_config(tmp_path / "prometheus.yml", targets)
            with servers.prometheus(config, ports["prometheus"], tmp_path) as base:
                yield base
    finally:
        for process in processes:
            stop(process)


def _wait_file(path: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written within {timeout_s} s"
        time.sleep(0.5)


def test_dashboard_and_alerts_evaluate_on_real_scrapes(pipeline):
    base = pipeline
    for job in ("streamtrain-consumer", "streamtrain-producer", "streamtrain-pushgateway"):
        wait_for(base, f'up{{job="{job}"}} == 1')
    wait_for(base, "streamtrain_batch_mse")
    wait_for(base, "increase(streamtrain_online_samples_total[20s]) > 0")
    time.sleep(3)

    for title, expr in dashboard_queries():
        answer = servers.query(base, expr)
        assert answer["status"] == "success", f"{title}: {expr}: {answer}"

    for title in ("Online MSE (prequential, windowed)", "Batch vs online on the same replay",
                  "Smoothed online loss by partition"):
        for panel_title, expr in dashboard_queries():
            if panel_title == title:
                result = servers.query(base, expr)["data"]["result"]
                assert result, f"{title}: {expr} returned no data"
                assert all(np.isfinite(float(r["value"][1])) for r in result), (title, result)

    dead = servers.query(base, "sum(streamtrain_consumer_dead_letters_total)")["data"]["result"]
    assert float(dead[0]["value"][1]) == 2

    for name, expr in alert_expressions():
        answer = servers.query(base, expr)
        assert answer["status"] == "success", f"{name}: {answer}"

    rules = servers.get_json(f"{base}/api/v1/rules")["data"]["groups"]
    health = {rule["name"]: rule["health"] for group in rules for rule in group["rules"]}
    assert len(health) == len(alert_expressions())
    assert set(health.values()) == {"ok"}, health
