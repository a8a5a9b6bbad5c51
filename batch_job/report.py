"""``python -m batch_job report``: online against batch, from a demo run.

A run directory (written by ``python -m streamtrain.demo``) holds one
folder per scenario::

    RUN_DIR/<scenario>/
      truth.json              the producer's truth file (true weights, drift)
      trace-<learner>.jsonl   an online learner's loss counters and model,
                              sampled twice a second while it learned
      <learner>/model.json    the learner's final combined model
      models/model-*.json     the batch job's versions, one per run
      catchup-<learner>.json  a fresh learner's full replay: samples, seconds

The report compares, per scenario, each online learner and the final
batch model on:

- **prequential MSE**: the online learner's test-then-train loss over the
  whole stream (a batch model has none: it never predicts before it learns);
- **MSE on the current concept**: the expected squared error of the final
  model on fresh samples of the concept in force at the end. The producer's
  features are independent with zero mean and unit variance, so it is
  ``|w - w*|^2 + (b - b*)^2 + noise^2`` exactly;
- **weight error** ``sqrt(|w - w*|^2 + (b - b*)^2)``;
- **wall time** and **samples per second** of going through the whole
  topic from scratch at full speed: for a learner, a fresh replay by a new
  consumer group (``catchup-<learner>.json``, from its first learned sample
  to its last); for the batch job, its final run's duration (snapshot,
  replay, solve, evaluate, publish).

It writes ``RUN_DIR/report.md`` with ``loss.png`` and ``weights.png`` and
prints the table.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtrain.errors import ArtifactError, StreamtrainError
from streamtrain.model import LinearModel, read_model

log = logging.getLogger(__name__)

WINDOW = 4
"""Trace points (quarter seconds) per window of the windowed loss curve."""


@dataclass(frozen=True)
class Truth:
    """The producer's truth file, reduced to what the report needs."""

    segments: list[tuple[int, np.ndarray, float]]
    noise: float
    drift_at: int | None

    def at(self, index: int) -> tuple[np.ndarray, float]:
        """The weights and bias that generated sample ``index``."""
        current = self.segments[0]
        for segment in self.segments:
            if segment[0] <= index:
                current = segment
        return current[1], current[2]

    @property
    def final(self) -> tuple[np.ndarray, float]:
        return self.segments[-1][1], self.segments[-1][2]


@dataclass(frozen=True)
class Row:
    """One method's numbers in one scenario."""

    scenario: str
    method: str
    samples: int
    prequential_mse: float | None
    concept_mse: float
    weight_error: float
    wall_seconds: float
    samples_per_second: float


def load_truth(path: Path) -> Truth:
    try:
        document = json.loads(path.read_text())
        segments = [
            (int(s["from"]), np.array(s["weights"], dtype=float), float(s["bias"]))
            for s in document["segments"]
        ]
        drift_at = document.get("drift_at") if document.get("drift") != "none" else None
        return Truth(segments, float(document["noise"]), drift_at)
    except (OSError, ValueError, KeyError) as error:
        raise ArtifactError(f"{path} is not a readable truth file: {error}") from None


def load_trace(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def model_error(model: LinearModel, truth: Truth) -> tuple[float, float]:
    """``(weight error, MSE on the final concept)`` of ``model``."""
    weights, bias = truth.final
    squared = float(np.sum((model.weights - weights) ** 2) + (model.bias - bias) ** 2)
    return math.sqrt(squared), squared + truth.noise**2


def online_row(scenario: str, learner: str, directory: Path, truth: Truth) -> Row | None:
    """The row of an online learner, or None if it left no model."""
    try:
        model = read_model(directory / learner / "model.json")
    except ArtifactError as error:
        log.warning("no model for %s/%s: %s", scenario, learner, error)
        return None
    trace = load_trace(directory / f"trace-{learner}.jsonl")
    learned = [p for p in trace if p["samples"] > 0]
    wall = learned[-1]["t"] - learned[0]["t"] if len(learned) > 1 else float("nan")
    final = _first_at_total(learned)
    prequential = final["squared_error"] / final["samples"] if final else None
    if final:
        wall = final["t"] - learned[0]["t"]
    wall, rate = _catch_up(directory / f"catchup-{learner}.json", model.samples, wall)
    error, concept = model_error(model, truth)
    return Row(
        scenario, f"online {learner}", model.samples, prequential, concept, error, wall, rate
    )


def _catch_up(path: Path, samples: int, live_wall: float) -> tuple[float, float]:
    """Wall time and rate of the learner's full replay at its own speed
    (``catchup-<learner>.json``); else of the live run, which the
    producer's rate bounds."""
    try:
        result = json.loads(path.read_text())
        return float(result["seconds"]), float(result["samples_per_second"])
    except (OSError, ValueError, KeyError, TypeError):
        rate = samples / live_wall if live_wall and live_wall > 0 else float("nan")
        return live_wall, rate


def _first_at_total(points: list[dict]) -> dict | None:
    """The first trace point at which the learner had its final count."""
    if not points:
        return None
    total = points[-1]["samples"]
    return next(p for p in points if p["samples"] == total)


def batch_versions(directory: Path) -> list[LinearModel]:
    """The batch job's model versions, oldest first."""
    versions = []
    for path in sorted((directory / "models").glob("model-*.json")):
        try:
            versions.append(read_model(path))
        except ArtifactError as error:
            log.warning("skipping %s: %s", path, error)
    return versions


def batch_row(scenario: str, model: LinearModel, truth: Truth) -> Row:
    error, concept = model_error(model, truth)
    duration = float(model.metadata.get("duration_seconds") or float("nan"))
    return Row(
        scenario,
        "batch lstsq",
        model.samples,
        None,
        concept,
        error,
        duration,
        model.samples / duration if duration > 0 else float("nan"),
    )


def scenario_rows(directory: Path) -> tuple[list[Row], Truth]:
    truth = load_truth(directory / "truth.json")
    rows = [
        row
        for learner in ("sgd", "rls")
        if (row := online_row(directory.name, learner, directory, truth)) is not None
    ]
    versions = batch_versions(directory)
    if versions:
        rows.append(batch_row(directory.name, versions[-1], truth))
    return rows, truth


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| scenario | method | samples | prequential MSE | MSE on current concept "
        "| weight error | full replay (s) | samples/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        prequential = f"{r.prequential_mse:.4f}" if r.prequential_mse is not None else "n/a"
        lines.append(
            f"| {r.scenario} | {r.method} | {r.samples} | {prequential} | {r.concept_mse:.4f} "
            f"| {r.weight_error:.4f} | {r.wall_seconds:.2f} | {r.samples_per_second:,.0f} |"
        )
    return "\n".join(lines)


def conclusions(rows: list[Row], noise: dict[str, float]) -> list[str]:
    """Sentences stating which method wins where, from the numbers."""
    sentences = []
    for scenario in dict.fromkeys(r.scenario for r in rows):
        here = [r for r in rows if r.scenario == scenario]
        accurate = min(here, key=lambda r: r.concept_mse)
        fastest = max(
            here, key=lambda r: r.samples_per_second if math.isfinite(r.samples_per_second) else -1
        )
        others = ", ".join(f"{r.method} {r.concept_mse:.4f}" for r in here if r is not accurate)
        sentences.append(
            f"**{scenario}**: most accurate on the current concept is {accurate.method} "
            f"(MSE {accurate.concept_mse:.4f}, the noise floor is {noise[scenario] ** 2:.4f}; "
            f"{others}). Highest throughput: {fastest.method} "
            f"({fastest.samples_per_second:,.0f} samples/s)."
        )
    return sentences


def plot(directory: Path, scenarios: dict[str, tuple[Truth, dict]]) -> list[str]:
    """Draw ``loss.png`` and ``weights.png``; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    for name, draw in (("loss.png", _draw_loss), ("weights.png", _draw_weights)):
        fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4), squeeze=False)
        for axis, (scenario, (truth, data)) in zip(axes[0], scenarios.items()):
            draw(axis, scenario, truth, data)
        fig.tight_layout()
        fig.savefig(directory / name, dpi=90)
        plt.close(fig)
        figures.append(name)
    return figures


def _draw_loss(axis, scenario: str, truth: Truth, data: dict) -> None:
    for learner, trace in data["traces"].items():
        samples = np.array([p["samples"] for p in trace], dtype=float)
        errors = np.array([p["squared_error"] for p in trace], dtype=float)
        if len(samples) <= WINDOW:
            continue
        d_samples = samples[WINDOW:] - samples[:-WINDOW]
        keep = d_samples > 0
        windowed = (errors[WINDOW:] - errors[:-WINDOW])[keep] / d_samples[keep]
        axis.plot(samples[WINDOW:][keep], windowed, label=f"online {learner} (windowed)")
    for model in data["batch"]:
        axis.scatter(
            [model.samples],
            [model.metadata.get("mse")],
            marker="s",
            color="black",
            zorder=3,
            label="batch run (MSE on its replay)",
        )
    _decorate(axis, scenario, truth, "prequential squared error", log_scale=True)
    axis.axhline(truth.noise**2, color="grey", linestyle=":", label="noise floor")
    _dedupe_legend(axis)


def _draw_weights(axis, scenario: str, truth: Truth, data: dict) -> None:
    for learner, trace in data["traces"].items():
        points = [
            (p["model_samples"], p) for p in trace if "weights" in p and p["model_samples"] > 0
        ]
        xs = [n for n, _ in points]
        ys = [_distance(np.array(p["weights"]), p["bias"], *truth.at(n - 1)) for n, p in points]
        axis.plot(xs, ys, label=f"online {learner}")
    for model in data["batch"]:
        axis.scatter(
            [model.samples],
            [_distance(model.weights, model.bias, *truth.at(model.samples - 1))],
            marker="s",
            color="black",
            zorder=3,
            label="batch run",
        )
    _decorate(axis, scenario, truth, "distance to the true weights", log_scale=True)
    _dedupe_legend(axis)


def _distance(
    weights: np.ndarray, bias: float, true_weights: np.ndarray, true_bias: float
) -> float:
    return float(math.sqrt(np.sum((weights - true_weights) ** 2) + (bias - true_bias) ** 2))


def _decorate(axis, scenario: str, truth: Truth, ylabel: str, log_scale: bool) -> None:
    if truth.drift_at is not None:
        axis.axvline(truth.drift_at, color="red", linestyle="--", label="drift")
    axis.set_title(scenario)
    axis.set_xlabel("samples learned")
    axis.set_ylabel(ylabel)
    if log_scale:
        axis.set_yscale("log")


def _dedupe_legend(axis) -> None:
    handles, labels = axis.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axis.legend(unique.values(), unique.keys(), fontsize=8)


def write_report(run_dir: Path) -> tuple[Path, str]:
    """Build the report of ``run_dir``; return its path and the table.

    :raises StreamtrainError: if the directory holds no scenario.
    """
    directories = (
        sorted(
            (d for d in run_dir.iterdir() if (d / "truth.json").exists()),
            key=lambda d: (d.name != "stationary", d.name),
        )
        if run_dir.is_dir()
        else []
    )
    if not directories:
        raise StreamtrainError(f"{run_dir} holds no scenario (no */truth.json)")
    rows: list[Row] = []
    scenarios: dict[str, tuple[Truth, dict]] = {}
    for directory in directories:
        found, truth = scenario_rows(directory)
        rows.extend(found)
        traces = {
            learner: load_trace(directory / f"trace-{learner}.jsonl") for learner in ("sgd", "rls")
        }
        scenarios[directory.name] = (truth, {"traces": traces, "batch": batch_versions(directory)})
    table = markdown_table(rows)
    figures = plot(run_dir, scenarios)
    text = _document(
        table, conclusions(rows, {s: t.noise for s, (t, _) in scenarios.items()}), figures
    )
    path = run_dir / "report.md"
    path.write_text(text)
    return path, table


def _document(table: str, sentences: list[str], figures: list[str]) -> str:
    parts = [
        "# Online against batch training on one Kafka stream",
        "",
        "Every number below comes from the run in this directory: the same topic was "
        "learned online (SGD and RLS, each a consumer group) and replayed by the batch job "
        '(exact least squares). "MSE on current concept" is the expected error of the final '
        "model on new samples of the concept in force at the end of the stream.",
        "",
        table,
        "",
        "## What the numbers say",
        "",
        *[f"- {sentence}" for sentence in sentences],
        "",
        "## Loss over time",
        "",
        "![windowed prequential loss](loss.png)",
        "",
        "Black squares: the batch model's MSE on the data it replayed, at each run.",
        "",
        "## Distance to the true weights",
        "",
        "![distance to the truth](weights.png)",
        "",
    ]
    return "\n".join(parts)
