//! A monitor's reference, summarised once: the profile of every comparable column of the
//! reference dataset version (with the fixed histogram layout windows are binned into) and the
//! thresholds learned from its chunks. Runs compare each window's profile with it and never read
//! the reference data again.
//!
//! It is stored as an artifact whose key is a digest of everything that shapes it (dataset,
//! version, text columns, methods, learned-threshold settings), so monitors sharing a reference
//! share the summary, and a concurrent second build writes the same bytes.

use crate::drift::{distinct_union, learned_threshold, ColumnSource, DriftOptions, DriftResult, Learn};
use crate::error::MonitorError;
use crate::profile::{ColumnProfile, FrameProfile};
use crate::sample::{ColumnKind, ColumnSample, Values};
use crate::stats::method::{default_method, Method};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const REFERENCES_PREFIX: &str = "monitoring/references";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LearnedThreshold {
    pub method: Method,
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReference {
    pub dataset: String,
    pub version: i64,
    pub profile: FrameProfile,
    /// Column → the threshold learned for the method the reference alone selects.
    #[serde(default)]
    pub learned: BTreeMap<String, LearnedThreshold>,
}

/// The artifact key of the summary for this reference and these settings.
pub fn reference_key(dataset: &str, version: i64, options: &DriftOptions, learn: Option<Learn>) -> String {
    let shape = serde_json::json!({
        "dataset": dataset, "version": version, "options": options,
        "learn": learn.map(|l| (l.chunks, l.k)), "format": 1,
    });
    let digest = Sha256::digest(shape.to_string().as_bytes());
    format!("{REFERENCES_PREFIX}/{dataset}/{version}/{}.json", hex::encode(&digest[..12]))
}

/// Profiles every comparable column of `source` (a reference dataset version), one column at a
/// time, and learns thresholds when asked.
pub fn summarise(
    dataset: &str,
    version: i64,
    source: &dyn ColumnSource,
    options: &DriftOptions,
    learn: Option<Learn>,
) -> Result<StoredReference, MonitorError> {
    let mut columns = Vec::new();
    let mut learned = BTreeMap::new();
    let mut rows = 0;
    for (name, kind) in source.columns() {
        let Some(kind) = kind else { continue };
        let sample = source.read(&name, kind)?;
        rows = rows.max(sample.rows);
        if let Some(learn) = learn {
            let method = options
                .method_for(&name, kind)
                .unwrap_or_else(|| default_method(kind, sample.values.len(), distinct_union(&sample, &sample)));
            if let Some(threshold) = learned_threshold(&sample, method, learn) {
                learned.insert(name.clone(), LearnedThreshold { method, threshold });
            }
        }
        columns.push(ColumnProfile::reference(&sample));
    }
    Ok(StoredReference { dataset: dataset.to_string(), version, profile: FrameProfile { columns, rows }, learned })
}

/// A window's profile in the reference's layout, column by column, and the raw samples of the
/// columns in `keep` (score columns need their values).
pub fn profile_window(
    source: &dyn ColumnSource,
    reference: &FrameProfile,
    keep: &[String],
) -> Result<(FrameProfile, Vec<ColumnSample>), MonitorError> {
    let mut columns = Vec::new();
    let mut kept = Vec::new();
    let mut rows = 0;
    for (name, kind) in source.columns() {
        let Some(kind) = kind else { continue };
        let mut sample = source.read(&name, kind)?;
        if kind != ColumnKind::Numeric && reference.column(&name).is_some_and(|c| c.kind == ColumnKind::Numeric) {
            sample = as_numbers(sample);
        }
        rows = rows.max(sample.rows);
        columns.push(match reference.column(&name) {
            Some(layout) => ColumnProfile::with_layout(&sample, layout),
            None => ColumnProfile::reference(&sample),
        });
        if keep.contains(&name) {
            kept.push(sample);
        }
    }
    Ok((FrameProfile { columns, rows }, kept))
}

/// A text column where the reference has numbers: what parses as a number is one, the rest are
/// type errors (a feature that arrives as "n/a" instead of a value).
fn as_numbers(sample: ColumnSample) -> ColumnSample {
    let Values::Strings(texts) = &sample.values else { return sample };
    let parsed: Vec<Option<f64>> = texts.iter().map(|t| t.trim().parse::<f64>().ok()).collect();
    let mut numeric = ColumnSample::numeric(&sample.name, parsed.iter().flatten().map(|v| Some(*v)));
    numeric.type_errors = parsed.iter().filter(|v| v.is_none()).count() as u64;
    numeric.nulls += sample.nulls;
    numeric.rows = sample.rows;
    numeric
}

/// Replaces fixed thresholds by learned ones where the column was compared with the method the
/// threshold was learned for.
pub fn apply_learned(drift: &mut DriftResult, learned: &BTreeMap<String, LearnedThreshold>) {
    for column in &mut drift.columns {
        if let Some(learned) = learned.get(&column.column).filter(|l| l.method == column.method) {
            column.threshold = learned.threshold;
            column.drifted = column.score.is_some_and(|s| column.method.drifted(s, learned.threshold));
        }
    }
    drift.recount();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::{compare_sources, InMemory};
    use crate::profile::compare_frame_profiles;

    fn column(name: &str, values: impl Iterator<Item = f64>) -> ColumnSample {
        ColumnSample::numeric(name, values.map(Some))
    }

    #[test]
    fn a_stored_reference_judges_windows_as_the_raw_reference_does() {
        let reference = InMemory(vec![
            column("x", (0..3_000).map(|i| ((i * 7919) % 3_000) as f64 / 3_000.0)),
            column("y", (0..3_000).map(|i| (i % 10) as f64)),
        ]);
        let window = vec![
            column("x", (0..800).map(|i| 0.2 + ((i * 31) % 800) as f64 / 800.0)),
            column("y", (0..800).map(|i| (i % 10) as f64)),
        ];
        let options = DriftOptions::default();
        let stored = summarise("ref", 1, &reference, &options, None).unwrap();
        let text = serde_json::to_string(&stored).unwrap();
        let stored: StoredReference = serde_json::from_str(&text).unwrap();
        let (current, kept) = profile_window(&InMemory(window.clone()), &stored.profile, &["y".into()]).unwrap();
        assert_eq!(kept.len(), 1);
        let from_profiles = compare_frame_profiles(&stored.profile, &current, &options).unwrap();
        let raw = compare_sources(&reference, &InMemory(window), &options, None).unwrap();
        assert_eq!(
            from_profiles.columns.iter().map(|c| (c.drifted, c.method)).collect::<Vec<_>>(),
            raw.columns.iter().map(|c| (c.drifted, c.method)).collect::<Vec<_>>()
        );
        // Equal but for summation order (the raw path sorts its columns first).
        let (a, b) = (from_profiles.columns[0].score.unwrap(), raw.columns[0].score.unwrap());
        assert!((a - b).abs() < 1e-12 * b.abs(), "{a} vs {b}");
    }

    #[test]
    fn keys_follow_what_shapes_the_summary() {
        let options = DriftOptions::default();
        let a = reference_key("d", 1, &options, None);
        assert_eq!(a, reference_key("d", 1, &options, None));
        assert_ne!(a, reference_key("d", 2, &options, None));
        assert_ne!(a, reference_key("d", 1, &options, Some(Learn { chunks: 10, k: 3.0 })));
        assert!(a.starts_with("monitoring/references/d/1/"));
    }
}
