"""`movierec evaluate`: compare recommenders offline on one dataset and print a table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.cli.common import console, fail

COLUMNS = (
    ("rmse", "RMSE", "{:.4f}"),
    ("precision", "P@k", "{:.3f}"),
    ("recall", "R@k", "{:.3f}"),
    ("ndcg", "nDCG@k", "{:.3f}"),
    ("map", "MAP@k", "{:.3f}"),
    ("hit_rate", "HR@k", "{:.3f}"),
    ("catalog_coverage", "coverage", "{:.3f}"),
    ("novelty", "novelty", "{:.2f}"),
    ("fit_seconds", "fit s", "{:.1f}"),
)


def _cell(value: object, fmt: str) -> str:
    if isinstance(value, float | int) and not (isinstance(value, float) and math.isnan(value)):
        return fmt.format(value)
    return "–"


def evaluate(
    models: str = typer.Option(
        "svd,ease,als,knn,content,hybrid,popularity", "--models", help="Comma-separated model names."
    ),
    dataset: str = typer.Option(
        "ml-100k", "--dataset", help="`ml-100k`, `synth:N[:SEED]` or a GroupLens path."
    ),
    protocol: str = typer.Option(
        "user_holdout", "--protocol", help="`user_holdout` (random 80/20) or `temporal`."
    ),
    k: int = typer.Option(10, "--k", min=1, max=100, help="List length."),
    cv_folds: int = typer.Option(
        0, "--cv-folds", min=0, max=10, help="Also cross-validate SVD and the blend."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of the split."),
    output: Path | None = typer.Option(None, "--output", help="Write the results as JSON to this file."),
) -> None:
    """Fit each model on a train split and compare rating and top-k metrics on the held-out part."""
    from ml.compare import compare_models
    from ml.models import MODEL_NAMES

    names = [name.strip() for name in models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown or not names:
        raise fail(
            f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODEL_NAMES)}",
            2,
        )
    protocols: dict[str, Literal["user_holdout", "temporal"]] = {
        "user_holdout": "user_holdout",
        "temporal": "temporal",
    }
    if protocol not in protocols:
        raise fail("--protocol must be `user_holdout` or `temporal`", 2)
    from ml.datasets import DataFormatError, load

    try:
        data = load(dataset)
    except (DataFormatError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc), 2) from exc
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("evaluating", total=len(names))

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        results = compare_models(
            data,
            names,
            protocols[protocol],
            k,
            progress,
            cv_models=("svd", "blend") if cv_folds else (),
            cv_folds=cv_folds,
            seed=seed,
        )
    table = Table(title=f"{data.name}, {protocol}, k={k} (relevant = held-out rating >= 4)")
    table.add_column("model")
    present = [column for column in COLUMNS if column[0] in results.columns]
    for _, label, _ in present:
        table.add_column(label, justify="right")
    for name, row in results.iterrows():
        table.add_row(str(name), *(_cell(row[column], fmt) for column, _, fmt in present))
    Console(width=max(Console().width, 140)).print(table)
    if output is not None:
        records = json.loads(results.to_json(orient="index"))
        payload = {"dataset": data.name, "protocol": protocol, "k": k, "seed": seed, "models": records}
        output.write_text(json.dumps(payload, indent=2))
        console.print(f"wrote {output}")
