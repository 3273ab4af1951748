//! Model quality from predictions and ground truth: classification (accuracy, precision, recall,
//! F1 — binary on labels 0/1, macro-averaged otherwise — and ROC-AUC from a positive-class
//! probability) and regression (RMSE, MAE, MAPE, R²), each matching scikit-learn's definition.
//! Without labels, classifiers with calibrated probabilities get an *estimated* accuracy
//! (confidence-based: the mean probability of the predicted class).

use crate::stats::text::roc_auc;
use serde_json::Value;
use std::collections::BTreeMap;

/// A label or prediction as a class name (numbers as written, 1.0 and 1 alike).
pub fn class_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        Value::Number(n) => {
            n.as_f64().map(|f| if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { f.to_string() })
        }
        other => Some(other.to_string()),
    }
}

/// Classification metrics over `(truth, prediction)` pairs; `scores` are positive-class
/// probabilities (for AUC), aligned with the pairs when given.
pub fn classification(pairs: &[(String, String)], scores: Option<&[f64]>) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    if pairs.is_empty() {
        return metrics;
    }
    let correct = pairs.iter().filter(|(t, p)| t == p).count();
    metrics.insert("accuracy".into(), correct as f64 / pairs.len() as f64);
    let mut classes: Vec<&str> = pairs.iter().flat_map(|(t, p)| [t.as_str(), p.as_str()]).collect();
    classes.sort_unstable();
    classes.dedup();
    let binary = classes.iter().all(|c| *c == "0" || *c == "1");
    let per_class = |class: &str| {
        let tp = pairs.iter().filter(|(t, p)| t == class && p == class).count() as f64;
        let predicted = pairs.iter().filter(|(_, p)| p == class).count() as f64;
        let actual = pairs.iter().filter(|(t, _)| t == class).count() as f64;
        // scikit-learn's zero_division default: an undefined ratio counts as 0.
        let precision = if predicted > 0.0 { tp / predicted } else { 0.0 };
        let recall = if actual > 0.0 { tp / actual } else { 0.0 };
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        (precision, recall, f1)
    };
    let (precision, recall, f1) = if binary {
        per_class("1")
    } else {
        let all: Vec<(f64, f64, f64)> = classes.iter().map(|c| per_class(c)).collect();
        let n = all.len() as f64;
        (
            all.iter().map(|m| m.0).sum::<f64>() / n,
            all.iter().map(|m| m.1).sum::<f64>() / n,
            all.iter().map(|m| m.2).sum::<f64>() / n,
        )
    };
    metrics.insert("precision".into(), precision);
    metrics.insert("recall".into(), recall);
    metrics.insert("f1".into(), f1);
    if let Some(scores) = scores {
        let labels: Vec<bool> = pairs.iter().map(|(t, _)| t == "1").collect();
        if binary {
            if let Ok(outcome) = roc_auc(scores, &labels) {
                metrics.insert("auc".into(), outcome);
            }
        }
    }
    metrics
}

/// Regression metrics over `(truth, prediction)` pairs.
pub fn regression(pairs: &[(f64, f64)]) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    if pairs.is_empty() {
        return metrics;
    }
    let n = pairs.len() as f64;
    let mse = pairs.iter().map(|(t, p)| (t - p) * (t - p)).sum::<f64>() / n;
    metrics.insert("rmse".into(), mse.sqrt());
    metrics.insert("mae".into(), pairs.iter().map(|(t, p)| (t - p).abs()).sum::<f64>() / n);
    // scikit-learn's mean_absolute_percentage_error: |t - p| / max(|t|, eps).
    metrics
        .insert("mape".into(), pairs.iter().map(|(t, p)| (t - p).abs() / t.abs().max(f64::EPSILON)).sum::<f64>() / n);
    let mean = pairs.iter().map(|(t, _)| t).sum::<f64>() / n;
    let total = pairs.iter().map(|(t, _)| (t - mean) * (t - mean)).sum::<f64>();
    let residual = pairs.iter().map(|(t, p)| (t - p) * (t - p)).sum::<f64>();
    if total > 0.0 {
        metrics.insert("r2".into(), 1.0 - residual / total);
    }
    metrics
}

/// Confidence-based performance estimation for a binary classifier with calibrated
/// probabilities: the expected accuracy of thresholding at 0.5, which is the mean confidence of
/// the predicted class. An estimate, not a measurement.
pub fn estimated_accuracy(probabilities: &[f64]) -> Option<f64> {
    let valid: Vec<f64> = probabilities.iter().copied().filter(|p| (0.0..=1.0).contains(p)).collect();
    (!valid.is_empty()).then(|| valid.iter().map(|p| p.max(1.0 - p)).sum::<f64>() / valid.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect()
    }

    #[test]
    fn binary_metrics_follow_their_definitions() {
        let m = classification(&pairs(&[("1", "1"), ("1", "0"), ("0", "0"), ("0", "1"), ("1", "1")]), None);
        assert_eq!(m["accuracy"], 0.6);
        assert!((m["precision"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((m["recall"] - 2.0 / 3.0).abs() < 1e-12);
        let r = regression(&[(1.0, 2.0), (3.0, 3.0)]);
        assert!((r["rmse"] - (0.5f64).sqrt()).abs() < 1e-12);
        assert_eq!(r["mae"], 0.5);
        // (0.9 + (1 − 0.2)) / 2 is 0.8500000000000001 in floats.
        assert!((estimated_accuracy(&[0.9, 0.2]).unwrap() - 0.85).abs() < 1e-12);
        assert_eq!(estimated_accuracy(&[1.5]), None);
        assert_eq!(class_of(&serde_json::json!(1.0)), Some("1".into()));
    }
}
