"""`movierec data`: load MovieLens (built-in or GroupLens files) or synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.cli.common import console, database, fail

if TYPE_CHECKING:  # the modules themselves are imported when a command runs: `--help` stays fast
    from db.ingest import LoadReport
    from ml.datasets import Dataset
    from services.embedded import ServiceUrls

app = typer.Typer(help="Load and generate data.", no_args_is_help=True)


def _read(source: str, ml1m_movies: Path | None = None) -> Dataset:
    from ml.datasets import DataFormatError, load

    with console.status(f"reading {source}"):
        try:
            return load(source, ml1m_movies=ml1m_movies)
        except DataFormatError as exc:
            raise fail(f"rejected, nothing was loaded: {exc}", code=2) from exc
        except FileNotFoundError as exc:
            raise fail(f"not found: {exc}", code=2) from exc
        except ValueError as exc:
            raise fail(str(exc), code=2) from exc


def _load(dataset: Dataset, urls: ServiceUrls | None = None) -> LoadReport:
    from db import migrate
    from db.ingest import LoadRejected, load_dataset

    with database(urls) as (urls, engine):
        migrate.upgrade(urls.database_url)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                name = "copying rows" if stage == "copy" else "merging tables"
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done, total=total)

            try:
                report = load_dataset(engine, dataset, progress=progress)
            except LoadRejected as exc:
                raise fail(f"the database refused the data, nothing was loaded: {exc}", code=2) from exc
    table = Table(
        title=f"loaded {report.dataset} in {report.seconds:.1f}s ({report.ratings_per_second:,.0f} ratings/s)"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    return report


def load_source(source: str, urls: ServiceUrls | None = None, ml1m_movies: Path | None = None) -> LoadReport:
    """Read `source` and load it, with progress and a summary table."""
    return _load(_read(source, ml1m_movies), urls)


@app.command("load")
def load_command(
    source: str = typer.Argument(
        ...,
        help="`ml-100k` (MovieLens 100K shipped in the recbole wheel), `synth:N[:SEED]`, or a GroupLens "
        "folder or .zip (ml-100k u.data/u.item, ml-1m/ml-10m .dat, ml-latest/ml-25m/ml-32m CSV).",
    ),
    ml1m_movies: Path | None = typer.Option(
        None,
        "--ml1m-movies",
        help="With `ml-100k`: MovieLens 1M movies.dat (or its folder/zip). The bundled Freebase links are "
        "keyed by ML-1M ids; with this file they are translated by title and year and movies get their "
        "people (actors, directors, writers, producers).",
    ),
) -> None:
    """Load a dataset into the database in one transaction (idempotent)."""
    load_source(source, ml1m_movies=ml1m_movies)


@app.command()
def synth(
    ratings: int = typer.Option(1_000_000, "--ratings", min=1, help="Number of ratings to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same data."),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Write GroupLens CSV files (ml-latest format) to this folder instead of loading.",
    ),
) -> None:
    """Generate a MovieLens-shaped synthetic dataset and load it (or write it with --output)."""
    from ml.datasets import write_grouplens
    from ml.datasets.synthetic import generate

    with console.status(f"generating {ratings:,} ratings"):
        dataset = generate(ratings, seed=seed)
    if output is not None:
        write_grouplens(dataset, output, "ml-latest")
        console.print(f"wrote {dataset.summary()} to {output}")
        return
    _load(dataset)
