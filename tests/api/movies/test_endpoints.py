from __future__ import annotations

from fastapi.testclient import TestClient

from ml.datasets import Dataset
from tests.api.conftest import Keys


class TestListMovies:
    def test_pages_through_the_catalog_with_a_total(
        self, client: TestClient, keys: Keys, api_dataset: Dataset
    ) -> None:
        first = client.get("/v1/movies?page=1&page_size=10", headers=keys.read).json()
        second = client.get("/v1/movies?page=2&page_size=10", headers=keys.read).json()
        assert first["total"] == second["total"] == len(api_dataset.movies)
        assert len(first["items"]) == 10
        assert first["items"][-1]["id"] < second["items"][0]["id"]
        assert first["items"][0]["match_score"] is None

    def test_fuzzy_title_search(self, client: TestClient, keys: Keys, api_dataset: Dataset) -> None:
        title = str(api_dataset.movies.set_index("movie_id").loc[7, "title"])
        typo = title.lower()[:-1]
        body = client.get("/v1/movies", params={"q": typo}, headers=keys.read).json()
        assert body["items"][0]["id"] == 7
        assert body["items"][0]["match_score"] >= 80
        assert body["total"] == len(body["items"]) or body["total"] > 20

    def test_filters_by_genre_and_year(self, client: TestClient, keys: Keys, api_dataset: Dataset) -> None:
        body = client.get("/v1/movies?genre=comedy&page_size=100", headers=keys.read).json()
        comedies = api_dataset.genres.loc[api_dataset.genres["genre"] == "Comedy", "movie_id"].nunique()
        assert body["total"] == comedies
        assert all("Comedy" in movie["genres"] for movie in body["items"])
        year = int(api_dataset.movies["year"].dropna().iloc[0])
        by_year = client.get(f"/v1/movies?year={year}", headers=keys.read).json()
        assert by_year["items"] and all(movie["year"] == year for movie in by_year["items"])


class TestGetMovie:
    def test_one_movie(self, client: TestClient, keys: Keys) -> None:
        body = client.get("/v1/movies/1", headers=keys.read).json()
        assert body["id"] == 1 and {"title", "year", "genres", "imdb_id", "tmdb_id"} <= set(body)

    def test_an_unknown_movie_is_404(self, client: TestClient, keys: Keys) -> None:
        response = client.get("/v1/movies/123456789", headers=keys.read)
        assert response.status_code == 404
        assert response.json()["detail"] == "No movie with id 123456789."

    def test_needs_a_key_before_revealing_anything(self, client: TestClient) -> None:
        assert client.get("/v1/movies/123456789").status_code == 401
