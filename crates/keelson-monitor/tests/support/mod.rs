//! Runs a Python script of `tests/scipy/` with the client venv's interpreter (scipy, numpy) and
//! returns the cases it prints: fixed data and the reference library's answer for each.
//!
//! The tests that use it are `#[ignore]`d, like every test that needs set-up; `scripts/test`
//! builds the venv and runs them. `KEELSON_VENV` names the venv; without it `python3` is used.

#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The cases a script prints: a JSON array of objects.
pub fn reference_cases(script: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scipy").join(script);
    let python = match std::env::var("KEELSON_VENV") {
        Ok(venv) if !venv.is_empty() => PathBuf::from(venv).join("bin/python"),
        _ => PathBuf::from("python3"),
    };
    let output = Command::new(&python)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), path.display()));
    assert!(output.status.success(), "{} failed: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    let cases: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{script}: bad JSON: {e}"));
    match cases {
        Value::Array(cases) => cases,
        other => panic!("{script} printed {other}, not an array"),
    }
}

/// A float the scripts write as a JSON number or, for what JSON cannot hold, as "nan", "inf" or
/// "-inf".
pub fn float(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => panic!("not a float: {other}"),
    }
}

pub fn floats(value: &Value) -> Vec<f64> {
    value.as_array().unwrap_or_else(|| panic!("not an array: {value}")).iter().map(float).collect()
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string())
        .collect()
}

/// Asserts `actual` is within `tolerance` of `expected`, relative above 1 and absolute below.
pub fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    let scale = expected.abs().max(1.0);
    assert!((actual - expected).abs() <= tolerance * scale, "{what}: got {actual:e}, scipy says {expected:e}");
}
