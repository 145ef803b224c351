"""A/B test statistics for the dashboard: pure functions of aggregated counts, no I/O.

The unit of randomisation is the user (an `assignment` row), so the unit of analysis is the user
too. Events of one user are correlated (someone who clicks once tends to click again), so tests
that treat every impression as independent understate the variance and overstate significance.
Each metric is therefore reduced to per-user numbers first:

* **Users who clicked** (conversion): the share of assigned users with at least one click, compared
  with a two-proportion z-test. The test statistic uses the pooled standard error (the one that
  holds under the null hypothesis of equal rates); the confidence interval of the difference uses
  the unpooled one (the one that holds where the rates differ).
* **CTR** (clicks / impressions): a ratio of two per-user sums. Its variance comes from the delta
  method on the per-user (clicks, impressions) pairs (Deng, Knoblich & Lu, *Applying the Delta
  Method in Metric Analytics*, KDD 2018), and the difference is tested with a z-test.
* **Means of per-user values** (ratings per user, mean rating a user gave to the recommendations
  they watched): Welch's t-test, which does not assume equal variances.

Relative lifts (treatment / control - 1) get Fieller's interval for the ratio of two independent
estimates: the set of ratios ρ for which ``(b - ρ·a)² <= c²·(Var b + ρ²·Var a)``, with c the critical
value of the test. Unlike the symmetric delta-method interval, it contains 0% exactly when the
unpooled test of the difference does not reject, so the interval never contradicts the p-value
(the pooled two-proportion test can differ from it only at the margin). It is asymmetric, as the
uncertainty of a ratio is, and it is unbounded when the control itself cannot be told apart from
zero; the dashboard then shows no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

ALPHA = 0.05
POWER = 0.8
SRM_THRESHOLD = 0.001
"""p-value under which the observed split is called a sample ratio mismatch (Kohavi et al. use 0.001)."""
DEFAULT_MDE = 0.05
"""Smallest relative lift worth detecting, used when the observed lift is smaller (5%)."""

Method = Literal["two-proportion z-test", "delta-method z-test", "Welch's t-test"]
PowerBasis = Literal["observed", "minimum detectable effect"]
VerdictKind = Literal["win", "loss", "inconclusive", "srm", "no_data"]


def _z(alpha: float) -> float:
    """Two-sided critical value of the standard normal."""
    return float(stats.norm.ppf(1 - alpha / 2))


def _relative_lift(
    control: float, treatment: float, var_control: float, var_treatment: float, critical: float
) -> tuple[float, tuple[float, float]]:
    """treatment / control - 1 and Fieller's interval for it at the given critical value.

    Returns:
        The lift (NaN when the control is 0) and the interval (NaNs when it is unbounded).
    """
    nan_pair = (math.nan, math.nan)
    if control == 0 or not all(math.isfinite(v) for v in (control, treatment, var_control, var_treatment)):
        return math.nan, nan_pair
    lift = treatment / control - 1
    c2 = critical * critical
    denominator = control * control - c2 * var_control
    if denominator <= 0:  # the control is within `critical` standard errors of zero
        return lift, nan_pair
    discriminant = (control * treatment) ** 2 - denominator * (treatment * treatment - c2 * var_treatment)
    root = math.sqrt(max(discriminant, 0.0))
    low = (control * treatment - root) / denominator
    high = (control * treatment + root) / denominator
    return lift, (low - 1, high - 1)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric.

    Attributes:
        metric: the metric's name, e.g. "CTR".
        method: the test used.
        control, treatment: the metric's value in each arm.
        control_n, treatment_n: users in each arm.
        control_var, treatment_var: variance of each arm's estimate (squared standard error).
        absolute_lift: treatment - control, and its confidence interval.
        relative_lift: treatment / control - 1 (NaN when control is 0), and its Fieller interval
            (NaNs when unbounded).
        statistic: z or t.
        p_value: two-sided.
        alpha: the level the intervals are built for (0.05: 95% intervals).
    """

    metric: str
    method: Method
    control: float
    treatment: float
    control_n: int
    treatment_n: int
    control_var: float
    treatment_var: float
    absolute_lift: float
    absolute_ci: tuple[float, float]
    relative_lift: float
    relative_ci: tuple[float, float]
    statistic: float
    p_value: float
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        """Whether the p-value is below alpha."""
        return math.isfinite(self.p_value) and self.p_value < self.alpha

    @property
    def per_user_sd(self) -> tuple[float, float]:
        """Standard deviation of one user's contribution in each arm (for sample sizes)."""
        return (
            math.sqrt(self.control_var * self.control_n),
            math.sqrt(self.treatment_var * self.treatment_n),
        )


def two_proportion_ztest(
    control_successes: int,
    control_n: int,
    treatment_successes: int,
    treatment_n: int,
    *,
    metric: str = "conversion",
    alpha: float = ALPHA,
) -> Comparison:
    """Compare two proportions: pooled standard error for the test, unpooled for the intervals.

    Args:
        control_successes, treatment_successes: users who converted in each arm.
        control_n, treatment_n: users in each arm.
        metric: the name shown with the result.
        alpha: 1 - confidence level of the intervals.

    Returns:
        The comparison; p-value NaN when either arm is empty or nobody (or everybody) converted.
    """
    if control_n <= 0 or treatment_n <= 0:
        return _empty(metric, "two-proportion z-test", control_n, treatment_n, alpha)
    p1 = control_successes / control_n
    p2 = treatment_successes / treatment_n
    var1 = p1 * (1 - p1) / control_n
    var2 = p2 * (1 - p2) / treatment_n
    pooled = (control_successes + treatment_successes) / (control_n + treatment_n)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / treatment_n))
    diff = p2 - p1
    if se_pooled > 0:
        z = diff / se_pooled
        p_value = float(2 * stats.norm.sf(abs(z)))
    else:
        z, p_value = math.nan, math.nan
    arms = ((p1, control_n, var1), (p2, treatment_n, var2))
    return _comparison(metric, "two-proportion z-test", arms, z, p_value, _z(alpha), alpha)


@dataclass(frozen=True)
class MeanSummary:
    """Sufficient statistics of per-user values in one arm: count, mean, sample variance (ddof=1)."""

    n: int
    mean: float
    variance: float

    @classmethod
    def of(cls, values: ArrayLike) -> MeanSummary:
        """Summarise an array of per-user values."""
        array = np.asarray(values, dtype=np.float64)
        n = int(array.size)
        mean = float(array.mean()) if n else math.nan
        variance = float(array.var(ddof=1)) if n > 1 else math.nan
        return cls(n, mean, variance)


def welch_ttest(
    control: MeanSummary, treatment: MeanSummary, *, metric: str = "mean", alpha: float = ALPHA
) -> Comparison:
    """Welch's unequal-variance t-test on per-user values, with a t interval for the difference.

    Returns:
        The comparison; p-value NaN when an arm has fewer than two users or both have no variance.
    """
    if control.n < 2 or treatment.n < 2:
        return _empty(metric, "Welch's t-test", control.n, treatment.n, alpha, control.mean, treatment.mean)
    var1 = control.variance / control.n
    var2 = treatment.variance / treatment.n
    se = math.sqrt(var1 + var2)
    diff = treatment.mean - control.mean
    if se > 0:
        df = (var1 + var2) ** 2 / (var1**2 / (control.n - 1) + var2**2 / (treatment.n - 1))
        t = diff / se
        p_value = float(2 * stats.t.sf(abs(t), df))
        critical = float(stats.t.ppf(1 - alpha / 2, df))
    else:
        t, p_value, critical = math.nan, math.nan, _z(alpha)
    arms = ((control.mean, control.n, var1), (treatment.mean, treatment.n, var2))
    return _comparison(metric, "Welch's t-test", arms, t, p_value, critical, alpha)


@dataclass(frozen=True)
class RatioSummary:
    """Sufficient statistics of a ratio metric sum(x) / sum(y) over the users of one arm.

    For CTR, x is a user's clicks and y their impressions. PostgreSQL computes these sums, so no
    per-user rows leave the database.
    """

    n: int
    sum_x: float
    sum_y: float
    sum_xx: float
    sum_yy: float
    sum_xy: float

    @classmethod
    def of(cls, x: ArrayLike, y: ArrayLike) -> RatioSummary:
        """Summarise per-user numerators and denominators."""
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
        return cls(
            int(xs.size),
            float(xs.sum()),
            float(ys.sum()),
            float(xs @ xs),
            float(ys @ ys),
            float(xs @ ys),
        )

    @property
    def ratio(self) -> float:
        """sum(x) / sum(y); NaN when sum(y) is 0."""
        return self.sum_x / self.sum_y if self.sum_y else math.nan

    @property
    def variance(self) -> float:
        """Delta-method variance of the ratio.

        With per-user means mx, my, sample variances sxx, syy and covariance sxy over n users:
        ``Var(mx/my) ≈ (sxx - 2·R·sxy + R²·syy) / (n·my²)`` where R = mx/my.
        """
        n = self.n
        if n < 2 or self.sum_y == 0:
            return math.nan
        mx, my = self.sum_x / n, self.sum_y / n
        sxx = (self.sum_xx - n * mx * mx) / (n - 1)
        syy = (self.sum_yy - n * my * my) / (n - 1)
        sxy = (self.sum_xy - n * mx * my) / (n - 1)
        r = mx / my
        return max(sxx - 2 * r * sxy + r * r * syy, 0.0) / (n * my * my)


def ratio_ztest(
    control: RatioSummary, treatment: RatioSummary, *, metric: str = "CTR", alpha: float = ALPHA
) -> Comparison:
    """Compare a ratio metric (sum x / sum y per arm) with delta-method variances and a z-test.

    Returns:
        The comparison; p-value NaN when an arm has fewer than two users or no denominator.
    """
    r1, r2 = control.ratio, treatment.ratio
    var1, var2 = control.variance, treatment.variance
    if not all(math.isfinite(v) for v in (r1, r2, var1, var2)):
        return _empty(metric, "delta-method z-test", control.n, treatment.n, alpha, r1, r2)
    se = math.sqrt(var1 + var2)
    diff = r2 - r1
    if se > 0:
        z = diff / se
        p_value = float(2 * stats.norm.sf(abs(z)))
    else:
        z, p_value = math.nan, math.nan
    arms = ((r1, control.n, var1), (r2, treatment.n, var2))
    return _comparison(metric, "delta-method z-test", arms, z, p_value, _z(alpha), alpha)


def _comparison(
    metric: str,
    method: Method,
    arms: tuple[tuple[float, int, float], tuple[float, int, float]],
    statistic: float,
    p_value: float,
    critical: float,
    alpha: float,
) -> Comparison:
    """The result every test shares: `arms` is (value, users, variance of the value) for control and
    treatment; the absolute interval is `critical` standard errors, the relative one Fieller's."""
    (control, control_n, var1), (treatment, treatment_n, var2) = arms
    diff = treatment - control
    half = critical * math.sqrt(var1 + var2)
    relative, relative_ci = _relative_lift(control, treatment, var1, var2, critical)
    return Comparison(
        metric=metric,
        method=method,
        control=control,
        treatment=treatment,
        control_n=control_n,
        treatment_n=treatment_n,
        control_var=var1,
        treatment_var=var2,
        absolute_lift=diff,
        absolute_ci=(diff - half, diff + half),
        relative_lift=relative,
        relative_ci=relative_ci,
        statistic=statistic,
        p_value=p_value,
        alpha=alpha,
    )


def _empty(
    metric: str,
    method: Method,
    control_n: int,
    treatment_n: int,
    alpha: float,
    control: float = math.nan,
    treatment: float = math.nan,
) -> Comparison:
    nan_pair = (math.nan, math.nan)
    return Comparison(
        metric=metric,
        method=method,
        control=control,
        treatment=treatment,
        control_n=max(control_n, 0),
        treatment_n=max(treatment_n, 0),
        control_var=math.nan,
        treatment_var=math.nan,
        absolute_lift=treatment - control,
        absolute_ci=nan_pair,
        relative_lift=treatment / control - 1 if control else math.nan,
        relative_ci=nan_pair,
        statistic=math.nan,
        p_value=math.nan,
        alpha=alpha,
    )


@dataclass(frozen=True)
class SampleRatioTest:
    """Chi-square goodness of fit of the users per variant against the configured weights."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    threshold: float = SRM_THRESHOLD

    @property
    def mismatch(self) -> bool:
        """True when the split is too far from the weights to be chance (p below the threshold)."""
        return math.isfinite(self.p_value) and self.p_value < self.threshold


def sample_ratio_test(
    observed: Sequence[int], weights: Sequence[float], *, threshold: float = SRM_THRESHOLD
) -> SampleRatioTest:
    """Test whether users were split across variants as the weights say.

    Variants with weight 0 are left out of the test if they have no users; a weight-0 variant that
    has users is a mismatch by definition (p = 0).

    Args:
        observed: users per variant.
        weights: configured weights, in the same order (any scale: 50/50 or 1/1).
        threshold: p-value below which a mismatch is flagged.
    """
    if len(observed) != len(weights):
        raise ValueError("observed and weights must have the same length")
    total = sum(observed)
    weight_sum = sum(weights)
    expected = tuple(total * w / weight_sum if weight_sum else 0.0 for w in weights)
    if any(o > 0 and e == 0 for o, e in zip(observed, expected, strict=True)):
        return SampleRatioTest(tuple(observed), expected, math.inf, 0.0, threshold)
    kept = [(o, e) for o, e in zip(observed, expected, strict=True) if e > 0]
    if total == 0 or len(kept) < 2:
        return SampleRatioTest(tuple(observed), expected, math.nan, math.nan, threshold)
    result = stats.chisquare([o for o, _ in kept], [e for _, e in kept])
    return SampleRatioTest(
        tuple(observed), expected, float(result.statistic), float(result.pvalue), threshold
    )


def users_per_arm_for_proportions(
    p_control: float,
    p_treatment: float,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
    ratio: float = 1.0,
) -> float:
    """Control-arm users needed to detect p_control -> p_treatment with a two-sided z-test.

    The textbook formula (Fleiss, *Statistical Methods for Rates and Proportions*, without continuity
    correction), with `ratio` = treatment users / control users:
    ``n = (z_α·√(p̄q̄(1 + 1/k)) + z_β·√(p₁q₁ + p₂q₂/k))² / (p₂ - p₁)²``, p̄ = (p₁ + k·p₂)/(1 + k).

    Returns:
        Users in the control arm (the treatment arm needs `ratio` times as many); inf if the
        proportions are equal.
    """
    delta = p_treatment - p_control
    if delta == 0:
        return math.inf
    pooled = (p_control + ratio * p_treatment) / (1 + ratio)
    z_alpha, z_beta = _z(alpha), float(stats.norm.ppf(power))
    root = z_alpha * math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)) + z_beta * math.sqrt(
        p_control * (1 - p_control) + p_treatment * (1 - p_treatment) / ratio
    )
    return root**2 / delta**2


def users_per_arm_for_means(
    sd_control: float,
    sd_treatment: float,
    delta: float,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
    ratio: float = 1.0,
) -> float:
    """Control-arm users needed to detect a difference `delta` in means (normal approximation).

    ``n = (z_α + z_β)² · (σ₁² + σ₂²/k) / δ²`` with k = treatment users / control users.
    """
    if delta == 0:
        return math.inf
    z_sum = _z(alpha) + float(stats.norm.ppf(power))
    return z_sum**2 * (sd_control**2 + sd_treatment**2 / ratio) / delta**2


@dataclass(frozen=True)
class PowerEstimate:
    """How many users the experiment needs to detect an effect on one metric.

    Attributes:
        relative_effect: the relative lift sized for.
        basis: "observed" lift, or the "minimum detectable effect" when the observed one is smaller.
        control_needed, treatment_needed: users needed in each arm.
        total_needed: users the whole experiment needs so both arms get theirs at the current weights.
        more_users: how many more users that is than assigned so far (0 if reached).
    """

    relative_effect: float
    basis: PowerBasis
    control_needed: int
    treatment_needed: int
    total_needed: int
    more_users: int


def power_estimate(
    comparison: Comparison,
    *,
    control_share: float,
    treatment_share: float,
    assigned_total: int,
    mde: float = DEFAULT_MDE,
    power: float = POWER,
) -> PowerEstimate | None:
    """Users needed to detect the observed relative lift (never less than `mde`) at `power`.

    Args:
        comparison: the current result; its per-user spread is the variance estimate.
        control_share, treatment_share: the arms' shares of the experiment's traffic (weights / sum).
        assigned_total: users assigned to the whole experiment so far.
        mde: the smallest relative lift worth detecting.
        power: the probability of detecting the effect if it is real.

    Returns:
        The estimate, or None when the control value or its spread is not known yet.
    """
    observed = comparison.relative_lift
    if not (math.isfinite(comparison.control) and comparison.control > 0) or control_share <= 0:
        return None
    if treatment_share <= 0:
        return None
    basis: PowerBasis
    if math.isfinite(observed) and abs(observed) >= mde:
        effect, basis = abs(observed), "observed"
    else:
        effect, basis = mde, "minimum detectable effect"
    ratio = treatment_share / control_share
    delta = comparison.control * effect
    if comparison.method == "two-proportion z-test":
        target = min(comparison.control * (1 + effect), 1.0)
        control_needed = users_per_arm_for_proportions(
            comparison.control, target, alpha=comparison.alpha, power=power, ratio=ratio
        )
    else:
        sd_control, sd_treatment = comparison.per_user_sd
        if not (math.isfinite(sd_control) and math.isfinite(sd_treatment)):
            return None
        control_needed = users_per_arm_for_means(
            sd_control, sd_treatment, delta, alpha=comparison.alpha, power=power, ratio=ratio
        )
    if not math.isfinite(control_needed):
        return None
    control_n = math.ceil(control_needed)
    treatment_n = math.ceil(control_needed * ratio)
    total = math.ceil(max(control_n / control_share, treatment_n / treatment_share))
    return PowerEstimate(
        relative_effect=effect,
        basis=basis,
        control_needed=control_n,
        treatment_needed=treatment_n,
        total_needed=total,
        more_users=max(total - assigned_total, 0),
    )


def format_p(p_value: float) -> str:
    """'p = 0.006', 'p < 0.001' or 'p = n/a'."""
    if not math.isfinite(p_value):
        return "p = n/a"
    if p_value < 0.001:
        return "p < 0.001"
    return f"p = {p_value:.3f}" if p_value < 0.1 else f"p = {p_value:.2f}"


def format_percent(value: float, digits: int = 1) -> str:
    """A signed percentage: +4.1%, -0.3%."""
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 100:+.{digits}f}%"


def _round_users(n: int) -> str:
    """Round a user count to two significant figures for a sentence ('about 1,200')."""
    if n < 100:
        return f"{n:,}"
    magnitude = 10 ** (len(str(n)) - 2)
    return f"{round(n / magnitude) * magnitude:,}"


@dataclass(frozen=True)
class Verdict:
    """What the result means, in one sentence."""

    kind: VerdictKind
    sentence: str


def verdict(
    comparison: Comparison,
    *,
    srm: SampleRatioTest | None = None,
    power: PowerEstimate | None = None,
    control_name: str = "control",
    treatment_name: str = "treatment",
) -> Verdict:
    """A plain sentence a product team can act on.

    Sample ratio mismatch trumps everything: when users were not split as configured, assignment
    is broken and the lift cannot be trusted, however small the p-value.
    """
    if srm is not None and srm.mismatch:
        observed = " / ".join(f"{o:,}" for o in srm.observed)
        expected = " / ".join(f"{e:,.0f}" for e in srm.expected)
        return Verdict(
            "srm",
            f"sample ratio mismatch: do not trust these results (users {observed}, "
            f"expected {expected}, {format_p(srm.p_value)})",
        )
    if not math.isfinite(comparison.p_value) or not math.isfinite(comparison.relative_lift):
        return Verdict(
            "no_data",
            f"not enough data yet to compare {treatment_name} with {control_name} on {comparison.metric}",
        )
    low, high = comparison.relative_ci
    interval = f"{format_percent(comparison.relative_lift)} [{format_percent(low)}, {format_percent(high)}]"
    if comparison.significant:
        beats = "beats" if comparison.absolute_lift > 0 else "is worse than"
        return Verdict(
            "win" if comparison.absolute_lift > 0 else "loss",
            f"{treatment_name} {beats} {control_name} on {comparison.metric} by {interval}, "
            f"{format_p(comparison.p_value)}",
        )
    if power is None:
        need = "more users are needed"
    elif power.more_users == 0:
        need = (
            f"the experiment has enough users to detect a {power.relative_effect:.0%} lift, "
            "so any real difference is likely smaller than that"
        )
    else:
        effect = f"{power.relative_effect * 100:.1f}%"
        what = f"the observed {effect} lift" if power.basis == "observed" else f"a {effect} lift"
        need = f"about {_round_users(power.more_users)} more users needed to detect {what}"
    return Verdict(
        "inconclusive",
        f"not yet significant on {comparison.metric}: {need} "
        f"({treatment_name} vs {control_name}: {interval}, {format_p(comparison.p_value)})",
    )
