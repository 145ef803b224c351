"""Recommendation quality on MovieLens 100K and serving latency of the artifact.

Run `.venv/bin/python -m tests.bench.ml_quality` (about 5 minutes on 2 cores). It rewrites the
sections "Recommendation quality (MovieLens 100K)" and "Serving model latency" of
docs/benchmarks.md and leaves the other sections alone.

Protocols:
- rating prediction: 5-fold cross validation over rating rows (as Surprise's `KFold`), RMSE/MAE;
- top-10: per-user random 80/20 holdout (seed 42) and per-user temporal 80/20 (each user's latest
  20%); every movie the user has not rated in train is ranked; relevant = held-out rating >= 4;
  accuracy metrics average over users with a relevant held-out movie;
- latency: median and 95th percentile over requests after a warm-up, one thread
  (OPENBLAS_NUM_THREADS=1), top-10 lists with explanations, each request timed three times and
  the fastest kept; the 60,000-movie catalog is synthetic
  (random arrays of the sizes a real one would have: EASE over the 20,000 most rated movies with
  200 neighbours per movie, kNN and content 100 neighbours, 64 ALS and 200 SVD factors).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from ml.artifact import ServingModel, TrainConfig, train_all
from ml.compare import compare_models, cross_validate_rmse
from ml.datasets import Dataset, load_builtin
from ml.models.base import Catalog, IdIndex, Interactions
from ml.models.hybrid import HybridScorer
from ml.models.neighbours import ItemItem
from ml.models.surprise_models import SurpriseConfig
from ml.models.svd import SVDConfig

logger = logging.getLogger("bench.ml_quality")

DATE = "2026-11-21"
COMMAND = ".venv/bin/python -m tests.bench.ml_quality"
QUALITY_HEADING = "## Recommendation quality (MovieLens 100K)"
LATENCY_HEADING = "## Serving model latency"
RANKING_MODELS = ("popularity", "content", "svd", "knn", "als", "ease", "hybrid")
TARGETS = {"precision": 0.28, "recall": 0.30, "ndcg": 0.38, "catalog_coverage": 0.20}
# Surprise's defaults, for the "tuned vs default" row.
SVD_DEFAULTS = SVDConfig(n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02)
CV_MODELS: tuple[tuple[str, str, Any], ...] = (
    ("BaselineOnly", "baseline_only", None),
    ("SVD, Surprise defaults", "svd", SVD_DEFAULTS),
    ("SVD, tuned (shipped)", "svd", None),
    ("KNNBaseline, item-based pearson_baseline", "knn_baseline", SurpriseConfig(algorithm="knn_baseline")),
    ("SVD + KNNBaseline blend (shipped)", "blend", None),
)


def _progress(stage: str, done: int, total: int) -> None:
    logger.info("[%d/%d] %s", done, total, stage)


# -- quality ----------------------------------------------------------------------------------


def rating_table(dataset: Dataset, folds: int) -> pd.DataFrame:
    """5-fold RMSE/MAE of the rating predictors."""
    rows = []
    catalog = Catalog.from_dataset(dataset)
    for label, name, config in CV_MODELS:
        started = time.perf_counter()
        result = cross_validate_rmse(name, dataset.ratings, catalog, folds=folds, config=config)
        seconds = (time.perf_counter() - started) / folds
        rows.append({"model": label, **result, "seconds_per_fold": seconds})
        logger.info("%s: RMSE %.4f", label, result["cv_rmse"])
    return pd.DataFrame(rows)


def ranking_table(dataset: Dataset, protocol: str) -> pd.DataFrame:
    """Top-10 metrics of every ranking model under one protocol."""
    frame = compare_models(
        dataset,
        models=RANKING_MODELS,
        protocol=protocol,  # type: ignore[arg-type]
        k=10,
        progress=_progress,
        cv_folds=0,
    )
    return frame


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def quality_markdown(ratings: pd.DataFrame, tables: dict[str, pd.DataFrame], folds: int) -> str:
    """The quality section."""
    lines = [
        QUALITY_HEADING,
        "",
        f"Measured {DATE} with `{COMMAND}` (2 shared cores, one BLAS thread). Dataset: MovieLens 100K",
        "as bundled (100,000 ratings, 943 users, 1,682 movies).",
        "",
        f"### Rating prediction ({folds}-fold cross validation)",
        "",
        "| model | RMSE | ± std | MAE | seconds per fold (fit + predict) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in ratings.to_dict(orient="records"):
        lines.append(
            f"| {record['model']} | {_fmt(record['cv_rmse'], 4)} | {_fmt(record['cv_rmse_std'], 4)} | "
            f"{_fmt(record['cv_mae'], 4)} | {_fmt(record['seconds_per_fold'], 1)} |"
        )
    lines += [
        "",
        "The SVD is Surprise's, with 200 factors, 50 epochs, lr 0.01, reg 0.1 (target <= 0.912). The blend",
        "(target <= 0.905) fits `w0 + w1 SVD + w2 KNNBaseline` by least squares on a validation split carved",
        "from each training fold; it is what `ServingModel.predict_rating` serves.",
    ]
    titles = {
        "user_holdout": "Top-10, per-user random 80/20 holdout (seed 42)",
        "temporal": "Top-10, per-user temporal 80/20 (each user's latest ratings held out)",
    }
    for protocol, frame in tables.items():
        lines += [
            "",
            f"### {titles[protocol]}",
            "",
            "| model | P@10 | R@10 | F1@10 | MAP@10 | nDCG@10 | HR@10 | coverage | diversity | novelty | "
            "pop. bias | RMSE | fit s | ms/user |",
            "| --- | " + " | ".join(["---"] * 13) + " |",
        ]
        rows: dict[Any, dict[Any, Any]] = frame.to_dict(orient="index")
        for name, row in rows.items():
            lines.append(
                f"| {name} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['f1'])} | "
                f"{_fmt(row['map'])} | {_fmt(row['ndcg'])} | {_fmt(row['hit_rate'])} | "
                f"{_fmt(row['catalog_coverage'])} | {_fmt(row['intra_list_diversity'])} | "
                f"{_fmt(row['novelty'], 2)} | {_fmt(row['popularity_bias'])} | {_fmt(row.get('rmse'), 4)} | "
                f"{_fmt(row['fit_seconds'], 1)} | {_fmt(row['score_ms_per_user'], 2)} |"
            )
        checks = []
        for metric, target in TARGETS.items():
            value = float(rows["hybrid"][metric])
            others = [float(row[metric]) for name, row in rows.items() if name != "hybrid"]
            ahead = all(value > other for other in others) if metric != "catalog_coverage" else None
            lead = "" if ahead is None else ("ahead of every single model" if ahead else "NOT ahead of all")
            if protocol == "user_holdout":
                mark = "met" if value >= target else "NOT met"
                checks.append(f"{metric} {value:.3f} (target {target}: {mark}{', ' + lead if lead else ''})")
            elif lead:
                checks.append(f"{metric} {value:.3f} ({lead})")
        heading = "Hybrid against the targets" if protocol == "user_holdout" else "Hybrid (no targets here)"
        lines += ["", f"{heading}: " + "; ".join(checks) + "."]
    lines += [
        "",
        "Columns: diversity is the mean pairwise cosine distance of the genres within a list; novelty the",
        "mean `-log2 p(i)` of recommended movies (p = share of training users who rated it); popularity",
        "bias the mean `p(i)`; coverage the share of the 1,682 movies shown to at least one user. RMSE is",
        "over the held-out pairs the model can predict (movies without training ratings cannot be).",
        "The hybrid ranks the top 100 movies of EASE, of rating-weighted EASE and of ALS plus 30 content",
        "candidates (10 more among unrated movies) with a logistic re-ranker over the component scores",
        "standardised per user, SVD's predicted rating, each movie's shrunk share of ratings >= 4,",
        "popularity, a no-ratings flag and products with the user's activity. The weights are fitted on a",
        "validation split carved from the training ratings (random for the holdout, latest ratings for the",
        "temporal protocol) and refined by coordinate ascent on nDCG@10 + 0.1 x coverage of the validation",
        "lists (see `ml/models/hybrid.py`). The targets (P@10 >= 0.28, R@10 >= 0.30, nDCG@10 >= 0.38,",
        "coverage >= 0.20) apply to the random holdout; the temporal protocol is much harder for every model.",
    ]
    return "\n".join(lines) + "\n"


# -- latency ----------------------------------------------------------------------------------


def _timings_ms(
    function: Callable[[int], object], arguments: list[int], warmup: int = 20, repeats: int = 3
) -> list[float]:
    """Milliseconds per call; each call is timed `repeats` times and the fastest kept, which
    filters out the pauses a shared machine adds."""
    for argument in arguments[:warmup]:
        function(argument)
    best = np.full(len(arguments), np.inf)
    for _ in range(repeats):
        for position, argument in enumerate(arguments):
            started = time.perf_counter()
            function(argument)
            best[position] = min(best[position], (time.perf_counter() - started) * 1000)
    return best.tolist()


def _summary(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _random_item_item(
    rng: np.random.Generator, n_items: int, sources: np.ndarray, neighbours: int, targets: np.ndarray
) -> sp.csr_matrix:
    rows = np.repeat(sources, neighbours)
    cols = targets[rng.integers(0, len(targets), size=len(rows))]
    data = rng.random(len(rows), dtype=np.float32) * 0.1
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_items, n_items))
    matrix.sum_duplicates()
    return matrix


def synthetic_serving_model(
    template: HybridScorer, n_items: int = 60_000, n_users: int = 2_000
) -> ServingModel:
    """A serving model of realistic array sizes filled with random numbers (for latency only)."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    item_ids = np.arange(1, n_items + 1, dtype=np.int64)
    # Zipf-like popularity: low indices are the popular movies.
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.9
    weights /= weights.sum()
    per_user = np.clip(rng.lognormal(4.2, 0.9, size=n_users).astype(int), 20, 2000)
    rows = np.repeat(np.arange(n_users), per_user)
    cols = rng.choice(n_items, size=len(rows), p=weights)
    ratings = rng.integers(1, 6, size=len(rows)).astype(np.float32)
    matrix = sp.csr_matrix((ratings, (rows, cols)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data = np.clip(matrix.data, 1, 5).astype(np.float32)
    history = Interactions(IdIndex(np.arange(1, n_users + 1)), IdIndex(item_ids), matrix)
    everything = np.arange(n_items)
    ease_items = np.arange(20_000)
    scorer = HybridScorer(
        items=history.items,
        history=history,
        titles=np.asarray([f"Movie {i}" for i in item_ids], dtype=np.str_),
        global_mean=3.5,
        rating_scale=(1.0, 5.0),
        popularity=np.log1p(weights * 1e6),
        popularity_z=(np.log1p(weights * 1e6) - np.log1p(weights * 1e6).mean())
        / np.log1p(weights * 1e6).std(),
        activity_mean=4.2,
        ease=ItemItem(_random_item_item(rng, n_items, ease_items, 200, ease_items)),
        ease_covered=np.isin(everything, ease_items),
        knn=ItemItem(_random_item_item(rng, n_items, everything, 100, everything)),
        knn_covered=np.ones(n_items, dtype=bool),
        content=ItemItem(_random_item_item(rng, n_items, everything, 100, everything)),
        content_known=np.ones(n_items, dtype=bool),
        als_users=rng.normal(scale=0.1, size=(n_users, 64)).astype(np.float32),
        als_items=rng.normal(scale=0.1, size=(n_items, 64)).astype(np.float32),
        als_covered=np.ones(n_items, dtype=bool),
        als_config=template.als_config,
        svd_user_bias=rng.normal(scale=0.3, size=n_users).astype(np.float32),
        svd_item_bias=rng.normal(scale=0.3, size=n_items).astype(np.float32),
        svd_users=rng.normal(scale=0.1, size=(n_users, 200)).astype(np.float32),
        svd_items=rng.normal(scale=0.1, size=(n_items, 200)).astype(np.float32),
        svd_covered=np.ones(n_items, dtype=bool),
        svd_reg=template.svd_reg,
        feature_names=template.feature_names,
        weights=template.weights,
        intercept=template.intercept,
    )
    genres = rng.integers(0, 18, size=n_items).astype(np.int32)
    model = ServingModel(
        scorer,
        np.full(n_items, 2000, dtype=np.int32),
        np.arange(n_items + 1, dtype=np.int64),
        genres,
        [f"Genre {g}" for g in range(18)],
        {"model_version": "synthetic-60k"},
    )
    logger.info("synthetic 60k-movie model built in %.1fs", time.perf_counter() - started)
    return model


def latency_rows(
    model: ServingModel, catalog: str, users: list[int], rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Median and p95 of the serving calls on one model."""
    ids = model.movie_ids
    popular = ids[np.argsort(-model.scorer.popularity)[:2000]]
    histories = [
        [(int(m), float(rng.integers(1, 6))) for m in rng.choice(popular, 50, replace=False)] for _ in users
    ]
    liked = [[int(m) for m in rng.choice(popular, 5, replace=False)] for _ in users]
    calls: list[tuple[str, Callable[[int], object]]] = [
        ("top-10, known user, hybrid", lambda i: model.recommend(users[i], 10)),
        ("top-10, known user, svd (A/B control)", lambda i: model.recommend(users[i], 10, strategy="svd")),
        ("top-10, popularity (unknown user)", lambda i: model.recommend(None, 10)),
        (
            "fold-in: new user with 50 ratings, hybrid top-10",
            lambda i: model.recommend(None, 10, history=histories[i]),
        ),
        ("fold-in: 5 liked movies, hybrid top-10", lambda i: model.recommend_for_liked(liked[i], 10)),
        (
            "fold-in only (ALS + SVD + kNN bias), 50 ratings",
            lambda i: model.scorer.state(None, histories[i]),
        ),
        ("similar movies, top-10", lambda i: model.similar(int(popular[i % len(popular)]), 10)),
        ("predict rating, known user", lambda i: model.predict_rating(users[i], int(popular[i % 50]))),
    ]
    rows = []
    for label, call in calls:
        median, p95 = _summary(_timings_ms(call, list(range(len(users)))))
        rows.append({"operation": label, "catalog": catalog, "median_ms": median, "p95_ms": p95})
        logger.info("%s (%s): median %.3f ms, p95 %.3f ms", label, catalog, median, p95)
    return rows


def load_timings(path: Path, repeats: int = 5) -> dict[str, float]:
    """In-process load time and a fresh interpreter's import + load time."""
    in_process = []
    for _ in range(repeats):
        started = time.perf_counter()
        ServingModel.load(path)
        in_process.append(time.perf_counter() - started)
    code = (
        "import time; t = time.perf_counter()\n"
        "from ml.artifact import ServingModel\n"
        f"m = ServingModel.load({str(path)!r}); print(time.perf_counter() - t)\n"
    )
    fresh = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    size = sum(f.stat().st_size for f in path.iterdir())
    return {"load_s": min(in_process), "import_and_load_s": min(fresh), "size_mb": size / 1e6}


def latency_markdown(rows: list[dict[str, Any]], loads: dict[str, float]) -> str:
    """The latency section."""
    lines = [
        LATENCY_HEADING,
        "",
        f"Measured {DATE} with `{COMMAND}`: `ServingModel` (numpy only; no Surprise, implicit or MLflow",
        "imported), one thread, 2 shared cores; each request is timed three times and the fastest kept",
        "(other work shared the machine). Every list carries explanations. The 60,000-movie",
        "catalog is synthetic: random arrays of the sizes a real catalog gives (EASE over the 20,000 most",
        "rated movies, 200 neighbours each; kNN and content 100 neighbours; 64 ALS and 200 SVD factors;",
        "2,000 users with 20-2,000 ratings).",
        "",
        f"Artifact of the MovieLens 100K model: {loads['size_mb']:.1f} MB; `ServingModel.load` "
        f"{loads['load_s'] * 1000:.0f} ms; a fresh interpreter importing `ml.artifact` and loading it "
        f"{loads['import_and_load_s'] * 1000:.0f} ms (target < 1 s).",
        "",
        "| operation | catalog | median ms | p95 ms |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['operation']} | {row['catalog']} | {row['median_ms']:.3f} | {row['p95_ms']:.3f} |"
        )
    lines += [
        "",
        "Targets: top-K < 1 ms at 1.7k movies and < 5 ms at 60k, fold-in of a new user < 5 ms.",
    ]
    return "\n".join(lines) + "\n"


# -- docs -------------------------------------------------------------------------------------


def write_sections(path: Path, sections: dict[str, str]) -> None:
    """Replace (or append) the given `## ` sections of a markdown file, keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    for heading, body in sections.items():
        pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
        if pattern.search(text):
            match = pattern.search(text)
            assert match is not None
            text = text[: match.start()] + body.rstrip("\n") + "\n\n" + text[match.end() :]
        else:
            text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    """Run everything and rewrite the two sections of docs/benchmarks.md."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-quality", action="store_true", help="latency only")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("ml").setLevel(logging.WARNING)

    with threadpool_limits(1):
        dataset = load_builtin("ml-100k")
        sections: dict[str, str] = {}
        raw: dict[str, Any] = {}
        if not args.skip_quality:
            ratings = rating_table(dataset, args.folds)
            tables = {protocol: ranking_table(dataset, protocol) for protocol in ("user_holdout", "temporal")}
            sections[QUALITY_HEADING] = quality_markdown(ratings, tables, args.folds)
            raw["rating"] = ratings.to_dict(orient="records")
            raw["ranking"] = {p: t.reset_index().to_dict(orient="records") for p, t in tables.items()}

        with tempfile.TemporaryDirectory() as folder:
            result = train_all(dataset, folder, TrainConfig(evaluate=False), progress=_progress)
            loads = load_timings(result.artifact_path)
            model = ServingModel.load(result.artifact_path)
            rng = np.random.default_rng(1)
            users = [int(u) for u in rng.choice(model.scorer.history.users.ids, 500)]
            rows = latency_rows(model, "ML-100K, 1,682 movies", users, rng)
            big = synthetic_serving_model(model.scorer)
            big_users = [int(u) for u in rng.choice(big.scorer.history.users.ids, 300)]
            rows += latency_rows(big, "synthetic, 60,000 movies", big_users, rng)
        sections[LATENCY_HEADING] = latency_markdown(rows, loads)
        raw["latency"] = rows
        raw["load"] = loads

    write_sections(args.output, sections)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=float))
    logger.info("wrote %s", args.output)


if __name__ == "__main__":
    main()
