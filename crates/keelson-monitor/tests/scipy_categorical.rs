//! The categorical and binned drift statistics against scipy/numpy re-doing Evidently's formulas
//! (`tests/scipy/categorical.py`), and ROC-AUC against scikit-learn.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keelson_monitor::stats::binned::{counts_distance, BinnedDistance};
use keelson_monitor::stats::method::{compare, ColumnValues, Method};
use keelson_monitor::stats::text::roc_auc;
use serde_json::Value;
use std::collections::BTreeSet;
use support::{assert_close, float, floats, reference_cases, strings};

const TOLERANCE: f64 = 1e-6;

fn check(name: &str, what: &str, actual: f64, expected: f64) {
    if expected.is_nan() || expected.is_infinite() {
        assert!(
            actual.is_nan() && expected.is_nan() || actual == expected,
            "{name} {what}: got {actual}, expected {expected}"
        );
    } else {
        assert_close(actual, expected, TOLERANCE, &format!("{name} {what}"));
    }
}

#[test]
#[ignore = "needs scipy from the client venv; scripts/test runs it"]
fn categorical_and_binned_statistics_match_scipy() {
    let cases = reference_cases("categorical.py");
    let mut methods = BTreeSet::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let method_name = case["method"].as_str().unwrap();
        let kind = case["kind"].as_str().unwrap();
        methods.insert(method_name.to_string());
        let outcome = match kind {
            "roc_auc" => {
                let scores = floats(&case["reference"]);
                let labels: Vec<bool> = floats(&case["current"]).iter().map(|&l| l == 1.0).collect();
                roc_auc(&scores, &labels).map(keelson_monitor::stats::Outcome::distance)
            }
            "counts" => {
                let distance = match method_name {
                    "psi" => BinnedDistance::Psi,
                    "jensenshannon" => BinnedDistance::JensenShannon,
                    "kl_div" => BinnedDistance::KlDiv,
                    "hellinger" => BinnedDistance::Hellinger,
                    other => panic!("{name}: no fixed-layout {other}"),
                };
                let counts = |v: &Value| floats(v).iter().map(|&x| x as u64).collect::<Vec<u64>>();
                counts_distance(distance, &counts(&case["reference"]), &counts(&case["current"]))
            }
            "numeric" => {
                let method = Method::from_name(method_name).unwrap();
                let (r, c) = (floats(&case["reference"]), floats(&case["current"]));
                compare(method, ColumnValues::Numeric(&r), ColumnValues::Numeric(&c))
            }
            "categorical" => {
                let method = Method::from_name(method_name).unwrap();
                let (r, c) = (strings(&case["reference"]), strings(&case["current"]));
                let r: Vec<&str> = r.iter().map(String::as_str).collect();
                let c: Vec<&str> = c.iter().map(String::as_str).collect();
                compare(method, ColumnValues::Categorical(&r), ColumnValues::Categorical(&c))
            }
            other => panic!("{name}: unknown kind {other}"),
        };
        if case.get("not_computable").and_then(Value::as_bool) == Some(true) {
            assert!(outcome.is_err(), "{name}: expected not computable, got {outcome:?}");
            continue;
        }
        let outcome = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
        check(name, "statistic", outcome.statistic, float(&case["statistic"]));
        match &case["p_value"] {
            Value::Null => assert_eq!(outcome.p_value, None, "{name}: unexpected p-value"),
            p => check(name, "p-value", outcome.p_value.unwrap_or_else(|| panic!("{name}: no p-value")), float(p)),
        }
    }
    for expected in
        ["psi", "jensenshannon", "kl_div", "hellinger", "chisquare", "g_test", "z", "fisher_exact", "TVD", "roc_auc"]
    {
        assert!(methods.contains(expected), "no case for {expected}");
    }
}
