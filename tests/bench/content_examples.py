"""Similar-movie examples and timings of `ml.content` and `ml.titles` on MovieLens 100K.

Run `python -m tests.bench.content_examples` to rewrite docs/content-examples.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from ml.content import ItemFeatures, build_item_features, shared_reasons, similar_items, top_neighbours
from ml.datasets import load_builtin
from ml.titles import TitleIndex

# What a person would type; the title index finds the movie.
QUERIES = ("star wars", "toy story", "the godfather", "heat 1995", "the lion king")
TOP = 5


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("docs/content-examples.md"))
    parser.add_argument(
        "--ml1m-movies",
        type=Path,
        default=None,
        help="MovieLens 1M movies.dat: translates the bundled Freebase links so people count too",
    )
    args = parser.parse_args()
    args.with_credits = args.ml1m_movies is not None

    dataset = load_builtin("ml-100k", ml1m_movies=args.ml1m_movies)
    credits = dataset.credits
    movies = dataset.movies
    years = movies["year"].astype("object").where(movies["year"].notna(), None)
    display = {
        int(movie_id): title if year is None else f"{title} ({year})"
        for movie_id, title, year in zip(movies["movie_id"], movies["title"], years, strict=True)
    }
    plain = dict(zip(movies["movie_id"].astype(int), movies["title"], strict=True))

    started = time.perf_counter()
    features = build_item_features(movies, dataset.genres, credits)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    top_neighbours(features, 20)
    neighbours_s = time.perf_counter() - started
    rng = np.random.default_rng(42)
    sample = rng.choice(features.movie_ids, size=200, replace=False)
    similar_ms = statistics.median(
        _median_ms(partial(similar_items, features, int(movie_id), 10), 3) for movie_id in sample
    )
    started = time.perf_counter()
    index = TitleIndex.from_movies(movies, dataset.ratings)
    index_s = time.perf_counter() - started
    queries = ["shawshenk", "the matrix", "toy story", "heat (1995)", "les miserables", "godfater part 2"]
    match_ms = statistics.median(_median_ms(partial(index.match, query), 5) for query in queries)

    lines = [
        "# Similar movies by content",
        "",
        "What `ml.content` finds on MovieLens 100K: each movie's 5 nearest neighbours by cosine similarity",
        "of its TF-IDF content vector (default `ContentConfig`), with the reasons `shared_reasons` gives.",
        "Each example movie was found with `TitleIndex.match` from the query shown.",
        "Rewrite this page with `.venv/bin/python -m tests.bench.content_examples`.",
        "",
    ]
    if not args.with_credits:
        lines += [
            "People are left out here: the Freebase links bundled with ML-100K are keyed by MovieLens 1M",
            "movie ids, so without ML-1M's `movies.dat` to translate them (`movierec data load ml-100k",
            "--ml1m-movies PATH`) the built-in ML-100K has no credits. These examples use genres, title words",
            "and decade only.",
            "",
        ]
    for query in QUERIES:
        match = index.match(query, limit=1)[0]
        lines += _example(features, match.movie_id, query, display, plain)
    lines += [
        "## Timings",
        "",
        f"MovieLens 100K, {len(features)} movies x {len(features.vocabulary)} tokens, one process on a",
        "2-core machine shared with other work.",
        "",
        "| step | time |",
        "| --- | --- |",
        f"| `build_item_features` | {build_s * 1000:.0f} ms |",
        f"| `similar_items`, k=10 (median of 200 movies) | {similar_ms:.2f} ms |",
        f"| `top_neighbours`, k=20, whole catalogue | {neighbours_s * 1000:.0f} ms |",
        f"| `TitleIndex.from_movies` | {index_s * 1000:.0f} ms |",
        f"| `TitleIndex.match` (median of {len(queries)} queries) | {match_ms:.2f} ms |",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output}")


def _example(
    features: ItemFeatures, movie_id: int, query: str, display: dict[int, str], plain: dict[int, str]
) -> list[str]:
    ids, scores = similar_items(features, movie_id, TOP)
    lines = [
        f"## {display[movie_id]}",
        "",
        f'Query: "{query}"',
        "",
        "| # | similar movie | similarity | why |",
        "| --- | --- | --- | --- |",
    ]
    for rank, (other, score) in enumerate(zip(ids, scores, strict=True), start=1):
        reasons = "; ".join(shared_reasons(features, int(other), movie_id, titles=plain))
        lines.append(f"| {rank} | {display[int(other)]} | {score:.2f} | {reasons} |")
    return [*lines, ""]


if __name__ == "__main__":
    main()
