"""Fixtures for the recommender tests: a small synthetic dataset for the contract checks, and one
MovieLens 100K holdout split with a hybrid fitted once per session for the quality bands.

Everything that fits on MovieLens 100K is session-scoped: the hybrid fits SVD, EASE, ALS, item
kNN, content and popularity on the split's train part, so the quality tests of those models reuse
its components instead of refitting them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from ml.artifact import ServingModel
from ml.datasets import Dataset, load_builtin
from ml.datasets.synthetic import generate
from ml.evaluation.splitting import Split, user_holdout
from ml.models.base import Catalog
from ml.models.hybrid import HybridRecommender


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Single-threaded BLAS: stable timings on a shared machine, identical sums run to run."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def small_dataset() -> Dataset:
    """400 users x 600 movies, 15,000 ratings, with genres and credits."""
    return generate(15_000, n_users=400, n_movies=600, seed=7)


@pytest.fixture(scope="session")
def small_catalog(small_dataset: Dataset) -> Catalog:
    return Catalog.from_dataset(small_dataset)


@pytest.fixture(scope="session")
def ml100k() -> Dataset:
    return load_builtin("ml-100k")


@pytest.fixture(scope="session")
def ml100k_catalog(ml100k: Dataset) -> Catalog:
    return Catalog.from_dataset(ml100k)


@pytest.fixture(scope="session")
def ml100k_split(ml100k: Dataset) -> Split:
    """The per-user random 80/20 holdout used by every quality band (seed 42)."""
    return user_holdout(ml100k.ratings, 0.2, seed=42)


@pytest.fixture(scope="session")
def ml100k_hybrid(ml100k_split: Split, ml100k_catalog: Catalog) -> HybridRecommender:
    """The default hybrid fitted on the holdout's train part (about 15 s)."""
    return HybridRecommender().fit(ml100k_split.train, ml100k_catalog)


@pytest.fixture(scope="session")
def ml100k_serving_dir(
    ml100k_hybrid: HybridRecommender, ml100k_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The hybrid written as a serving artifact."""
    model = ServingModel.from_hybrid(ml100k_hybrid, ml100k_catalog, {"model_version": "test-ml100k"})
    return model.save(tmp_path_factory.mktemp("artifact") / "test-ml100k")


@pytest.fixture(scope="session")
def ml100k_serving(ml100k_serving_dir: Path) -> ServingModel:
    """The serving model loaded back from the artifact."""
    return ServingModel.load(ml100k_serving_dir)
