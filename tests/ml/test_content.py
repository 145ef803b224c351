from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from ml.content import (
    ContentConfig,
    ItemFeatures,
    build_item_features,
    score_profile,
    shared_reasons,
    similar_items,
    title_words,
    top_neighbours,
    user_profile,
)
from ml.datasets import Dataset, load_builtin

# Plain TF-IDF: no per-kind scaling, raw counts, every token kept, no decade tokens.
PLAIN = ContentConfig(
    genre_weight=1,
    title_weight=1,
    decade_weight=0,
    director_weight=1,
    writer_weight=1,
    actor_weight=1,
    producer_weight=1,
    other_role_weight=1,
    min_df=1,
    sublinear_tf=False,
    normalize_kinds=False,
)


Frames = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


def frames(
    movies: Sequence[tuple[int, str, int | None]],
    genres: Sequence[tuple[int, str]] = (),
    credits: Sequence[tuple[int, str, str]] = (),
) -> Frames:
    """Movies, genres and credits frames with the `Dataset` columns."""
    return (
        pd.DataFrame(
            {
                "movie_id": pd.Series([m[0] for m in movies], dtype="int64"),
                "title": [m[1] for m in movies],
                "year": pd.Series([m[2] for m in movies], dtype="Int64"),
            }
        ),
        pd.DataFrame(
            {"movie_id": pd.Series([g[0] for g in genres], dtype="int64"), "genre": [g[1] for g in genres]}
        ),
        pd.DataFrame(
            {
                "movie_id": pd.Series([c[0] for c in credits], dtype="int64"),
                "person_id": [c[1] for c in credits],
                "role": [c[2] for c in credits],
            }
        ),
    )


def dense(features: ItemFeatures) -> dict[int, dict[str, float]]:
    """Non-zero values by movie id and token."""
    out: dict[int, dict[str, float]] = {}
    coo = features.matrix.tocoo()
    for row, column, value in zip(coo.row, coo.col, coo.data, strict=True):
        out.setdefault(int(features.movie_ids[row]), {})[features.vocabulary[column]] = float(value)
    return out


@pytest.fixture
def crime_catalogue() -> Frames:
    """Heat, two films sharing people with it, an unrelated drama and a movie with no data."""
    return frames(
        movies=[
            (1, "Heat", 1995),
            (2, "Collateral", 2004),
            (3, "Insider, The", 1999),
            (4, "Cold Fever", 1985),
            (5, "Untitled", None),
            (6, "Ronin", 1998),
        ],
        genres=[
            (1, "Crime"),
            (1, "Thriller"),
            (1, "Action"),
            (2, "Crime"),
            (2, "Thriller"),
            (3, "Drama"),
            (4, "Drama"),
            (4, "Comedy"),
            (6, "Action"),
            (6, "Thriller"),
        ],
        credits=[
            (1, "m.mann", "director"),
            (2, "m.mann", "director"),
            (3, "m.mann", "director"),
            (1, "m.pacino", "actor"),
            (3, "m.pacino", "actor"),
            (1, "m.deniro", "actor"),
            (6, "m.deniro", "actor"),
            (1, "m.voight", "actor"),
            (3, "m.voight", "actor"),
            (1, "m.kilmer", "actor"),
            (2, "m.cruise", "actor"),
            (1, "m.spinotti", "cinematographer"),
            (3, "m.spinotti", "cinematographer"),
            (1, "m.writer", "writer"),
            (3, "m.writer", "writer"),
            (1, "m.writer2", "writer"),
            (3, "m.writer2", "writer"),
            (99, "m.ghost", "actor"),  # a movie missing from the catalogue
        ],
    )


class TestTitleWords:
    def test_folds_case_and_accents_and_drops_stop_words(self) -> None:
        assert title_words("Cérémonie, La") == ["ceremonie"]
        assert title_words("Shawshank Redemption, The (1994)") == ["shawshank", "redemption"]

    def test_drops_numbers_and_sequel_numerals(self) -> None:
        assert title_words("Godfather: Part II, The") == ["godfather"]
        assert title_words("Die Hard 2") == ["hard"]
        assert title_words("Star Trek III: The Search for Spock") == ["star", "trek", "search", "spock"]

    def test_keeps_repeats_from_alternate_titles(self) -> None:
        assert title_words("Contempt (Mépris, Le)") == ["contempt", "mepris"]
        assert title_words("Seven (Se7en)") == ["seven", "se"]


class TestBuildItemFeatures:
    def test_tfidf_values_match_a_hand_computation(self) -> None:
        # given
        movies, genres, credits = frames(
            movies=[(1, "Heat", 1995), (2, "Heat Wave", 1990), (3, "Cold Fever", 1994)],
            genres=[(1, "Crime"), (1, "Action"), (2, "Action"), (3, "Drama")],
            credits=[(1, "m.p1", "director"), (2, "m.p1", "director")],
        )
        # when
        features = build_item_features(movies, genres, credits, PLAIN)
        # then: idf = ln((1 + 3) / (1 + df)) + 1
        shared = math.log(4 / 3) + 1  # df 2
        single = math.log(4 / 2) + 1  # df 1
        norm_1 = math.sqrt(3 * shared**2 + single**2)
        assert features.vocabulary == [
            "director:m.p1",
            "genre:Action",
            "genre:Crime",
            "genre:Drama",
            "title:cold",
            "title:fever",
            "title:heat",
            "title:wave",
        ]
        values = dense(features)
        assert values[1] == pytest.approx(
            {
                "director:m.p1": shared / norm_1,
                "genre:Action": shared / norm_1,
                "genre:Crime": single / norm_1,
                "title:heat": shared / norm_1,
            },
            rel=1e-6,
        )
        assert values[2]["title:wave"] == pytest.approx(single / norm_1, rel=1e-6)
        assert values[3] == pytest.approx({t: 1 / math.sqrt(3) for t in values[3]}, rel=1e-6)
        assert set(values[3]) == {"genre:Drama", "title:cold", "title:fever"}
        similarity = (features.matrix[0] @ features.matrix[1].T).toarray()[0, 0]
        assert similarity == pytest.approx(3 * shared**2 / norm_1**2, rel=1e-6)

    def test_sublinear_tf_dampens_a_repeated_word(self) -> None:
        movies, genres, credits = frames(movies=[(1, "Heat Heat Heat Wave", None), (2, "Heat Wave", None)])
        sublinear = PLAIN.model_copy(update={"sublinear_tf": True})
        raw = dense(build_item_features(movies, genres, credits, PLAIN))
        damped = dense(build_item_features(movies, genres, credits, sublinear))
        assert raw[1]["title:heat"] / raw[1]["title:wave"] == pytest.approx(3.0, rel=1e-6)
        assert damped[1]["title:heat"] / damped[1]["title:wave"] == pytest.approx(1 + math.log(3), rel=1e-6)

    def test_rows_are_unit_length_float32_csr(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        assert features.matrix.format == "csr"
        assert features.matrix.dtype == np.float32
        norms = np.sqrt(np.asarray(features.matrix.multiply(features.matrix).sum(axis=1)).ravel())
        has_tokens = np.diff(features.matrix.indptr) > 0
        assert norms[has_tokens] == pytest.approx(1.0, abs=1e-6)
        assert (norms[~has_tokens] == 0).all()

    def test_every_catalogue_movie_has_a_row_and_no_other(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        assert features.movie_ids.tolist() == [1, 2, 3, 4, 5, 6]
        assert features.movie_ids.dtype == np.int64
        assert 5 in features  # no genre, no credit, no kept title word: an empty row
        assert features.matrix[features.row(5)].nnz == 0
        assert 99 not in features
        assert not any(token.endswith("m.ghost") for token in features.vocabulary)

    def test_tokens_are_namespaced_by_kind(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue, config=ContentConfig(min_df=1))
        assert {"genre:Crime", "director:m.mann", "actor:m.pacino", "title:heat", "decade:1990"} <= set(
            features.vocabulary
        )
        assert "cinematographer:m.spinotti" in features.vocabulary
        assert features.vocabulary == sorted(features.vocabulary)

    def test_min_df_drops_tokens_of_a_single_movie(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue, config=ContentConfig(min_df=2))
        assert "actor:m.kilmer" not in features.vocabulary
        assert "actor:m.pacino" in features.vocabulary
        assert "title:heat" not in features.vocabulary

    def test_each_kind_gets_the_share_its_weight_says(self, crime_catalogue: Frames) -> None:
        # given: Heat has 3 genres and 4 actors (3 kept by min_df)
        config = ContentConfig(
            genre_weight=1,
            actor_weight=2,
            title_weight=0,
            decade_weight=0,
            director_weight=0,
            writer_weight=0,
            producer_weight=0,
            other_role_weight=0,
        )
        # when
        features = build_item_features(*crime_catalogue, config=config)
        # then: squared block lengths are in the ratio of squared weights, 1 : 4
        row = features.matrix[features.row(1)]
        kinds = features.kind_of(row.indices)
        squares = row.data.astype(np.float64) ** 2
        assert squares[kinds == "genre"].sum() == pytest.approx(1 / 5, rel=1e-5)
        assert squares[kinds == "actor"].sum() == pytest.approx(4 / 5, rel=1e-5)
        assert set(kinds) == {"genre", "actor"}

    def test_a_zero_weight_leaves_the_kind_out(self, crime_catalogue: Frames) -> None:
        features = build_item_features(
            *crime_catalogue, config=ContentConfig(actor_weight=0, other_role_weight=0)
        )
        kinds = set(features.kind_of(np.arange(len(features.vocabulary))))
        assert "actor" not in kinds
        assert "cinematographer" not in kinds
        assert "director" in kinds

    def test_max_actors_keeps_the_most_credited(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue, config=ContentConfig(max_actors=1, min_df=1))
        row = features.matrix[features.row(1)]
        actors = [features.vocabulary[c] for c in row.indices if features.vocabulary[c].startswith("actor:")]
        # pacino, deniro and voight are in two movies each, kilmer in one; ties keep input order
        assert actors == ["actor:m.pacino"]

    def test_unknown_genres_are_not_tokens(self) -> None:
        movies, genres, credits = frames(
            movies=[(1, "A", None), (2, "B", None)], genres=[(1, "unknown"), (2, "(no genres listed)")]
        )
        features = build_item_features(movies, genres, credits, PLAIN)
        assert features.vocabulary == []
        assert features.matrix.shape == (2, 0)

    def test_rejects_duplicate_movie_ids(self) -> None:
        movies, genres, credits = frames(movies=[(1, "A", None), (1, "B", None)])
        with pytest.raises(ValueError, match="duplicate"):
            build_item_features(movies, genres, credits)

    def test_empty_catalogue(self) -> None:
        features = build_item_features(*frames(movies=[]))
        assert len(features) == 0
        assert features.rows([1, 2]).tolist() == [-1, -1]
        assert top_neighbours(features, 5)[0].shape == (0, 0)


class TestItemFeaturesArrays:
    def test_npz_round_trip_is_identical(self, crime_catalogue: Frames, tmp_path: Path) -> None:
        # given
        features = build_item_features(*crime_catalogue)
        path = tmp_path / "model.npz"
        arrays: dict[str, Any] = {"other": np.arange(3), **features.to_arrays("content_")}
        # when
        np.savez(path, **arrays)
        with np.load(path, allow_pickle=False) as stored:
            loaded = ItemFeatures.from_arrays(stored, "content_")
        # then
        assert loaded.movie_ids.tolist() == features.movie_ids.tolist()
        assert loaded.movie_ids.dtype == np.int64
        assert loaded.vocabulary == features.vocabulary
        assert loaded.matrix.dtype == np.float32
        assert (loaded.matrix != features.matrix).nnz == 0
        assert np.array_equal(loaded.matrix.indptr, features.matrix.indptr)
        assert similar_items(loaded, 1, 3)[0].tolist() == similar_items(features, 1, 3)[0].tolist()

    def test_rejects_a_matrix_of_the_wrong_shape(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        with pytest.raises(ValueError, match="does not match"):
            ItemFeatures(features.movie_ids[:-1], features.matrix, features.vocabulary)

    def test_rows_gives_minus_one_for_unknown_movies(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        assert features.rows([6, 99, 1, 0]).tolist() == [5, -1, 0, -1]
        with pytest.raises(KeyError):
            features.row(99)


class TestSimilarItems:
    def test_ranks_by_shared_content(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        ids, scores = similar_items(features, 1, 10)
        # The Insider shares director, writers, actors and cinematographer; Cold Fever nothing.
        assert ids[0] == 3
        assert set(ids.tolist()) == {2, 3, 6}
        assert np.all(np.diff(scores) <= 0)
        assert np.all(scores > 0)
        assert ids.dtype == np.int64
        assert scores.dtype == np.float32

    def test_scores_are_cosine_similarities(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        ids, scores = similar_items(features, 1, 10)
        for movie_id, score in zip(ids, scores, strict=True):
            expected = features.matrix[features.row(1)] @ features.matrix[features.row(int(movie_id))].T
            assert score == pytest.approx(expected.toarray()[0, 0], rel=1e-5)

    def test_honours_k_and_exclude(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        assert len(similar_items(features, 1, 1)[0]) == 1
        ids, _ = similar_items(features, 1, 10, exclude=[3, 42])
        assert 3 not in ids
        assert 1 not in ids

    def test_a_movie_without_tokens_has_no_neighbours(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        ids, scores = similar_items(features, 5, 10)
        assert len(ids) == 0
        assert len(scores) == 0

    def test_unknown_movie_raises(self, crime_catalogue: Frames) -> None:
        with pytest.raises(KeyError):
            similar_items(build_item_features(*crime_catalogue), 99, 5)


class TestTopNeighbours:
    def test_matches_similar_items_for_every_movie(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        ids, scores = top_neighbours(features, 3)
        assert ids.shape == scores.shape == (6, 3)
        for row, movie_id in enumerate(features.movie_ids):
            expected_ids, expected_scores = similar_items(features, int(movie_id), 3)
            n = len(expected_ids)
            assert scores[row, :n] == pytest.approx(expected_scores, rel=1e-5)
            assert set(ids[row, :n]) == set(expected_ids)
            assert (ids[row, n:] == -1).all()
            assert (scores[row, n:] == 0).all()

    def test_block_size_does_not_change_the_result(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        whole = top_neighbours(features, 4)
        one_by_one = top_neighbours(features, 4, chunk_size=1)
        assert np.array_equal(whole[0], one_by_one[0])
        assert np.array_equal(whole[1], one_by_one[1])

    def test_k_larger_than_the_catalogue(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        ids, _ = top_neighbours(features, 50)
        assert ids.shape == (6, 5)
        assert not (ids == features.movie_ids[:, None]).any()


class TestUserProfile:
    def test_is_the_weighted_mean_of_rated_movies(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        profile = user_profile(features, [1, 4], [3.0, -1.0])
        expected = (3 * features.matrix[0] - features.matrix[3]) / 4
        assert profile.shape == (1, len(features.vocabulary))
        assert profile.toarray() == pytest.approx(expected.toarray(), abs=1e-6)

    def test_skips_unknown_movies_and_defaults_to_equal_weights(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        profile = user_profile(features, [1, 99, 3])
        expected = (features.matrix[0] + features.matrix[2]) / 2
        assert profile.toarray() == pytest.approx(expected.toarray(), abs=1e-6)

    def test_scores_are_cosine_to_the_profile(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        scores = score_profile(features, user_profile(features, [1]))
        assert scores.shape == (6,)
        assert scores[features.row(1)] == pytest.approx(1.0, rel=1e-5)
        assert np.argsort(-scores)[1] == features.row(3)

    def test_a_disliked_movie_pushes_its_lookalikes_down(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        scores = score_profile(features, user_profile(features, [4, 3], [1.0, -1.0]))
        assert scores[features.row(1)] < 0

    def test_empty_profile_cannot_score(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        assert np.isnan(score_profile(features, user_profile(features, [99]))).all()
        assert np.isnan(score_profile(features, user_profile(features, [1, 2], [0.0, 0.0]))).all()

    def test_rejects_mismatched_weights(self, crime_catalogue: Frames) -> None:
        with pytest.raises(ValueError):
            user_profile(build_item_features(*crime_catalogue), [1, 2], [1.0])


class TestSharedReasons:
    TITLES: ClassVar[dict[int, str]] = {
        1: "Heat",
        2: "Collateral",
        3: "The Insider",
        4: "Cold Fever",
        6: "Ronin",
    }

    def test_names_people_by_the_other_movie(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        reasons = shared_reasons(features, 3, 1, titles=self.TITLES)
        assert reasons == [
            "same director as Heat",
            "same writers as Heat",
            "also stars two actors from Heat",
            "same cinematographer as Heat",
            "both from the 1990s",
        ]

    def test_genres_and_a_single_actor(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        assert shared_reasons(features, 6, 1, titles=self.TITLES) == [
            "also stars an actor from Heat",
            "both Action and Thriller",
            "both from the 1990s",
        ]
        assert shared_reasons(features, 2, 1, titles=self.TITLES) == [
            "same director as Heat",
            "both Crime and Thriller",
        ]

    def test_title_words(self) -> None:
        movies, genres, credits = frames(
            movies=[(1, "Godfather, The", 1972), (2, "Godfather: Part II, The", 1974), (3, "Other", 1950)],
            genres=[(1, "Crime"), (2, "Crime"), (1, "Drama"), (2, "Drama"), (3, "Drama")],
        )
        features = build_item_features(movies, genres, credits)
        assert shared_reasons(features, 2, 1, titles={1: "The Godfather"}) == [
            'both titles have "godfather"',
            "both Crime and Drama",
            "both from the 1970s",
        ]

    def test_nothing_shared_gives_no_reason(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue)
        assert shared_reasons(features, 4, 1, titles=self.TITLES) == []

    def test_a_kind_left_out_is_never_a_reason(self, crime_catalogue: Frames) -> None:
        features = build_item_features(*crime_catalogue, config=ContentConfig(director_weight=0))
        assert not any("director" in r for r in shared_reasons(features, 2, 1, titles=self.TITLES))

    def test_many_actors_and_a_missing_title(self) -> None:
        movies, genres, credits = frames(
            movies=[(1, "A", None), (2, "B", None)],
            credits=[(m, f"m.a{i}", "actor") for m in (1, 2) for i in range(12)],
        )
        features = build_item_features(movies, genres, credits)
        assert shared_reasons(features, 2, 1, titles={}) == ["also stars 12 actors from that movie"]


ML1M_SAMPLE = Path(__file__).parent / "datasets" / "data" / "ml1m-movies-sample.dat"


@pytest.fixture(scope="module")
def ml100k() -> Dataset:
    return load_builtin("ml-100k")


@pytest.fixture(scope="module")
def ml100k_features(ml100k: Dataset) -> ItemFeatures:
    # Without MovieLens 1M titles the built-in ML-100K has no credits (see ml/datasets/builtin.py):
    # quality is checked on genres, titles and years.
    return build_item_features(ml100k.movies, ml100k.genres, ml100k.credits)


def ids_of(dataset: Dataset, *titles: str) -> list[int]:
    by_title = dict(zip(dataset.movies["title"], dataset.movies["movie_id"], strict=True))
    return [int(by_title[title]) for title in titles]


@pytest.mark.slow
class TestOnMovieLens100K:
    def test_covers_every_movie_with_or_without_credits(self) -> None:
        credited = load_builtin("ml-100k", ml1m_movies=ML1M_SAMPLE)  # people for ten well-known films
        features = build_item_features(credited.movies, credited.genres, credited.credits)
        assert features.movie_ids.tolist() == sorted(credited.movies["movie_id"])
        assert any(token.startswith("actor:") for token in features.vocabulary)
        (empire,) = ids_of(credited, "Empire Strikes Back, The")
        (jedi,) = ids_of(credited, "Return of the Jedi")
        titles = dict(zip(credited.movies["movie_id"], credited.movies["title"], strict=True))
        assert any("actors" in reason for reason in shared_reasons(features, jedi, empire, titles=titles))

    def test_star_wars_neighbours_are_its_sequels(
        self, ml100k: Dataset, ml100k_features: ItemFeatures
    ) -> None:
        (star_wars,) = ids_of(ml100k, "Star Wars")
        ids, _ = similar_items(ml100k_features, star_wars, 10)
        assert set(ids_of(ml100k, "Empire Strikes Back, The", "Return of the Jedi")) <= set(ids[:3].tolist())

    def test_toy_story_neighbours_are_animated_childrens_films(
        self, ml100k: Dataset, ml100k_features: ItemFeatures
    ) -> None:
        (toy_story,) = ids_of(ml100k, "Toy Story")
        ids, _ = similar_items(ml100k_features, toy_story, 10)
        genres = ml100k.genres.groupby("movie_id")["genre"].agg(set)
        assert all({"Animation", "Children's"} <= genres[movie_id] for movie_id in ids)

    def test_godfather_part_two_is_the_closest_to_the_godfather(
        self, ml100k: Dataset, ml100k_features: ItemFeatures
    ) -> None:
        godfather, part_two = ids_of(ml100k, "Godfather, The", "Godfather: Part II, The")
        ids, _ = similar_items(ml100k_features, godfather, 5)
        assert ids[0] == part_two
        titles = dict(zip(ml100k.movies["movie_id"], ml100k.movies["title"], strict=True))
        assert shared_reasons(ml100k_features, part_two, godfather, titles=titles) == [
            'both titles have "godfather"',
            "both Action, Crime and Drama",
            "both from the 1970s",
        ]

    def test_top_neighbours_of_the_whole_catalogue(self, ml100k_features: ItemFeatures) -> None:
        ids, scores = top_neighbours(ml100k_features, 20)
        assert ids.shape == (1682, 20)
        assert not (ids == ml100k_features.movie_ids[:, None]).any()
        assert (np.diff(scores, axis=1) <= 0).all()
        # every movie with a genre has 20 neighbours
        assert (ids[:, -1] >= 0).sum() >= 1680
