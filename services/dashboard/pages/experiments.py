"""Experiments: per-variant results, lifts with intervals, sample ratio check, trends, guardrails."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from services.dashboard import charts, loaders, ui
from services.dashboard.analysis import (
    METRICS,
    METRICS_BY_KEY,
    ExperimentAnalysis,
    MetricKey,
    analyse,
    cumulative_lift,
)
from services.dashboard.queries import DataQuality, ExperimentRow, VariantMetrics
from services.dashboard.stats import DEFAULT_MDE, Comparison, format_p, format_percent

STATUS_BADGE = {
    "running": ":green-badge[running]",
    "stopped": ":gray-badge[stopped]",
    "draft": ":blue-badge[draft]",
}
VERDICT_BOX = {
    "win": (st.success, ":material/trending_up:"),
    "loss": (st.warning, ":material/trending_down:"),
    "inconclusive": (st.info, ":material/hourglass_top:"),
    "no_data": (st.info, ":material/hourglass_empty:"),
    "srm": (st.error, ":material/report:"),
}


def _serves(config: dict[str, Any]) -> str:
    strategy = config.get("strategy")
    if strategy is None and config.get("weights"):
        strategy = " + ".join(f"{w:g}·{name}" for name, w in config["weights"].items())
    return f"{strategy or 'hybrid'} @ {config.get('model_version') or 'live'}"


def _when(experiment: ExperimentRow) -> str:
    if experiment.started_at is None:
        return f"created {experiment.created_at:%Y-%m-%d}, not started"
    end = experiment.stopped_at or pd.Timestamp.now(tz="UTC")
    days = max((end - experiment.started_at).total_seconds() / 86400, 0)
    span = f"started {experiment.started_at:%Y-%m-%d %H:%M} UTC"
    if experiment.stopped_at is not None:
        span += f", stopped {experiment.stopped_at:%Y-%m-%d %H:%M} UTC"
    return f"{span} ({days:.1f} days)"


def _value(key: MetricKey, value: float) -> str:
    return ui.percent(value, 2) if METRICS_BY_KEY[key].percent else ui.number(value, 2)


def variant_table(variants: list[VariantMetrics], control_id: int | None) -> pd.DataFrame:
    """One row per variant with its counts and rates."""
    rows = []
    for v in variants:
        rows.append(
            {
                "variant": v.name + ("  (control)" if v.variant_id == control_id else ""),
                "serves": _serves(dict(v.config)),
                "weight": v.weight / 100,
                "users": v.assigned_users,
                "shown recs": v.exposed_users,
                "lists": v.requests,
                "impressions": v.impressions,
                "clicks": v.clicks,
                "CTR": v.ctr if math.isfinite(v.ctr) else None,
                "users who clicked": v.clickers / v.assigned_users if v.assigned_users else None,
                "ratings": v.rating_events,
                "rating of watched": v.watched_mean_rating if math.isfinite(v.watched_mean_rating) else None,
            }
        )
    return pd.DataFrame(rows)


VARIANT_COLUMNS = {
    "variant": st.column_config.TextColumn("variant", pinned=True),
    "serves": st.column_config.TextColumn("serves", help="strategy @ model version (live: the champion)"),
    "weight": st.column_config.NumberColumn("weight", format="percent"),
    "users": st.column_config.NumberColumn(
        "users", help="assigned users (one exposure row each)", format="localized"
    ),
    "shown recs": st.column_config.NumberColumn(
        "shown recs", help="users with at least one impression", format="localized"
    ),
    "lists": st.column_config.NumberColumn("lists", help="recommendation lists shown", format="localized"),
    "impressions": st.column_config.NumberColumn("impressions", format="localized"),
    "clicks": st.column_config.NumberColumn("clicks", format="localized"),
    "CTR": st.column_config.NumberColumn("CTR", help="clicks / impressions", format="percent"),
    "users who clicked": st.column_config.NumberColumn("users who clicked", format="percent"),
    "ratings": st.column_config.NumberColumn("ratings", help="rating events", format="localized"),
    "rating of watched": st.column_config.NumberColumn(
        "rating of watched", help="mean stars given to recommended movies the users watched", format="%.2f ★"
    ),
}


def comparison_table(analysis: ExperimentAnalysis) -> pd.DataFrame:
    """One row per treatment and metric."""
    rows = []
    for arm in analysis.arms:
        for spec in METRICS:
            c = arm.comparisons[spec.key]
            low, high = c.relative_ci
            rows.append(
                {
                    "variant": arm.treatment.name,
                    "metric": spec.label + ("  ★" if spec.key == analysis.primary else ""),
                    "control": _value(spec.key, c.control),
                    "treatment": _value(spec.key, c.treatment),
                    "lift": format_percent(c.relative_lift),
                    "95% interval": f"[{format_percent(low)}, {format_percent(high)}]"
                    if math.isfinite(low)
                    else "–",
                    "p-value": format_p(c.p_value).removeprefix("p = ").removeprefix("p "),
                    "significant": "yes" if c.significant else "no",
                    "test": c.method,
                }
            )
    return pd.DataFrame(rows)


COMPARISON_COLUMNS = {
    "variant": st.column_config.TextColumn("variant", width="small"),
    "metric": st.column_config.TextColumn("metric", width="medium"),
    "significant": st.column_config.TextColumn("significant", width="small"),
    "test": st.column_config.TextColumn("test", width="medium"),
}


def show_verdicts(analysis: ExperimentAnalysis) -> None:
    """One callout per treatment arm."""
    for arm in analysis.arms:
        box, icon = VERDICT_BOX[arm.verdict.kind]
        text = arm.verdict.sentence
        box(text[0].upper() + text[1:], icon=icon)


def show_kpis(analysis: ExperimentAnalysis) -> None:
    """Headline numbers of the primary metric per variant."""
    key = analysis.primary
    columns = st.columns(len(analysis.variants) + 1)
    columns[0].metric("users in the experiment", f"{analysis.assigned_users:,}")
    for column, variant in zip(columns[1:], analysis.variants, strict=False):
        comparison: Comparison | None = next(
            (arm.comparisons[key] for arm in analysis.arms if arm.treatment.variant_id == variant.variant_id),
            None,
        )
        if comparison is None:
            value = analysis.arms[0].comparisons[key].control if analysis.arms else math.nan
            column.metric(f"{METRICS_BY_KEY[key].label} · {variant.name} (control)", _value(key, value))
        else:
            column.metric(
                f"{METRICS_BY_KEY[key].label} · {variant.name}",
                _value(key, comparison.treatment),
                delta=format_percent(comparison.relative_lift)
                if math.isfinite(comparison.relative_lift)
                else None,
                delta_color="normal" if comparison.significant else "off",
            )


def show_trends(url: str, analysis: ExperimentAnalysis, experiment_id: int, colours: dict[str, str]) -> None:
    """Cumulative CTR per variant and the cumulative lift with its band."""
    series = ui.guard(url, loaders.cumulative_series, url, experiment_id)
    if series.empty or series["day"].nunique() < 2:
        st.caption("The trend appears once the experiment has data on two or more days.")
        return
    names = {v.variant_id: v.name for v in analysis.variants}
    series = series.assign(
        variant=series["variant_id"].map(names),
        ctr=series["clicks"] / series["impressions"].where(series["impressions"] > 0),
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Cumulative CTR**")
        st.plotly_chart(charts.cumulative_metric(series, y="ctr", title="CTR", colours=colours, percent=True))
    with right:
        st.markdown("**Cumulative lift on CTR, with its 95% interval**")
        if analysis.control is None or not analysis.arms:
            st.caption("Needs a control and a treatment.")
            return
        arm = analysis.arms[0]
        lift = cumulative_lift(
            series, analysis.control.variant_id, arm.treatment.variant_id, alpha=analysis.alpha
        )
        st.plotly_chart(
            charts.lift_over_time(lift, colour=colours[arm.treatment.name], name=arm.treatment.name)
        )
    st.caption(
        "Early days swing widely and the interval is wide; a result is read once, at the planned sample size. "
        "Stopping the first time the band clears zero inflates false wins."
    )


def quality_rows(quality: DataQuality, analysis: ExperimentAnalysis) -> pd.DataFrame:
    """Each data check, its count, and whether it passes."""
    checks = [
        (
            "sample ratio",
            f"{format_p(analysis.srm.p_value)} (flagged below 0.001)",
            not analysis.srm.mismatch,
        ),
        (
            "events from users with no assignment",
            f"{quality.unassigned_events:,}",
            quality.unassigned_events == 0,
        ),
        (
            "events tagged with another variant than the user's",
            f"{quality.mismatched_events:,}",
            quality.mismatched_events == 0,
        ),
        (
            "assigned users with no impression logged",
            f"{quality.users_without_impressions:,}",
            quality.users_without_impressions == 0,
        ),
        (
            "clicks with no matching impression",
            f"{quality.clicks_without_impression:,}",
            quality.clicks_without_impression == 0,
        ),
    ]
    return pd.DataFrame(
        [{"check": name, "value": value, "status": "ok" if ok else "look"} for name, value, ok in checks]
    )


def show_guardrails(url: str, analysis: ExperimentAnalysis, experiment_id: int) -> None:
    """Latency and errors (when recorded), catalog reach per variant, data quality."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Latency and errors**")
        st.caption(
            "Not recorded per variant: the API's Prometheus metrics label requests by route, not by "
            "variant, and events carry no timing. Shown per recommendation route since the API started."
        )
        health = loaders.route_health(loaders.api_base_url(), loaders.api_key())
        if isinstance(health, str):
            st.caption(f"API metrics unavailable: {health}.")
        elif not health:
            st.caption("The API has not answered any recommendation request since it started.")
        else:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "route": f"{h.method} {h.route}",
                            "requests": h.requests,
                            "p50": h.p50_ms,
                            "p95": h.p95_ms,
                            "5xx": h.error_rate,
                        }
                        for h in health
                    ]
                ),
                hide_index=True,
                column_config={
                    "requests": st.column_config.NumberColumn("requests", format="localized"),
                    "p50": st.column_config.NumberColumn("p50", format="%.0f ms"),
                    "p95": st.column_config.NumberColumn("p95", format="%.0f ms"),
                    "5xx": st.column_config.NumberColumn("5xx", format="percent"),
                },
            )
        st.markdown("**Catalog reach per variant**")
        coverage = ui.guard(url, loaders.catalog_coverage, url, experiment_id)
        if coverage.empty:
            st.caption("No impressions yet.")
        else:
            st.dataframe(
                coverage[["variant", "movies_shown", "coverage", "gini"]],
                hide_index=True,
                column_config={
                    "movies_shown": st.column_config.NumberColumn("movies shown", format="localized"),
                    "coverage": st.column_config.NumberColumn(
                        "catalog coverage", format="percent", help="share of the catalog shown at least once"
                    ),
                    "gini": st.column_config.NumberColumn(
                        "Gini",
                        format="%.2f",
                        help="0: every movie shown equally often; 1: all impressions on one",
                    ),
                },
            )
    with right:
        st.markdown("**Data quality**")
        quality = ui.guard(url, loaders.data_quality, url, experiment_id)
        st.dataframe(
            quality_rows(quality, analysis),
            hide_index=True,
            column_config={"status": st.column_config.TextColumn("status", width="small")},
        )
        if quality.latest_event_at is not None:
            st.caption(f"Latest event: {quality.latest_event_at:%Y-%m-%d %H:%M} UTC")


def main() -> None:
    """Render the page."""
    url = loaders.database_url()
    ui.page_header(
        "Experiments", "Does the new recommender beat the old one? Results per user, with honest intervals."
    )
    experiments = ui.guard(url, loaders.experiments, url)
    if not experiments:
        ui.stop(
            "No experiments yet. Create one with `POST /v1/experiments` (two variants, weights summing to 100) "
            "and start it with `POST /v1/experiments/{id}/start`, or fill a demo with "
            "`movierec simulate --users 300 --days 14`.",
            icon=":material/science:",
        )
    names = [e.name for e in experiments]
    requested = st.query_params.get("experiment")
    top = st.columns([3, 2, 2])
    name = top[0].selectbox(
        "experiment",
        names,
        index=names.index(requested) if requested in names else 0,
        format_func=lambda n: f"{n}  ·  {next(e.status for e in experiments if e.name == n)}",
    )
    st.query_params["experiment"] = name
    primary: MetricKey = top[1].selectbox(
        "primary metric",
        [spec.key for spec in METRICS[:3]],
        format_func=lambda key: METRICS_BY_KEY[key].label,
        help="The metric the verdict is about; decide it before the experiment starts.",
    )
    mde = top[2].slider(
        "minimum detectable effect",
        min_value=0.01,
        max_value=0.30,
        value=DEFAULT_MDE,
        step=0.01,
        format="%.2f",
        help="The smallest relative lift worth shipping (0.05 = 5%). Sample sizes are computed for the observed "
        "lift, never for less than this.",
    )
    experiment = next(e for e in experiments if e.name == name)
    variants = ui.guard(url, loaders.variant_metrics, url, experiment.id)
    firsts = [v.first_event_at for v in variants if v.first_event_at is not None]
    lasts = [v.last_event_at for v in variants if v.last_event_at is not None]
    span = (
        f" &nbsp;·&nbsp; events {min(firsts):%Y-%m-%d} to {max(lasts):%Y-%m-%d}" if firsts and lasts else ""
    )
    st.markdown(f"{STATUS_BADGE.get(experiment.status, experiment.status)} &nbsp; {_when(experiment)}{span}")
    if experiment.description:
        st.caption(experiment.description)

    if not variants:
        ui.stop("This experiment has no variants.")
    analysis = analyse(variants, primary=primary, mde=mde)
    colours = charts.variant_colours(
        [v.name for v in variants], analysis.control.name if analysis.control else None
    )
    if analysis.assigned_users == 0:
        st.dataframe(variant_table(variants, None)[["variant", "serves", "weight"]], hide_index=True)
        ui.stop(
            "No users have been exposed yet: users are assigned when they first receive recommendations "
            "while the experiment runs."
            + (" Start it with `POST /v1/experiments/{id}/start`." if experiment.status == "draft" else ""),
            icon=":material/hourglass_empty:",
        )
    if analysis.srm.mismatch:
        observed = ", ".join(f"{v.name} {v.assigned_users:,}" for v in variants)
        expected = ", ".join(
            f"{v.name} {e:,.0f}" for v, e in zip(variants, analysis.srm.expected, strict=True)
        )
        st.error(
            f"**Sample ratio mismatch** ({format_p(analysis.srm.p_value)}): users per variant are {observed}, "
            f"but the weights expect {expected}. Assignment or logging is broken; do not trust these results "
            "until the cause is found.",
            icon=":material/report:",
        )
    if not analysis.control_is_configured and analysis.control is not None:
        st.caption(
            f"No variant is marked as control; comparing against the first one, `{analysis.control.name}`."
        )
    if len(analysis.arms) > 1:
        st.caption(
            f"{len(analysis.arms)} treatments: each comparison is tested at α = {analysis.alpha:.3f} "
            "(Bonferroni), so the chance of any false win stays at 5%."
        )

    show_verdicts(analysis)
    show_kpis(analysis)

    st.subheader("Variants")
    table = variant_table(variants, analysis.control.variant_id if analysis.control else None)
    st.dataframe(table, hide_index=True, column_config=VARIANT_COLUMNS)

    st.subheader("Lift against control")
    if not analysis.arms:
        st.caption("Only one variant: nothing to compare.")
    else:
        forest_rows = [
            (
                (f"{arm.treatment.name}: " if len(analysis.arms) > 1 else "") + spec.label,
                arm.comparisons[spec.key],
            )
            for arm in analysis.arms
            for spec in METRICS
        ]
        st.plotly_chart(charts.forest_plot(forest_rows))
        st.dataframe(comparison_table(analysis), hide_index=True, column_config=COMPARISON_COLUMNS)
        st.caption(
            "Unit of analysis: the user. CTR uses the delta method on per-user clicks and impressions; users who "
            "clicked, a two-proportion z-test; per-user means, Welch's t-test. Intervals are 95% "
            "(Fieller's interval for relative lifts). ★ marks the primary metric."
        )

    st.subheader("Over time")
    show_trends(url, analysis, experiment.id, colours)

    st.subheader("Guardrails")
    show_guardrails(url, analysis, experiment.id)


main()
