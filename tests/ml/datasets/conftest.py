"""Shared checks for the dataset readers and the generator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ml.datasets import Dataset

STR = pd.StringDtype(na_value=np.nan)  # pandas' default "str" dtype
CONTRACT_DTYPES: dict[str, dict[str, object]] = {
    "ratings": {"user_id": np.int64, "movie_id": np.int64, "rating": np.float32, "timestamp": np.int64},
    "movies": {
        "movie_id": np.int64,
        "title": STR,
        "year": pd.Int64Dtype(),
        "imdb_id": pd.Int64Dtype(),
        "tmdb_id": pd.Int64Dtype(),
        "freebase_id": STR,
    },
    "users": {"user_id": np.int64, "age": pd.Int64Dtype(), "gender": STR, "occupation": STR, "zip_code": STR},
    "genres": {"movie_id": np.int64, "genre": STR},
    "people": {"person_id": STR, "name": STR},
    "credits": {"movie_id": np.int64, "person_id": STR, "role": STR},
    "tags": {"user_id": np.int64, "movie_id": np.int64, "tag": STR, "timestamp": np.int64},
}


def _check_contract(dataset: Dataset) -> None:
    for table, expected in CONTRACT_DTYPES.items():
        frame: pd.DataFrame = getattr(dataset, table)
        actual = {column: frame[column].dtype for column in frame.columns}
        assert actual == {
            column: np.dtype(d) if isinstance(d, type) else d for column, d in expected.items()
        }, table


@pytest.fixture
def check_contract() -> Callable[[Dataset], None]:
    """Asserts that every table has exactly the contract's columns, in order, with its dtypes."""
    return _check_contract
