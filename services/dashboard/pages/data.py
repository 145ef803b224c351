"""Data: what the models learn from and what the recommendations reach."""

from __future__ import annotations

import math

import streamlit as st

from services.dashboard import charts, loaders, ui


def main() -> None:
    """Render the page."""
    url = loaders.database_url()
    ui.page_header(
        "Data", "Ratings the models learn from, activity, popular movies, genres, and catalog reach."
    )
    totals = ui.guard(url, loaders.catalog_totals, url)
    columns = st.columns(5)
    columns[0].metric("users", f"{totals.users:,}")
    columns[1].metric("movies", f"{totals.movies:,}")
    columns[2].metric("ratings", f"{totals.ratings:,}")
    columns[3].metric(
        "mean rating", f"{totals.mean_rating:.2f} ★" if math.isfinite(totals.mean_rating) else "–"
    )
    columns[4].metric("events", f"{totals.events:,}")
    if totals.ratings == 0 and totals.events == 0:
        ui.stop(
            "The database is empty. Load MovieLens 100K with `movierec data load ml-100k` "
            "(`make run` does it for you), or any GroupLens release by path.",
            icon=":material/database:",
        )
    if totals.first_rating_at is not None and totals.last_rating_at is not None:
        st.caption(
            f"Ratings from {totals.first_rating_at:%Y-%m-%d} to {totals.last_rating_at:%Y-%m-%d}; "
            f"{totals.ratings / max(totals.users, 1):,.0f} per user and "
            f"{totals.ratings / max(totals.movies, 1):,.0f} per movie on average."
        )

    left, right = st.columns(2)
    with left:
        st.subheader("Rating distribution")
        distribution = ui.guard(url, loaders.rating_distribution, url)
        if distribution.empty:
            st.caption("No ratings yet.")
        else:
            st.plotly_chart(charts.rating_distribution(distribution))
    with right:
        st.subheader("Ratings over time")
        weekly, daily = ui.guard(url, loaders.activity_over_time, url)
        if weekly.empty:
            st.caption("No ratings yet.")
        else:
            st.plotly_chart(charts.ratings_over_time(weekly))

    st.subheader("Events over time")
    if daily.empty:
        st.caption(
            "No events yet: client applications log impressions, clicks, views and ratings with `POST /v1/events`."
        )
    else:
        st.plotly_chart(charts.events_over_time(daily))

    left, right = st.columns([5, 6])
    with left:
        st.subheader("Most rated movies")
        limit = st.slider("how many", 5, 50, 15, step=5)
        top = ui.guard(url, loaders.top_movies, url, limit, 1)
        if top.empty:
            st.caption("No ratings yet.")
        else:
            st.plotly_chart(charts.top_movies(top))
    with right:
        st.subheader("Genre mix")
        mix = ui.guard(url, loaders.genre_mix, url)
        if mix.empty:
            st.caption("No genres in the catalog.")
        else:
            st.plotly_chart(charts.genre_mix(mix))
            st.caption(
                "A movie counts once in each of its genres. Recommendations that drift from what people rate "
                "(or from the catalog) show up as bars of different heights."
            )

    st.subheader("Catalog coverage of recommendations")
    coverage = ui.guard(url, loaders.catalog_coverage, url, None)
    if coverage.empty:
        st.caption("No recommendation has been shown yet (no impression events).")
    else:
        row = coverage.iloc[0]
        a, b, c = st.columns(3)
        a.metric("movies ever shown", f"{int(row['movies_shown']):,} of {int(row['catalog']):,}")
        b.metric("catalog coverage", ui.percent(float(row["coverage"])))
        c.metric(
            "Gini of impressions",
            f"{float(row['gini']):.2f}" if math.isfinite(float(row["gini"])) else "–",
            help="0: every movie shown equally often; 1: every impression on a single movie",
        )


main()
