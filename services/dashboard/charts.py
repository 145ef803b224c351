"""Plotly figures for the dashboard (pure: data in, figure out).

Backgrounds, fonts and grid lines come from Streamlit's theme (`st.plotly_chart(theme="streamlit")`),
so figures follow the light or dark theme. The colours set here are mid-tone (Tailwind's 500
shades), which stay readable on both a white and a near-black background, and they are told apart
by more than hue: the control is always grey and dashed where lines are drawn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from services.dashboard.stats import Comparison, format_p

CONTROL = "#64748B"  # slate-500
PALETTE = ("#3B82F6", "#F59E0B", "#10B981", "#EC4899", "#8B5CF6", "#06B6D4", "#EF4444", "#84CC16")
WIN = "#16A34A"  # green-600
LOSS = "#DC2626"  # red-600
NEUTRAL = "#64748B"
BAND_OPACITY = 0.18
EVENT_COLOURS = {"impression": "#3B82F6", "click": "#F59E0B", "view": "#10B981", "rating": "#EC4899"}


def variant_colours(names: Sequence[str], control: str | None) -> dict[str, str]:
    """A stable colour per variant name: grey for the control, the palette for the others in order."""
    colours: dict[str, str] = {}
    others = iter(PALETTE * (1 + len(names) // len(PALETTE)))
    for name in names:
        colours[name] = CONTROL if name == control else next(others)
    return colours


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _layout(fig: go.Figure, *, height: int = 340, **kwargs: object) -> go.Figure:
    layout: dict[str, object] = {
        "height": height,
        "margin": {"l": 8, "r": 8, "t": 36, "b": 8},
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "xanchor": "left",
            "x": 0,
            "title": None,
        },
        "hovermode": "x unified",
    }
    fig.update_layout(**(layout | kwargs))
    return fig


def forest_plot(rows: Sequence[tuple[str, Comparison]]) -> go.Figure:
    """Relative lift of each (label, comparison) with its interval, the numbers in a column on the right.

    Significant lifts are green (up) or red (down); the others grey. Metrics whose lift or interval
    is unknown are left out.
    """
    labels, lifts, lows, highs, colours, texts = [], [], [], [], [], []
    for label, comparison in rows:
        low, high = comparison.relative_ci
        if not all(math.isfinite(v) for v in (comparison.relative_lift, low, high)):
            continue
        labels.append(label)
        lifts.append(comparison.relative_lift * 100)
        lows.append(low * 100)
        highs.append(high * 100)
        colour = NEUTRAL
        if comparison.significant:
            colour = WIN if comparison.absolute_lift > 0 else LOSS
        colours.append(colour)
        texts.append(
            f"{comparison.relative_lift * 100:+.1f}%  [{low * 100:+.1f}%, {high * 100:+.1f}%]  "
            f"{format_p(comparison.p_value)}"
        )
    fig = go.Figure()
    fig.add_vline(x=0, line_width=1.5, line_dash="dot", line_color=NEUTRAL)
    fig.add_trace(
        go.Scatter(
            x=lifts,
            y=labels,
            mode="markers",
            marker={"size": 13, "color": colours, "symbol": "diamond"},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [h - x for h, x in zip(highs, lifts, strict=True)],
                "arrayminus": [x - lo for x, lo in zip(lifts, lows, strict=True)],
                "thickness": 2.5,
                "width": 7,
                "color": NEUTRAL,
            },
            customdata=texts,
            hovertemplate="%{y}<br>%{customdata}<extra></extra>",
            showlegend=False,
        )
    )
    for label, text, colour in zip(labels, texts, colours, strict=True):
        fig.add_annotation(
            x=1.0,
            xref="paper",
            xanchor="left",
            xshift=16,
            y=label,
            text=text,
            showarrow=False,
            font={"size": 13, "color": colour},
            align="left",
        )
    fig.update_yaxes(autorange="reversed", title=None, ticksuffix="  ")
    fig.update_xaxes(title="relative lift against control, with 95% interval", ticksuffix="%", zeroline=False)
    figure = _layout(fig, height=max(180, 64 * len(labels) + 90), hovermode="closest")
    figure.update_layout(margin={"l": 8, "r": 330, "t": 16, "b": 8})
    return figure


def cumulative_metric(
    series: pd.DataFrame, *, y: str, title: str, colours: Mapping[str, str], percent: bool
) -> go.Figure:
    """One line per variant of a cumulative metric over days.

    Args:
        series: columns day, variant, and `y`.
    """
    fig = go.Figure()
    for variant, group in series.groupby("variant", sort=False):
        colour = colours.get(str(variant), NEUTRAL)
        fig.add_trace(
            go.Scatter(
                x=group["day"],
                y=group[y] * (100 if percent else 1),
                name=str(variant),
                mode="lines+markers",
                line={"color": colour, "width": 2.5, "dash": "dash" if colour == CONTROL else "solid"},
                marker={"size": 6},
                hovertemplate="%{y:.2f}" + ("%" if percent else "") + "<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_yaxes(title=title, ticksuffix="%" if percent else "", rangemode="tozero")
    fig.update_xaxes(title=None)
    return _layout(fig)


def lift_over_time(lift: pd.DataFrame, *, colour: str, name: str) -> go.Figure:
    """The cumulative relative lift with its 95% band; the band narrowing is the data accumulating.

    The first days of an experiment have few users and bands hundreds of percent wide; the y axis is
    fitted to the days with at least half the final users, so those early bands run off the chart.
    """
    fig = go.Figure()
    x = list(lift["day"])
    band = lift.dropna(subset=["low", "high"])
    bx = list(band["day"])
    fig.add_trace(
        go.Scatter(
            x=bx + bx[::-1],
            y=list(band["high"] * 100) + list(band["low"] * 100)[::-1],
            fill="toself",
            fillcolor=_rgba(colour, BAND_OPACITY),
            line={"width": 0},
            hoverinfo="skip",
            name="95% interval",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=lift["lift"] * 100,
            mode="lines+markers",
            line={"color": colour, "width": 2.5},
            name=f"{name} vs control",
            customdata=[
                f"[{lo * 100:+.1f}%, {hi * 100:+.1f}%], {format_p(p)}"
                for lo, hi, p in zip(lift["low"], lift["high"], lift["p_value"], strict=True)
            ],
            hovertemplate="%{y:+.1f}% %{customdata}<extra></extra>",
        )
    )
    fig.add_hline(y=0, line_width=1, line_dash="dot", line_color=NEUTRAL)
    if "users" in lift and len(lift) > 2:
        settled = band[band["users"] >= 0.5 * float(lift["users"].max())]
        if not settled.empty:
            low = min(float(settled["low"].min()), float(lift["lift"].min()), 0.0) * 100
            high = max(float(settled["high"].max()), float(lift["lift"].max()), 0.0) * 100
            pad = 0.1 * (high - low or 1.0)
            fig.update_yaxes(range=[low - pad, high + pad])
    fig.update_yaxes(title="relative lift on CTR", ticksuffix="%")
    return _layout(fig)


def metric_over_runs(runs: pd.DataFrame, *, metric: str, title: str, status_column: str | None) -> go.Figure:
    """A training metric across runs in time; rejected runs drawn as red crosses."""
    fig = go.Figure()
    data = runs.dropna(subset=[metric])
    groups: list[tuple[str, pd.DataFrame]]
    if status_column and status_column in data:
        groups = [(str(k), g) for k, g in data.groupby(data[status_column].fillna("other"), sort=False)]
    else:
        groups = [("runs", data)]
    styles = {
        "rejected": {"color": LOSS, "symbol": "x"},
        "promoted": {"color": WIN, "symbol": "star"},
        "passed": {"color": WIN, "symbol": "circle"},
        "champion": {"color": WIN, "symbol": "star"},
    }
    fig.add_trace(
        go.Scatter(
            x=data["start_time"],
            y=data[metric],
            mode="lines",
            line={"color": PALETTE[0], "width": 1.5},
            opacity=0.5,
            showlegend=False,
            hoverinfo="skip",
        )
    )
    for status, group in groups:
        style = styles.get(status, {"color": PALETTE[0], "symbol": "circle"})
        fig.add_trace(
            go.Scatter(
                x=group["start_time"],
                y=group[metric],
                mode="markers",
                name=status,
                marker={"size": 10, **style},
                hovertemplate="%{y:.4f}<extra>" + status + "</extra>",
            )
        )
    fig.update_layout(title={"text": title, "font": {"size": 14}})
    fig.update_xaxes(title=None, tickformat="%b %d\n%H:%M")
    if data["start_time"].nunique() < 2 and not data.empty:
        moment = pd.Timestamp(data["start_time"].iloc[0])
        fig.update_xaxes(range=[moment - pd.Timedelta(days=1), moment + pd.Timedelta(days=1)])
    fig.update_yaxes(title=None)
    return _layout(fig, height=260, hovermode="closest", showlegend=False)


def rating_distribution(distribution: pd.DataFrame) -> go.Figure:
    """Ratings per star value."""
    fig = go.Figure(
        go.Bar(
            x=distribution["rating"],
            y=distribution["ratings"],
            marker_color=PALETTE[1],
            hovertemplate="%{x} stars: %{y:,} ratings<extra></extra>",
        )
    )
    fig.update_xaxes(title="stars", dtick=0.5 if (distribution["rating"] % 1).any() else 1)
    fig.update_yaxes(title="ratings")
    return _layout(fig, hovermode="closest")


def _gaps(dates: pd.Series, longer_than: pd.Timedelta) -> list[dict[str, object]]:
    """Plotly range breaks that hide the stretches without data longer than `longer_than`."""
    ordered = pd.to_datetime(pd.Series(dates)).sort_values().reset_index(drop=True)
    breaks: list[dict[str, object]] = []
    for before, after in itertools.pairwise(ordered):
        if after - before > longer_than:
            breaks.append({"bounds": [before + pd.Timedelta(days=7), after - pd.Timedelta(days=1)]})
    return breaks


def ratings_over_time(weekly: pd.DataFrame) -> go.Figure:
    """Ratings and active users per week; long stretches without ratings are cut out of the axis.

    MovieLens ratings are decades older than the ones a live deployment adds, so without the cut
    both would be squeezed against the edges of an empty axis.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Bar(x=weekly["week"], y=weekly["ratings"], name="ratings", marker_color=PALETTE[0], opacity=0.85)
    )
    fig.add_trace(
        go.Scatter(
            x=weekly["week"],
            y=weekly["users"],
            name="active users",
            mode="markers",
            marker={"color": PALETTE[1], "size": 6},
            yaxis="y2",
        )
    )
    fig.update_layout(
        yaxis={"title": "ratings per week"},
        yaxis2={
            "title": "users",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
        },
    )
    breaks = _gaps(weekly["week"], pd.Timedelta(days=90))
    if breaks:
        # Automatic ticks land in the cut-out years; put them on the first week of some months instead.
        weeks = pd.to_datetime(pd.Series(weekly["week"])).sort_values()
        firsts = weeks.groupby(weeks.dt.to_period("M")).min()
        step = max(1, math.ceil(len(firsts) / 8))
        ticks = list(firsts.iloc[::step])
        fig.update_xaxes(
            rangebreaks=breaks, tickmode="array", tickvals=ticks, ticktext=[f"{t:%b %Y}" for t in ticks]
        )
    return _layout(fig)


def events_over_time(daily: pd.DataFrame) -> go.Figure:
    """Events per day, stacked by type."""
    fig = go.Figure()
    order = {name: i for i, name in enumerate(EVENT_COLOURS)}
    groups = sorted(daily.groupby("event_type", sort=False), key=lambda pair: order.get(str(pair[0]), 99))
    for event_type, group in groups:
        fig.add_trace(
            go.Bar(
                x=group["day"],
                y=group["events"],
                name=str(event_type),
                marker_color=EVENT_COLOURS.get(str(event_type), NEUTRAL),
            )
        )
    fig.update_layout(barmode="stack", legend={"traceorder": "normal"})
    fig.update_yaxes(title="events per day")
    return _layout(fig)


def top_movies(top: pd.DataFrame) -> go.Figure:
    """Most-rated movies as horizontal bars, coloured by mean rating."""
    labels = [
        f"{t} ({int(y)})" if pd.notna(y) else str(t) for t, y in zip(top["title"], top["year"], strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=top["ratings"],
            y=labels,
            orientation="h",
            marker={
                "color": top["mean_rating"],
                "colorscale": "Viridis",
                "cmin": 1,
                "cmax": 5,
                "colorbar": {"title": "mean", "thickness": 12},
            },
            customdata=top["mean_rating"],
            hovertemplate="%{y}: %{x:,} ratings, mean %{customdata:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title="ratings")
    return _layout(fig, height=max(300, 24 * len(top) + 80), hovermode="closest")


def genre_mix(mix: pd.DataFrame) -> go.Figure:
    """Each genre's share of the catalog, of ratings and of recommendations shown."""
    fig = go.Figure()
    series = [
        ("movie_share", "catalog", PALETTE[5]),
        ("rating_share", "ratings", PALETTE[0]),
        ("impression_share", "recommendations shown", PALETTE[1]),
    ]
    for column, name, colour in series:
        if mix[column].notna().any():
            fig.add_trace(
                go.Bar(
                    x=mix["genre"],
                    y=mix[column] * 100,
                    name=name,
                    marker_color=colour,
                    hovertemplate="%{x}: %{y:.1f}%<extra>" + name + "</extra>",
                )
            )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="share (%)", ticksuffix="%")
    return _layout(fig, height=380, hovermode="closest")
