"""Models: training runs over time, champion against challenger, what each variant serves, rejections."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from services.dashboard import charts, loaders, ui
from services.dashboard.queries import MlflowUnavailable

MODEL_NAME = "movierec"
EXPERIMENT_NAME = "movierec"

# Each chart takes the first metric name a run has, so runs logged under older names still show.
METRICS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "RMSE": ("lower is better", ("rmse", "gate.rmse", "hybrid.rmse"), False),
    "MAE": ("lower is better", ("mae", "hybrid.mae", "gate.mae"), False),
    "Precision@10": (
        "higher is better",
        ("precision_at_10", "gate.precision_at_10", "hybrid.precision_at_10"),
        True,
    ),
    "Recall@10": ("higher is better", ("recall_at_10", "gate.recall_at_10", "hybrid.recall_at_10"), True),
    "NDCG@10": ("higher is better", ("ndcg_at_10", "gate.ndcg_at_10", "hybrid.ndcg_at_10"), True),
    "Coverage": (
        "share of the catalog recommended",
        ("coverage", "catalog_coverage", "hybrid.catalog_coverage_at_10", "gate.catalog_coverage"),
        True,
    ),
    "Training time (s)": (
        "seconds",
        ("training_seconds", "train_seconds", "stage_seconds.train", "fit_seconds", "training_time"),
        False,
    ),
}
CHARTS = ("RMSE", "Precision@10", "NDCG@10", "Coverage", "Training time (s)")


def pick_metric(frame: pd.DataFrame, names: tuple[str, ...], prefix: str = "") -> pd.Series:
    """Per row, the first of `names` (with `prefix`) that has a value; NaN when none has."""
    result = pd.Series(math.nan, index=frame.index, dtype="float64")
    for name in names:
        column = prefix + name
        if column in frame:
            result = result.fillna(pd.to_numeric(frame[column], errors="coerce"))
    return result


def run_status(frame: pd.DataFrame) -> pd.Series:
    """`promoted`, `rejected`, `passed` (not served) or the MLflow run status, per run."""
    gate = frame.get("tags.gate", pd.Series(None, index=frame.index))
    served = frame.get("tags.served", pd.Series(None, index=frame.index))
    status = frame.get("status", pd.Series("", index=frame.index)).fillna("").str.lower()
    return pd.Series(
        [
            "promoted"
            if s == "true"
            else "rejected"
            if g == "rejected"
            else "passed"
            if g == "passed"
            else st_
            for g, s, st_ in zip(gate, served, status, strict=True)
        ],
        index=frame.index,
    )


def show_runs(runs: pd.DataFrame) -> None:
    """One small chart per metric across runs."""
    runs = runs.assign(run_status=run_status(runs))
    for title in CHARTS:
        runs[title] = pick_metric(runs, METRICS[title][1], "metrics.")
    present = [title for title in CHARTS if runs[title].notna().any()]
    if not present:
        st.caption("The runs have none of the metrics this page charts.")
        return
    st.caption(
        ":green[★] promoted · :green[●] passed the gate · :red[✖] rejected by the gate, one point per run"
    )
    columns = st.columns(min(3, len(present)))
    for i, title in enumerate(present):
        with columns[i % len(columns)]:
            figure = charts.metric_over_runs(
                runs, metric=title, title=f"{title} · {METRICS[title][0]}", status_column="run_status"
            )
            st.plotly_chart(figure, key=f"run-{title}")


def _version_metrics(row: pd.Series | None, names: tuple[str, ...]) -> float:
    if row is None:
        return math.nan
    for name in names:
        value = row.get(name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return float(value)
    return math.nan


def champion_and_challenger(versions: pd.DataFrame) -> tuple[pd.Series | None, pd.Series | None]:
    """The champion, and the newest version that is not it (the latest challenger)."""
    if versions.empty:
        return None, None
    ordered = versions.sort_values("version", ascending=False)
    champions = ordered[ordered["status"] == "champion"]
    champion = champions.iloc[0] if not champions.empty else None
    others = ordered[ordered["version"] != (champion["version"] if champion is not None else -1)]
    challenger = others.iloc[0] if not others.empty else None
    return champion, challenger


def show_head_to_head(versions: pd.DataFrame) -> None:
    """Champion and latest challenger side by side, scored on the same holdout by the gate."""
    champion, challenger = champion_and_challenger(versions)
    if champion is None and challenger is None:
        st.caption("No model has been registered yet: the worker registers one per retrain.")
        return
    left, right = st.columns(2)
    for column, row, role in ((left, champion, "Champion"), (right, challenger, "Latest challenger")):
        with column, st.container(border=True):
            if row is None:
                st.markdown(f"**{role}**: none yet")
                continue
            status = str(row["status"])
            badge = {
                "champion": ":green-badge[champion]",
                "rejected": ":red-badge[rejected]",
                "candidate": ":blue-badge[candidate]",
                "archived": ":gray-badge[archived]",
            }.get(status, status)
            st.markdown(f"**{role}** &nbsp; v{int(row['version'])} {badge}")
            if isinstance(row.get("model_version"), str):
                st.caption(f"`{row['model_version']}`")
            metric_columns = st.columns(3)
            for i, title in enumerate(("RMSE", "NDCG@10", "Precision@10")):
                value = _version_metrics(row, METRICS[title][1])
                delta = None
                if row is challenger and champion is not None:
                    base = _version_metrics(champion, METRICS[title][1])
                    if math.isfinite(value) and math.isfinite(base):
                        delta = f"{value - base:+.4f}"
                metric_columns[i].metric(
                    title,
                    f"{value:.4f}" if math.isfinite(value) else "–",
                    delta=delta,
                    delta_color="inverse" if not METRICS[title][2] else "normal",
                )
            created = row.get("created_at")
            when = (
                f"registered {created:%Y-%m-%d %H:%M} UTC"
                if created is not None and pd.notna(created)
                else ""
            )
            if isinstance(row.get("reason"), str) and row["reason"]:
                st.caption(f"{when} · gate: {row['reason']}")
            elif when:
                st.caption(when)


def show_variants(url: str, versions: pd.DataFrame) -> None:
    """What each variant of the running experiments serves, with `live` resolved to the champion."""
    experiments = [e for e in ui.guard(url, loaders.experiments, url) if e.status == "running"]
    if not experiments:
        st.caption("No experiment is running: every user gets the champion with the default strategy.")
        return
    champion, _ = champion_and_challenger(versions)
    live = "the champion"
    if champion is not None:
        live = f"v{int(champion['version'])}" + (
            f" ({champion['model_version']})" if isinstance(champion.get("model_version"), str) else ""
        )
    rows = []
    for experiment in experiments:
        for variant in ui.guard(url, loaders.variant_metrics, url, experiment.id):
            config = dict(variant.config)
            strategy = config.get("strategy") or (
                "weights " + ", ".join(f"{k}={v:g}" for k, v in config["weights"].items())
                if config.get("weights")
                else "hybrid"
            )
            pinned = config.get("model_version")
            rows.append(
                {
                    "experiment": experiment.name,
                    "variant": variant.name + (" (control)" if variant.is_control else ""),
                    "weight": variant.weight / 100,
                    "strategy": strategy,
                    "model version": pinned if pinned and pinned != "live" else f"live → {live}",
                }
            )
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={"weight": st.column_config.NumberColumn("weight", format="percent")},
    )


def show_rejections(runs: pd.DataFrame | None, versions: pd.DataFrame) -> None:
    """Every run the gate turned down, with its reason."""
    rows: list[dict[str, Any]] = []
    if runs is not None and not runs.empty and "tags.gate" in runs:
        rejected = runs[runs["tags.gate"] == "rejected"]
        for _, run in rejected.sort_values("start_time", ascending=False).iterrows():
            rows.append(
                {
                    "when": run["start_time"],
                    "run": run.get("run_name") or run["run_id"][:8],
                    "model version": run.get("tags.model_version"),
                    "reason": run.get("tags.gate_reason"),
                }
            )
    elif not versions.empty:
        rejected_versions = versions[versions["status"] == "rejected"]
        for _, version in rejected_versions.iterrows():
            rows.append(
                {
                    "when": version["created_at"],
                    "run": f"v{int(version['version'])}",
                    "model version": version.get("model_version"),
                    "reason": version["reason"],
                }
            )
    if not rows:
        st.caption("No run has been rejected by the quality gate.")
        return
    for row in rows:
        when = pd.Timestamp(row["when"])
        tag = f" · `{row['model version']}`" if isinstance(row["model version"], str) else ""
        with st.container(border=True):
            st.markdown(f"**{row['run']}**{tag} · {when:%Y-%m-%d %H:%M} UTC")
            st.markdown(f":red[✖] {row['reason'] or 'no reason recorded'}")


def main() -> None:
    """Render the page."""
    url = loaders.database_url()
    ui.page_header("Models", "Every retrain, what the quality gate decided, and what is served.")
    tracking_uri = loaders.mlflow_tracking_uri()
    st.link_button("Open the MLflow UI", loaders.mlflow_ui_url(), icon=":material/open_in_new:")
    versions = ui.guard(url, loaders.model_versions, url)

    st.subheader("Training runs")
    runs: pd.DataFrame | None = None
    try:
        runs = loaders.mlflow_runs(tracking_uri, EXPERIMENT_NAME)
    except MlflowUnavailable as exc:
        st.info(
            f"{exc}. Runs appear here once the worker has trained a model and MLflow is up "
            "(`movierec up` starts both).",
            icon=":material/cloud_off:",
        )
    if runs is not None:
        if runs.empty:
            st.caption("No training run yet.")
        else:
            show_runs(runs)

    st.subheader("Champion and challenger")
    st.caption(
        "Both scored by the quality gate on the challenger's holdout, so the numbers compare like with like."
    )
    show_head_to_head(versions)

    st.subheader("What each variant serves")
    show_variants(url, versions)

    st.subheader("Rejected by the quality gate")
    show_rejections(runs, versions)

    st.subheader("Registered versions")
    if versions.empty:
        st.caption("None yet.")
    else:
        shown = [c for c in ("version", "status", "model_version", "rmse", "ndcg_at_10", "precision_at_10",
                             "created_at", "promoted_at", "reason") if c in versions]  # fmt: skip
        st.dataframe(
            ui.naive_utc(versions[shown]),
            hide_index=True,
            column_config={
                "created_at": st.column_config.DatetimeColumn("registered (UTC)", format="YYYY-MM-DD HH:mm"),
                "promoted_at": st.column_config.DatetimeColumn("promoted (UTC)", format="YYYY-MM-DD HH:mm"),
                "rmse": st.column_config.NumberColumn("RMSE", format="%.4f"),
                "ndcg_at_10": st.column_config.NumberColumn("NDCG@10", format="%.4f"),
                "precision_at_10": st.column_config.NumberColumn("Precision@10", format="%.4f"),
                "reason": st.column_config.TextColumn("gate reason", width="large"),
            },
        )


main()
