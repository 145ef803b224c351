"""The serving artifact and `ServingModel`: same rankings as the in-memory hybrid, fold-in of new
ratings, cold start, explanations, and no Surprise / MLflow at serve time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.artifact import ARRAYS_FILE, METADATA_FILE, MovieInfo, ServingModel
from ml.coldstart import resolve_liked_titles
from ml.datasets import Dataset
from ml.evaluation.splitting import Split
from ml.models.base import Catalog, ModelFormatError
from ml.models.hybrid import HybridConfig, HybridRecommender
from ml.models.svd import SVDConfig
from ml.titles import TitleIndex

pytestmark = pytest.mark.slow


def _movie(model: ServingModel, movie_id: int) -> MovieInfo:
    info = model.movie(movie_id)
    assert info is not None
    return info


class TestArtifact:
    def test_layout_is_json_and_npz_without_pickle(self, ml100k_serving_dir: Path) -> None:
        meta = json.loads((ml100k_serving_dir / METADATA_FILE).read_text())
        assert meta["format_version"] == 1
        assert meta["model_version"] == "test-ml100k"
        with np.load(ml100k_serving_dir / ARRAYS_FILE, allow_pickle=False) as arrays:
            floats = [arrays[key].dtype for key in arrays.files if arrays[key].dtype.kind == "f"]
        assert floats and all(dtype == np.float32 for dtype in floats)

    def test_loads_without_surprise_implicit_or_mlflow(self, ml100k_serving_dir: Path) -> None:
        code = (
            "import sys\n"
            "from ml.artifact import ServingModel\n"
            f"model = ServingModel.load({str(ml100k_serving_dir)!r})\n"
            "model.recommend(1, 10); model.recommend(None, 5, history=[(50, 5.0)]); model.similar(50, 5)\n"
            "model.predict_rating(1, 50)\n"
            "print(sorted(m for m in ('surprise', 'mlflow', 'implicit') if m in sys.modules))\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == "[]"

    def test_unsupported_format_is_refused(self, ml100k_serving_dir: Path, tmp_path: Path) -> None:
        copy = tmp_path / "copy"
        copy.mkdir()
        meta = json.loads((ml100k_serving_dir / METADATA_FILE).read_text())
        (copy / METADATA_FILE).write_text(json.dumps(meta | {"format_version": 99}))
        (copy / ARRAYS_FILE).symlink_to(ml100k_serving_dir / ARRAYS_FILE)
        with pytest.raises(ModelFormatError, match="format 99"):
            ServingModel.load(copy)


class TestServingMatchesHybrid:
    def test_same_top_k_as_in_memory_hybrid(
        self, ml100k_serving: ServingModel, ml100k_hybrid: HybridRecommender, ml100k_split: Split
    ) -> None:
        for user in np.unique(ml100k_split.test["user_id"])[:100]:
            served = ml100k_serving.recommend(int(user), 10)
            expected = ml100k_hybrid.recommend(int(user), 10)
            assert served.movie_ids == expected.movie_ids.tolist()
            np.testing.assert_allclose([r.score for r in served], expected.scores, rtol=1e-6)
            assert not served.cold_start
            assert served.strategy == "hybrid"

    def test_same_rating_predictions(
        self, ml100k_serving: ServingModel, ml100k_hybrid: HybridRecommender
    ) -> None:
        for user, movie in [(1, 50), (2, 100), (3, 181)]:
            served = ml100k_serving.predict_rating(user, movie).value
            assert served == pytest.approx(ml100k_hybrid.predict_rating(user, movie), abs=1e-6)

    def test_svd_strategy_ranks_by_svd_prediction(
        self, ml100k_serving: ServingModel, ml100k_hybrid: HybridRecommender
    ) -> None:
        served = ml100k_serving.recommend(1, 10, strategy="svd").movie_ids
        expected = ml100k_hybrid.models_["svd"].recommend(1, 10).movie_ids.tolist()
        assert len(set(served) & set(expected)) >= 8  # float32 factors may swap near-ties


class TestRequests:
    def test_every_recommendation_is_explained(self, ml100k_serving: ServingModel) -> None:
        result = ml100k_serving.recommend(1, 10)
        assert all(r.explanation for r in result)
        rated = [r for r in result if r.reason == "rated"]
        assert rated, [r.explanation for r in result]
        assert rated[0].explanation.startswith("because you rated ")
        assert rated[0].explanation.endswith("stars")

    def test_new_rating_changes_recommendations_without_retraining(
        self, ml100k_serving: ServingModel, ml100k_split: Split
    ) -> None:
        # given: the user with the shortest training history
        counts = ml100k_split.train["user_id"].value_counts(ascending=True)
        user = int(counts.index.to_numpy()[0])
        history = ml100k_serving.history(user)
        before = ml100k_serving.recommend(user, 10, history=history).movie_ids
        new = [(50, 5.0), (172, 5.0), (181, 5.0)]  # the Star Wars trilogy
        # when
        after = ml100k_serving.recommend(user, 10, history=history + new).movie_ids
        # then
        rated = {m for m, _ in new}
        assert before == ml100k_serving.recommend(user, 10).movie_ids  # unchanged history: stored state
        assert not rated & set(after)
        assert set(after) - set(before) - rated

    def test_rating_prediction_follows_history(self, ml100k_serving: ServingModel) -> None:
        history = ml100k_serving.history(1)
        lowered = [(m, 1.0) for m, _ in history]
        normal = ml100k_serving.predict_rating(1, 50, history=history).value
        grumpy = ml100k_serving.predict_rating(1, 50, history=lowered).value
        assert normal is not None and grumpy is not None and grumpy < normal

    def test_unknown_user_without_history_gets_popular_movies(self, ml100k_serving: ServingModel) -> None:
        result = ml100k_serving.recommend(10**9, 5)
        assert result.cold_start and result.strategy == "popularity" and len(result) == 5
        assert ml100k_serving.predict_rating(10**9, 50).value is None

    def test_liked_titles_give_personal_results_at_once(
        self, ml100k_serving: ServingModel, ml100k: Dataset
    ) -> None:
        # given
        index = TitleIndex.from_movies(ml100k.movies, ml100k.ratings)
        liked = resolve_liked_titles(["star wars", "the empire strikes back", "return of the jedi"], index)
        assert liked.movie_ids == [50, 172, 181]
        # when
        result = ml100k_serving.recommend_for_liked(liked.movie_ids, 10)
        # then
        assert result.cold_start and result.strategy == "hybrid"
        genres = [set(_movie(ml100k_serving, r.movie_id).genres) for r in result]
        assert sum(bool(g & {"Sci-Fi", "Adventure", "Action"}) for g in genres) >= 7
        assert not {50, 172, 181} & set(result.movie_ids)
        assert any(r.explanation.startswith("because you liked ") for r in result)

    def test_genre_filter(self, ml100k_serving: ServingModel) -> None:
        result = ml100k_serving.recommend(1, 10, genre="comedy")
        assert len(result) == 10
        assert all("Comedy" in _movie(ml100k_serving, m).genres for m in result.movie_ids)
        with pytest.raises(KeyError):
            ml100k_serving.recommend(1, 10, genre="Space Opera")

    @pytest.mark.parametrize("strategy", ["svd", "ease", "als", "knn", "content", "popularity"])
    def test_every_strategy_serves(self, ml100k_serving: ServingModel, strategy: str) -> None:
        result = ml100k_serving.recommend(1, 10, strategy=strategy)
        assert result.strategy == strategy and len(result) == 10
        assert not set(result.movie_ids) & {m for m, _ in ml100k_serving.history(1)}

    def test_weights_strategy(self, ml100k_serving: ServingModel) -> None:
        result = ml100k_serving.recommend(1, 10, strategy={"ease": 1.0, "svd": 0.5})
        assert result.strategy == "weights" and len(result) == 10

    def test_similar_movies_with_reasons(self, ml100k_serving: ServingModel) -> None:
        result = ml100k_serving.similar(50, 10)
        assert len(result) == 10 and 50 not in [r.movie_id for r in result]
        assert {172, 181} & {r.movie_id for r in result}
        assert all(r.explanation and r.related_movie_id == 50 for r in result)


class TestColdMovies:
    """A catalog movie nobody rated is reachable through content (small synthetic catalog)."""

    @pytest.fixture(scope="class")
    @staticmethod
    def serving(small_dataset: Dataset, small_catalog: Catalog) -> tuple[ServingModel, int]:
        counts = small_dataset.ratings["movie_id"].value_counts()
        cold = int(counts.index[5])  # a popular movie, so its content neighbours are rated
        ratings = small_dataset.ratings[small_dataset.ratings["movie_id"] != cold]
        config = HybridConfig(svd=SVDConfig(n_factors=20, n_epochs=10), refine_rounds=0)
        hybrid = HybridRecommender(config).fit(ratings, small_catalog)
        return ServingModel.from_hybrid(hybrid, small_catalog), cold

    def test_cold_movie_has_content_neighbours(self, serving: tuple[ServingModel, int]) -> None:
        model, cold = serving
        result = model.similar(cold, 5)
        assert len(result) == 5 and all(r.reason == "content" for r in result)

    def test_cold_movie_reaches_fans_of_its_neighbours(self, serving: tuple[ServingModel, int]) -> None:
        model, cold = serving
        neighbours = [r.movie_id for r in model.similar(cold, 3)]
        result = model.recommend_for_liked(neighbours, 20, strategy="content")
        assert cold in result.movie_ids
        assert model.predict_rating(None, cold, history=[(neighbours[0], 5.0)]).value is None
