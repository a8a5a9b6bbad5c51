"""One batch run: snapshot, replay, train, evaluate, publish, push.

:func:`run_once` is what ``python -m batch_job run`` and every scheduled
run execute. Steps:

1. take the offsets snapshot of every partition;
2. replay up to it (in parallel processes if asked) into QR statistics;
3. train (exact least squares, or gradient descent) and evaluate the batch
   and the online model on the same samples;
4. publish the model as the next version and switch ``latest``;
5. push the success metrics (if a Pushgateway is configured).

If any step fails, the failure timestamp is pushed (if configured) and the
error is raised again; nothing is published as latest. Two runs over the
same offsets give the same weights and bias, bit for bit, whatever the
number of workers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from batch_job import push
from batch_job.replay import ReplayResult, replay, replay_consumer, take_snapshot
from batch_job.settings import BatchSettings
from batch_job.store import ModelStore
from batch_job.training import Evaluation, evaluate, fit, load_online_model
from streamtrain.leastsquares import Solution
from streamtrain.model import LinearModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """The result of a successful run."""

    path: Path
    model: LinearModel
    evaluation: Evaluation
    duration_s: float


def run_once(settings: BatchSettings, *, clock: Callable[[], float] = time.time) -> RunReport:
    """Run the batch job once (see the module docstring for the steps)."""
    started = clock()
    try:
        report = _run(settings, started, clock)
    except Exception:
        _push_failure(settings, clock())
        raise
    if settings.pushgateway:
        try:
            push.push_success(settings.pushgateway, _outcome(report, clock()),
                              timeout_s=settings.push_timeout_s)
        except push.PushError as error:
            raise push.PushError(f"{error} (the model was published as {report.path})") from None
    return report


def _run(settings: BatchSettings, started: float, clock: Callable[[], float]) -> RunReport:
    # 1. snapshot
    consumer = replay_consumer(settings)
    try:
        snapshot = take_snapshot(consumer, settings.topic)
    finally:
        consumer.close()

    # 2. replay
    result = replay(settings, snapshot, workers=settings.workers,
                    block_rows=settings.block_rows, idle_timeout_s=settings.idle_timeout_s)

    # 3. train and evaluate
    solution = fit(result.accumulator, settings)
    online = load_online_model(settings.online_model, settings.dim)
    evaluation = evaluate(result.accumulator, solution, online)
    _log_evaluation(result, evaluation)

    # 4. publish
    duration = clock() - started
    model = LinearModel(solution.weights, solution.bias, result.samples, solution.method,
                        metadata(settings, result, solution, evaluation, started, duration))
    path = ModelStore(Path(settings.models_dir), settings.keep).publish(model)
    return RunReport(path, model, evaluation, duration)


def metadata(settings: BatchSettings, result: ReplayResult, solution: Solution,
             evaluation: Evaluation, started: float, duration: float) -> dict[str, Any]:
    """Everything a model version records about how it was made."""
    return {
        "topic": result.snapshot.topic,
        "offsets": [
            {"partition": p.partition, "start": p.start, "end": p.end,
             "last_offset": p.last_offset, "records": p.records, "samples": p.samples}
            for p in result.partitions
        ],
        "samples": result.samples,
        "rejected": result.rejected,
        "method": settings.method.value,
        "solver": solution.method,
        "rank": solution.rank,
        "ridge": settings.ridge,
        "gd_steps": solution.steps,
        "gd_learning_rate": settings.gd_learning_rate if solution.method == "gd" else None,
        "mse": evaluation.mse,
        "online_mse": evaluation.online_mse,
        "online_mse_gap": evaluation.gap,
        "online_weights_distance": evaluation.online_weights_distance,
        "online_model": settings.online_model if evaluation.online_mse is not None else None,
        "duration_seconds": duration,
        "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "started_at_unix": started,
    }


def _log_evaluation(result: ReplayResult, evaluation: Evaluation) -> None:
    log.info("trained on %d samples (rejected %s): batch mse=%s online mse=%s gap=%s",
             result.samples, result.rejected, evaluation.mse, evaluation.online_mse,
             evaluation.gap)


def _outcome(report: RunReport, finished_at: float) -> push.RunOutcome:
    meta = report.model.metadata
    return push.RunOutcome(
        finished_at=finished_at, duration_s=report.duration_s, samples=report.model.samples,
        rejected=meta["rejected"], mse=report.evaluation.mse,
        online_mse=report.evaluation.online_mse,
        online_weights_distance=report.evaluation.online_weights_distance,
    )


def _push_failure(settings: BatchSettings, finished_at: float) -> None:
    """Push the failure timestamp; a push error is logged, not raised, so
    the run's own error is the one reported."""
    if not settings.pushgateway:
        return
    try:
        push.push_failure(settings.pushgateway, finished_at, timeout_s=settings.push_timeout_s)
    except push.PushError as error:
        log.error("%s", error)
