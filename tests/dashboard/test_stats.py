"""The A/B statistics against hand-computed numbers and scipy's own tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from services.dashboard.stats import (
    MeanSummary,
    RatioSummary,
    format_p,
    format_percent,
    power_estimate,
    ratio_ztest,
    sample_ratio_test,
    two_proportion_ztest,
    users_per_arm_for_means,
    users_per_arm_for_proportions,
    verdict,
    welch_ttest,
)

Z975 = 1.959963984540054


class TestTwoProportionZTest:
    def test_textbook_example(self) -> None:
        # given 100/1000 converted in control and 130/1000 in treatment
        # when
        result = two_proportion_ztest(100, 1000, 130, 1000)
        # then: pooled p = 0.115, SE = sqrt(0.115 * 0.885 * 2 / 1000) = 0.0142670, z = 0.03 / SE
        assert result.control == pytest.approx(0.10)
        assert result.treatment == pytest.approx(0.13)
        assert result.statistic == pytest.approx(2.10274, abs=1e-5)
        assert result.p_value == pytest.approx(0.0354885, abs=1e-6)
        assert result.significant

    def test_p_value_matches_chi_square_without_continuity_correction(self) -> None:
        # z² of the pooled two-proportion test is Pearson's chi-square on the 2x2 table
        result = two_proportion_ztest(412, 5120, 455, 4988)
        chi2 = sps.chi2_contingency([[412, 5120 - 412], [455, 4988 - 455]], correction=False)
        assert result.statistic**2 == pytest.approx(chi2.statistic, rel=1e-9)
        assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)

    def test_absolute_interval_uses_unpooled_standard_error(self) -> None:
        result = two_proportion_ztest(100, 1000, 130, 1000)
        se = math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)  # 0.0142513
        assert result.absolute_lift == pytest.approx(0.03)
        assert result.absolute_ci == pytest.approx((0.03 - Z975 * se, 0.03 + Z975 * se))
        assert result.absolute_ci[0] == pytest.approx(0.0020679, abs=1e-6)

    def test_relative_interval_by_fieller(self) -> None:
        result = two_proportion_ztest(100, 1000, 130, 1000)
        # Fieller: the ratios r with (0.13 - 0.1·r)² <= z²·(Var p2 + r²·Var p1), solved by hand:
        # (0.01 - z²·0.00009)·r² - 2·0.013·r + (0.0169 - z²·0.0001131) <= 0  ->  r in [1.01839, 1.67472]
        assert result.relative_lift == pytest.approx(0.3)
        assert result.relative_ci == pytest.approx((0.01839, 0.67472), abs=1e-5)

    def test_relative_interval_agrees_with_the_unpooled_test(self) -> None:
        # 0% is outside Fieller's interval exactly when |difference| / unpooled SE exceeds z
        rng = np.random.default_rng(3)
        for _ in range(200):
            n1, n2 = (int(v) for v in rng.integers(200, 3000, size=2))
            x1, x2 = int(rng.binomial(n1, 0.1)), int(rng.binomial(n2, 0.11))
            result = two_proportion_ztest(x1, n1, x2, n2)
            low, high = result.relative_ci
            se = math.sqrt(result.control_var + result.treatment_var)
            assert (low > 0 or high < 0) == (abs(result.absolute_lift) / se > Z975)

    def test_relative_interval_is_close_to_the_delta_method_for_large_samples(self) -> None:
        result = two_proportion_ztest(10_000, 100_000, 10_500, 100_000)
        var = (0.105 * 0.895 / 1e5) / 0.1**2 + 0.105**2 * (0.1 * 0.9 / 1e5) / 0.1**4
        half = Z975 * math.sqrt(var)
        assert result.relative_ci == pytest.approx((0.05 - half, 0.05 + half), abs=5e-4)

    def test_relative_interval_is_unbounded_for_a_control_near_zero(self) -> None:
        result = two_proportion_ztest(1, 1000, 5, 1000)
        assert result.relative_lift == pytest.approx(4.0)
        assert all(math.isnan(v) for v in result.relative_ci)

    def test_no_conversions_anywhere_gives_no_p_value(self) -> None:
        result = two_proportion_ztest(0, 50, 0, 50)
        assert math.isnan(result.p_value)
        assert math.isnan(result.relative_lift)
        assert not result.significant

    def test_empty_arm(self) -> None:
        result = two_proportion_ztest(0, 0, 3, 10)
        assert math.isnan(result.p_value)
        assert result.control_n == 0


class TestWelchTTest:
    control = np.array([3.1, 4.0, 2.5, 3.8, 4.4, 3.0, 2.9, 3.6, 4.1, 3.3])
    treatment = np.array([4.2, 3.9, 4.8, 3.1, 4.5, 4.0, 5.0, 3.7, 4.4, 4.6, 3.8, 4.9])

    def test_matches_scipy(self) -> None:
        # when
        result = welch_ttest(MeanSummary.of(self.control), MeanSummary.of(self.treatment))
        # then: scipy's ttest_ind(equal_var=False) with treatment first gives the same sign
        reference = sps.ttest_ind(self.treatment, self.control, equal_var=False)
        assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
        assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
        low, high = reference.confidence_interval(0.95)
        assert result.absolute_ci == pytest.approx((low, high), rel=1e-10)
        assert result.absolute_lift == pytest.approx(self.treatment.mean() - self.control.mean())

    def test_hand_computed_values(self) -> None:
        result = welch_ttest(
            MeanSummary(n=30, mean=10.0, variance=4.0), MeanSummary(n=40, mean=11.0, variance=9.0)
        )
        # SE = sqrt(4/30 + 9/40) = 0.598609; t = 1 / SE = 1.670538
        # df = (4/30 + 9/40)² / ((4/30)²/29 + (9/40)²/39) = 67.1878
        assert result.statistic == pytest.approx(1.670538, abs=1e-6)
        assert result.p_value == pytest.approx(2 * sps.t.sf(1.670538, 67.1878), abs=1e-6)
        assert result.relative_lift == pytest.approx(0.1)

    def test_too_few_users(self) -> None:
        result = welch_ttest(MeanSummary.of([4.0]), MeanSummary.of([3.0, 5.0]))
        assert math.isnan(result.p_value)


class TestRatioZTest:
    def test_constant_denominator_reduces_to_variance_of_the_mean(self) -> None:
        # every user saw 10 impressions: CTR = mean(clicks) / 10 and Var = var(clicks) / (n · 100)
        clicks = np.array([0, 1, 3, 0, 2, 1, 0, 0, 4, 1], dtype=float)
        summary = RatioSummary.of(clicks, np.full(10, 10.0))
        assert summary.ratio == pytest.approx(0.12)
        assert summary.variance == pytest.approx(clicks.var(ddof=1) / (10 * 100))

    def test_variance_matches_linearised_per_user_values(self) -> None:
        # the delta method is the variance of the mean of x - R·y, divided by mean(y)²
        rng = np.random.default_rng(7)
        impressions = rng.integers(1, 30, size=500).astype(float)
        clicks = rng.binomial(impressions.astype(int), 0.1).astype(float)
        summary = RatioSummary.of(clicks, impressions)
        r = clicks.sum() / impressions.sum()
        linearised = (clicks - r * impressions) / impressions.mean()
        assert summary.variance == pytest.approx(linearised.var(ddof=1) / 500, rel=1e-9)

    def test_comparison(self) -> None:
        control = RatioSummary(n=1000, sum_x=500, sum_y=10000, sum_xx=900, sum_yy=120000, sum_xy=6000)
        treatment = RatioSummary(n=1000, sum_x=600, sum_y=10000, sum_xx=1100, sum_yy=120000, sum_xy=7300)
        result = ratio_ztest(control, treatment)
        assert result.control == pytest.approx(0.05)
        assert result.treatment == pytest.approx(0.06)
        se = math.sqrt(control.variance + treatment.variance)
        assert result.statistic == pytest.approx(0.01 / se)
        assert result.p_value == pytest.approx(2 * sps.norm.sf(0.01 / se))
        assert result.relative_lift == pytest.approx(0.2)

    def test_no_impressions(self) -> None:
        result = ratio_ztest(RatioSummary(3, 0, 0, 0, 0, 0), RatioSummary(3, 1, 5, 1, 9, 3))
        assert math.isnan(result.p_value)


class TestSampleRatio:
    def test_small_imbalance_is_chance(self) -> None:
        result = sample_ratio_test([5100, 4900], [50, 50])
        assert result.statistic == pytest.approx(4.0)
        assert result.p_value == pytest.approx(0.0455003, abs=1e-6)
        assert not result.mismatch

    def test_large_imbalance_is_flagged(self) -> None:
        result = sample_ratio_test([5300, 4700], [1, 1])
        assert result.statistic == pytest.approx(36.0)
        assert result.p_value == pytest.approx(sps.chisquare([5300, 4700]).pvalue)
        assert result.mismatch

    def test_uneven_weights(self) -> None:
        result = sample_ratio_test([900, 2100], [30, 70])
        assert result.expected == pytest.approx((900.0, 2100.0))
        assert result.p_value == pytest.approx(1.0)

    def test_three_arms_match_scipy(self) -> None:
        result = sample_ratio_test([340, 310, 650], [25, 25, 50])
        reference = sps.chisquare([340, 310, 650], [325, 325, 650])
        assert result.p_value == pytest.approx(reference.pvalue)

    def test_users_in_a_zero_weight_variant(self) -> None:
        assert sample_ratio_test([100, 100, 3], [50, 50, 0]).mismatch

    def test_zero_weight_variant_without_users_is_ignored(self) -> None:
        result = sample_ratio_test([100, 100, 0], [50, 50, 0])
        assert result.p_value == pytest.approx(1.0)

    def test_no_users(self) -> None:
        assert not sample_ratio_test([0, 0], [50, 50]).mismatch


class TestSampleSize:
    def test_proportions_textbook(self) -> None:
        # 20% -> 25%, alpha 0.05 two-sided, power 0.8: (1.95996·√(2·0.225·0.775) + 0.84162·√0.3475)² / 0.05²
        assert users_per_arm_for_proportions(0.20, 0.25) == pytest.approx(1093.739, abs=1e-3)

    def test_proportions_have_the_power_they_promise(self) -> None:
        n = users_per_arm_for_proportions(0.10, 0.12)
        se_null = math.sqrt(0.11 * 0.89 * 2 / n)
        se_alt = math.sqrt(0.10 * 0.90 / n + 0.12 * 0.88 / n)
        power = sps.norm.cdf((0.02 - Z975 * se_null) / se_alt)
        assert power == pytest.approx(0.8, abs=1e-9)

    def test_means_textbook(self) -> None:
        # Cohen's d = 0.5: 2 · (1.95996 + 0.84162)² / 0.25 = 62.79 per group (normal approximation)
        assert users_per_arm_for_means(1.0, 1.0, 0.5) == pytest.approx(62.791, abs=1e-3)

    def test_no_difference_needs_infinitely_many(self) -> None:
        assert users_per_arm_for_proportions(0.1, 0.1) == math.inf


class TestPowerEstimate:
    def test_sizes_for_the_observed_lift(self) -> None:
        comparison = two_proportion_ztest(100, 1000, 110, 1000)  # +10%, not significant
        estimate = power_estimate(comparison, control_share=0.5, treatment_share=0.5, assigned_total=2000)
        assert estimate is not None
        assert estimate.basis == "observed"
        assert estimate.relative_effect == pytest.approx(0.1)
        expected = math.ceil(users_per_arm_for_proportions(0.10, 0.11))
        assert estimate.control_needed == expected
        assert estimate.more_users == 2 * expected - 2000

    def test_never_sizes_for_less_than_the_minimum_detectable_effect(self) -> None:
        comparison = two_proportion_ztest(100, 1000, 101, 1000)  # +1%
        estimate = power_estimate(comparison, control_share=0.5, treatment_share=0.5, assigned_total=2000)
        assert estimate is not None
        assert estimate.basis == "minimum detectable effect"
        assert estimate.relative_effect == pytest.approx(0.05)

    def test_uneven_split_needs_more_users_overall(self) -> None:
        comparison = two_proportion_ztest(100, 1000, 110, 1000)
        even = power_estimate(comparison, control_share=0.5, treatment_share=0.5, assigned_total=0)
        uneven = power_estimate(comparison, control_share=0.8, treatment_share=0.2, assigned_total=0)
        assert even is not None and uneven is not None
        assert uneven.total_needed > even.total_needed

    def test_mean_metric_uses_the_per_user_spread(self) -> None:
        comparison = welch_ttest(MeanSummary(100, 2.0, 4.0), MeanSummary(100, 2.1, 4.0))
        estimate = power_estimate(comparison, control_share=0.5, treatment_share=0.5, assigned_total=200)
        assert estimate is not None
        assert estimate.control_needed == math.ceil(users_per_arm_for_means(2.0, 2.0, 0.1))

    def test_unknown_without_a_control_value(self) -> None:
        comparison = two_proportion_ztest(0, 10, 0, 10)
        assert power_estimate(comparison, control_share=0.5, treatment_share=0.5, assigned_total=20) is None


class TestVerdict:
    def test_win(self) -> None:
        comparison = two_proportion_ztest(1000, 10000, 1120, 10000, metric="CTR")
        text = verdict(comparison).sentence
        assert text.startswith("treatment beats control on CTR by +12.0% [")
        assert text.endswith(f"p = {comparison.p_value:.3f}")

    def test_loss_names_the_variants(self) -> None:
        comparison = two_proportion_ztest(1120, 10000, 1000, 10000, metric="CTR")
        result = verdict(comparison, control_name="svd", treatment_name="hybrid")
        assert result.kind == "loss"
        assert result.sentence.startswith("hybrid is worse than svd on CTR by -10.7% [")

    def test_inconclusive_says_how_many_more_users(self) -> None:
        comparison = two_proportion_ztest(100, 1000, 110, 1000, metric="CTR")
        estimate = power_estimate(comparison, control_share=0.5, treatment_share=0.5, assigned_total=2000)
        assert estimate is not None
        result = verdict(comparison, power=estimate)
        assert result.kind == "inconclusive"
        assert "more users needed to detect the observed 10.0% lift" in result.sentence
        assert result.sentence.startswith("not yet significant on CTR: about ")

    def test_sample_ratio_mismatch_overrides_a_win(self) -> None:
        comparison = two_proportion_ztest(1000, 10000, 1300, 10000, metric="CTR")
        result = verdict(comparison, srm=sample_ratio_test([10000, 9000], [50, 50]))
        assert result.kind == "srm"
        assert result.sentence.startswith("sample ratio mismatch: do not trust these results")

    def test_no_data(self) -> None:
        result = verdict(two_proportion_ztest(0, 0, 0, 0, metric="CTR"))
        assert result.kind == "no_data"


def test_formatting() -> None:
    assert format_p(0.00612) == "p = 0.006"
    assert format_p(0.0004) == "p < 0.001"
    assert format_p(0.2149) == "p = 0.21"
    assert format_p(math.nan) == "p = n/a"
    assert format_percent(0.041) == "+4.1%"
    assert format_percent(-0.0032) == "-0.3%"
