"""Small Streamlit helpers shared by the pages: clear failures, empty states, number formats."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

P = ParamSpec("P")
T = TypeVar("T")


def _where(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"


def stop(message: str, *, kind: str = "info", icon: str = ":material/info:") -> NoReturn:
    """Show a message in place of the page and end this run."""
    show = {"info": st.info, "warning": st.warning, "error": st.error}[kind]
    show(message, icon=icon)
    st.stop()
    raise AssertionError("unreachable")  # st.stop raises; this keeps type checkers honest


def guard(url: str, load: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a loader; turn an unreachable or unmigrated database into a message instead of a trace."""
    try:
        return load(*args, **kwargs)
    except OperationalError as exc:
        stop(
            f"Cannot reach the database at `{_where(url)}`: {str(exc.orig).strip().splitlines()[0]}\n\n"
            "Start the stack with `make run`, or point `DATABASE_URL` at a running PostgreSQL.",
            kind="error",
            icon=":material/cloud_off:",
        )
    except ProgrammingError as exc:
        if "does not exist" not in str(exc.orig):
            raise
        stop(
            f"The database `{_where(url)}` has no movierec tables yet. Run `movierec db upgrade` "
            "(or `make run`, which also loads MovieLens).",
            kind="warning",
            icon=":material/database:",
        )


def percent(value: float, digits: int = 1) -> str:
    """0.1234 -> '12.3%'; NaN -> '–'."""
    return f"{value * 100:.{digits}f}%" if math.isfinite(value) else "–"


def number(value: float, digits: int = 2) -> str:
    """A plain number with thousands separators; NaN -> '–'."""
    if not math.isfinite(value):
        return "–"
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def page_header(title: str, caption: str) -> None:
    """The title of a page and one line on what it is for."""
    st.title(title)
    st.caption(caption)


def naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """Time-zone-aware columns as naive UTC (the tables say UTC), which Streamlit renders as is."""
    converted = frame.copy()
    for column in converted.columns:
        if isinstance(converted[column].dtype, pd.DatetimeTZDtype):
            converted[column] = converted[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return converted
