import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.typing import ArrayLike
from surprise import Prediction, accuracy

from ml.evaluation import (
    RankingReport,
    catalog_coverage,
    f1_at_k,
    hit_rate_at_k,
    intra_list_diversity,
    item_popularity,
    mae,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    popularity_bias,
    precision_at_k,
    prediction_coverage,
    ranking_metrics,
    ranking_report,
    rating_metrics,
    recall_at_k,
    relevant_items,
    rmse,
)

# Three users, K = 3, used by most ranking tests.
#   user 0: [1, 2, 3] vs {1, 3, 9}: hits at ranks 1 and 3
#   user 1: [4, 5, -]  vs {6}:       no hit, one empty slot
#   user 2: [7, 7, 8]  vs {8}:       the repeated 7 is an empty slot, hit at rank 3
RECOMMENDED = np.array([[1, 2, 3], [4, 5, -1], [7, 7, 8]])
RELEVANT = [{1, 3, 9}, {6}, {8}]
LOG2_3 = math.log2(3)


class TestRmseAndMae:
    def test_match_hand_computation(self) -> None:
        # errors 0.5, 0, -1 -> squared 0.25, 0, 1 -> mean 1.25 / 3; absolute mean 1.5 / 3
        assert rmse([4, 3, 5], [3.5, 3, 6]) == pytest.approx(math.sqrt(1.25 / 3))
        assert mae([4, 3, 5], [3.5, 3, 6]) == pytest.approx(0.5)

    def test_match_surprise_accuracy(self) -> None:
        rng = np.random.default_rng(7)
        true = rng.integers(1, 11, 500) / 2
        estimated = np.clip(true + rng.normal(0, 0.9, 500), 0.5, 5)
        predictions = [
            Prediction(u, u, r, e, {}) for u, (r, e) in enumerate(zip(true, estimated, strict=True))
        ]

        assert rmse(true, estimated) == pytest.approx(accuracy.rmse(predictions, verbose=False), rel=1e-12)
        assert mae(true, estimated) == pytest.approx(accuracy.mae(predictions, verbose=False), rel=1e-12)

    @pytest.mark.parametrize("metric", [rmse, mae])
    @pytest.mark.parametrize("missing", [np.nan, np.inf])
    def test_refuse_unpredicted_pairs(self, metric, missing) -> None:
        with pytest.raises(ValueError, match="1 of 3 predictions are NaN or infinite"):
            metric([4, 3, 5], [3.5, missing, 4])

    @pytest.mark.parametrize("metric", [rmse, mae])
    def test_refuse_bad_inputs(self, metric) -> None:
        with pytest.raises(ValueError, match="no ratings"):
            metric([], [])
        with pytest.raises(ValueError, match="aligned"):
            metric([4, 3], [4, 3, 2])
        with pytest.raises(ValueError, match="y_true"):
            metric([4, np.nan], [4, 3])


class TestRatingMetrics:
    def test_report_error_over_predicted_pairs_with_coverage(self) -> None:
        # predicted pairs: (4, 3.5) and (5, 4): errors 0.5 and 1 -> rmse sqrt(1.25 / 2), mae 0.75
        report = rating_metrics([4, 3, 5, 2], [3.5, np.nan, 4, np.nan])

        assert report == {
            "rmse": pytest.approx(math.sqrt(1.25 / 2)),
            "mae": pytest.approx(0.75),
            "coverage": 0.5,
            "n_pairs": 4,
            "n_unpredicted": 2,
        }
        assert prediction_coverage([3.5, np.nan, 4, np.nan]) == 0.5

    def test_nothing_predicted(self) -> None:
        report = rating_metrics([4, 3], [np.nan, np.nan])

        assert math.isnan(report["rmse"])
        assert math.isnan(report["mae"])
        assert report["coverage"] == 0.0


class TestAccuracyAtK:
    def test_precision(self) -> None:
        # 2/3, 0/3, 1/3 -> mean 1/3
        assert precision_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(1 / 3)

    def test_recall(self) -> None:
        # 2/3, 0/1, 1/1 -> mean 5/9
        assert recall_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(5 / 9)

    def test_f1(self) -> None:
        # user 0: P = R = 2/3 -> F1 2/3; user 1: 0; user 2: P 1/3, R 1 -> 2 * (1/3) / (4/3) = 1/2
        assert f1_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((2 / 3 + 0 + 1 / 2) / 3)

    def test_map(self) -> None:
        # user 0: (1/1 + 2/3) / min(3, 3) = 5/9; user 1: 0; user 2: (1/3) / min(1, 3) = 1/3
        assert map_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((5 / 9 + 0 + 1 / 3) / 3)

    def test_mrr(self) -> None:
        # first hits at ranks 1, none, 3 -> (1 + 0 + 1/3) / 3
        assert mrr_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(4 / 9)

    def test_ndcg(self) -> None:
        # user 0: DCG 1/log2(2) + 1/log2(4) = 1.5, IDCG (3 relevant) 1 + 1/log2(3) + 1/2
        # user 1: 0; user 2: DCG 1/log2(4) = 1/2, IDCG (1 relevant) 1
        user_0 = 1.5 / (1 + 1 / LOG2_3 + 0.5)
        assert ndcg_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((user_0 + 0 + 0.5) / 3)

    def test_hit_rate(self) -> None:
        # users 0 and 2 have a hit -> 2/3
        assert hit_rate_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(2 / 3)

    def test_only_the_first_k_items_count(self) -> None:
        # top 2: user 0 [1, 2] hits 1 -> precision 1/2; user 2 [7, -] hits 0; user 1 hits 0
        assert precision_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx(1 / 6)
        # AP@2 for user 0 divides by min(3, 2) = 2: (1/1) / 2
        assert map_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx(0.5 / 3)

    def test_ideal_dcg_stops_at_k(self) -> None:
        # 5 relevant, K = 2, both slots hit: DCG = IDCG = 1 + 1/log2(3)
        assert ndcg_at_k(np.array([[1, 2]]), [{1, 2, 3, 4, 5}], 2) == pytest.approx(1.0)
        assert map_at_k(np.array([[1, 2]]), [{1, 2, 3, 4, 5}], 2) == pytest.approx(1.0)

    def test_perfect_list_scores_one(self) -> None:
        report = ranking_metrics(np.array([[3, 1, 2]]), [{1, 2, 3}], k=3, n_items=3)

        for name in ("precision", "recall", "f1", "map", "mrr", "ndcg", "hit_rate"):
            assert report[name] == pytest.approx(1.0), name


class TestEdgeCases:
    def test_empty_list_scores_zero(self) -> None:
        assert precision_at_k([[]], [{1}], 5) == 0.0
        assert ndcg_at_k(np.full((1, 5), -1), [{1}], 5) == 0.0

    def test_short_list_counts_empty_slots_as_misses(self) -> None:
        # one hit in a list of 2 at K = 5: precision 1/5, not 1/2; recall 1/1
        assert precision_at_k([[1, 2]], [{1}], 5) == pytest.approx(1 / 5)
        assert recall_at_k([[1, 2]], [{1}], 5) == 1.0
        # F1 = 2 * 1 / (5 + 1)
        assert f1_at_k([[1, 2]], [{1}], 5) == pytest.approx(1 / 3)

    def test_k_larger_than_the_array_pads_it(self) -> None:
        # the 3-column array at K = 5: user 0 hits 2 of 5 slots
        assert precision_at_k(RECOMMENDED[:1], RELEVANT[:1], 5) == pytest.approx(2 / 5)
        # AP divides by min(3 relevant, 5) = 3: (1 + 2/3) / 3
        assert map_at_k(RECOMMENDED[:1], RELEVANT[:1], 5) == pytest.approx(5 / 9)

    def test_repeated_recommendation_counts_once(self) -> None:
        # [1, 1, 1] vs {1}: one hit at rank 1, two empty slots -> precision 1/3, recall 1
        assert precision_at_k([[1, 1, 1]], [{1}], 3) == pytest.approx(1 / 3)
        assert recall_at_k([[1, 1, 1]], [{1}], 3) == 1.0
        assert ndcg_at_k([[1, 1, 1]], [{1}], 3) == 1.0

    def test_repeated_relevant_id_counts_once(self) -> None:
        # relevant [1, 1, 2] is {1, 2}: 1 hit of 2
        assert recall_at_k([[1, 3]], [[1, 1, 2]], 2) == 0.5

    def test_users_without_relevant_items_are_left_out(self) -> None:
        # only user 0 counts: precision 2/3
        assert precision_at_k(RECOMMENDED, [{1, 3}, set(), []], 3) == pytest.approx(2 / 3)
        report = ranking_report(RECOMMENDED, [{1, 3}, set(), []], k=3, n_items=10)
        assert (report.n_lists, report.n_users) == (3, 1)

    def test_no_user_with_relevant_items_gives_nan(self) -> None:
        assert math.isnan(precision_at_k(RECOMMENDED, [set(), set(), set()], 3))
        assert math.isnan(ndcg_at_k([], [], 3))

    def test_sequence_of_lists_equals_padded_array(self) -> None:
        ragged: list[ArrayLike] = [np.array([1, 2, 3]), [4, 5], (7, 7, 8, 9, 10)]

        assert ranking_metrics(ragged, RELEVANT, k=3, n_items=10) == ranking_metrics(
            RECOMMENDED, RELEVANT, k=3, n_items=10
        )

    def test_rejects_bad_inputs(self) -> None:
        with pytest.raises(ValueError, match="3 recommendation lists but 2"):
            precision_at_k(RECOMMENDED, RELEVANT[:2], 3)
        with pytest.raises(ValueError, match="k must be at least 1"):
            precision_at_k(RECOMMENDED, RELEVANT, 0)
        with pytest.raises(TypeError, match="integers"):
            precision_at_k(np.array([[1.0, 2.0]]), [{1}], 2)
        with pytest.raises(ValueError, match="2-D"):
            precision_at_k(np.array([1, 2, 3]), [{1}], 2)
        with pytest.raises(ValueError, match="non-negative"):
            precision_at_k([[1]], [{-1}], 1)


class TestCatalogCoverage:
    def test_counts_distinct_items(self) -> None:
        # {1, 2, 3, 4, 5, 7, 8} of 10 items
        assert catalog_coverage(RECOMMENDED, 10) == pytest.approx(0.7)
        # top 1: {1, 4, 7}
        assert catalog_coverage(RECOMMENDED, 10, k=1) == pytest.approx(0.3)

    def test_rejects_more_items_than_the_catalogue(self) -> None:
        with pytest.raises(ValueError, match="7 distinct items"):
            catalog_coverage(RECOMMENDED, 5)


class TestIntraListDiversity:
    def test_orthogonal_and_identical_items(self) -> None:
        vectors = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
        # items 0 and 1 are orthogonal (distance 1); 0 and 2 point the same way (distance 0)
        assert intra_list_diversity([[0, 1]], vectors) == pytest.approx(1.0)
        assert intra_list_diversity([[0, 2]], vectors) == pytest.approx(0.0)
        # [0, 1, 2]: pairs (0,1) 1, (0,2) 0, (1,2) 1 -> 2/3
        assert intra_list_diversity([[0, 1, 2]], vectors) == pytest.approx(2 / 3)

    def test_angle_of_45_degrees(self) -> None:
        # cos 45 deg = 1/sqrt(2) -> distance 1 - 0.7071
        vectors = np.array([[1.0, 0.0], [1.0, 1.0]])
        assert intra_list_diversity([[0, 1]], vectors) == pytest.approx(1 - 1 / math.sqrt(2))

    def test_averages_lists_and_skips_lists_of_one(self) -> None:
        vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        # lists: [0, 1] -> 1, [0, 2] -> 0, [1] and [] skipped -> mean 1/2
        assert intra_list_diversity([[0, 1], [0, 2], [1], []], vectors) == pytest.approx(0.5)
        assert math.isnan(intra_list_diversity([[1]], vectors))

    def test_zero_vector_is_at_distance_one(self) -> None:
        vectors = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
        # pairs (0,1) 1, (0,2) 0, (1,2) 1 -> 2/3
        assert intra_list_diversity([[0, 1, 2]], vectors) == pytest.approx(2 / 3)

    def test_sparse_and_dense_agree(self) -> None:
        rng = np.random.default_rng(3)
        dense = rng.random((30, 6)) * (rng.random((30, 6)) < 0.4)
        lists = rng.integers(0, 30, (50, 8))

        expected = intra_list_diversity(lists, dense)
        assert intra_list_diversity(lists, sp.csr_array(dense)) == pytest.approx(expected)
        assert intra_list_diversity(lists, sp.csr_matrix(dense)) == pytest.approx(expected)
        assert expected == pytest.approx(_brute_force_diversity(lists, dense))

    def test_item_index_maps_ids_to_rows(self) -> None:
        vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
        # movie 100 is row 1, movie 200 row 0; list [100, 200, 100] is the orthogonal pair
        assert intra_list_diversity([[100, 200, 100]], vectors, item_index=[200, 100]) == pytest.approx(1.0)
        assert intra_list_diversity([[100, 200]], vectors, item_index={100: 1, 200: 0}) == pytest.approx(1.0)

    def test_rejects_items_without_a_row(self) -> None:
        with pytest.raises(ValueError, match=r"no row in item_vectors, e\.g\. item 5"):
            intra_list_diversity([[0, 5]], np.eye(2))
        with pytest.raises(ValueError, match=r"e\.g\. item 300"):
            intra_list_diversity([[100, 300]], np.eye(2), item_index={100: 0, 200: 1})


class TestNoveltyAndPopularity:
    POPULARITY = pd.Series({1: 0.5, 2: 0.25, 3: 0.125, 4: 1.0, 5: 0.5, 7: 0.5, 8: 0.25})

    def test_novelty(self) -> None:
        # -log2 p: [1, 2, 3] -> 1, 2, 3 (mean 2); [4, 5] -> 0, 1 (mean 1/2); [7, 8] -> 1, 2 (mean 3/2)
        assert novelty(RECOMMENDED, self.POPULARITY) == pytest.approx((2 + 0.5 + 1.5) / 3)

    def test_popularity_bias(self) -> None:
        # [0.5, 0.25, 0.125] mean 7/24; [1, 0.5] mean 3/4; [0.5, 0.25] mean 3/8
        assert popularity_bias(RECOMMENDED, self.POPULARITY) == pytest.approx((7 / 24 + 3 / 4 + 3 / 8) / 3)

    def test_popularity_bias_counts_unknown_items_as_zero(self) -> None:
        # [1, 99]: (0.5 + 0) / 2
        assert popularity_bias([[1, 99]], self.POPULARITY) == pytest.approx(0.25)

    def test_novelty_refuses_items_without_popularity(self) -> None:
        with pytest.raises(ValueError, match=r"e\.g\. item 99"):
            novelty([[1, 99]], self.POPULARITY)
        with pytest.raises(ValueError, match="no popularity in"):
            novelty([[1]], {1: 0.0})

    def test_empty_lists_are_skipped(self) -> None:
        # [4] -> 0 bits; the empty list is left out
        assert novelty([[4], []], self.POPULARITY) == 0.0
        assert math.isnan(popularity_bias([[]], self.POPULARITY))


class TestItemPopularity:
    RATINGS = pd.DataFrame({"user_id": [1, 1, 2, 3, 3, 4], "movie_id": [10, 20, 10, 10, 30, 10]})

    def test_share_of_users(self) -> None:
        # 4 users: movie 10 rated by 4, 20 by 1, 30 by 1
        popularity = item_popularity(self.RATINGS)

        assert popularity.to_dict() == {10: 1.0, 20: 0.25, 30: 0.25}

    def test_smoothing_and_unrated_catalogue_items(self) -> None:
        # (raters + 1) / (4 + 1): 10 -> 5/5, 20 -> 2/5, 40 (never rated) -> 1/5
        popularity = item_popularity(self.RATINGS, items=[10, 20, 40], smoothing=1)

        assert popularity.to_dict() == pytest.approx({10: 1.0, 20: 0.4, 40: 0.2})
        # novelty of [40] is -log2(1/5)
        assert novelty([[40]], popularity) == pytest.approx(math.log2(5))


class TestRelevantItems:
    TEST = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3],
            "movie_id": [10, 20, 30, 10, 40, 50],
            "rating": np.array([4.0, 3.5, 5.0, 2.0, 1.0, 4.5], dtype=np.float32),
        }
    )

    def test_threshold(self) -> None:
        assert relevant_items(self.TEST) == {1: {10, 30}, 2: set(), 3: {50}}
        assert relevant_items(self.TEST, threshold=3.5) == {1: {10, 20, 30}, 2: set(), 3: {50}}

    def test_every_held_out_item_without_threshold(self) -> None:
        assert relevant_items(self.TEST, threshold=None) == {1: {10, 20, 30}, 2: {10, 40}, 3: {50}}

    def test_nothing_relevant(self) -> None:
        assert relevant_items(self.TEST, threshold=6) == {1: set(), 2: set(), 3: set()}


class TestRankingReport:
    def test_agrees_with_the_individual_metrics(self) -> None:
        rng = np.random.default_rng(11)
        lists = rng.integers(0, 40, (60, 12))
        lists[rng.random(lists.shape) < 0.1] = -1
        relevant = [set(rng.integers(0, 40, rng.integers(0, 6)).tolist()) for _ in range(60)]
        vectors = rng.random((40, 5))
        popularity = pd.Series(rng.uniform(0.01, 1, 40))

        report = ranking_report(
            lists, relevant, k=10, n_items=40, item_popularity=popularity, item_vectors=vectors
        )

        assert report.precision == precision_at_k(lists, relevant, 10)
        assert report.recall == recall_at_k(lists, relevant, 10)
        assert report.f1 == f1_at_k(lists, relevant, 10)
        assert report.map == map_at_k(lists, relevant, 10)
        assert report.mrr == mrr_at_k(lists, relevant, 10)
        assert report.ndcg == ndcg_at_k(lists, relevant, 10)
        assert report.hit_rate == hit_rate_at_k(lists, relevant, 10)
        assert report.catalog_coverage == catalog_coverage(lists, 40, k=10)
        assert report.intra_list_diversity == intra_list_diversity(lists, vectors, k=10)
        assert report.novelty == novelty(lists, popularity, k=10)
        assert report.popularity_bias == popularity_bias(lists, popularity, k=10)
        assert report.n_users == sum(1 for items in relevant if items)

    def test_optional_metrics_only_when_their_inputs_are_given(self) -> None:
        report = ranking_report(RECOMMENDED, RELEVANT, k=3, n_items=10)

        assert isinstance(report, RankingReport)
        assert report.novelty is None
        assert set(report.as_dict()) == {
            "n_lists",
            "n_users",
            "precision",
            "recall",
            "f1",
            "map",
            "mrr",
            "ndcg",
            "hit_rate",
            "catalog_coverage",
        }


def _brute_force_diversity(lists: np.ndarray, vectors: np.ndarray) -> float:
    """Mean over lists of the mean pairwise cosine distance, pair by pair, repeats dropped."""
    per_list = []
    for row in lists:
        items = list(dict.fromkeys(row.tolist()))
        distances = []
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                norm = np.linalg.norm(vectors[a]) * np.linalg.norm(vectors[b])
                similarity = vectors[a] @ vectors[b] / norm if norm else 0.0
                distances.append(1 - similarity)
        if distances:
            per_list.append(np.mean(distances))
    return float(np.mean(per_list))
