"""The README's run command, short: the whole pipeline and its report.

Injects: nothing; runs ``python -m streamtrain.demo`` on the test broker
with a short stream. Checks: it exits 0, writes the report and its plots,
and the numbers tell the expected story: on the stationary stream the
exact batch model is at least as close to the truth as online SGD; after
an abrupt drift the online learners beat the batch model, which mixes both
concepts.
"""

import subprocess
import sys

from batch_job.report import scenario_rows


def test_demo_runs_the_pipeline_and_writes_the_report(kafka_bootstrap, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "streamtrain.demo", "--bootstrap-servers", kafka_bootstrap,
         "--out", str(out), "--samples", "6000", "--rate", "3000"],
        capture_output=True, text=True, timeout=400,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "online learner sgd: metrics at http://127.0.0.1:" in result.stderr
    report = (out / "report.md").read_text()
    for name in ("loss.png", "weights.png"):
        assert (out / name).stat().st_size > 10_000
        assert f"]({name})" in report
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 6, result.stdout + result.stderr[-4000:]

    stationary, _ = scenario_rows(out / "stationary")
    drifting, _ = scenario_rows(out / "drifting")
    by = lambda rows: {row.method: row for row in rows}  # noqa: E731
    stationary, drifting = by(stationary), by(drifting)
    assert set(stationary) == set(drifting) == {"online sgd", "online rls", "batch lstsq"}
    assert all(row.samples == 6000 for row in [*stationary.values(), *drifting.values()])
    assert stationary["batch lstsq"].weight_error <= stationary["online sgd"].weight_error
    assert stationary["batch lstsq"].weight_error < 0.1
    assert drifting["online sgd"].concept_mse < drifting["batch lstsq"].concept_mse
    assert drifting["online rls"].concept_mse < drifting["batch lstsq"].concept_mse
    assert all(row.samples_per_second > 0 for row in stationary.values())
