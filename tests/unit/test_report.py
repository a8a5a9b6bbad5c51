import json
import math

import numpy as np
import pytest

from batch_job.report import load_truth, markdown_table, model_error, scenario_rows, write_report
from streamtrain.errors import StreamtrainError
from streamtrain.model import LinearModel, write_model


def make_scenario(directory, drift_at=None):
    directory.mkdir(parents=True)
    segments = [{"from": 0, "weights": [1.0, 2.0], "bias": 0.5}]
    if drift_at is not None:
        segments.append({"from": drift_at, "weights": [-1.0, 0.0], "bias": 0.0})
    (directory / "truth.json").write_text(json.dumps({
        "segments": segments, "noise": 0.5, "drift": "abrupt" if drift_at else "none",
        "drift_at": drift_at}))
    for learner, weights in (("sgd", [1.1, 2.0]), ("rls", [1.0, 2.0])):
        (directory / learner).mkdir()
        write_model(directory / learner / "model.json",
                    LinearModel(np.array(weights), 0.5, samples=100, method=learner))
        trace = [{"t": 0.0, "samples": 10, "squared_error": 5.0},
                 {"t": 1.0, "samples": 100, "squared_error": 30.0},
                 {"t": 2.0, "samples": 100, "squared_error": 30.0}]
        (directory / f"trace-{learner}.jsonl").write_text(
            "".join(json.dumps(p) + "\n" for p in trace))
    (directory / "catchup-sgd.json").write_text(
        json.dumps({"samples": 100, "seconds": 0.5, "samples_per_second": 200.0}))
    (directory / "models").mkdir()
    write_model(directory / "models" / "model-000001.json",
                LinearModel(np.array([1.0, 2.1]), 0.5, samples=100, method="lstsq",
                            metadata={"duration_seconds": 0.25, "mse": 0.3}))


def test_model_error_is_the_exact_distance_and_expected_mse(tmp_path):
    (tmp_path / "truth.json").write_text(json.dumps(
        {"segments": [{"from": 0, "weights": [1.0, 2.0], "bias": 0.0}], "noise": 0.5,
         "drift": "none"}))
    truth = load_truth(tmp_path / "truth.json")
    error, mse = model_error(LinearModel(np.array([1.0, 2.3]), 0.4), truth)
    assert error == pytest.approx(math.sqrt(0.09 + 0.16))
    assert mse == pytest.approx(0.25 + 0.25)


def test_rows_use_the_trace_the_catch_up_and_the_batch_metadata(tmp_path):
    make_scenario(tmp_path / "stationary")
    rows, _ = scenario_rows(tmp_path / "stationary")
    by = {row.method: row for row in rows}
    assert by["online sgd"].prequential_mse == pytest.approx(30.0 / 100)
    assert by["online sgd"].samples_per_second == 200.0
    assert by["online rls"].wall_seconds == pytest.approx(1.0)
    assert by["online sgd"].weight_error == pytest.approx(0.1)
    assert by["batch lstsq"].samples_per_second == pytest.approx(400.0)
    assert by["batch lstsq"].prequential_mse is None
    assert "| stationary | batch lstsq | 100 | n/a |" in markdown_table(rows)


def test_drifting_scenario_is_judged_against_the_final_concept(tmp_path):
    make_scenario(tmp_path / "drifting", drift_at=50)
    rows, truth = scenario_rows(tmp_path / "drifting")
    assert truth.at(49)[0].tolist() == [1.0, 2.0] and truth.at(50)[0].tolist() == [-1.0, 0.0]
    batch = next(row for row in rows if row.method == "batch lstsq")
    assert batch.weight_error == pytest.approx(math.sqrt(4 + 2.1**2 + 0.25))


def test_report_is_written_with_plots_and_conclusions(tmp_path):
    make_scenario(tmp_path / "stationary")
    make_scenario(tmp_path / "drifting", drift_at=50)
    path, table = write_report(tmp_path)
    text = path.read_text()
    assert "**stationary**: most accurate on the current concept is online rls" in text
    assert (tmp_path / "loss.png").exists() and (tmp_path / "weights.png").exists()
    assert table.splitlines()[2].startswith("| stationary |")


def test_report_of_an_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(StreamtrainError, match="holds no scenario"):
        write_report(tmp_path)
