"""helpers' intervals and paired test, on synthetic predictions whose answers are known by hand."""

import math

import numpy as np
import pytest

import helpers

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
T95_DF2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (3 seeds)


def wilson_by_hand(k, n, z=Z95):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n", [(50, 100), (868, 1000), (1, 40), (40, 40)])
def test_accuracy_interval_is_wilsons(k, n):
    accuracy, low, high = helpers.accuracy_interval(np.r_[np.ones(k), np.zeros(n - k)])
    assert accuracy == k / n
    assert (low, high) == pytest.approx(wilson_by_hand(k, n), abs=1e-9)
    assert low <= accuracy <= high


def test_seed_interval_is_a_student_t_interval():
    mean, low, high = helpers.seed_interval([0.80, 0.82, 0.84])
    half = T95_DF2 * 0.02 / math.sqrt(3)  # sample standard deviation 0.02
    assert mean == pytest.approx(0.82)
    assert (low, high) == pytest.approx((0.82 - half, 0.82 + half))
    assert helpers.seed_interval([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_examples():
    # 100 examples: 80 both right, 10 only a right, 2 only b right, 8 both wrong
    a = np.r_[np.ones(80), np.ones(10), np.zeros(2), np.zeros(8)]
    b = np.r_[np.ones(80), np.zeros(10), np.ones(2), np.zeros(8)]
    result = helpers.paired_comparison(a, b)
    assert (result["only_a_right"], result["only_b_right"]) == (10, 2)
    assert result["difference"] == pytest.approx(0.08)
    # two-sided: 2 * P(X <= 2) for X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert result["mcnemar_p"] == pytest.approx(2 * 79 / 4096)
    assert helpers.paired_comparison(b, a)["mcnemar_p"] == pytest.approx(result["mcnemar_p"])
    assert helpers.paired_comparison(b, a)["difference"] == pytest.approx(-0.08)


def test_equally_good_models_are_indistinguishable():
    a = np.r_[np.ones(5), np.zeros(5), np.ones(90)]
    b = np.r_[np.zeros(5), np.ones(5), np.ones(90)]
    result = helpers.paired_comparison(a, b)
    assert result["difference"] == 0 and result["mcnemar_p"] == 1.0
    low, high = result["ci95"]
    assert low < 0 < high


def test_the_bootstrap_interval_is_paired():
    """10 of 100 examples only a gets right: the difference's standard error is sd(a - b) / 10 = 0.03,
    so a paired 95% interval is about 0.1 +- 0.06. Resampling the two models independently would
    ignore the 80 shared right answers and give about 0.1 +- 0.1 (standard error 0.05)."""
    a = np.r_[np.ones(80), np.ones(10), np.zeros(10)]
    b = np.r_[np.ones(80), np.zeros(10), np.zeros(10)]
    low, high = helpers.paired_comparison(a, b)["ci95"]
    assert 0 < low < 0.1 < high
    assert 0.09 < high - low < 0.15
    assert helpers.paired_comparison(a, b)["ci95"] == [low, high]  # seeded: the same every time


def test_identical_models_give_a_point_interval():
    a = np.r_[np.ones(30), np.zeros(10)]
    assert helpers.paired_comparison(a, a) == {"difference": 0.0, "ci95": [0.0, 0.0], "only_a_right": 0,
                                               "only_b_right": 0, "mcnemar_p": 1.0}


@pytest.mark.parametrize("call, message", [
    (lambda: helpers.accuracy_interval([0.9, 0.8]), "correct must be a non-empty 1-d array of 0/1"),
    (lambda: helpers.accuracy_interval([]), "correct must be a non-empty 1-d array of 0/1"),
    (lambda: helpers.paired_comparison([1, 0], [1, 0, 1]), "same examples: (2,) vs (3,)"),
    (lambda: helpers.seed_interval([0.8]), "at least 2 seeds"),
])
def test_bad_input_says_what_is_wrong(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)
