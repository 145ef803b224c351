"""Figures logged with each retrain: holdout quality per strategy, and candidate against champion."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # no display in a worker

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

RANKING_METRICS = ("ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10")


def strategies_figure(metrics: Mapping[str, float]) -> Figure:
    """Grouped bars of the top-10 metrics of every strategy on the holdout."""
    strategies = sorted({key.split(".", 1)[0] for key in metrics if key.endswith(".ndcg_at_10")})
    figure, axes = plt.subplots(figsize=(9, 4), layout="constrained")
    width = 0.8 / len(RANKING_METRICS)
    for offset, name in enumerate(RANKING_METRICS):
        values = [metrics.get(f"{strategy}.{name}", 0.0) for strategy in strategies]
        positions = [i + offset * width for i in range(len(strategies))]
        axes.bar(positions, values, width, label=name)
    axes.set_xticks([i + width * (len(RANKING_METRICS) - 1) / 2 for i in range(len(strategies))], strategies)
    axes.set_ylabel("holdout value")
    axes.set_title("Top-10 quality per strategy")
    axes.legend(ncols=len(RANKING_METRICS), fontsize="small")
    return figure


def gate_figure(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, names: tuple[str, ...]
) -> Figure:
    """Candidate against champion on the gate's metrics (same holdout)."""
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5), layout="constrained")
    for axis, name in zip(list(axes) if len(names) > 1 else [axes], names, strict=True):
        labels, values = ["candidate"], [candidate.get(name, float("nan"))]
        if champion is not None:
            labels.append("champion")
            values.append(champion.get(name, float("nan")))
        axis.bar(labels, values, color=["tab:blue", "tab:gray"][: len(values)])
        axis.set_title(name)
        for x, value in enumerate(values):
            axis.annotate(f"{value:.4f}", (x, value), ha="center", va="bottom", fontsize="small")
    return figure


def close(figure: Figure) -> None:
    """Free a figure's memory."""
    plt.close(figure)
