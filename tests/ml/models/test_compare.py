"""The comparison runner on a small synthetic dataset."""

from __future__ import annotations

import numpy as np
import pytest

from ml.compare import compare_models
from ml.datasets import Dataset
from ml.models.svd import SVDConfig


class TestCompareModels:
    def test_one_row_per_model_with_metrics_and_progress(self, small_dataset: Dataset) -> None:
        # given
        calls: list[tuple[str, int, int]] = []
        # when
        frame = compare_models(
            small_dataset,
            models=["svd", "ease", "popularity"],
            protocol="temporal",
            k=5,
            progress=lambda stage, done, total: calls.append((stage, done, total)),
            cv_models=["svd"],
            cv_folds=2,
            configs={"svd": SVDConfig(n_factors=10, n_epochs=5)},
        )
        # then
        assert list(frame.index) == ["svd", "ease", "popularity"]
        assert (frame["protocol"] == "temporal").all()
        for column in (
            "precision",
            "recall",
            "ndcg",
            "map",
            "hit_rate",
            "catalog_coverage",
            "novelty",
            "intra_list_diversity",
            "popularity_bias",
            "fit_seconds",
            "score_ms_per_user",
        ):
            assert frame[column].notna().all(), column
        assert np.isfinite(frame["rmse"]["svd"]) and np.isnan(frame["rmse"]["ease"])
        assert np.isfinite(frame["cv_rmse"]["svd"]) and np.isnan(frame["cv_rmse"]["ease"])
        assert [done for _, done, _ in calls] == [1, 2, 3, 4, 5]
        assert {total for _, _, total in calls} == {5}

    def test_unknown_model_is_refused(self, small_dataset: Dataset) -> None:
        with pytest.raises(ValueError, match="unknown models"):
            compare_models(small_dataset, models=["nope"])
