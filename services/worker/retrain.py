"""One retrain, start to finish: lock, extract, train, evaluate, log, gate, precompute, switch.

The Celery task (`services.worker.tasks.training`) and `movierec train --sync` both run this. It
is split in two so that a large precompute can run as a Celery chord in between:

* `prepare` takes the lock, trains, logs the MLflow run, registers the version and applies the
  gate. A rejected or failed candidate ends here, and nothing served has changed.
* `finish_promotion` runs once the new version's keys are written: it records the promotion in
  one database transaction, switches the live pointer, moves the `champion` alias and releases
  the lock.

Until the live pointer moves, the new version's artifact and keys are invisible to the API.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.extract import ratings_digest, read_dataset
from services.live_model import LiveModel, artifact_dir, models_dir, read_live_model
from services.settings import Settings
from services.worker import gate, plots, precompute
from services.worker.lock import LockLost, RetrainLock, lock_holder
from services.worker.log_context import bind
from services.worker.model_versions import ModelVersionRepository
from services.worker.tracking import Tracker, code_version, gate_tags
from services.worker.training import HOLDOUT_DIR, TrainedCandidate, score_holdout_model, train_candidate

logger = logging.getLogger(__name__)

Status = Literal["promoted", "rejected", "already_running"]
Progress = Callable[[str], None]


class NoTrainingData(RuntimeError):
    """The database holds no ratings to train on."""


@dataclass
class Services:
    """What a retrain talks to: the worker's per-process resources, or the CLI's."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    tracker: Tracker


@dataclass
class RetrainResult:
    """How a retrain ended (the Celery task's JSON result)."""

    status: Status
    reason: str
    model_version: str | None = None
    registry_version: int | None = None
    mlflow_run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    users_precomputed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)


@dataclass
class PromotionPlan:
    """A candidate that passed the gate and now needs its keys written, then the switch."""

    model_version: str
    registry_version: int
    mlflow_run_id: str
    artifact_dir: str
    strategies: list[str]
    user_ids: list[int]
    lock_token: str
    reason: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    stage_seconds: dict[str, float]
    precompute_started: float | None = None
    """Epoch seconds when a chord's precompute started (its stage time is measured to the end)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, to pass to Celery tasks."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromotionPlan:
        """Inverse of `to_dict`."""
        return cls(**data)


def _timed(stages: dict[str, float], name: str, started: float) -> None:
    stages[name] = round(time.perf_counter() - started, 3)
    logger.info("stage=%s seconds=%.2f", name, stages[name])


def prepare(
    services: Services,
    *,
    owner: str,
    trigger: str,
    overrides: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> RetrainResult | PromotionPlan:
    """Train and judge a candidate under the retrain lock.

    Args:
        services: Database, Redis and MLflow.
        owner: Who retrains (the Celery task id); a redelivered task of the same id takes over
            the lock of its dead first attempt.
        trigger: Why (`schedule`, `manual`, `cli`), logged as a tag.
        overrides: Nested changes to the training configuration, logged as params.
        progress: Called with each stage name.

    Returns:
        The final result when there is nothing to serve (already running, rejected), else the
        plan whose keys must be written before `finish_promotion`. With a plan the lock is still
        held, by `plan.lock_token`; otherwise it has been released.
    """
    settings = services.settings
    lock = RetrainLock(services.redis, settings.RETRAIN_LOCK_TTL, owner=owner)
    if not lock.acquire():
        holder = lock_holder(services.redis) or "unknown"
        logger.info("retrain already running (lock held by %s)", holder)
        return RetrainResult("already_running", f"another retrain holds the lock ({holder})")
    handed_off = False
    try:
        with lock.heartbeat():
            reconcile(services)
            outcome = _train_and_judge(services, lock, trigger, overrides or {}, progress)
        handed_off = isinstance(outcome, PromotionPlan)
        return outcome
    finally:
        if not handed_off:
            lock.release()


def _train_and_judge(
    services: Services,
    lock: RetrainLock,
    trigger: str,
    overrides: Mapping[str, Any],
    progress: Progress | None,
) -> RetrainResult | PromotionPlan:
    settings, tracker = services.settings, services.tracker
    stages: dict[str, float] = {}
    candidate: TrainedCandidate | None = None
    tags = {"trigger": trigger, "owner": lock.owner, "code_version": code_version()}
    if overrides:
        tags["overrides"] = json.dumps(overrides, sort_keys=True)[:5000]
    run_name = f"retrain-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        with tracker.run(run_name, tags) as run_id:
            bind(mlflow_run_id=run_id)
            if progress:
                progress("extract")
            started = time.perf_counter()
            dataset = read_dataset(services.engine)
            _timed(stages, "extract", started)
            if dataset.ratings.empty:
                raise NoTrainingData("the database holds no ratings; load a dataset first")
            digest = ratings_digest(dataset.ratings)
            tracker.log_params(
                run_id,
                {
                    "dataset.ratings": len(dataset.ratings),
                    "dataset.users": dataset.ratings["user_id"].nunique(),
                    "dataset.movies": len(dataset.movies),
                    "dataset.digest": digest,
                    "code_version": code_version(),
                    "holdout.seed": settings.HOLDOUT_SEED,
                    "holdout.fraction": settings.HOLDOUT_FRACTION,
                    **{f"gate.{k}": v for k, v in asdict(gate.GatePolicy.from_settings(settings)).items()},
                },
            )
            tracker.set_tags(run_id, {"dataset_digest": digest})

            candidate = train_candidate(
                dataset,
                settings.HOLDOUT_SEED,
                models_dir(settings),
                fraction=settings.HOLDOUT_FRACTION,
                overrides=overrides,
                progress=progress,
            )
            del dataset
            stages |= candidate.stage_seconds
            bind(model_version=candidate.model_version)

            if progress:
                progress("gate")
            started = time.perf_counter()
            champion_metrics = _champion_metrics(services, candidate)
            decision = gate.decide(
                candidate.gate_metrics, champion_metrics, gate.GatePolicy.from_settings(settings)
            )
            _timed(stages, "gate", started)
            logger.info("gate=%s reason=%s", decision.status, decision.reason)

            if progress:
                progress("log")
            started = time.perf_counter()
            registry_version = _log_candidate(services, run_id, candidate, decision, champion_metrics, stages)
            _timed(stages, "log", started)
            tracker.log_metrics(run_id, {f"stage_seconds.{k}": v for k, v in stages.items()})
    except BaseException:
        # A failed run leaves nothing behind that could be served.
        if candidate is not None:
            shutil.rmtree(candidate.artifact_dir, ignore_errors=True)
        raise

    if not decision.promote:
        gate.record_rejection(
            services.sessions,
            name=settings.MLFLOW_MODEL_NAME,
            version=registry_version,
            reason=decision.reason,
        )
        shutil.rmtree(candidate.artifact_dir, ignore_errors=True)  # MLflow keeps the durable copy
        return RetrainResult(
            "rejected",
            decision.reason,
            candidate.model_version,
            registry_version,
            run_id,
            candidate.gate_metrics,
            champion_metrics,
            stages,
        )

    lock.ensure_held()
    model = precompute.cached_model(str(candidate.artifact_dir))
    return PromotionPlan(
        model_version=candidate.model_version,
        registry_version=registry_version,
        mlflow_run_id=run_id,
        artifact_dir=str(candidate.artifact_dir),
        strategies=precompute.served_strategies(model, services.settings.PRECOMPUTE_STRATEGIES),
        user_ids=precompute.active_users(model),
        lock_token=lock.token,
        reason=decision.reason,
        metrics=candidate.gate_metrics,
        champion_metrics=champion_metrics,
        stage_seconds=stages,
    )


def _champion_metrics(services: Services, candidate: TrainedCandidate) -> dict[str, float] | None:
    """The champion's gate metrics on the candidate's holdout, or None without a usable champion."""
    name = services.settings.MLFLOW_MODEL_NAME
    with services.sessions.begin() as session:
        champion = ModelVersionRepository(session).get_champion(name)
        number = None if champion is None else champion.version
    if number is None:
        return None
    holdout = _local_artifact(services, number) / HOLDOUT_DIR
    if not holdout.is_dir():
        logger.warning("champion v%d has no holdout model; judging the candidate by the floors", number)
        return None
    return score_holdout_model(holdout, candidate.split)


def _version_string(services: Services, number: int) -> str:
    tags = services.tracker.client.get_model_version(services.settings.MLFLOW_MODEL_NAME, str(number)).tags
    return str(tags["model_version"])


def _local_artifact(services: Services, number: int) -> Path:
    """A registered version's artifact folder, downloaded from MLflow if this machine lacks it."""
    folder = artifact_dir(services.settings, _version_string(services, number))
    if not (folder / "metadata.json").is_file():
        logger.info("fetching v%d's artifact from MLflow into %s", number, folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        services.tracker.download_serving_artifact(number, folder)
    return folder


def _log_candidate(
    services: Services,
    run_id: str,
    candidate: TrainedCandidate,
    decision: gate.GateDecision,
    champion_metrics: Mapping[str, float] | None,
    stages: Mapping[str, float],
) -> int:
    """Log the candidate to its run, register it, and record it as a candidate version."""
    tracker, settings = services.tracker, services.settings
    tracker.log_params(
        run_id,
        {
            **candidate.params,
            "holdout.protocol": candidate.holdout.protocol,
            "model_version": candidate.model_version,
        },
    )
    metrics = dict(candidate.metrics)
    metrics |= {
        "holdout.n_train": candidate.holdout.n_train,
        "holdout.n_test": candidate.holdout.n_test,
    }
    if champion_metrics is not None:
        metrics |= {f"champion.gate.{k}": v for k, v in champion_metrics.items()}
    tracker.log_metrics(run_id, metrics)
    tracker.set_tags(
        run_id,
        {"model_version": candidate.model_version, "holdout_test_digest": candidate.holdout.test_digest},
    )
    tracker.set_tags(run_id, gate_tags(decision))
    tracker.log_json(
        run_id,
        {
            "model_version": candidate.model_version,
            "metrics": candidate.metrics,
            "gate": {
                "decision": decision.status,
                "reason": decision.reason,
                "candidate": candidate.gate_metrics,
                "champion": champion_metrics,
            },
            "holdout": asdict(candidate.holdout),
            "stage_seconds": dict(stages),
        },
        "metrics.json",
    )
    for name, figure in (
        ("plots/strategies.png", plots.strategies_figure(candidate.metrics)),
        (
            "plots/gate.png",
            plots.gate_figure(candidate.gate_metrics, champion_metrics, (gate.RMSE_METRIC, gate.NDCG_METRIC)),
        ),
    ):
        tracker.log_figure(run_id, figure, name)
        plots.close(figure)
    number = tracker.register(
        run_id,
        candidate.artifact_dir,
        {"model_version": candidate.model_version, **gate_tags(decision)},
    )
    with services.sessions.begin() as session:
        ModelVersionRepository(session).create(
            name=settings.MLFLOW_MODEL_NAME,
            version=number,
            mlflow_run_id=run_id,
            metrics={**candidate.gate_metrics, "model_version": candidate.model_version},
            artifact_uri=f"models:/{settings.MLFLOW_MODEL_NAME}/{number}",
        )
    logger.info("registered %s v%d", settings.MLFLOW_MODEL_NAME, number)
    return number


def precompute_inline(services: Services, plan: PromotionPlan, progress: Progress | None = None) -> int:
    """Write every user's lists in this process, keeping the lock alive meanwhile."""
    lock = RetrainLock.from_token(services.redis, services.settings.RETRAIN_LOCK_TTL, plan.lock_token)
    if progress:
        progress("precompute")
    model = precompute.cached_model(plan.artifact_dir)
    with lock.heartbeat():
        report = precompute.precompute_users(
            services.redis, model, plan.model_version, plan.user_ids, plan.strategies
        )
    plan.stage_seconds["precompute"] = round(report.seconds, 3)
    logger.info(
        "precomputed %d users in %.1fs (%.0f users/s)", report.users, report.seconds, report.users_per_second
    )
    return report.users


def finish_promotion(
    services: Services, plan: PromotionPlan, users_written: int, *, release_on_error: bool = True
) -> RetrainResult:
    """Record the promotion, switch the live pointer, move the alias; then release the lock.

    Args:
        services: Database, Redis and MLflow.
        plan: The candidate that passed the gate.
        users_written: Users whose lists were written.
        release_on_error: Release the lock if this fails too; a task that will retry keeps it.
    """
    settings, tracker = services.settings, services.tracker
    lock = RetrainLock.from_token(services.redis, settings.RETRAIN_LOCK_TTL, plan.lock_token)
    bind(mlflow_run_id=plan.mlflow_run_id, model_version=plan.model_version)
    if plan.precompute_started is not None:
        plan.stage_seconds["precompute"] = round(time.time() - plan.precompute_started, 3)
    live = read_live_model(services.redis)
    if live is not None and (live.version, live.registry_version) == (
        plan.model_version,
        plan.registry_version,
    ):
        logger.info("%s is already live (a redelivered promotion)", plan.model_version)
        return _promoted(plan, users_written)
    try:
        lock.ensure_held()
        started = time.perf_counter()
        missing = len(plan.user_ids) - precompute.count_version_keys(services.redis, plan.model_version)
        if missing > 0:
            raise RuntimeError(f"{missing} users have no precomputed lists for {plan.model_version}")
        previous = gate.record_promotion(
            services.sessions,
            name=settings.MLFLOW_MODEL_NAME,
            version=plan.registry_version,
            reason=plan.reason,
        )
        live = LiveModel(
            version=plan.model_version,
            artifact_dir=plan.artifact_dir,
            mlflow_run_id=plan.mlflow_run_id,
            registry_version=plan.registry_version,
            promoted_at=datetime.now(UTC).isoformat(),
        )
        precompute.switch_live_model(services.redis, live)
        _timed(plan.stage_seconds, "publish", started)
        try:
            tracker.set_champion(plan.registry_version)
            tracker.tag_version(plan.registry_version, {"promoted_at": live.promoted_at or ""})
            tracker.set_tags(plan.mlflow_run_id, {"served": "true"})
            precompute_seconds = plan.stage_seconds.get("precompute", 0.0)
            tracker.log_metrics(
                plan.mlflow_run_id,
                {
                    **{f"stage_seconds.{k}": v for k, v in plan.stage_seconds.items()},
                    "precompute.users": users_written,
                    "precompute.users_per_second": users_written / precompute_seconds
                    if precompute_seconds
                    else 0.0,
                },
            )
        except Exception:  # the switch happened; the next retrain's reconcile fixes the alias
            logger.exception("promoted v%d but could not update MLflow", plan.registry_version)
        logger.info(
            "promoted %s v%d (previous champion: %s)",
            plan.model_version,
            plan.registry_version,
            "none" if previous is None else f"v{previous.version}",
        )
        result = _promoted(plan, users_written)
    except BaseException:
        if release_on_error:
            lock.release()
        raise
    lock.release()
    return result


def _promoted(plan: PromotionPlan, users_written: int) -> RetrainResult:
    return RetrainResult(
        "promoted",
        plan.reason,
        plan.model_version,
        plan.registry_version,
        plan.mlflow_run_id,
        plan.metrics,
        plan.champion_metrics,
        plan.stage_seconds,
        users_written,
    )


def abandon_promotion(services: Services, plan: PromotionPlan, error: str) -> None:
    """A precompute failed: leave the served version alone, note why, release the lock."""
    lock = RetrainLock.from_token(services.redis, services.settings.RETRAIN_LOCK_TTL, plan.lock_token)
    try:
        services.tracker.set_tags(plan.mlflow_run_id, {"served": "false", "promotion_error": error[:5000]})
        services.tracker.tag_version(plan.registry_version, {"promotion_error": error[:5000]})
    finally:
        lock.release()
    logger.error("abandoned the promotion of %s: %s", plan.model_version, error)


def retrain_inline(
    services: Services,
    *,
    owner: str,
    trigger: str,
    overrides: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> RetrainResult:
    """A whole retrain in this process (precompute included), e.g. `movierec train --sync`."""
    outcome = prepare(services, owner=owner, trigger=trigger, overrides=overrides, progress=progress)
    if isinstance(outcome, RetrainResult):
        return outcome
    try:
        users = precompute_inline(services, outcome, progress)
    except BaseException as exc:
        abandon_promotion(services, outcome, repr(exc))
        raise
    return finish_promotion(services, outcome, users)


ARTIFACT_NAME = re.compile(r"^[a-z]+-\d{8}T\d{6}-[0-9a-f]{8}$")
KEEP_ARCHIVED = 2
"""Archived versions whose local artifact is kept (an API instance may still be switching)."""


def reconcile(services: Services) -> None:
    """Clean up after a retrain that died, before starting a new one (the lock is held).

    * MLflow runs still RUNNING are marked KILLED.
    * The live pointer and the `champion` alias are made to agree with the database's champion
      (a worker that died between the promotion's commit and the switch leaves them behind).
    * Local artifact folders of versions that are neither live, champion nor recently archived
      are deleted (MLflow keeps every version).
    """
    settings = services.settings
    killed = services.tracker.end_abandoned_runs()
    if killed:
        logger.warning("marked %d abandoned MLflow runs as KILLED: %s", len(killed), ", ".join(killed))
    with services.sessions.begin() as session:
        rows = ModelVersionRepository(session).list_recent(settings.MLFLOW_MODEL_NAME, limit=100)
        keep = {str(row.metrics.get("model_version")) for row in rows if row.status == "champion"}
        keep |= {
            str(row.metrics.get("model_version"))
            for row in [r for r in rows if r.status == "archived"][:KEEP_ARCHIVED]
        }
        champion = next((row for row in rows if row.status == "champion"), None)
        number = None if champion is None else champion.version
        run_id = None if champion is None else champion.mlflow_run_id
    live = read_live_model(services.redis)
    if live is not None:
        keep.add(live.version)
    _prune_artifacts(models_dir(settings), keep)
    if number is None:
        return
    if services.tracker.champion_version() != number:
        logger.warning("moving the champion alias to v%d to match the database", number)
        services.tracker.set_champion(number)
    if live is not None and live.registry_version == number:
        return
    version = _version_string(services, number)
    if precompute.count_version_keys(services.redis, version) == 0:
        logger.error("champion v%d (%s) has no precomputed keys; left unpublished", number, version)
        return
    folder = _local_artifact(services, number)
    logger.warning("publishing champion v%d (%s), which a failed retrain left unpublished", number, version)
    precompute.switch_live_model(
        services.redis,
        LiveModel(version, str(folder), run_id, number, datetime.now(UTC).isoformat()),
    )


def _prune_artifacts(folder: Path, keep: set[str]) -> None:
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_dir() and ARTIFACT_NAME.match(path.name) and path.name not in keep:
            logger.info("removing the local artifact %s (MLflow keeps its copy)", path.name)
            shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "LockLost",
    "NoTrainingData",
    "PromotionPlan",
    "RetrainResult",
    "Services",
    "abandon_promotion",
    "finish_promotion",
    "precompute_inline",
    "prepare",
    "reconcile",
    "retrain_inline",
]
