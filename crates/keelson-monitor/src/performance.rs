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

/// Classification metrics over `(truth, prediction)` pairs: accuracy, and precision, recall and
/// F1 — for the positive class `1` when every label is 0 or 1 (scikit-learn's `binary`
/// average), macro-averaged over the classes seen otherwise.
pub fn classification(pairs: &[(String, String)]) -> BTreeMap<String, f64> {
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
    metrics
}

/// ROC-AUC from class probabilities (one row per pair, one column per class of `classes`):
/// binary AUC of the second class's probability for two classes, one-vs-rest macro average for
/// more (scikit-learn's `roc_auc_score(multi_class="ovr")`). None when a class never occurs or
/// never fails to occur among the truths.
pub fn auc(truths: &[String], probabilities: &[Vec<f64>], classes: &[String]) -> Option<f64> {
    let one_vs_rest = |k: usize| {
        let labels: Vec<bool> = truths.iter().map(|t| *t == classes[k]).collect();
        let scores: Vec<f64> = probabilities.iter().map(|p| p.get(k).copied().unwrap_or(f64::NAN)).collect();
        roc_auc(&scores, &labels).ok()
    };
    match classes.len() {
        0 | 1 => None,
        2 => one_vs_rest(1),
        n => {
            let all: Option<Vec<f64>> = (0..n).map(one_vs_rest).collect();
            all.map(|v| v.iter().sum::<f64>() / n as f64)
        }
    }
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

/// Confidence-based performance estimation (CBPE) for a classifier with calibrated class
/// probabilities: each row is right with the probability of the class it predicts (the largest),
/// so the expected accuracy is the mean of the row maxima. An estimate, not a measurement; rows
/// whose probabilities are not a distribution are left out.
pub fn estimated_accuracy(probabilities: &[Vec<f64>]) -> Option<f64> {
    let maxima: Vec<f64> = probabilities
        .iter()
        .filter(|row| !row.is_empty() && row.iter().all(|p| (0.0..=1.0).contains(p)))
        .filter(|row| (row.iter().sum::<f64>() - 1.0).abs() < 1e-3)
        .map(|row| row.iter().copied().fold(0.0, f64::max))
        .collect();
    (!maxima.is_empty()).then(|| maxima.iter().sum::<f64>() / maxima.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect()
    }

    #[test]
    fn binary_metrics_follow_their_definitions() {
        let m = classification(&pairs(&[("1", "1"), ("1", "0"), ("0", "0"), ("0", "1"), ("1", "1")]));
        assert_eq!(m["accuracy"], 0.6);
        assert!((m["precision"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((m["recall"] - 2.0 / 3.0).abs() < 1e-12);
        let r = regression(&[(1.0, 2.0), (3.0, 3.0)]);
        assert!((r["rmse"] - (0.5f64).sqrt()).abs() < 1e-12);
        assert_eq!(r["mae"], 0.5);
        let estimate = estimated_accuracy(&[vec![0.1, 0.9], vec![0.8, 0.2], vec![0.5, 0.7]]).unwrap();
        assert!((estimate - 0.85).abs() < 1e-12, "{estimate}");
        let truths: Vec<String> = ["0", "1", "1", "0"].iter().map(|s| s.to_string()).collect();
        let probabilities = vec![vec![0.9, 0.1], vec![0.2, 0.8], vec![0.75, 0.25], vec![0.7, 0.3]];
        let classes = vec!["0".to_string(), "1".to_string()];
        assert_eq!(auc(&truths, &probabilities, &classes), Some(0.75));
        assert_eq!(class_of(&serde_json::json!(1.0)), Some("1".into()));
    }
}
