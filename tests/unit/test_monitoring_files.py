"""The monitoring and deployment files are valid for the tools that load them."""

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "streamtrain.json"
DATASOURCE = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_promtool_accepts_the_prometheus_configuration():
    result = run("promtool", "check", "config", str(MONITORING / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules():
    result = run("promtool", "check", "rules", str(MONITORING / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_every_alert_has_a_promtool_unit_test_and_all_pass():
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    tests = yaml.safe_load((MONITORING / "tests" / "alerts_test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t.get("alert_rule_test", [])}
    assert alerts == tested
    for alert in alerts:
        cases = [
            c
            for t in tests["tests"]
            for c in t.get("alert_rule_test", [])
            if c["alertname"] == alert
        ]
        assert any(c["exp_alerts"] for c in cases), f"{alert} never shown firing"
        assert any(not c["exp_alerts"] for c in cases), f"{alert} never shown quiet"
    result = run("promtool", "test", "rules", str(MONITORING / "tests" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_pushgateway_is_scraped_with_honor_labels():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["streamtrain-pushgateway"].get("honor_labels") is True
    assert {"streamtrain-consumer", "streamtrain-producer"} <= set(jobs)
    assert config["rule_files"] == ["alerts.yml"]


def test_dashboard_is_structurally_valid():
    dashboard = json.loads(DASHBOARD.read_text())
    uid = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]["uid"]
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip()


def test_dashboard_panels_do_not_overlap():
    cells = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        g = panel["gridPos"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & area, panel["title"]
        cells |= area


def test_dashboard_shows_what_users_watch():
    exprs = " ".join(
        t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]
    )
    for metric in (
        "streamtrain_online_squared_error_total",
        "streamtrain_batch_mse",
        "streamtrain_batch_online_mse",
        "streamtrain_consumer_lag_records",
        "streamtrain_consumer_dead_letters_total",
        "streamtrain_consumer_last_checkpoint_timestamp_seconds",
        "streamtrain_batch_last_success_timestamp_seconds",
        "streamtrain_batch_duration_seconds",
        "streamtrain_online_samples_total",
    ):
        assert metric in exprs


def test_compose_file_validates():
    result = run("docker-compose", "-f", "docker-compose.yml", "config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_mounts_the_monitoring_files_and_shares_checkpoints():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "kafka",
        "topics",
        "producer",
        "consumer",
        "batch",
        "prometheus",
        "pushgateway",
        "grafana",
    } <= set(services)
    assert "container_name" not in services["consumer"] and "ports" not in services["consumer"]
    assert "checkpoints:/data/checkpoints" in services["consumer"]["volumes"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    mounted = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in (
        "./monitoring/prometheus.yml",
        "./monitoring/alerts.yml",
        "./monitoring/grafana/provisioning",
        "./monitoring/grafana/dashboards",
    ):
        assert path in mounted


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = run(str(hadolint), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_runs_as_a_non_root_user():
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
