"""Try it: the REST API as a client application sees it (this page never reads the database)."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from services.dashboard import loaders, ui
from services.dashboard.api_client import ApiClient, ApiError, ApiUnavailable

CARDS_PER_ROW = 5


def movie_cards(items: list[dict[str, Any]]) -> None:
    """Recommended movies as a grid of cards: title, year and genres, explanation, score."""
    for start in range(0, len(items), CARDS_PER_ROW):
        columns = st.columns(CARDS_PER_ROW)
        for column, (rank, item) in zip(
            columns, enumerate(items[start : start + CARDS_PER_ROW], start + 1), strict=False
        ):
            with column, st.container(border=True, height="stretch"):
                year = f" ({item['year']})" if item.get("year") else ""
                st.markdown(f"**{rank}. {item.get('title', item.get('id'))}**{year}")
                genres = ", ".join(item.get("genres") or [])
                if genres:
                    st.caption(genres)
                if item.get("explanation"):
                    st.markdown(f":material/lightbulb: {item['explanation']}")
                if item.get("score") is not None:
                    st.caption(f"score {float(item['score']):.3f} · movie {item.get('id')}")


def short_version(version: str) -> str:
    """`hybrid-20261121T030000-1a2b3c4d` -> `2026-11-21 03:00`; anything else unchanged."""
    match = re.fullmatch(r"[a-z]+-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})\d{2}-[0-9a-f]+", version)
    return f"{match[1]}-{match[2]}-{match[3]} {match[4]}:{match[5]}" if match else version


def _call(client: ApiClient, what: str, method: str, *args: Any) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = getattr(client, method)(*args)
        return result
    except ApiUnavailable as exc:
        st.error(f"{exc}. Is the API running (`movierec up`)?", icon=":material/cloud_off:")
    except ApiError as exc:
        st.warning(f"{what}: {exc.title} — {exc.detail}", icon=":material/error:")
    return None


def for_a_user(client: ApiClient) -> None:
    """A known user's recommendations, with the experiment and model behind them."""
    with st.form("user"):
        left, right = st.columns([2, 3])
        user_id = left.number_input("user id", min_value=1, value=1, step=1)
        k = right.slider("how many", 5, 30, 10, step=5, key="user_k")
        submitted = st.form_submit_button("Recommend", type="primary", icon=":material/play_arrow:")
    if submitted:
        st.session_state["user_result"] = _call(
            client, f"Recommendations for user {user_id}", "user_recommendations", int(user_id), int(k)
        )
    result = st.session_state.get("user_result")
    if not result:
        st.caption(
            "Like any client, this request counts as an exposure: a user not yet in the running experiment "
            "is assigned to a variant now."
        )
        return
    experiment = result.get("experiment") or {}
    variant = result.get("variant") or {}
    facts = st.columns(4)
    version = str(result.get("model_version", "–"))
    facts[0].metric("model version", short_version(version), help=version)
    facts[1].metric("strategy", result.get("strategy", "–"))
    facts[2].metric("experiment", experiment.get("name", "none"))
    facts[3].metric("variant", variant.get("name", "–"))
    notes = [f"`{version}`", f"request `{result.get('request_id')}`", f"from the {result.get('source', '?')}"]
    if result.get("cold_start"):
        notes.append("cold start: the user was not in the model's training data")
    st.caption(" · ".join(notes))
    movie_cards(result.get("items", []))


def from_titles(client: ApiClient) -> None:
    """Recommendations for someone who types a few movies they like (typos welcome)."""
    with st.form("titles"):
        text = st.text_area(
            "movies you like, one per line",
            value="toy story\nstar wars\nfargo",
            height=110,
            help="Fuzzy matched by the API: case, articles, typos and years are fine.",
        )
        k = st.slider("how many", 5, 30, 10, step=5, key="titles_k")
        submitted = st.form_submit_button("Recommend", type="primary", icon=":material/play_arrow:")
    if submitted:
        liked = [line.strip() for line in text.splitlines() if line.strip()]
        if not liked:
            st.warning("Type at least one title.")
            return
        st.session_state["titles_result"] = _call(client, "From titles", "from_titles", liked, int(k))
    result = st.session_state.get("titles_result")
    if not result:
        return
    matches = result.get("matches", [])
    if matches:
        st.markdown(
            "Matched: "
            + " · ".join(
                f"*{m['query']}* → **{m['movie']['title']}**"
                + (f" ({m['match_score']:.0f})" if m.get("match_score") else "")
                if m.get("movie")
                else f"*{m['query']}* → no match"
                for m in matches
            )
        )
    movie_cards(result.get("items", []))


def similar(client: ApiClient) -> None:
    """Movies similar to any catalog movie, found by title."""
    query = st.text_input("find a movie", value="heat", help="Search the catalog by title (fuzzy).")
    hits: list[dict[str, Any]] = []
    if query.strip():
        try:
            hits = client.search_movies(query.strip())
        except ApiUnavailable as exc:
            st.error(f"{exc}. Is the API running (`movierec up`)?", icon=":material/cloud_off:")
            return
        except ApiError as exc:
            st.warning(f"Search: {exc.title} — {exc.detail}")
            return
    if not hits:
        if query.strip():
            st.caption("No movie matches.")
        return
    labels = {hit["id"]: f"{hit['title']}" + (f" ({hit['year']})" if hit.get("year") else "") for hit in hits}
    movie_id = st.selectbox("movie", list(labels), format_func=lambda i: labels[i])
    result = _call(client, "Similar movies", "similar_movies", int(movie_id), 10)
    if result:
        movie_cards(result.get("items", []))


def main() -> None:
    """Render the page."""
    ui.page_header("Try it", "Ask the REST API for recommendations, as a client application would.")
    base_url, key = loaders.api_base_url(), loaders.api_key()
    st.caption(f"API: `{base_url}`" + ("" if key else " · no API key"))
    if not key:
        st.warning(
            "No API key: set `MOVIEREC_API_KEY`, or start the API once so it writes its admin key to "
            "`DATA_DIR/admin-api-key`.",
            icon=":material/key:",
        )
    with ApiClient(base_url, key) as client:
        user_tab, titles_tab, similar_tab = st.tabs(["For a user", "From movies you like", "Similar movies"])
        with user_tab:
            for_a_user(client)
        with titles_tab:
            from_titles(client)
        with similar_tab:
            similar(client)


main()
