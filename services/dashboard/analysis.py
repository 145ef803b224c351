"""From the per-variant sums in `queries` to tests, power and verdicts (pure; no Streamlit, no SQL).

Every treatment arm is compared with the control arm. With more than one treatment the level of
each comparison is divided by their number (Bonferroni), so the chance of any false win stays at 5%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from services.dashboard.queries import VariantMetrics
from services.dashboard.stats import (
    ALPHA,
    DEFAULT_MDE,
    Comparison,
    PowerEstimate,
    RatioSummary,
    SampleRatioTest,
    Verdict,
    power_estimate,
    ratio_ztest,
    sample_ratio_test,
    two_proportion_ztest,
    verdict,
    welch_ttest,
)

MetricKey = Literal["ctr", "clickers", "ratings_per_user", "watched_rating"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric the experiment page reports, and how it is tested."""

    key: MetricKey
    label: str
    description: str
    percent: bool
    """Whether values are shown as percentages (rates) or as plain numbers."""


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "ctr",
        "CTR",
        "clicks per impression; delta-method z-test on per-user clicks and impressions",
        True,
    ),
    MetricSpec(
        "clickers",
        "users who clicked",
        "share of assigned users with at least one click; two-proportion z-test",
        True,
    ),
    MetricSpec(
        "ratings_per_user",
        "ratings per user",
        "rating events per assigned user; Welch's t-test on per-user counts",
        False,
    ),
    MetricSpec(
        "watched_rating",
        "rating of watched recommendations",
        "each user's mean rating of the recommended movies they watched, over users who watched one; "
        "Welch's t-test. Only users who watched count, so read it as a description, not a cause",
        False,
    ),
)
METRICS_BY_KEY = {spec.key: spec for spec in METRICS}


def compare(
    key: MetricKey, control: VariantMetrics, treatment: VariantMetrics, *, alpha: float
) -> Comparison:
    """Test one metric of `treatment` against `control`."""
    label = METRICS_BY_KEY[key].label
    if key == "ctr":
        return ratio_ztest(control.ctr_summary, treatment.ctr_summary, metric=label, alpha=alpha)
    if key == "clickers":
        return two_proportion_ztest(
            control.clickers,
            control.assigned_users,
            treatment.clickers,
            treatment.assigned_users,
            metric=label,
            alpha=alpha,
        )
    if key == "ratings_per_user":
        return welch_ttest(control.ratings_summary, treatment.ratings_summary, metric=label, alpha=alpha)
    return welch_ttest(control.watched_summary, treatment.watched_summary, metric=label, alpha=alpha)


@dataclass(frozen=True)
class ArmResult:
    """One treatment against the control: every metric, and the verdict on the primary one."""

    treatment: VariantMetrics
    comparisons: dict[MetricKey, Comparison]
    power: PowerEstimate | None
    verdict: Verdict


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Everything the experiment page shows about the results."""

    variants: list[VariantMetrics]
    control: VariantMetrics | None
    control_is_configured: bool
    """False when no variant is marked as control and the first one is used."""
    arms: list[ArmResult]
    srm: SampleRatioTest
    primary: MetricKey
    alpha: float
    """Level of each comparison (0.05 divided by the number of treatments)."""

    @property
    def assigned_users(self) -> int:
        """Users assigned to any variant."""
        return sum(v.assigned_users for v in self.variants)


def pick_control(variants: Sequence[VariantMetrics]) -> tuple[VariantMetrics | None, bool]:
    """The control arm (the one marked as control, else the first) and whether it was marked."""
    for variant in variants:
        if variant.is_control:
            return variant, True
    return (variants[0], False) if variants else (None, False)


def analyse(
    variants: Sequence[VariantMetrics],
    *,
    primary: MetricKey = "ctr",
    mde: float = DEFAULT_MDE,
    alpha: float = ALPHA,
) -> ExperimentAnalysis:
    """Compare every treatment with the control and judge the primary metric."""
    variants = list(variants)
    srm = sample_ratio_test([v.assigned_users for v in variants], [v.weight for v in variants])
    control, configured = pick_control(variants)
    treatments = [v for v in variants if control is not None and v.variant_id != control.variant_id]
    level = alpha / max(len(treatments), 1)
    weight_sum = sum(v.weight for v in variants) or 1
    assigned = sum(v.assigned_users for v in variants)
    arms = []
    for treatment in treatments:
        assert control is not None
        comparisons = {spec.key: compare(spec.key, control, treatment, alpha=level) for spec in METRICS}
        estimate = power_estimate(
            comparisons[primary],
            control_share=control.weight / weight_sum,
            treatment_share=treatment.weight / weight_sum,
            assigned_total=assigned,
            mde=mde,
        )
        judged = verdict(
            comparisons[primary],
            srm=srm,
            power=estimate,
            control_name=control.name,
            treatment_name=treatment.name,
        )
        arms.append(ArmResult(treatment, comparisons, estimate, judged))
    return ExperimentAnalysis(variants, control, configured, arms, srm, primary, level)


def cumulative_lift(
    series: pd.DataFrame, control_id: int, treatment_id: int, *, alpha: float = ALPHA
) -> pd.DataFrame:
    """The CTR of both arms and the relative lift with its interval, as the data stood each day.

    Args:
        series: `queries.cumulative_series` output.

    Returns:
        Columns day, users (both arms), control_ctr, treatment_ctr, lift, low, high, p_value; one row
        per day both arms have data.
    """
    columns = ["day", "users", "control_ctr", "treatment_ctr", "lift", "low", "high", "p_value"]
    if series.empty:
        return pd.DataFrame(columns=columns)
    by_key: dict[tuple[Any, int], Mapping[Any, Any]] = {
        (row["day"], int(row["variant_id"])): row for row in series.to_dict("records")
    }
    records = []
    for day in sorted({day for day, _ in by_key}):
        control = by_key.get((day, control_id))
        treatment = by_key.get((day, treatment_id))
        if control is None or treatment is None:
            continue
        result = ratio_ztest(_ratio(control), _ratio(treatment), alpha=alpha)
        users = int(control["users"]) + int(treatment["users"])
        records.append(
            (
                day,
                users,
                result.control,
                result.treatment,
                result.relative_lift,
                *result.relative_ci,
                result.p_value,
            )
        )
    return pd.DataFrame(records, columns=columns)


def _ratio(row: Mapping[Any, Any]) -> RatioSummary:
    return RatioSummary(
        n=int(row["users"]),
        sum_x=float(row["clicks"]),
        sum_y=float(row["impressions"]),
        sum_xx=float(row["sum_clicks_sq"]),
        sum_yy=float(row["sum_impressions_sq"]),
        sum_xy=float(row["sum_clicks_impressions"]),
    )


def is_finite(value: float) -> bool:
    """math.isfinite that accepts None."""
    return value is not None and math.isfinite(value)
