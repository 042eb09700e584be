"""The report's statistics on synthetic runs whose true answer is known: coverage, power, the tied group, P(A > B),
and the expected-best tuning curve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnbench.report.compare import Resampler, compare, flat_after, tied_with_best, tuning_curve

IMAGES = 1000


def runs(rng, difficulty: np.ndarray, shift: float, seeds: int = 3, seed_sd: float = 0.2) -> np.ndarray:
    """(seeds, images) correctness of one variant's runs on a shared test set: image difficulty (logits) shared by
    all runs, a per-seed shift (training randomness), and the variant's own `shift` (its true quality)."""
    seed_effect = rng.normal(0, seed_sd, size=(seeds, 1))
    chance = 1 / (1 + np.exp(-(difficulty + shift + seed_effect)))
    return rng.random(chance.shape) < chance


@pytest.mark.slow
def test_two_identical_variants_the_interval_covers_zero_about_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    covered = []
    for dataset in range(150):
        difficulty = rng.normal(3.0, 2.0, size=IMAGES)  # about 88% accuracy, seeds about 2 points apart
        [row] = compare({"a": runs(rng, difficulty, 0), "b": runs(rng, difficulty, 0)}, "b", Resampler(IMAGES, 1000, dataset))
        covered.append(row.low <= 0 <= row.high)
    assert 0.90 <= np.mean(covered) <= 0.995  # measured: 0.965 over 200 datasets


@pytest.mark.slow
def test_a_clearly_better_variant_is_told_apart_and_beats_the_other():
    rng = np.random.default_rng(9)
    told_apart = []
    for dataset in range(40):
        difficulty = rng.normal(3.0, 2.0, size=IMAGES)
        better, worse = runs(rng, difficulty, 0.8, seed_sd=0.1), runs(rng, difficulty, 0, seed_sd=0.1)  # ~5 points
        [row] = compare({"better": better, "worse": worse}, "worse", Resampler(IMAGES, 1000, dataset))
        told_apart.append(row.low > 0 and row.significant)
        assert row.difference == pytest.approx(better.mean() - worse.mean())
        assert row.low < row.difference < row.high and row.beats_low <= row.beats_high
        assert row.beats > 0.8
    assert np.mean(told_apart) >= 0.95  # measured: 60 of 60 at a 4.5-point gap


def test_identical_variants_are_all_tied_with_the_best_and_a_bad_one_is_not():
    rng = np.random.default_rng(3)
    difficulty = rng.normal(3.0, 2.0, size=IMAGES)
    variants = {f"same{index}": runs(rng, difficulty, 0, seed_sd=0.1) for index in range(5)}
    variants["bad"] = runs(rng, difficulty, -1.0, seed_sd=0.1)
    best = max(variants, key=lambda name: variants[name].mean())
    differences = compare(variants, best, Resampler(IMAGES, 1000, 0))
    assert sorted(tied_with_best(differences)) == sorted(name for name in variants if name not in (best, "bad"))
    assert all(row.difference <= 0 for row in differences)
    holm = sorted(row.adjusted_p for row in differences)
    assert all(adjusted >= raw for adjusted, raw in zip(holm, sorted(row.p_value for row in differences), strict=True))


def test_the_pairing_and_the_seed_draws_do_not_depend_on_the_order_of_the_variants():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(3.0, 2.0, size=IMAGES)
    variants = {name: runs(rng, difficulty, shift) for name, shift in (("a", 0.0), ("b", 0.3), ("c", 0.1))}
    forward = compare(variants, "b", Resampler(IMAGES, 500, 0))
    backward = compare(dict(reversed(list(variants.items()))), "b", Resampler(IMAGES, 500, 0))
    assert {row.variant: (row.low, row.high) for row in forward} == {row.variant: (row.low, row.high) for row in backward}


def test_one_seed_still_gets_an_interval_from_the_test_images_alone():
    rng = np.random.default_rng(2)
    difficulty = rng.normal(3.0, 2.0, size=IMAGES)
    [row] = compare(
        {"a": runs(rng, difficulty, 0.5, seeds=1), "b": runs(rng, difficulty, 0, seeds=1)}, "b", Resampler(IMAGES, 1000, 0)
    )
    assert row.low < row.difference < row.high  # the images' share of the uncertainty
    assert 0.5 < row.beats <= 1  # one run each: in most resampled test sets the better run scores higher


def test_the_tuning_curve_is_the_expected_best_of_n_draws():
    scores = np.array([0.2, 0.5, 0.9, 0.7])
    means, sds = tuning_curve(scores, trials=4)
    assert means[0] == pytest.approx(scores.mean())  # the best of one draw is a draw
    for n in (2, 3):  # against every sequence of n draws with replacement
        bests = [max(draw) for draw in itertools.product(scores, repeat=n)]
        assert means[n - 1] == pytest.approx(np.mean(bests))
        assert sds[n - 1] == pytest.approx(np.std(bests))
    assert np.all(np.diff(means) > 0) and means[-1] < scores.max()


def test_a_curve_says_when_it_flattened_and_when_it_still_rises():
    assert flat_after(np.array([0.80, 0.90, 0.95, 0.951, 0.9512]), resolution=0.0025) == 3
    assert flat_after(np.array([0.80, 0.85, 0.90]), resolution=0.0025) is None  # the last trial still gained
    scores = np.array([0.9, 0.9, 0.9, 0.9])
    assert flat_after(tuning_curve(scores, 4)[0], resolution=0.0025) == 1
