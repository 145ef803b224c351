"""The app's data access: one engine per process, query results cached for a few seconds.

Cached functions take the database URL as their first argument, so two databases never share a
cache entry. TTL_SECONDS keeps the pages fresh while a replay writes events, without running the
aggregates on every widget click.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy import Connection, Engine, make_url

from db.session import create_db_engine
from services.dashboard import queries
from services.dashboard.api_client import ApiUnavailable, RouteHealth, fetch_route_health
from services.embedded import resolve_urls
from services.settings import Settings

TTL_SECONDS = 30
T = TypeVar("T")


def settings() -> Settings:
    """Settings read afresh (cheap), so a changed environment is seen without a restart."""
    return Settings()


def database_url() -> str:
    """The movierec database: `DATABASE_URL`, or the embedded server's."""
    return resolve_urls(settings()).database_url


def mlflow_tracking_uri() -> str:
    """Where MLflow runs are read from."""
    return resolve_urls(settings()).mlflow_tracking_uri


def mlflow_ui_url() -> str:
    """The MLflow UI for people: the tracking server when it is HTTP, else the local default port."""
    uri = mlflow_tracking_uri()
    return uri if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{settings().MLFLOW_PORT}"


def api_base_url() -> str:
    """The REST API the Try it page calls."""
    return settings().api_base_url


def api_key() -> str | None:
    """`MOVIEREC_API_KEY`, else the admin key the API wrote to `DATA_DIR/admin-api-key`."""
    key = os.environ.get("MOVIEREC_API_KEY")
    if key:
        return key.strip()
    path = Path(settings().DATA_DIR) / "admin-api-key"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def utc_sessions(url: str) -> str:
    """`url` with sessions in UTC, so timestamps come back in the zone the pages label them with."""
    parsed = make_url(url)
    options = " ".join(filter(None, [str(parsed.query.get("options", "")), "-c timezone=UTC"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@st.cache_resource(show_spinner=False)
def engine(url: str) -> Engine:
    """One small pool per database URL for the whole dashboard process."""
    return create_db_engine(utc_sessions(url), "dashboard", pool_size=2)


def _read(url: str, query: Callable[..., T], *args: Any) -> T:
    with engine(url).connect() as connection:
        return query(connection, *args)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def experiments(url: str) -> list[queries.ExperimentRow]:
    """Every experiment."""
    return _read(url, queries.list_experiments)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def variant_metrics(url: str, experiment_id: int) -> list[queries.VariantMetrics]:
    """Per-variant sums of an experiment."""
    return _read(url, queries.variant_metrics, experiment_id)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def cumulative_series(url: str, experiment_id: int) -> pd.DataFrame:
    """Per-day cumulative sums of an experiment."""
    return _read(url, queries.cumulative_series, experiment_id)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def data_quality(url: str, experiment_id: int) -> queries.DataQuality:
    """Event log consistency checks of an experiment."""
    return _read(url, queries.data_quality, experiment_id)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def catalog_coverage(url: str, experiment_id: int | None) -> pd.DataFrame:
    """Catalog coverage of impressions, per variant or overall."""
    return _read(url, queries.catalog_coverage, experiment_id)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def catalog_totals(url: str) -> queries.CatalogTotals:
    """Row counts."""
    return _read(url, queries.catalog_totals)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def rating_distribution(url: str) -> pd.DataFrame:
    """Ratings per star value."""
    return _read(url, queries.rating_distribution)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def activity_over_time(url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings per week and events per day."""
    return _read(url, queries.activity_over_time)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def top_movies(url: str, limit: int, min_ratings: int) -> pd.DataFrame:
    """Most-rated movies."""
    return _read(url, _top_movies, limit, min_ratings)


def _top_movies(connection: Connection, limit: int, min_ratings: int) -> pd.DataFrame:
    return queries.top_movies(connection, limit=limit, min_ratings=min_ratings)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def genre_mix(url: str) -> pd.DataFrame:
    """Genre shares of catalog, ratings and impressions."""
    return _read(url, queries.genre_mix)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def model_versions(url: str) -> pd.DataFrame:
    """The `model_version` table."""
    return _read(url, queries.list_model_versions)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def mlflow_runs(tracking_uri: str, experiment_name: str) -> pd.DataFrame:
    """MLflow runs of the training experiment (raises `MlflowUnavailable`)."""
    return queries.list_mlflow_runs(tracking_uri, experiment_name)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def registered_versions(tracking_uri: str, name: str) -> list[queries.RegisteredVersion]:
    """Registry versions with aliases (raises `MlflowUnavailable`)."""
    return queries.list_registered_versions(tracking_uri, name)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def route_health(base_url: str, key: str | None) -> list[RouteHealth] | str:
    """Latency and errors of the recommendation routes, or why they are unavailable (cached too)."""
    try:
        return fetch_route_health(base_url, key)
    except ApiUnavailable as exc:
        return str(exc)
