"""Recommenders behind one interface (`ml.models.base.Recommender`), and a registry by name.

Importing this package imports neither Surprise nor `implicit`: the model modules import them
when a model is fitted (or, for Surprise's kNN models, loaded).
"""

from __future__ import annotations

from collections.abc import Callable

from ml.models.base import (
    Catalog,
    IdIndex,
    Interactions,
    ModelConfig,
    ModelError,
    ModelFormatError,
    NotFittedError,
    Recommendations,
    Recommender,
)

__all__ = [
    "MODEL_NAMES",
    "Catalog",
    "IdIndex",
    "Interactions",
    "ModelConfig",
    "ModelError",
    "ModelFormatError",
    "NotFittedError",
    "Recommendations",
    "Recommender",
    "create_model",
]


def _svd() -> Recommender:
    from ml.models.svd import SVDRecommender

    return SVDRecommender()


def _ease() -> Recommender:
    from ml.models.ease import EASERecommender

    return EASERecommender()


def _als() -> Recommender:
    from ml.models.als import ALSRecommender

    return ALSRecommender()


def _knn() -> Recommender:
    from ml.models.knn import ItemKNNRecommender

    return ItemKNNRecommender()


def _content() -> Recommender:
    from ml.models.content import ContentRecommender

    return ContentRecommender()


def _popularity() -> Recommender:
    from ml.models.popularity import PopularityRecommender

    return PopularityRecommender()


def _hybrid() -> Recommender:
    from ml.models.hybrid import HybridRecommender

    return HybridRecommender()


def _blend() -> Recommender:
    from ml.models.blend import RatingBlendRecommender

    return RatingBlendRecommender()


def _surprise(algorithm: str, **options: object) -> Callable[[], Recommender]:
    def make() -> Recommender:
        from ml.models.surprise_models import SurpriseConfig, SurpriseRecommender

        return SurpriseRecommender(SurpriseConfig.model_validate({"algorithm": algorithm, **options}))

    return make


_FACTORIES: dict[str, Callable[[], Recommender]] = {
    "svd": _svd,
    "ease": _ease,
    "als": _als,
    "knn": _knn,
    "content": _content,
    "popularity": _popularity,
    "hybrid": _hybrid,
    "blend": _blend,
    "knn_baseline": _surprise("knn_baseline"),
    "knn_baseline_user": _surprise("knn_baseline", user_based=True),
    "knn_basic": _surprise("knn_basic", similarity="msd"),
    "knn_with_means": _surprise("knn_with_means", similarity="pearson"),
    "knn_with_zscore": _surprise("knn_with_zscore", similarity="pearson"),
    "nmf": _surprise("nmf"),
    "svdpp": _surprise("svdpp"),
    "baseline_only": _surprise("baseline_only"),
}
MODEL_NAMES: tuple[str, ...] = tuple(_FACTORIES)
"""Names accepted by `create_model`."""


def create_model(name: str, config: ModelConfig | None = None) -> Recommender:
    """A new, unfitted recommender by name.

    Args:
        name: One of `MODEL_NAMES`: "svd", "ease", "als", "knn" (item kNN on interactions),
            "content", "popularity", "hybrid", "blend" (SVD + KNNBaseline ratings), or a Surprise
            model ("knn_baseline", "knn_baseline_user", "knn_basic", "knn_with_means",
            "knn_with_zscore", "nmf", "svdpp", "baseline_only").
        config: The model's configuration; its defaults if None.

    Returns:
        The model.

    Raises:
        ValueError: If the name is unknown.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODEL_NAMES)}") from None
    model = factory()
    if config is not None:
        model = type(model)(config)
    return model
