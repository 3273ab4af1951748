"""Reference answers for the numeric drift statistics: fixed seeded samples and what scipy
(and Evidently's wrappers around it) returns for each method. Prints a JSON array of cases."""

import json
import math
import warnings

import numpy as np
from scipy import stats


def test(result):
    return result.statistic, result.pvalue


def wasserstein_normed(ref, cur):
    # Evidently's `wasserstein` stattest: the distance over the reference's std, floored at 0.001.
    return stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001), None


METHODS = {
    "ks": lambda r, c: test(stats.ks_2samp(r, c)),
    "wasserstein": lambda r, c: (stats.wasserstein_distance(r, c), None),
    "wasserstein_normed": wasserstein_normed,
    # Default arguments, as Evidently calls it (midrank, p-value interpolated and capped).
    "anderson": lambda r, c: test(stats.anderson_ksamp([r, c])),
    "cramer_von_mises": lambda r, c: test(stats.cramervonmises_2samp(r, c)),
    "energy_distance": lambda r, c: (stats.energy_distance(r, c), None),
    "t_test": lambda r, c: test(stats.ttest_ind(r, c)),
    "welch_t_test": lambda r, c: test(stats.ttest_ind(r, c, equal_var=False)),
    "mann_whitney": lambda r, c: test(stats.mannwhitneyu(r, c)),
    "mann_whitney_less": lambda r, c: test(stats.mannwhitneyu(r, c, alternative="less")),
}


def encode(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def samples():
    rng = np.random.default_rng(20240611)

    # Fewer decimals for the big samples keep the JSON small.
    def normal(n, loc=0.0, scale=1.0):
        return np.round(rng.normal(loc, scale, n), 6 if n < 1000 else 3)

    def ints(n, lam=3.0):
        return rng.poisson(lam, n).astype(float)

    yield "tiny 1 vs 1", normal(1), normal(1)
    yield "tiny 1 vs 3", normal(1), normal(3)
    yield "tiny 2 vs 2", normal(2), normal(2)
    yield "tiny 3 vs 5", normal(3), normal(5, 0.5)
    yield "tiny 5 vs 4", normal(5), normal(4)
    yield "small ties 6 vs 7", ints(6, 2.0), ints(7, 2.0)
    yield "small ties 12 vs 15", ints(12, 2.0), ints(15, 3.0)
    yield "exact 8 vs 8", normal(8), normal(8, 0.7)
    yield "exact 9 vs 12", normal(9), normal(12, 0.3, 1.5)
    yield "exact 10 vs 13", normal(10), normal(13)
    yield "exact 15 vs 20", normal(15), normal(20, 1.0)
    yield "exact 20 vs 20", normal(20), normal(20, 0.2)
    yield "exact 20 vs 17", rng.exponential(1.0, 20).round(6), rng.exponential(1.3, 17).round(6)
    yield "exact 6 vs 40", normal(6), normal(40, 0.4)
    yield "mwu exact 7 vs 500", normal(7), normal(500, 0.3)
    yield "100 vs 100", normal(100), normal(100)
    yield "100 vs 130 shifted", normal(100), normal(130, 0.4)
    yield "300 vs 200 scaled", normal(300), normal(200, 0.0, 2.0)
    yield "3000 vs 3000 scaled", normal(3000), normal(3000, 0.0, 1.1)
    yield "3000 vs 2500 shifted", normal(3000), normal(2500, 0.05)
    yield "50 vs 3000 lognormal", rng.lognormal(0, 1, 50).round(6), rng.lognormal(0.2, 1, 3000).round(6)
    shared = normal(40)
    yield "identical 40", shared, shared.copy()
    yield "integers many ties 200 vs 250", ints(200), ints(250, 3.5)
    yield "one constant side", np.full(10, 5.0), normal(12, 5.0)
    yield "constant current", normal(12, 5.0), np.full(9, 5.0)
    yield "both constant equal", np.full(8, 2.0), np.full(9, 2.0)
    yield "both constant different", np.full(6, 1.0), np.full(7, 3.0)


def large_samples():
    """Past 10000 values KS switches to its asymptotic p-value; these run for KS only, as the other
    methods have no size threshold there and the JSON would grow tenfold."""
    rng = np.random.default_rng(20240612)
    ints = lambda n, lam: rng.poisson(lam, n).astype(float)
    normal = lambda n, loc=0.0: np.round(rng.normal(loc, 1.0, n), 3)
    yield "asymptotic 12000 vs 15000 ints", ints(12000, 3.0), ints(15000, 3.02)
    yield "asymptotic 11000 vs 10500 shifted ints", ints(11000, 10.0), ints(10500, 10.3)
    yield "asymptotic 150 vs 11000", normal(150), normal(11000, 0.1)
    yield "asymptotic 100 vs 10500", normal(100), normal(10500, 0.25)
    yield "asymptotic 30 vs 12000 far", normal(30, 3.0), normal(12000)
    yield "asymptotic 2 vs 10001", normal(2), normal(10001)
    # The largest sizes that still take the exact path, unequal (lcm 70 010 000).
    yield "exact edge 10000 vs 7001 ints", ints(10000, 1.0), ints(7001, 1.03)


def main():
    cases = []
    runs = [(s, METHODS) for s in samples()] + [(s, ["ks"]) for s in large_samples()]
    for (name, ref, cur), methods in runs:
        for method in methods:
            fn = METHODS[method]
            case = {"name": name, "method": method, "reference": ref.tolist(), "current": cur.tolist()}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    statistic, p_value = fn(ref, cur)
            except (ValueError, ZeroDivisionError, IndexError, FloatingPointError) as e:
                case["not_computable"] = True
                case["error"] = str(e)
            else:
                values = [statistic] + ([] if p_value is None else [p_value])
                if any(math.isnan(float(v)) for v in values):
                    case["not_computable"] = True
                else:
                    case["statistic"] = encode(statistic)
                    case["p_value"] = None if p_value is None else encode(p_value)
            cases.append(case)
    for bad in (["nan", 1.0, 2.0], [1.0, "inf"], ["-inf", 0.5], []):
        for method in METHODS:
            cases.append({"name": f"invalid {bad}", "method": method, "reference": bad,
                          "current": [0.1, 0.2, 0.3], "not_computable": True})
            cases.append({"name": f"invalid current {bad}", "method": method,
                          "reference": [0.1, 0.2, 0.3], "current": bad, "not_computable": True})
    print(json.dumps(cases))


if __name__ == "__main__":
    main()
