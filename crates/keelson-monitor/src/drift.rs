//! Drift between a reference and a current data set, column by column: the method each column is
//! compared with (Evidently's default rules unless the caller names one), its score and verdict,
//! summaries and chart data of both sides, and the dataset-level verdict (the share of drifted
//! columns against `drift_share`).
//!
//! Columns are compared in parallel, each reading only its own two columns, so memory holds a
//! few columns at a time whatever the width of the tables.

use crate::error::MonitorError;
use crate::sample::{ColumnKind, ColumnSample, Values};
use crate::stats::method::{compare, default_method, score, ColumnValues, Method};
use crate::stats::numeric::{mean_and_std, sorted};
use crate::stats::{NotComputable, Outcome};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Evidently's default share of drifted columns that makes the dataset drift.
pub const DEFAULT_DRIFT_SHARE: f64 = 0.5;
/// Bars in a numeric column's chart.
const CHART_BINS: usize = 20;
/// Categories shown in a categorical column's chart.
const CHART_CATEGORIES: usize = 20;

/// A method (and threshold) chosen for one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnOptions {
    #[serde(default)]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// How a drift comparison is made; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftOptions {
    /// Columns to compare; default every comparable column the two sides share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// String columns holding free text (compared by a domain classifier).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_columns: Vec<String>,
    /// A method for every numeric column, categorical column, or text column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorical_method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_method: Option<Method>,
    /// A threshold for every column whose method has no threshold of its own here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_column: BTreeMap<String, ColumnOptions>,
    /// Share of drifted columns at which the dataset counts as drifted (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
}

impl DriftOptions {
    pub fn check(&self) -> Result<(), MonitorError> {
        let share = self.drift_share.unwrap_or(DEFAULT_DRIFT_SHARE);
        if !(share > 0.0 && share <= 1.0) {
            return Err(MonitorError::invalid(format!("`drift_share` must be in (0, 1], not {share}")));
        }
        let thresholds =
            self.threshold.iter().map(|t| ("threshold".to_string(), *t)).chain(self.per_column.iter().filter_map(
                |(column, options)| options.threshold.map(|t| (format!("per_column.{column}.threshold"), t)),
            ));
        for (field, threshold) in thresholds {
            if !threshold.is_finite() || threshold < 0.0 {
                return Err(MonitorError::invalid(format!(
                    "`{field}` must be a finite number of 0 or more, not {threshold}"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn method_for(&self, column: &str, kind: ColumnKind) -> Option<Method> {
        self.per_column.get(column).and_then(|o| o.method).or(match kind {
            ColumnKind::Numeric => self.numeric_method,
            ColumnKind::Categorical => self.categorical_method,
            ColumnKind::Text => self.text_method,
        })
    }

    pub(crate) fn threshold_for(&self, column: &str) -> Option<f64> {
        self.per_column.get(column).and_then(|o| o.threshold).or(self.threshold)
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A side's summary of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideSummary {
    pub rows: u64,
    pub missing: u64,
    pub nulls: u64,
    pub nans: u64,
    pub infinities: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub type_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct: Option<u64>,
}

/// What a chart of the column shows: shared bins (numeric) or the most frequent categories.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Chart {
    Histogram { edges: Vec<f64>, reference: Vec<u64>, current: Vec<u64> },
    Categories { categories: Vec<String>, reference: Vec<u64>, current: Vec<u64> },
}

/// Data quality of the current side of a column, measured against the reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ColumnQuality {
    /// Share of current rows without a usable value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_share: Option<f64>,
    /// Share of current rows of a numeric column holding a value of another type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_error_share: Option<f64>,
    /// Share of current numeric values outside the reference's [min, max].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range_share: Option<f64>,
    /// Share of current categorical values the reference never had, and the first few of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_category_share: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_categories: Vec<String>,
}

/// The verdict on one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    pub column: String,
    pub kind: ColumnKind,
    pub method: Method,
    pub threshold: f64,
    /// The p-value for tests, the distance for distances; None when not computable.
    pub score: Option<f64>,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub drifted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_computable: Option<String>,
    pub reference: SideSummary,
    pub current: SideSummary,
    pub quality: ColumnQuality,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
    /// The score was estimated from summaries (a stored profile) rather than computed on the
    /// raw values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

/// What a column's two sides look like, beside its verdict.
pub(crate) struct SideFacts {
    pub reference: SideSummary,
    pub current: SideSummary,
    pub quality: ColumnQuality,
    pub chart: Option<Chart>,
}

impl ColumnDrift {
    /// A column's verdict: its method's outcome (and whether it was estimated from summaries)
    /// against the threshold, or why there is none.
    pub(crate) fn judge(
        column: &str,
        kind: ColumnKind,
        method: Method,
        threshold: f64,
        outcome: Result<(Outcome, bool), NotComputable>,
        sides: SideFacts,
    ) -> ColumnDrift {
        let (score, statistic, p_value, not_computable, approximate) = match outcome {
            Ok((outcome, approximate)) => {
                (Some(score(&outcome, method)), Some(outcome.statistic), outcome.p_value, None, approximate)
            }
            Err(NotComputable { reason }) => (None, None, None, Some(reason), false),
        };
        ColumnDrift {
            column: column.to_string(),
            kind,
            method,
            threshold,
            score,
            statistic,
            p_value,
            drifted: score.is_some_and(|s| method.drifted(s, threshold)),
            not_computable,
            reference: sides.reference,
            current: sides.current,
            quality: sides.quality,
            chart: sides.chart,
            approximate,
        }
    }
}

/// The dataset-level verdict and every column's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftResult {
    pub columns: Vec<ColumnDrift>,
    /// Columns with a computable score.
    pub compared: usize,
    pub drifted: usize,
    pub share: f64,
    pub drift_share: f64,
    pub dataset_drift: bool,
    /// Columns left out, with why (a dtype drift does not compare, or on one side only).
    pub skipped: BTreeMap<String, String>,
}

/// Where the columns of one side come from.
pub trait ColumnSource: Sync {
    /// Comparable columns and their kinds, in order; `None` for a column that is not comparable.
    fn columns(&self) -> Vec<(String, Option<ColumnKind>)>;
    fn read(&self, name: &str, kind: ColumnKind) -> Result<ColumnSample, MonitorError>;
}

/// Samples already in memory (collected traffic, tests).
pub struct InMemory(pub Vec<ColumnSample>);

impl ColumnSource for InMemory {
    fn columns(&self) -> Vec<(String, Option<ColumnKind>)> {
        self.0.iter().map(|c| (c.name.clone(), Some(c.kind))).collect()
    }

    fn read(&self, name: &str, _kind: ColumnKind) -> Result<ColumnSample, MonitorError> {
        self.0
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .ok_or_else(|| MonitorError::invalid(format!("column `{name}` is not in the data")))
    }
}

/// Thresholds learned from the reference instead of fixed ones: each of `chunks` contiguous
/// chunks of the reference is scored against the whole reference, and the threshold sits at
/// mean + k·σ of those scores (mean − k·σ, at least 0, for p-values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learn {
    pub chunks: usize,
    pub k: f64,
}

/// Compares every selected column of `reference` with `current`.
pub fn compare_sources(
    reference: &dyn ColumnSource,
    current: &dyn ColumnSource,
    options: &DriftOptions,
    learn: Option<Learn>,
) -> Result<DriftResult, MonitorError> {
    options.check()?;
    let (plan, skipped) = plan_columns(reference, current, options)?;
    let columns = plan
        .par_iter()
        .map(|(name, kind)| {
            // Every numeric method sorts its samples; sorting them once, in place, spares each
            // a copy. Learned thresholds chunk the reference in its own order, so not then.
            let read = |source: &dyn ColumnSource| {
                let mut sample = source.read(name, *kind)?;
                if let (None, Values::Numeric(values)) = (learn, &mut sample.values) {
                    crate::stats::numeric::sort_floats(values);
                }
                Ok::<_, MonitorError>(sample)
            };
            // The two sides in parallel too: the last columns then end together.
            let (reference, current) = rayon::join(|| read(reference), || read(current));
            let (reference, current) = (reference?, current?);
            let mut drift = compare_column(&reference, &current, options);
            if let Some(learn) = learn {
                if let Some(threshold) = learned_threshold(&reference, drift.method, learn) {
                    drift.threshold = threshold;
                    drift.drifted = drift.score.is_some_and(|s| drift.method.drifted(s, threshold));
                }
            }
            Ok(drift)
        })
        .collect::<Result<Vec<_>, MonitorError>>()?;
    Ok(DriftResult::new(columns, options.drift_share.unwrap_or(DEFAULT_DRIFT_SHARE), skipped))
}

impl DriftResult {
    /// The dataset-level verdict over judged columns.
    pub fn new(columns: Vec<ColumnDrift>, drift_share: f64, skipped: BTreeMap<String, String>) -> DriftResult {
        let mut result =
            DriftResult { columns, compared: 0, drifted: 0, share: 0.0, drift_share, dataset_drift: false, skipped };
        result.recount();
        result
    }

    /// Counts again after column verdicts changed (learned thresholds).
    pub fn recount(&mut self) {
        self.compared = self.columns.iter().filter(|c| c.score.is_some()).count();
        self.drifted = self.columns.iter().filter(|c| c.drifted).count();
        self.share = if self.compared == 0 { 0.0 } else { self.drifted as f64 / self.compared as f64 };
        self.dataset_drift = self.compared > 0 && self.share >= self.drift_share;
    }
}

pub(crate) type Plan = (Vec<(String, ColumnKind)>, BTreeMap<String, String>);

pub(crate) fn plan_columns(
    reference: &dyn ColumnSource,
    current: &dyn ColumnSource,
    options: &DriftOptions,
) -> Result<Plan, MonitorError> {
    let reference_columns = reference.columns();
    let current_columns: HashMap<String, Option<ColumnKind>> = current.columns().into_iter().collect();
    let mut plan = Vec::new();
    let mut skipped = BTreeMap::new();
    let wanted: Option<&Vec<String>> = options.columns.as_ref();
    if let Some(wanted) = wanted {
        for name in wanted {
            if !reference_columns.iter().any(|(n, _)| n == name) {
                return Err(MonitorError::invalid(format!("column `{name}` is not in the reference data")));
            }
            if !current_columns.contains_key(name) {
                return Err(MonitorError::invalid(format!("column `{name}` is not in the current data")));
            }
        }
    }
    for name in options.per_column.keys() {
        if !reference_columns.iter().any(|(n, _)| n == name) {
            return Err(MonitorError::invalid(format!("`per_column.{name}`: no such column in the reference data")));
        }
    }
    for (name, kind) in reference_columns {
        if wanted.is_some_and(|w| !w.contains(&name)) {
            continue;
        }
        let Some(current_kind) = current_columns.get(&name) else {
            skipped.insert(name, "not in the current data".to_string());
            continue;
        };
        match (kind, current_kind) {
            (Some(kind), Some(current_kind)) if kind == *current_kind => plan.push((name, kind)),
            (Some(kind), Some(current_kind)) => {
                // A text column declared on one side only is still text on both.
                if options.text_columns.contains(&name) {
                    plan.push((name, ColumnKind::Text));
                } else if kind == ColumnKind::Numeric || *current_kind == ColumnKind::Numeric {
                    skipped.insert(name, format!("{kind} in the reference but {current_kind} in the current data"));
                } else {
                    plan.push((name, ColumnKind::Categorical));
                }
            }
            _ => {
                skipped.insert(name, "its type is not compared for drift".to_string());
            }
        }
    }
    Ok((plan, skipped))
}

fn values_kind(values: &Values) -> &'static str {
    match values {
        Values::Numeric(_) => "numeric",
        Values::Strings(_) => "string",
    }
}

/// Compares one column's two samples.
pub fn compare_column(reference: &ColumnSample, current: &ColumnSample, options: &DriftOptions) -> ColumnDrift {
    let kind = reference.kind;
    let unique = distinct_union(reference, current);
    let method = options
        .method_for(&reference.name, kind)
        .unwrap_or_else(|| default_method(kind, reference.values.len(), unique));
    let threshold = options.threshold_for(&reference.name).unwrap_or_else(|| method.default_threshold());
    let reference_strs: Vec<&str>;
    let current_strs: Vec<&str>;
    // Numbers in ascending order (borrowed: compare_sources sorts them in place): the methods
    // need them so, and the summary, quality and chart then read ends and binary searches.
    let numbers = match (&reference.values, &current.values) {
        (Values::Numeric(r), Values::Numeric(c)) => Some((sorted(r), sorted(c))),
        _ => None,
    };
    let values = match (&reference.values, &current.values, &numbers) {
        (Values::Strings(r), Values::Strings(c), _) => {
            reference_strs = r.iter().map(String::as_str).collect();
            current_strs = c.iter().map(String::as_str).collect();
            Ok(if kind == ColumnKind::Text {
                (ColumnValues::Text(&reference_strs), ColumnValues::Text(&current_strs))
            } else {
                (ColumnValues::Categorical(&reference_strs), ColumnValues::Categorical(&current_strs))
            })
        }
        (_, _, Some((r, c))) => Ok((ColumnValues::Numeric(r), ColumnValues::Numeric(c))),
        // Planning gives both sides one kind; a caller that does not gets a reason, not a score.
        _ => Err(NotComputable::new(format!(
            "the reference holds {} values but the current data {} values",
            values_kind(&reference.values),
            values_kind(&current.values)
        ))),
    };
    let outcome = values.and_then(|(reference_values, current_values)| {
        empty_side(reference, current)?;
        Ok((compare(method, reference_values, current_values)?, false))
    });
    let sorted_pair = numbers.as_ref().map(|(r, c)| (&**r, &**c));
    let sides = SideFacts {
        reference: summarise(reference, sorted_pair.map(|(r, _)| r)),
        current: summarise(current, sorted_pair.map(|(_, c)| c)),
        quality: quality(reference, current, sorted_pair),
        chart: chart(reference, current, sorted_pair),
    };
    ColumnDrift::judge(&reference.name, kind, method, threshold, outcome, sides)
}

/// The learned threshold of one column, None when the reference is too small to chunk or no
/// chunk's score is computable.
pub fn learned_threshold(reference: &ColumnSample, method: Method, learn: Learn) -> Option<f64> {
    let n = reference.values.len();
    let size = n / learn.chunks.max(1);
    if size < 2 {
        return None;
    }
    let chunk_sample = |i: usize| {
        let mut chunk = reference.clone();
        chunk.values = match &reference.values {
            Values::Numeric(v) => Values::Numeric(v[i * size..(i + 1) * size].to_vec()),
            Values::Strings(v) => Values::Strings(v[i * size..(i + 1) * size].to_vec()),
        };
        chunk.rows = size as u64;
        chunk
    };
    let pinned = DriftOptions {
        per_column: BTreeMap::from([(reference.name.clone(), ColumnOptions { method: Some(method), threshold: None })]),
        ..DriftOptions::default()
    };
    let scores: Vec<f64> = (0..learn.chunks)
        .filter_map(|i| compare_column(&chunk_sample(i), reference, &pinned).score)
        .filter(|s| s.is_finite())
        .collect();
    if scores.len() < 2 {
        return None;
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let sd = (scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / (scores.len() - 1) as f64).sqrt();
    Some(match method.score_kind() {
        crate::stats::method::ScoreKind::Distance => mean + learn.k * sd,
        crate::stats::method::ScoreKind::PValue => (mean - learn.k * sd).max(0.0),
    })
}

fn empty_side(reference: &ColumnSample, current: &ColumnSample) -> Result<(), NotComputable> {
    for (side, sample) in [("reference", reference), ("current", current)] {
        if sample.values.is_empty() {
            let why = if sample.rows == 0 { "has no rows" } else { "has no values (all missing)" };
            return Err(NotComputable::new(format!("the {side} sample {why}")));
        }
    }
    Ok(())
}

/// Distinct non-missing values over both sides (Evidently's `nunique` of the concatenation),
/// counted only up to `DISTINCT_CAP`: the default choice of method only asks whether there are
/// more than 5 (or 2), and stopping early keeps a million-row column at one cheap pass.
const DISTINCT_CAP: usize = 6;

pub(crate) fn distinct_union(reference: &ColumnSample, current: &ColumnSample) -> usize {
    match (&reference.values, &current.values) {
        (Values::Numeric(r), Values::Numeric(c)) => {
            let mut seen: Vec<u64> = Vec::with_capacity(DISTINCT_CAP);
            for bits in r.iter().chain(c).map(|v| canonical_bits(*v)) {
                if !seen.contains(&bits) {
                    seen.push(bits);
                    if seen.len() >= DISTINCT_CAP {
                        break;
                    }
                }
            }
            seen.len()
        }
        (Values::Strings(r), Values::Strings(c)) => {
            let mut seen: Vec<&str> = Vec::with_capacity(DISTINCT_CAP);
            for value in r.iter().chain(c).map(String::as_str) {
                if !seen.contains(&value) {
                    seen.push(value);
                    if seen.len() >= DISTINCT_CAP {
                        break;
                    }
                }
            }
            seen.len()
        }
        _ => 0,
    }
}

/// Bits of a float with -0.0 and 0.0 made one value.
fn canonical_bits(value: f64) -> u64 {
    if value == 0.0 {
        0
    } else {
        value.to_bits()
    }
}

/// `sorted` is the sample's numbers in ascending order, for a numeric sample.
fn summarise(sample: &ColumnSample, sorted: Option<&[f64]>) -> SideSummary {
    let mut summary = SideSummary {
        rows: sample.rows,
        missing: sample.nulls + sample.nans + sample.infinities,
        nulls: sample.nulls,
        nans: sample.nans,
        infinities: sample.infinities,
        type_errors: sample.type_errors,
        mean: None,
        std: None,
        min: None,
        max: None,
        distinct: None,
    };
    if let Some(values) = sorted.filter(|v| !v.is_empty()) {
        let (mean, std) = mean_and_std(values);
        summary.mean = Some(mean);
        summary.std = Some(std);
        summary.min = values.first().copied();
        summary.max = values.last().copied();
    }
    if let Values::Strings(values) = &sample.values {
        let distinct: std::collections::HashSet<&str> = values.iter().map(String::as_str).collect();
        summary.distinct = Some(distinct.len() as u64);
    }
    summary
}

/// `sorted` is both sides' numbers in ascending order, for a numeric column.
fn quality(reference: &ColumnSample, current: &ColumnSample, sorted: Option<(&[f64], &[f64])>) -> ColumnQuality {
    let mut quality = ColumnQuality {
        missing_share: current.missing_share(),
        type_error_share: (current.rows > 0 && current.kind == ColumnKind::Numeric)
            .then(|| current.type_errors as f64 / current.rows as f64),
        ..ColumnQuality::default()
    };
    if let Some((r, c)) = sorted {
        if let (Some(lo), Some(hi)) = (r.first(), r.last()) {
            if !c.is_empty() {
                let below = c.partition_point(|v| v < lo);
                let above = c.len() - c.partition_point(|v| v <= hi);
                quality.out_of_range_share = Some((below + above) as f64 / c.len() as f64);
            }
        }
    }
    if let (Values::Strings(r), Values::Strings(c)) = (&reference.values, &current.values) {
        if !c.is_empty() && reference.kind == ColumnKind::Categorical {
            let known: std::collections::HashSet<&str> = r.iter().map(String::as_str).collect();
            let mut unseen = 0usize;
            let mut examples: Vec<String> = Vec::new();
            for value in c {
                if !known.contains(value.as_str()) {
                    unseen += 1;
                    if examples.len() < 10 && !examples.contains(value) {
                        examples.push(value.clone());
                    }
                }
            }
            quality.new_category_share = Some(unseen as f64 / c.len() as f64);
            quality.new_categories = examples;
        }
    }
    quality
}

/// `sorted` is both sides' numbers in ascending order, for a numeric column.
fn chart(reference: &ColumnSample, current: &ColumnSample, sorted: Option<(&[f64], &[f64])>) -> Option<Chart> {
    if let Some((r, c)) = sorted {
        let lo = match (r.first(), c.first()) {
            (Some(a), Some(b)) => a.min(*b),
            (Some(v), None) | (None, Some(v)) => *v,
            (None, None) => return None,
        };
        let hi = r.last().into_iter().chain(c.last()).copied().fold(lo, f64::max);
        let bins = if hi > lo { CHART_BINS } else { 1 };
        let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
        let edges = (0..=bins).map(|i| lo + width * i as f64).collect();
        // A value's bin never decreases as the value grows, so each bin's count is the distance
        // between two binary searches.
        let bin = |v: f64| (((v - lo) / width) as usize).min(bins - 1);
        let count = |values: &[f64]| {
            let ends: Vec<usize> = (1..=bins)
                .map(|b| if b == bins { values.len() } else { values.partition_point(|v| bin(*v) < b) })
                .collect();
            let mut start = 0;
            ends.iter()
                .map(|end| {
                    let n = (end - start) as u64;
                    start = *end;
                    n
                })
                .collect()
        };
        return Some(Chart::Histogram { edges, reference: count(r), current: count(c) });
    }
    match (&reference.values, &current.values) {
        (Values::Strings(r), Values::Strings(c)) => {
            let mut counts: HashMap<&str, (u64, u64)> = HashMap::new();
            for v in r {
                counts.entry(v.as_str()).or_default().0 += 1;
            }
            for v in c {
                counts.entry(v.as_str()).or_default().1 += 1;
            }
            let mut ranked: Vec<(&str, (u64, u64))> = counts.into_iter().collect();
            ranked.sort_by(|a, b| (b.1 .0 + b.1 .1).cmp(&(a.1 .0 + a.1 .1)).then(a.0.cmp(b.0)));
            ranked.truncate(CHART_CATEGORIES);
            Some(Chart::Categories {
                categories: ranked.iter().map(|(k, _)| k.to_string()).collect(),
                reference: ranked.iter().map(|(_, (r, _))| *r).collect(),
                current: ranked.iter().map(|(_, (_, c))| *c).collect(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded normal sample (xorshift and Box–Muller), enough for tests without a dependency.
    fn normal(seed: u64, n: usize, mean: f64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n).map(|_| mean + (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos()).collect()
    }

    fn numeric(name: &str, values: Vec<f64>) -> ColumnSample {
        ColumnSample::numeric(name, values.into_iter().map(Some))
    }

    fn strings(name: &str, values: &[&str]) -> ColumnSample {
        ColumnSample::strings(name, ColumnKind::Categorical, values.iter().map(|v| Some(v.to_string())))
    }

    #[test]
    fn columns_are_planned_by_kind_and_presence() {
        let reference = InMemory(vec![
            numeric("x", normal(1, 50, 0.0)),
            numeric("only_ref", normal(2, 50, 0.0)),
            strings("mixed", &["a", "b"]),
        ]);
        let current = InMemory(vec![numeric("x", normal(3, 50, 0.0)), numeric("mixed", vec![1.0, 2.0])]);
        let result = compare_sources(&reference, &current, &DriftOptions::default(), None).unwrap();
        assert_eq!(result.columns.iter().map(|c| c.column.as_str()).collect::<Vec<_>>(), ["x"]);
        assert_eq!(result.skipped["only_ref"], "not in the current data");
        assert!(result.skipped["mixed"].contains("categorical in the reference but numeric"));

        let unknown = DriftOptions { columns: Some(vec!["nope".into()]), ..DriftOptions::default() };
        let error = compare_sources(&reference, &current, &unknown, None).unwrap_err().to_string();
        assert!(error.contains("`nope` is not in the reference"), "{error}");
        let bad_share = DriftOptions { drift_share: Some(0.0), ..DriftOptions::default() };
        assert!(compare_sources(&reference, &current, &bad_share, None).is_err());
    }

    #[test]
    fn the_dataset_drifts_at_the_share_of_drifted_columns() {
        let reference = InMemory(vec![numeric("a", normal(1, 300, 0.0)), numeric("b", normal(2, 300, 0.0))]);
        let current = InMemory(vec![numeric("a", normal(3, 300, 2.0)), numeric("b", normal(4, 300, 0.0))]);
        let half = compare_sources(&reference, &current, &DriftOptions::default(), None).unwrap();
        assert_eq!((half.compared, half.drifted, half.share, half.dataset_drift), (2, 1, 0.5, true));
        let strict = DriftOptions { drift_share: Some(0.75), ..DriftOptions::default() };
        assert!(!compare_sources(&reference, &current, &strict, None).unwrap().dataset_drift);
    }

    #[test]
    fn an_empty_or_all_missing_side_is_not_computable_and_never_drifts() {
        let options = DriftOptions::default();
        let empty = ColumnSample::numeric("x", [None, Some(f64::NAN)]);
        let drift = compare_column(&numeric("x", normal(1, 20, 0.0)), &empty, &options);
        assert_eq!(drift.score, None);
        assert!(!drift.drifted);
        assert!(drift.not_computable.unwrap().contains("all missing"));
        assert_eq!(drift.quality.missing_share, Some(1.0));
    }

    #[test]
    fn sides_of_different_kinds_are_not_computable_with_the_reason() {
        let drift =
            compare_column(&numeric("x", normal(2, 50, 0.0)), &strings("x", &["a", "b"]), &DriftOptions::default());
        assert_eq!((drift.score, drift.drifted), (None, false));
        assert_eq!(
            drift.not_computable.as_deref(),
            Some("the reference holds numeric values but the current data string values")
        );
    }

    #[test]
    fn quality_measures_range_and_new_categories_against_the_reference() {
        let options = DriftOptions::default();
        let drift =
            compare_column(&numeric("x", vec![0.0, 1.0, 2.0]), &numeric("x", vec![-1.0, 1.0, 3.0, 2.0]), &options);
        assert_eq!(drift.quality.out_of_range_share, Some(0.5));
        let drift = compare_column(&strings("c", &["a", "b"]), &strings("c", &["a", "z", "z", "y"]), &options);
        assert_eq!(drift.quality.new_category_share, Some(0.75));
        assert_eq!(drift.quality.new_categories, ["z", "y"]);
    }

    #[test]
    fn learned_thresholds_sit_above_the_reference_chunks_own_scores() {
        let reference = numeric("x", normal(7, 5_000, 0.0));
        let learn = Learn { chunks: 10, k: 3.0 };
        let threshold = learned_threshold(&reference, Method::Wasserstein, learn).unwrap();
        // Chunks of 500 against their whole differ by sampling noise only: about 0.05 ± 0.02.
        assert!(threshold > 0.05 && threshold < 0.2, "{threshold}");
        let calm = InMemory(vec![numeric("x", normal(8, 5_000, 0.0))]);
        let shifted = InMemory(vec![numeric("x", normal(9, 5_000, 0.3))]);
        let reference = InMemory(vec![reference]);
        let options = DriftOptions::default();
        let calm = compare_sources(&reference, &calm, &options, Some(learn)).unwrap();
        let shifted = compare_sources(&reference, &shifted, &options, Some(learn)).unwrap();
        assert_eq!(calm.columns[0].threshold, threshold);
        assert!(!calm.columns[0].drifted && shifted.columns[0].drifted);
        let tiny = numeric("x", vec![1.0, 2.0, 3.0]);
        assert_eq!(learned_threshold(&tiny, Method::Ks, learn), None);
    }
}
