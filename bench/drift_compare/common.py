"""The columns of the drift benchmark and what each side is expected to say about them.

20 float64 columns, no nulls. The reference and current samples are drawn independently from the
same seeded generator; a column's current sample is then changed as its `change` says:

  none           the same distribution                                   (no drift)
  shift K        plus K reference standard deviations (the true sigma)   (drift when K >= 0.1)
  scale K        spread K times around the true mean                     (drift)

With more than 1,000 reference rows and more than 5 distinct values both tools pick the normed
Wasserstein distance (Wasserstein-1 / std of the reference), threshold 0.1, drift when the score
is at least the threshold. For a pure shift that score is K, so `f11` (0.096) and `f12` (0.104) sit
just either side of the threshold: at 1,000,000 rows the sampling noise of the score is about
0.001, so their verdicts are stable and the two tools must still agree on them. 8 of 20 columns
drift (share 0.4): below Evidently's dataset drift share of 0.5, so the dataset as a whole does not.
"""

from __future__ import annotations

import math

# name: (distribution, parameters, true mean, true standard deviation, change, amount)
COLUMNS: dict[str, tuple] = {
    "f00": ("normal", (0.0, 1.0), 0.0, 1.0, "none", 0.0),
    "f01": ("normal", (10.0, 2.0), 10.0, 2.0, "none", 0.0),
    "f02": ("lognormal", (0.0, 0.5), math.exp(0.125), math.sqrt((math.exp(0.25) - 1) * math.exp(0.25)), "none", 0.0),
    "f03": ("uniform", (0.0, 100.0), 50.0, 100.0 / math.sqrt(12), "none", 0.0),
    "f04": ("exponential", (1.0,), 1.0, 1.0, "none", 0.0),
    "f05": ("gamma", (2.0, 2.0), 4.0, 2.0 * math.sqrt(2.0), "none", 0.0),
    "f06": ("student_t", (5.0,), 0.0, math.sqrt(5.0 / 3.0), "none", 0.0),
    "f07": ("beta", (2.0, 5.0), 2.0 / 7.0, math.sqrt(10.0 / (49.0 * 8.0)), "none", 0.0),
    "f08": ("mixture", (), 0.0, math.sqrt(1.0 + 4.0), "none", 0.0),  # 50/50 N(-2, 1) and N(2, 1)
    "f09": ("normal", (0.0, 5.0), 0.0, 5.0, "none", 0.0),
    "f10": ("lognormal", (1.0, 0.25), math.exp(1.03125), math.sqrt((math.exp(0.0625) - 1) * math.exp(2.0625)), "none", 0.0),
    "f11": ("normal", (0.0, 1.0), 0.0, 1.0, "shift", 0.096),  # just below the threshold
    "f12": ("normal", (0.0, 1.0), 0.0, 1.0, "shift", 0.104),  # just above it
    "f13": ("normal", (0.0, 1.0), 0.0, 1.0, "shift", 0.2),
    "f14": ("uniform", (0.0, 1.0), 0.5, 1.0 / math.sqrt(12), "shift", 0.2),
    "f15": ("exponential", (2.0,), 2.0, 2.0, "shift", 0.2),
    "f16": ("gamma", (3.0, 1.0), 3.0, math.sqrt(3.0), "shift", 0.2),
    "f17": ("normal", (5.0, 1.0), 5.0, 1.0, "scale", 1.3),
    "f18": ("uniform", (0.0, 1.0), 0.5, 1.0 / math.sqrt(12), "scale", 1.3),
    "f19": ("lognormal", (0.0, 0.5), math.exp(0.125), math.sqrt((math.exp(0.25) - 1) * math.exp(0.25)), "scale", 1.3),
}
assert len(COLUMNS) == 20

THRESHOLD = 0.1
DRIFT_SHARE = 0.5  # Evidently's DataDriftPreset: the dataset drifts when at least this share does


def designed_drift(name: str) -> bool:
    """Whether the column was built to drift (what an exact normed Wasserstein should say)."""
    _, _, _, _, change, amount = COLUMNS[name]
    return change == "scale" or (change == "shift" and amount >= THRESHOLD)


# Evidently's drift rule per method name (as its ValueDrift metric names the method):
# distances drift when the score is at least the threshold, p-values when below it.
EVIDENTLY_METHODS = {
    "Wasserstein distance (normed)": ("wasserstein", "distance"),
    "K-S p_value": ("ks", "p_value"),
    "chi-square p_value": ("chisquare", "p_value"),
    "Jensen-Shannon distance": ("jensenshannon", "distance"),
    "PSI": ("psi", "distance"),
    "Z-test p_value": ("z", "p_value"),
}


def evidently_drifted(method: str, score: float, threshold: float) -> bool:
    kind = EVIDENTLY_METHODS.get(method, (None, None))[1]
    if kind == "distance":
        return score >= threshold
    if kind == "p_value":
        return score < threshold
    raise ValueError(f"no drift rule known for Evidently method {method!r}")
