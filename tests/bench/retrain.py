"""Retrain benchmark: the worker's whole retrain, stage by stage, on MovieLens 100K and synthetic data.

Each dataset runs in a child process (so peak RSS is its own) against a fresh embedded PostgreSQL
and Redis: load, then `services.worker.retrain.retrain_inline` twice (the first run has no
champion; the second re-scores the champion on its holdout), MLflow on a PostgreSQL store.

Run: .venv/bin/python -m tests.bench.retrain [--datasets ml-100k synth:1000000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from tests.bench.report import write_section

console = Console()
STAGES = ("extract", "evaluate", "train", "gate", "log", "precompute", "publish")


def run_one(source: str) -> dict[str, Any]:
    """Load `source` into fresh servers and retrain twice; returns the measurements."""
    import redis
    from sqlalchemy import make_url

    from db.ingest import load_dataset
    from db.migrate import upgrade
    from db.session import create_db_engine, create_session_factory
    from ml.datasets import load
    from services.embedded import EmbeddedPostgres, EmbeddedRedis
    from services.settings import Settings
    from services.worker.retrain import Services, retrain_inline
    from services.worker.tracking import Tracker
    from tests.conftest import free_port

    with tempfile.TemporaryDirectory(prefix="movierec-bench-") as tmp:
        root = Path(tmp)
        postgres = EmbeddedPostgres(root / "pg" / "data", free_port())
        redis_server = EmbeddedRedis(root / "redis", free_port())
        postgres.start()
        redis_server.start()
        try:
            postgres.ensure_database("movierec")
            postgres.ensure_database("mlflow")
            database_url = postgres.url("movierec")
            upgrade(database_url)
            engine = create_db_engine(database_url, "cli", pool_size=2)
            dataset = load(source)
            load_dataset(engine, dataset)
            ratings = len(dataset.ratings)
            del dataset
            settings = Settings(
                DATABASE_URL=database_url,
                REDIS_URL=redis_server.url,
                DATA_DIR=root / "data",
                MLFLOW_ARTIFACT_ROOT=str(root / "mlflow-artifacts"),
            )
            mlflow_uri = (
                make_url(postgres.url("mlflow")).set(drivername="postgresql+psycopg").render_as_string(False)
            )
            client = redis.Redis.from_url(redis_server.url)
            services = Services(
                settings,
                engine,
                create_session_factory(engine),
                client,
                Tracker(
                    mlflow_uri,
                    experiment="movierec",
                    model_name="movierec",
                    artifact_root=str(root / "mlflow-artifacts"),
                ),
            )
            runs = []
            for attempt in ("first", "second"):
                started = time.perf_counter()
                result = retrain_inline(services, owner=f"bench-{attempt}", trigger="bench")
                runs.append(
                    {
                        "run": attempt,
                        "status": result.status,
                        "total": time.perf_counter() - started,
                        "stages": result.stage_seconds,
                        "users": result.users_precomputed,
                        "metrics": result.metrics,
                        "artifact_mb": _size_mb(settings.DATA_DIR / "models" / str(result.model_version)),
                    }
                )
            redis_mb = int(client.info("memory")["used_memory"]) / 1e6
            client.close()
            engine.dispose()
        finally:
            redis_server.stop()
            postgres.stop()
    return {
        "dataset": source,
        "ratings": ratings,
        "runs": runs,
        "redis_mb": redis_mb,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _size_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def _row(result: dict[str, Any], run: dict[str, Any]) -> list[str]:
    stages = run["stages"]
    precompute = stages.get("precompute", 0.0)
    return [
        f"{result['dataset']} ({run['run']})",
        f"{result['ratings']:,}",
        *(f"{stages.get(stage, 0.0):.1f}" for stage in STAGES),
        f"{run['total']:.1f}",
        f"{run['users']:,}",
        f"{run['users'] / precompute:.0f}" if precompute else "-",
        f"{run['metrics'].get('rmse', float('nan')):.4f}",
        f"{run['metrics'].get('ndcg_at_10', float('nan')):.4f}",
        f"{run['artifact_mb']:.0f}",
        f"{result['redis_mb']:.0f}",
        f"{result['peak_rss_mb']:.0f}",
    ]


HEADERS = [
    "dataset (run)",
    "ratings",
    *(f"{stage} s" for stage in STAGES),
    "total s",
    "users",
    "precompute users/s",
    "RMSE",
    "NDCG@10",
    "artifact MB",
    "Redis MB",
    "peak RSS MB",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="*", default=["ml-100k", "synth:1000000:1"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))  # read by the parent process
        return
    results = []
    for source in args.datasets:
        console.print(f"[bold]retraining on {source}[/]")
        child = subprocess.run(
            [sys.executable, "-m", "tests.bench.retrain", "--one", source],
            capture_output=True,
            text=True,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            check=False,
        )
        if child.returncode != 0:
            console.print(child.stderr[-3000:])
            raise SystemExit(f"benchmark of {source} failed")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    lines = ["| " + " | ".join(HEADERS) + " |", "| --- | " + " | ".join("---:" for _ in HEADERS[1:]) + " |"]
    for result in results:
        for run in result["runs"]:
            lines.append("| " + " | ".join(_row(result, run)) + " |")
    console.print("\n".join(lines), soft_wrap=True, markup=False)
    if not args.no_write:
        write_section("Retraining (worker)", _body("\n".join(lines)))


def _body(table: str, notes: str = "") -> str:
    return f"""Command: `.venv/bin/python -m tests.bench.retrain` (2026-11-21). One process per dataset, fresh
embedded PostgreSQL 18 and Redis, MLflow tracking store on PostgreSQL; `retrain_inline` runs the
whole retrain in one process, twice: the first run has no champion (absolute floors), the second
re-scores the champion's holdout model on the candidate's holdout.

Stages: `extract` COPY out of PostgreSQL; `evaluate` fit on the holdout's train side, every `ml`
holdout metric, the holdout model saved and scored for the gate; `train` `ml.artifact.train_all`
on all ratings (artifact written); `gate` the champion re-scored on the same holdout; `log` MLflow
params, metrics, figures, pyfunc model and registry version; `precompute` top-100 lists with
explanations of every user for each of `PRECOMPUTE_STRATEGIES` (`hybrid`, `svd`), in one process
(the worker spreads users over a chord of `PRECOMPUTE_CHUNK_USERS` chunks, so N worker processes
divide it by about N); `publish` the live-pointer switch and the expiry of the previous version's
keys. Peak RSS is the whole process's (load included); Redis MB is `used_memory` with both
versions' keys present.

{table}
{notes}"""


if __name__ == "__main__":
    main()
