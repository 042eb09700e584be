"""Comparisons the data can support: paired differences with bootstrap intervals, the group tied with the
best, the probability that one variant's run beats another's, and tuning curves.

    rnnbench report      # the leaderboard's tied group, the forest plot and the tuning curves come from here

Every final and reference run saves which test images it got right (`test_predictions.csv`), and all of
them are tested on the same images, so two variants are compared image by image (paired). The interval of
a difference in mean test accuracy comes from a two-level bootstrap (Owen's "pigeonhole" bootstrap for
crossed designs): each of RESAMPLES resamples draws the test images with replacement, the same draw for
every variant, and independently each variant's seeds with replacement; the seeds' deviations from their
mean are scaled by sqrt(k / (k - 1)), the usual small-sample correction, since k is 3 or so. The 2.5th and
97.5th percentiles of the resampled differences are the 95% interval; the two-sided p-value is twice the
smaller tail's share. Differences from the best variant form one family and differences from the seed
tutorial another; each family's p-values are Holm-corrected (statsmodels), and the variants whose
difference from the best is not significant after the correction are statistically tied with it.
P(A beats B), as Bouthillier et al. (2021) recommend, is the share of (run of A, run of B) pairs in
which A's run scores higher on the test set (ties count half), with the percentile interval of the same
share over the resamples (seeds and images). The tests check the method on synthetic runs with known answers.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
from statsmodels.stats.multitest import multipletests

RESAMPLES = 2000
LEVEL = 0.95
"""Confidence of the intervals; the nominal family-wise error rate of the tied group is 1 - LEVEL (docs: Reading the report)."""


@dataclasses.dataclass(frozen=True)
class Difference:
    """`variant` minus `other`: mean test accuracy over seeds, in fractions."""

    variant: str
    other: str
    difference: float
    low: float
    high: float
    p_value: float
    adjusted_p: float
    """Holm-corrected within its family (all variants against the same `other`)."""
    beats: float
    """P(a run of `variant` scores higher than a run of `other`)."""
    beats_low: float
    beats_high: float

    @property
    def significant(self) -> bool:
        return self.adjusted_p < 1 - LEVEL


class Resampler:
    """One set of bootstrap resamples of the test images, shared by every variant: the pairing."""

    def __init__(self, images: int, resamples: int = RESAMPLES, seed: int = 0):
        rng = np.random.default_rng(seed)
        drawn = rng.integers(0, images, size=(resamples, images)) + images * np.arange(resamples)[:, None]
        self.weights = np.bincount(drawn.ravel(), minlength=resamples * images).reshape(resamples, images).astype(np.float32)
        """How often each image is drawn in each resample."""
        self.seed = seed
        self.images = images

    def resample(self, name: str, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each run's accuracy on each resampled test set, (resamples, seeds), and the same with the seeds
        resampled too (independently per variant, and the same whatever the order of the variants).

        Args:
            correct: (seeds, images) correctness of the variant's runs.
        """
        runs = self.weights @ correct.T.astype(np.float32) / self.images
        resamples, seeds = runs.shape
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        return runs, np.take_along_axis(runs, rng.integers(0, seeds, size=(resamples, seeds)), axis=1)


def _seed_means(runs: np.ndarray, resampled: np.ndarray) -> np.ndarray:
    """(resamples,): the mean over resampled seeds, its spread widened by sqrt(k / (k - 1)) (see the module)."""
    seeds = runs.shape[1]
    if seeds == 1:
        return runs[:, 0]
    centre = runs.mean(axis=1)
    return centre + (resampled.mean(axis=1) - centre) * np.sqrt(seeds / (seeds - 1))


def compare(correct: dict[str, np.ndarray], against: str, resampler: Resampler) -> list[Difference]:
    """Every variant of `correct` but `against`, minus `against`, Holm-corrected as one family.

    Args:
        correct: per variant, (seeds, images) booleans: did the run of that seed get that test image right
            (repeats of one seed averaged first). Every variant on the same images, in the same order.
        against: the variant everything is compared with (the best, or the seed tutorial).
    """
    resampled = {name: resampler.resample(name, matrix) for name, matrix in correct.items()}
    means = {name: _seed_means(*runs) for name, runs in resampled.items()}
    tail = (1 - LEVEL) / 2 * 100
    rows = []
    for name in correct:
        if name == against:
            continue
        draws = means[name] - means[against]
        observed = float(correct[name].mean() - correct[against].mean())
        low, high = np.percentile(draws, [tail, 100 - tail])
        smaller_tail = min((draws <= 0).sum(), (draws >= 0).sum())
        p_value = min(1.0, 2 * (smaller_tail + 1) / (len(draws) + 1))
        beats = float(_beats(correct[name].mean(axis=1)[None], correct[against].mean(axis=1)[None])[0])
        beats_low, beats_high = np.percentile(_beats(resampled[name][1], resampled[against][1]), [tail, 100 - tail])
        rows.append((name, observed, low, high, p_value, beats, beats_low, beats_high))
    p_values = [row[4] for row in rows]
    # Holm over one comparison is that comparison (and statsmodels runs a full garbage collection per call).
    adjusted = multipletests(p_values, alpha=1 - LEVEL, method="holm")[1] if len(rows) > 1 else p_values
    return [
        Difference(name, against, observed, float(low), float(high), p_value, float(holm), beats, float(b_low), float(b_high))
        for (name, observed, low, high, p_value, beats, b_low, b_high), holm in zip(rows, adjusted, strict=True)
    ]


def _beats(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """(resamples,): the share of (my run, their run) pairs in which mine scores higher, ties half."""
    higher = (mine[:, :, None] > theirs[:, None, :]).mean(axis=(1, 2))
    equal = (mine[:, :, None] == theirs[:, None, :]).mean(axis=(1, 2))
    return higher + equal / 2


def tied_with_best(differences: list[Difference]) -> list[str]:
    """The variants not significantly worse than the best after the Holm correction (the best not included)."""
    return [row.variant for row in differences if not row.significant]


def tuning_curve(scores: np.ndarray, trials: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected best score after n = 1..trials trials, and its standard deviation (Dodge et al., 2019).

    The scores are treated as draws from one distribution: the best of n draws with replacement from
    the N observed scores is the i-th smallest with probability (i/N)^n - ((i-1)/N)^n.
    """
    ordered = np.sort(np.asarray(scores, dtype=float))
    count = len(ordered)
    ranks = np.arange(1, count + 1) / count
    means, sds = [], []
    for n in range(1, trials + 1):
        chances = ranks**n - (ranks - 1 / count) ** n
        mean = float(chances @ ordered)
        means.append(mean)
        sds.append(float(np.sqrt(max(chances @ ordered**2 - mean**2, 0.0))))
    return np.array(means), np.array(sds)


def flat_after(curve: np.ndarray, resolution: float) -> int | None:
    """The fewest trials whose expected best is within `resolution` of the last; None if the last trial still gained."""
    if len(curve) < 2 or curve[-1] - curve[-2] >= resolution:
        return None
    return int(np.argmax(curve[-1] - curve < resolution)) + 1


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the paired comparisons of one experiment's variants say."""

    best: str
    images: int
    vs_best: dict[str, Difference]
    """Every other variant minus the best (the one with the highest mean), one Holm family."""
    vs_reference: dict[str, Difference]
    """Every variant minus the seed tutorial, another family; empty without a reference."""

    @property
    def tied(self) -> list[str]:
        """The best and the variants statistically tied with it, best first."""
        return [self.best, *tied_with_best(list(self.vs_best.values()))]


def verdict(contenders: list[str], reference: str | None, correct: dict[str, np.ndarray]) -> Verdict | None:
    """The comparisons of `contenders` (best first) with the best and with `reference`; None when the best
    has no saved predictions (runs recorded before rnnbench saved them), since nothing can then be paired."""
    present = [name for name in contenders if name in correct]
    if not contenders or contenders[0] not in correct:
        return None
    resampler = Resampler(correct[contenders[0]].shape[1])
    vs_best = compare({name: correct[name] for name in present}, contenders[0], resampler)
    vs_reference = []
    if reference in correct:
        vs_reference = compare({name: correct[name] for name in [*present, reference]}, reference, resampler)
    return Verdict(
        contenders[0], resampler.images, {row.variant: row for row in vs_best}, {row.variant: row for row in vs_reference}
    )
