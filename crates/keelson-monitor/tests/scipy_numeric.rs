//! Every numeric drift statistic against scipy 1.17 on the cases `tests/scipy/numeric.py` prints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keelson_monitor::stats::numeric;
use keelson_monitor::stats::{NotComputable, Outcome};
use std::collections::BTreeMap;

type Method = fn(&[f64], &[f64]) -> Result<Outcome, NotComputable>;

const TOLERANCE: f64 = 1e-6;

fn method(name: &str) -> Method {
    match name {
        "ks" => numeric::ks,
        "wasserstein" => numeric::wasserstein,
        "wasserstein_normed" => numeric::wasserstein_normed,
        "anderson" => numeric::anderson,
        "cramer_von_mises" => numeric::cramer_von_mises,
        "energy_distance" => numeric::energy_distance,
        "t_test" => numeric::t_test,
        "welch_t_test" => numeric::welch_t_test,
        "mann_whitney" => numeric::mann_whitney,
        "mann_whitney_less" => numeric::mann_whitney_less,
        other => panic!("numeric.py names an unknown method {other}"),
    }
}

/// Infinities (a t statistic of two different constant columns) must match exactly.
fn check(actual: f64, expected: f64, what: &str) {
    if expected.is_infinite() {
        assert_eq!(actual, expected, "{what}");
    } else {
        support::assert_close(actual, expected, TOLERANCE, what);
    }
}

#[test]
#[ignore = "needs scipy from the client venv; scripts/test runs it"]
fn numeric_statistics_match_scipy() {
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in support::reference_cases("numeric.py") {
        let name = case["name"].as_str().unwrap().to_string();
        let method_name = case["method"].as_str().unwrap().to_string();
        let what = format!("{method_name} on {name}");
        let reference = support::floats(&case["reference"]);
        let current = support::floats(&case["current"]);
        let outcome = method(&method_name)(&reference, &current);
        // Collect every mismatch, so one run shows them all.
        if std::panic::catch_unwind(|| check_case(&case, outcome, &what)).is_err() {
            failures.push(what);
        }
        *checked.entry(method_name).or_default() += 1;
    }
    assert!(failures.is_empty(), "{} cases differ from scipy: {failures:#?}", failures.len());
    for name in [
        "ks",
        "wasserstein",
        "wasserstein_normed",
        "anderson",
        "cramer_von_mises",
        "energy_distance",
        "t_test",
        "welch_t_test",
        "mann_whitney",
        "mann_whitney_less",
    ] {
        assert!(checked.get(name).copied().unwrap_or(0) > 0, "no case checked {name}");
    }
}

fn check_case(case: &serde_json::Value, outcome: Result<Outcome, NotComputable>, what: &str) {
    if case.get("not_computable").and_then(|v| v.as_bool()) == Some(true) {
        assert!(outcome.is_err(), "{what}: scipy has no answer, we gave {outcome:?}");
        return;
    }
    let outcome = outcome.unwrap_or_else(|e| panic!("{what}: {e}"));
    check(outcome.statistic, support::float(&case["statistic"]), &format!("{what}: statistic"));
    match (&case["p_value"], outcome.p_value) {
        (serde_json::Value::Null, None) => {}
        (expected, Some(p)) if !expected.is_null() => check(p, support::float(expected), &format!("{what}: p-value")),
        (expected, got) => panic!("{what}: p-value {got:?}, scipy says {expected}"),
    }
}
