//! Column profiles: count, nulls, distinct estimate, min/max/mean/stddev, quantiles, top values
//! and a histogram. Every part is a mergeable state, so the profile of a file is the merge of
//! the profiles of its batches, and monitoring can merge windows without re-reading data.

mod ddsketch;
mod frequent;
mod hll;

pub use ddsketch::{DdSketch, RELATIVE_ACCURACY};
pub use frequent::FrequentItems;
pub use hll::{hash_bytes, hash_u64, HyperLogLog};

use crate::dtype::{is_numeric, is_temporal, render_temporal};
use crate::error::DataError;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Quantiles every profile reports.
pub const PROFILE_QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
const HISTOGRAM_BINS: usize = 20;
const TOP_VALUES: usize = 10;

/// The mergeable state of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub dtype: String,
    /// Values that are neither null nor NaN.
    pub count: u64,
    /// Nulls plus NaNs: what pandas counts as missing.
    pub null_count: u64,
    pub nan_count: u64,
    /// Running mean and sum of squared deviations (Chan et al.'s parallel update).
    pub mean: f64,
    pub m2: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub distinct: HyperLogLog,
    pub sketch: Option<DdSketch>,
    pub top: Option<FrequentItems>,
}

impl ColumnProfile {
    pub fn new(dtype: &DataType) -> Self {
        let numeric = is_numeric(dtype) || is_temporal(dtype);
        let categorical = !matches!(dtype, DataType::Float32 | DataType::Float64) && !is_temporal(dtype);
        Self {
            dtype: format!("{dtype}"),
            count: 0,
            null_count: 0,
            nan_count: 0,
            mean: 0.0,
            m2: 0.0,
            min: None,
            max: None,
            distinct: HyperLogLog::default(),
            sketch: numeric.then(DdSketch::default),
            top: categorical.then(FrequentItems::default),
        }
    }

    /// Adds one batch of the column.
    pub fn update(&mut self, column: &Series) -> Result<(), DataError> {
        let nulls = column.null_count() as u64;
        self.null_count += nulls;
        let dtype = column.dtype().clone();
        if is_numeric(&dtype) || is_temporal(&dtype) {
            let physical = column.to_physical_repr();
            let values = physical.cast(&DataType::Float64)?;
            self.update_numeric(values.f64()?, !matches!(dtype, DataType::Float32 | DataType::Float64));
        } else if let Ok(strings) = column.str() {
            for value in strings.iter().flatten() {
                self.distinct.insert_hash(hash_bytes(value.as_bytes()));
            }
            self.count += strings.len() as u64 - nulls;
        } else if let Ok(booleans) = column.bool() {
            for value in booleans.iter().flatten() {
                self.distinct.insert_hash(hash_u64(u64::from(value)));
            }
            self.count += booleans.len() as u64 - nulls;
        } else {
            self.count += column.len() as u64 - nulls;
        }
        if let Some(top) = &mut self.top {
            top.update(column)?;
        }
        Ok(())
    }

    fn update_numeric(&mut self, values: &Float64Chunked, exact_integers: bool) {
        let (mut n, mut sum) = (0u64, 0.0f64);
        let mut nan = 0u64;
        let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
        let sketch = self.sketch.get_or_insert_with(DdSketch::default);
        let mut builder = sketch.builder();
        for array in values.downcast_iter() {
            let mut visit = |value: f64| {
                if value.is_nan() {
                    nan += 1;
                    return;
                }
                n += 1;
                sum += value;
                low = low.min(value);
                high = high.max(value);
                builder.add(value);
                // -0.0 and 0.0 are one value; integers hash by value so 1 and 1.0 agree.
                let bits = if value == 0.0 {
                    0
                } else if exact_integers {
                    value as i64 as u64
                } else {
                    value.to_bits()
                };
                self.distinct.insert_hash(hash_u64(bits));
            };
            if array.validity().is_none_or(|v| v.unset_bits() == 0) {
                array.values().iter().copied().for_each(&mut visit);
            } else {
                array.iter().flatten().copied().for_each(&mut visit);
            }
        }
        if n == 0 {
            self.nan_count += nan;
            self.null_count += nan;
            return;
        }
        let batch_mean = sum / n as f64;
        let mut batch_m2 = 0.0;
        for array in values.downcast_iter() {
            for value in array.iter().flatten().copied().filter(|v| !v.is_nan()) {
                let delta = value - batch_mean;
                batch_m2 += delta * delta;
            }
        }
        self.nan_count += nan;
        self.null_count += nan;
        self.combine_moments(n, batch_mean, batch_m2);
        self.min = Some(self.min.map_or(low, |m| m.min(low)));
        self.max = Some(self.max.map_or(high, |m| m.max(high)));
    }

    fn combine_moments(&mut self, n: u64, mean: f64, m2: f64) {
        let total = self.count + n;
        if total == 0 {
            return;
        }
        let delta = mean - self.mean;
        self.m2 += m2 + delta * delta * (self.count as f64) * (n as f64) / total as f64;
        self.mean += delta * n as f64 / total as f64;
        self.count = total;
    }

    /// Folds another profile of the same column into this one.
    pub fn merge(&mut self, other: &ColumnProfile) {
        // Non-numeric columns keep mean and M2 at zero, so this only adds their counts.
        self.combine_moments(other.count, other.mean, other.m2);
        self.null_count += other.null_count;
        self.nan_count += other.nan_count;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.distinct.merge(&other.distinct);
        match (&mut self.sketch, &other.sketch) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.sketch = Some(theirs.clone()),
            _ => {}
        }
        match (&mut self.top, &other.top) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.top = Some(theirs.clone()),
            _ => {}
        }
    }

    /// Sample standard deviation (ddof = 1), as pandas' `std()`.
    pub fn stddev(&self) -> Option<f64> {
        (self.count > 1 && self.sketch.is_some()).then(|| (self.m2 / (self.count - 1) as f64).sqrt())
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0 && self.sketch.is_some()).then_some(self.mean)
    }

    /// The profile as users read it (and as the stored JSON keeps it, state included).
    pub fn report(&self, dtype: &DataType) -> Value {
        let mut out = Map::new();
        out.insert("dtype".into(), json!(self.dtype));
        out.insert("count".into(), json!(self.count));
        out.insert("null_count".into(), json!(self.null_count));
        out.insert("nan_count".into(), json!(self.nan_count));
        out.insert("distinct_estimate".into(), json!(self.distinct.estimate().min(self.count)));
        let render = |value: f64| -> Value {
            if is_temporal(dtype) {
                json!(render_temporal(dtype, value))
            } else {
                finite_or_null(value)
            }
        };
        if self.sketch.is_some() {
            out.insert("min".into(), self.min.map_or(Value::Null, render));
            out.insert("max".into(), self.max.map_or(Value::Null, render));
            if !is_temporal(dtype) {
                out.insert("mean".into(), self.mean().map_or(Value::Null, finite_or_null));
                out.insert("stddev".into(), self.stddev().map_or(Value::Null, finite_or_null));
            }
            if let Some(sketch) = &self.sketch {
                let quantiles: Map<String, Value> = PROFILE_QUANTILES
                    .iter()
                    .map(|q| (format!("{q}"), sketch.quantile(*q).map_or(Value::Null, render)))
                    .collect();
                out.insert("quantiles".into(), Value::Object(quantiles));
                if !is_temporal(dtype) {
                    out.insert("histogram".into(), histogram(sketch, self.min, self.max));
                }
            }
        }
        if let Some(top) = &self.top {
            let values: Vec<Value> =
                top.top(TOP_VALUES).into_iter().map(|(value, count)| json!({"value": value, "count": count})).collect();
            out.insert("top_values".into(), Value::Array(values));
            // Counts are exact unless a batch held more distinct values than the summary keeps.
            out.insert("top_values_approximate".into(), json!(top.approximate));
        }
        Value::Object(out)
    }
}

fn finite_or_null(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else {
        Value::Null
    }
}

/// Equal-width bins between min and max, filled from the sketch's buckets (each bucket's count
/// goes to the bin of its representative value, so counts are exact up to the sketch's 0.5 %).
fn histogram(sketch: &DdSketch, min: Option<f64>, max: Option<f64>) -> Value {
    let (Some(low), Some(high)) = (min, max) else { return Value::Null };
    if !low.is_finite() || !high.is_finite() {
        return Value::Null;
    }
    let width = (high - low) / HISTOGRAM_BINS as f64;
    let edges: Vec<f64> = (0..=HISTOGRAM_BINS).map(|i| low + width * i as f64).collect();
    let mut counts = vec![0u64; HISTOGRAM_BINS];
    for (value, count) in sketch.ascending() {
        let bin =
            if width > 0.0 { ((value - low) / width).floor().clamp(0.0, (HISTOGRAM_BINS - 1) as f64) } else { 0.0 };
        if let Some(slot) = counts.get_mut(bin as usize) {
            *slot += count;
        }
    }
    json!({"edges": edges, "counts": counts})
}

/// The profile of a whole frame: row count and one state per column, in schema order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameProfile {
    pub row_count: u64,
    pub columns: BTreeMap<String, ColumnProfile>,
    pub order: Vec<String>,
}

impl FrameProfile {
    pub fn new(schema: &Schema) -> Self {
        let mut profile = FrameProfile::default();
        for (name, dtype) in schema.iter() {
            profile.order.push(name.to_string());
            profile.columns.insert(name.to_string(), ColumnProfile::new(dtype));
        }
        profile
    }

    pub fn merge(&mut self, other: &FrameProfile) {
        self.row_count += other.row_count;
        for (name, column) in &other.columns {
            match self.columns.get_mut(name) {
                Some(mine) => mine.merge(column),
                None => {
                    self.order.push(name.clone());
                    self.columns.insert(name.clone(), column.clone());
                }
            }
        }
    }

    /// `{"row_count", "columns": {name: report + "sketch": state}}`.
    pub fn report(&self, schema: &Schema) -> Value {
        let mut columns = Map::new();
        for name in &self.order {
            let (Some(column), Some(dtype)) = (self.columns.get(name), schema.get(name.as_str())) else { continue };
            let mut report = column.report(dtype);
            if let Value::Object(fields) = &mut report {
                fields.insert("sketch".into(), serde_json::to_value(column).unwrap_or(Value::Null));
            }
            columns.insert(name.clone(), report);
        }
        json!({"row_count": self.row_count, "columns": columns})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_of_batches_merge_to_the_profile_of_the_whole() {
        let values: Vec<Option<f64>> =
            (0..1_000).map(|i| if i % 17 == 0 { None } else { Some((i as f64 * 0.37).sin() * 100.0) }).collect();
        let whole_series = Series::new("x".into(), values.clone());
        let mut whole = ColumnProfile::new(&DataType::Float64);
        whole.update(&whole_series).unwrap();
        let mut merged = ColumnProfile::new(&DataType::Float64);
        for chunk in values.chunks(333) {
            let mut part = ColumnProfile::new(&DataType::Float64);
            part.update(&Series::new("x".into(), chunk.to_vec())).unwrap();
            merged.merge(&part);
        }
        assert_eq!(merged.count, whole.count);
        assert_eq!(merged.null_count, 59);
        assert_eq!((merged.min, merged.max), (whole.min, whole.max));
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        let variance = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (present.len() - 1) as f64;
        assert!((merged.mean().unwrap() - mean).abs() <= 1e-12 * mean.abs().max(1.0));
        assert!((merged.stddev().unwrap() - variance.sqrt()).abs() <= 1e-12 * variance.sqrt());
        assert_eq!(merged.sketch, whole.sketch);
        assert_eq!(merged.distinct, whole.distinct);
    }

    #[test]
    fn strings_report_top_values_and_no_numeric_statistics() {
        let column = Series::new("c".into(), vec![Some("a"), Some("b"), Some("a"), None]);
        let mut profile = ColumnProfile::new(&DataType::String);
        profile.update(&column).unwrap();
        let report = profile.report(&DataType::String);
        assert_eq!(report["count"], 3);
        assert_eq!(report["null_count"], 1);
        assert_eq!(report["top_values"][0], json!({"value": "a", "count": 2}));
        assert!(report.get("mean").is_none());
    }
}
