"""Reference answers for the categorical and binned drift statistics (tests/scipy_categorical.rs).

Evidently is not installed in the client venv, so the few lines of each Evidently stattest
(evidently 0.7, legacy/calculations/stattests/) are re-done here with numpy, pandas and scipy;
each function names the Evidently function it mirrors. Prints a JSON array of cases:
{"name", "method", "kind", "reference", "current", "statistic", "p_value" | null} or
{"not_computable": true}. Floats JSON cannot hold are written "nan", "inf", "-inf".

kind: "numeric" / "categorical" (compare() on samples), "counts" (two count vectors over the
same bins), "roc_auc" (reference = scores, current = 0/1 labels).
"""

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance
from sklearn.metrics import roc_auc_score


def num(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


# --- utils.get_binned_data ------------------------------------------------------------------

def fill_zeroes(percents):
    # The zero filling at the end of get_binned_data, one side at a time.
    nonzero = percents[percents != 0]
    smallest = nonzero.min()
    value = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    out = percents.copy()
    np.place(out, out == 0, value)
    return out


def binned(ref, cur, numeric, fill):
    # get_binned_data: Sturges bins over both samples for a numeric column whose reference has
    # more than 20 distinct values, else one bin per distinct value of either side.
    ref, cur = pd.Series(ref), pd.Series(cur)
    if numeric and ref.nunique() > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref.values, cur.values]), bins="sturges")
        rp = np.histogram(ref, edges)[0] / len(ref)
        cp = np.histogram(cur, edges)[0] / len(cur)
    else:
        keys = sorted(set(ref.unique()) | set(cur.unique()))
        rc, cc = ref.value_counts(), cur.value_counts()
        rp = np.array([rc.get(k, 0) / len(ref) for k in keys])
        cp = np.array([cc.get(k, 0) / len(cur) for k in keys])
    if fill:
        rp, cp = fill_zeroes(rp), fill_zeroes(cp)
    return rp, cp


def psi_of(rp, cp):
    # psi._psi
    return float(np.sum((rp - cp) * np.log(rp / cp)))


def psi(ref, cur, numeric):
    return psi_of(*binned(ref, cur, numeric, True))


def jensenshannon(ref, cur, numeric):
    # jensenshannon._jensenshannon: no zero filling, natural log (base=None)
    rp, cp = binned(ref, cur, numeric, False)
    return float(distance.jensenshannon(rp, cp))


def kl_div(ref, cur, numeric):
    # kl_div._kl_div
    rp, cp = binned(ref, cur, numeric, True)
    return float(stats.entropy(rp, cp))


def hellinger(ref, cur, numeric):
    # hellinger_distance._hellinger_distance
    ref, cur = pd.Series(ref), pd.Series(cur)
    keys = sorted(set(ref.unique()) | set(cur.unique()))
    if not numeric:
        rs = ref.value_counts() / len(ref)
        cs = cur.value_counts() / len(cur)
        h = sum(math.sqrt(float(rs.get(k, 0)) * float(cs.get(k, 0))) for k in keys)
    else:
        edges = np.histogram_bin_edges(keys, bins="sturges")
        h1 = np.histogram(ref.to_numpy(), bins=edges, density=True)[0]
        h2 = np.histogram(cur.to_numpy(), bins=edges, density=True)[0]
        width = (max(edges) - min(edges)) / (len(edges) - 1)
        h = sum(math.sqrt(float(a) * float(b)) * width for a, b in zip(h1, h2))
    return math.sqrt(1 - float(np.clip(h, 0, 1)))


# --- categorical tests ----------------------------------------------------------------------

def counts(ref, cur):
    keys = sorted(set(ref) | set(cur))
    rc, cc = Counter(ref), Counter(cur)
    return keys, [rc[k] for k in keys], [cc[k] for k in keys]


def chisquare(ref, cur):
    # chisquare_stattest._chi_stat_test: expected = reference counts × (current / reference size)
    keys, r, c = counts(ref, cur)
    k_norm = len(cur) / len(ref)
    res = stats.chisquare(c, [x * k_norm for x in r])
    return float(res.statistic), float(res.pvalue)


def g_test(ref, cur):
    # g_stattest._g_stat_test passes the raw reference counts, which scipy accepts only for equal
    # sample sizes; Keelson scales them to the current total (identical for equal sizes).
    keys, r, c = counts(ref, cur)
    k_norm = len(cur) / len(ref)
    res = stats.power_divergence(c, [x * k_norm for x in r], lambda_="log-likelihood")
    return float(res.statistic), float(res.pvalue)


def z_test(ref, cur):
    # z_stattest._z_stat_test with proportions_diff_z_stat_ind / proportions_diff_z_test
    ref, cur = pd.Series(ref), pd.Series(cur)
    if ref.nunique() == 1 and cur.nunique() == 1 and ref.unique()[0] == cur.unique()[0]:
        return 0.0, 1.0
    first = sorted(set(ref.unique()) | set(cur.unique()))[0]
    a = ref.apply(lambda x: 0 if x == first else 1)
    b = cur.apply(lambda x: 0 if x == first else 1)
    n1, n2 = len(a), len(b)
    p1, p2 = float(sum(a)) / n1, float(sum(b)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(z), float(2 * (1 - stats.norm.cdf(np.abs(z))))


def fisher(ref, cur):
    # fisher_exact_stattest + utils.generate_fisher2x2_contingency_table: table
    # [[current ones, current zeros], [reference ones, reference zeros]]; the second category
    # (sorted) is "one" here, where Evidently's set order decides (the p-value does not depend on it).
    keys = sorted(set(ref) | set(cur))
    one = keys[1] if len(keys) == 2 else None
    table = [
        [sum(v == one for v in cur), sum(v != one for v in cur)],
        [sum(v == one for v in ref), sum(v != one for v in ref)],
    ]
    res = stats.fisher_exact(table)
    return float(res.statistic), float(res.pvalue)


def tvd_scaled(r, c, n_ref, n_cur):
    # 2 · R · C · TVD as an integer, for exact comparisons
    return sum(abs(x * n_cur - y * n_ref) for x, y in zip(r, c))


def tvd(ref, cur):
    # tvd_stattest._tvd_stattest + utils.permutation_test (seed 0, 1000 iterations); distances
    # compared exactly where Evidently compares floats.
    keys, r, c = counts(ref, cur)
    statistic = 0.5 * np.sum(np.abs(np.array(r) / sum(r) - np.array(c) / sum(c)))
    observed = tvd_scaled(r, c, len(ref), len(cur))
    combined = list(ref) + list(cur)
    total = Counter(combined)
    np.random.seed(0)
    at_least = 0
    for _ in range(1000):
        new_ref = Counter(np.random.choice(combined, len(ref), replace=False).tolist())
        nr = [new_ref[k] for k in keys]
        nc = [total[k] - new_ref[k] for k in keys]
        at_least += observed <= tvd_scaled(nr, nc, len(ref), len(cur))
    return float(statistic), at_least / 1000


# --- cases ----------------------------------------------------------------------------------

cases = []


def add(name, method, kind, ref, cur, statistic=None, p_value=None, not_computable=False):
    case = {"name": name, "method": method, "kind": kind, "reference": list(ref), "current": list(cur)}
    if not_computable:
        case["not_computable"] = True
    else:
        case["statistic"] = num(statistic)
        case["p_value"] = None if p_value is None else num(p_value)
    cases.append(case)


rng = np.random.default_rng(20240611)


def dyadic(x):
    # multiples of 1/16: exact in JSON and in binary
    return [float(v) for v in np.round(np.asarray(x) * 16) / 16]


numeric_sets = {
    "normal_shift": (dyadic(rng.normal(0, 1, 200)), dyadic(rng.normal(0.4, 1.2, 150))),
    "small": (dyadic(rng.normal(0, 1, 25)), dyadic(rng.normal(0.5, 1, 10))),
    "large": (dyadic(rng.normal(10, 3, 5000)), dyadic(rng.normal(10.5, 3, 4000))),
    "same": (dyadic(rng.normal(0, 1, 300)), dyadic(rng.normal(0, 1, 300))),
    "few_values_unseen": ([float(v) for v in rng.integers(0, 5, 300)], [float(v) for v in rng.integers(0, 7, 200)]),
    "few_values_missing": ([float(v) for v in rng.integers(0, 6, 100)], [float(v) for v in rng.integers(0, 3, 80)]),
    "twenty_values": ([float(v) for v in np.arange(20).repeat(3)], [float(v) for v in rng.integers(0, 25, 50)]),
    "twenty_one_values": ([float(v) for v in np.arange(21).repeat(3)], [float(v) for v in rng.integers(0, 25, 50)]),
}
for name, (ref, cur) in numeric_sets.items():
    for method, fn in [("psi", psi), ("jensenshannon", jensenshannon), ("kl_div", kl_div), ("hellinger", hellinger)]:
        add(f"numeric_{name}_{method}", method, "numeric", ref, cur, fn(ref, cur, True))

few = numeric_sets["few_values_unseen"]
add("numeric_few_values_chisquare", "chisquare", "numeric", *few, *chisquare(*few))
add("numeric_few_values_tvd", "TVD", "numeric", *few, *tvd(*few))
binary_numeric = ([float(v) for v in rng.integers(0, 2, 120)], [float(v) for v in (rng.random(90) < 0.65)])
add("numeric_binary_z", "z", "numeric", *binary_numeric, *z_test(*binary_numeric))


def draw(labels, weights, n):
    p = np.array(weights, dtype=float) / sum(weights)
    return [str(v) for v in rng.choice(labels, n, p=p)]


cat_sets = {
    "same": (draw(["a", "b", "c"], [5, 3, 2], 400), draw(["a", "b", "c"], [5, 3, 2], 300)),
    "shifted": (draw(["a", "b", "c", "d"], [4, 3, 2, 1], 500), draw(["a", "b", "c", "d"], [2, 3, 3, 2], 350)),
    "missing_in_current": (draw(["red", "green", "blue"], [2, 2, 1], 200), draw(["red", "green"], [1, 1], 150)),
    "small": (draw(["x", "y", "z"], [1, 1, 1], 12), draw(["x", "y", "z"], [3, 1, 1], 9)),
    "equal_sizes": (draw(["p", "q", "r", "s"], [1, 2, 3, 4], 250), draw(["p", "q", "r", "s"], [2, 2, 3, 3], 250)),
}
for name, (ref, cur) in cat_sets.items():
    for method, fn in [("psi", psi), ("jensenshannon", jensenshannon), ("kl_div", kl_div), ("hellinger", hellinger)]:
        add(f"categorical_{name}_{method}", method, "categorical", ref, cur, fn(ref, cur, False))
    add(f"categorical_{name}_chisquare", "chisquare", "categorical", ref, cur, *chisquare(ref, cur))
    add(f"categorical_{name}_g_test", "g_test", "categorical", ref, cur, *g_test(ref, cur))
    add(f"categorical_{name}_z", "z", "categorical", ref, cur, *z_test(ref, cur))
    add(f"categorical_{name}_tvd", "TVD", "categorical", ref, cur, *tvd(ref, cur))

unseen = (draw(["a", "b", "c"], [3, 2, 1], 200), draw(["a", "b", "c", "new"], [3, 2, 1, 1], 180))
for method, fn in [("psi", psi), ("jensenshannon", jensenshannon), ("kl_div", kl_div), ("hellinger", hellinger)]:
    add(f"categorical_unseen_{method}", method, "categorical", *unseen, fn(*unseen, False))
add("categorical_unseen_chisquare", "chisquare", "categorical", *unseen, *chisquare(*unseen))
add("categorical_unseen_g_test", "g_test", "categorical", *unseen, *g_test(*unseen))
add("categorical_unseen_tvd", "TVD", "categorical", *unseen, *tvd(*unseen))

binary_sets = {
    "balanced": (draw(["no", "yes"], [1, 1], 150), draw(["no", "yes"], [1, 1.5], 120)),
    "imbalanced": (["ok"] * 990 + ["fail"] * 10, ["ok"] * 950 + ["fail"] * 50),
    "small": (["x"] * 3 + ["y"] * 1, ["x"] * 1 + ["y"] * 4),
    "tiny_unequal": (["a"] * 2 + ["b"] * 5, ["a"] * 4 + ["b"] * 1),
    "only_in_current": (["a"] * 8, ["a"] * 5 + ["b"] * 3),
    "large": (draw(["u", "v"], [3, 7], 3000), draw(["u", "v"], [3.3, 6.7], 2500)),
}
for name, (ref, cur) in binary_sets.items():
    add(f"binary_{name}_z", "z", "categorical", ref, cur, *z_test(ref, cur))
    add(f"binary_{name}_fisher", "fisher_exact", "categorical", ref, cur, *fisher(ref, cur))
    add(f"binary_{name}_tvd", "TVD", "categorical", ref, cur, *tvd(ref, cur))
    add(f"binary_{name}_chisquare", "chisquare", "categorical", ref, cur, *chisquare(ref, cur))

constant = (["a"] * 10, ["a"] * 7)
add("constant_same_z", "z", "categorical", *constant, *z_test(*constant))
add("constant_same_fisher", "fisher_exact", "categorical", *constant, *fisher(*constant))
add("constant_same_chisquare", "chisquare", "categorical", *constant, not_computable=True)
add("constant_same_psi", "psi", "categorical", *constant, psi(*constant, False))
add("fisher_three_categories", "fisher_exact", "categorical", ["a", "b"], ["c"], not_computable=True)
add("empty_reference_chisquare", "chisquare", "categorical", [], ["a"], not_computable=True)
add("empty_current_z", "z", "categorical", ["a"], [], not_computable=True)
add("empty_current_psi", "psi", "numeric", [1.0, 2.0], [], not_computable=True)

# Fixed bin layout (a stored reference histogram): counts over the same bins.
fixed = ([10, 20, 0, 5, 65], [12, 18, 3, 0, 40])
for method in ["psi", "jensenshannon", "kl_div", "hellinger"]:
    rp, cp = np.array(fixed[0]) / sum(fixed[0]), np.array(fixed[1]) / sum(fixed[1])
    if method in ("psi", "kl_div"):
        rp, cp = fill_zeroes(rp), fill_zeroes(cp)
    value = {
        "psi": lambda: psi_of(rp, cp),
        "jensenshannon": lambda: float(distance.jensenshannon(rp, cp)),
        "kl_div": lambda: float(stats.entropy(rp, cp)),
        "hellinger": lambda: math.sqrt(1 - float(np.clip(np.sum(np.sqrt(rp * cp)), 0, 1))),
    }[method]()
    add(f"counts_{method}", method, "counts", [float(v) for v in fixed[0]], [float(v) for v in fixed[1]], value)

# sklearn ROC-AUC, ties included.
auc_sets = [
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]),
    ([0.5, 0.5, 0.5, 0.5, 0.2, 0.9], [1, 0, 1, 0, 0, 1]),
    ([float(v) for v in np.round(rng.random(200), 1)], [int(v) for v in rng.integers(0, 2, 200)]),
    ([float(v) for v in rng.random(150)], [int(v) for v in (rng.random(150) < 0.2)]),
]
for i, (scores, labels) in enumerate(auc_sets):
    add(f"roc_auc_{i}", "roc_auc", "roc_auc", scores, [float(v) for v in labels], roc_auc_score(labels, scores))

print(json.dumps(cases))
