//! Expectations: the quality bar a version is held to. A suite compiles against a schema into
//! row checks (evaluated batch by batch while data streams past) and aggregate checks
//! (answered from the profile), and yields one result per expectation with observed values and
//! a sample of failing rows.

use crate::dtype::{dtype_name, parse_dtype};
use crate::error::DataError;
use crate::profile::{hash_bytes, hash_u64, FrameProfile};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Digest;
use std::collections::BTreeMap;

/// Failing rows kept per expectation.
const SAMPLE_ROWS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A failure keeps the version out of `silver` and `gold`.
    #[default]
    Error,
    /// A failure is recorded only.
    Warn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    NotNull { column: String },
    Unique { column: String },
    Between { column: String, min: Option<f64>, max: Option<f64> },
    InSet { column: String, values: Vec<Value> },
    Regex { column: String, pattern: String },
    Type { column: String, dtype: String },
    RowCountBetween { min: Option<u64>, max: Option<u64> },
    MeanBetween { column: String, min: Option<f64>, max: Option<f64> },
    MedianBetween { column: String, min: Option<f64>, max: Option<f64> },
    StddevBetween { column: String, min: Option<f64>, max: Option<f64> },
    MissingShareBelow { column: String, max: f64 },
    Freshness { column: String, max_age_seconds: f64 },
    ReferentialIntegrity { column: String, dataset: String, version: Option<i64>, to_column: String },
}

impl Check {
    pub fn type_name(&self) -> &'static str {
        match self {
            Check::NotNull { .. } => "not_null",
            Check::Unique { .. } => "unique",
            Check::Between { .. } => "between",
            Check::InSet { .. } => "in_set",
            Check::Regex { .. } => "regex",
            Check::Type { .. } => "type",
            Check::RowCountBetween { .. } => "row_count_between",
            Check::MeanBetween { .. } => "mean_between",
            Check::MedianBetween { .. } => "median_between",
            Check::StddevBetween { .. } => "stddev_between",
            Check::MissingShareBelow { .. } => "missing_share_below",
            Check::Freshness { .. } => "freshness",
            Check::ReferentialIntegrity { .. } => "referential_integrity",
        }
    }

    pub fn column(&self) -> Option<&str> {
        match self {
            Check::RowCountBetween { .. } => None,
            Check::NotNull { column }
            | Check::Unique { column }
            | Check::Between { column, .. }
            | Check::InSet { column, .. }
            | Check::Regex { column, .. }
            | Check::Type { column, .. }
            | Check::MeanBetween { column, .. }
            | Check::MedianBetween { column, .. }
            | Check::StddevBetween { column, .. }
            | Check::MissingShareBelow { column, .. }
            | Check::Freshness { column, .. }
            | Check::ReferentialIntegrity { column, .. } => Some(column),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    pub check: Check,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    pub version: u32,
    pub expectations: Vec<Expectation>,
}

impl Suite {
    /// Parses `{version: 1, expectations: [...]}` (JSON, or YAML already turned into JSON).
    pub fn parse(value: &Value) -> Result<Suite, DataError> {
        let Value::Object(fields) = value else {
            return Err(DataError::invalid("an expectation suite must be an object with `version` and `expectations`"));
        };
        if let Some(unknown) = fields.keys().find(|k| !matches!(k.as_str(), "version" | "expectations")) {
            return Err(DataError::invalid(format!("expectation suite: unknown field `{unknown}`")));
        }
        match fields.get("version").and_then(Value::as_u64) {
            Some(1) => {}
            Some(other) => {
                return Err(DataError::invalid(format!(
                    "expectation suite version {other} is not supported; use version: 1"
                )))
            }
            None => return Err(DataError::invalid("expectation suite needs `version: 1`")),
        }
        let Some(Value::Array(items)) = fields.get("expectations") else {
            return Err(DataError::invalid("expectation suite needs an `expectations` list"));
        };
        let mut expectations = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let mut item = item.clone();
            let severity = match item.as_object_mut().and_then(|m| m.remove("severity")) {
                None => Severity::Error,
                Some(value) => serde_json::from_value(value.clone()).map_err(|_| {
                    DataError::invalid(format!("expectation {index}: severity {value} is not one of error, warn"))
                })?,
            };
            let check: Check =
                serde_json::from_value(item).map_err(|e| DataError::invalid(format!("expectation {index}: {e}")))?;
            expectations.push(Expectation { check, severity });
        }
        Ok(Suite { version: 1, expectations })
    }

    /// Datasets whose values referential-integrity checks need: (dataset, version, column).
    pub fn references(&self) -> Vec<(String, Option<i64>, String)> {
        self.expectations
            .iter()
            .filter_map(|e| match &e.check {
                Check::ReferentialIntegrity { dataset, version, to_column, .. } => {
                    Some((dataset.clone(), *version, to_column.clone()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn needs_median(&self) -> Vec<String> {
        self.expectations
            .iter()
            .filter_map(|e| match &e.check {
                Check::MedianBetween { column, .. } => Some(column.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Values a referential-integrity check looks up, keyed by (dataset, version, column).
pub type ReferenceValues = BTreeMap<(String, Option<i64>, String), Series>;

struct RowState {
    /// Evaluates to true on a failing row.
    failing: Option<Expr>,
    unique_seen: Option<PlHashSet<u128>>,
    unexpected: u64,
    samples: Vec<Value>,
}

/// A suite bound to a schema, accumulating row-level failures batch by batch.
pub struct CompiledSuite {
    suite: Suite,
    rows: Vec<RowState>,
    schema: Schema,
}

fn column_exists(schema: &Schema, index: usize, check: &Check) -> Result<(), DataError> {
    if let Some(column) = check.column() {
        if schema.get(column).is_none() {
            let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
            return Err(DataError::invalid(format!(
                "expectation {index} ({}): column `{column}` does not exist; columns are {}",
                check.type_name(),
                names.join(", ")
            )));
        }
    }
    Ok(())
}

fn json_to_literal(values: &[Value], dtype: &DataType) -> Result<Series, DataError> {
    let strings: Vec<Option<String>> = values
        .iter()
        .map(|v| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect();
    let series = Series::new("values".into(), strings);
    Ok(if matches!(dtype, DataType::String) { series } else { series.cast(dtype)? })
}

impl CompiledSuite {
    pub fn compile(suite: &Suite, schema: &Schema, references: &ReferenceValues) -> Result<CompiledSuite, DataError> {
        let mut rows = Vec::with_capacity(suite.expectations.len());
        for (index, expectation) in suite.expectations.iter().enumerate() {
            let check = &expectation.check;
            column_exists(schema, index, check)?;
            let dtype = check.column().and_then(|c| schema.get(c)).cloned().unwrap_or(DataType::Null);
            let mut unique_seen = None;
            let refuse =
                |message: String| DataError::invalid(format!("expectation {index} ({}): {message}", check.type_name()));
            let failing = match check {
                Check::NotNull { column } => Some(col(column.as_str()).is_null()),
                Check::Unique { .. } => {
                    unique_seen = Some(PlHashSet::default());
                    None
                }
                Check::Between { column, min, max } => {
                    if min.is_none() && max.is_none() {
                        return Err(refuse("give min, max or both".into()));
                    }
                    if !dtype.is_primitive_numeric() {
                        return Err(refuse(format!("column `{column}` is {}, not numeric", dtype_name(&dtype))));
                    }
                    let value = col(column.as_str()).cast(DataType::Float64);
                    let mut failing = lit(false);
                    if let Some(min) = min {
                        failing = failing.or(value.clone().lt(lit(*min)));
                    }
                    if let Some(max) = max {
                        failing = failing.or(value.gt(lit(*max)));
                    }
                    Some(failing.fill_null(lit(false)))
                }
                Check::InSet { column, values } => {
                    let allowed = json_to_literal(values, &dtype)
                        .map_err(|e| refuse(format!("values do not fit column `{column}`: {e}")))?;
                    Some(not_in(column, allowed))
                }
                Check::Regex { column, pattern } => {
                    regex_syntax_ok(index, pattern)?;
                    if !matches!(dtype, DataType::String) {
                        return Err(refuse(format!("column `{column}` is {}, not string", dtype_name(&dtype))));
                    }
                    Some(col(column.as_str()).str().contains(lit(pattern.as_str()), true).not().fill_null(lit(false)))
                }
                Check::Type { dtype: wanted, .. } => {
                    parse_dtype(wanted).map_err(|e| refuse(format!("{e}")))?;
                    None
                }
                Check::ReferentialIntegrity { column, dataset, version, to_column } => {
                    let key = (dataset.clone(), *version, to_column.clone());
                    let allowed = references.get(&key).ok_or_else(|| {
                        DataError::Internal(format!("reference values of {dataset}.{to_column} were not loaded"))
                    })?;
                    let allowed = allowed
                        .cast(&dtype)
                        .map_err(|e| refuse(format!("`{dataset}.{to_column}` cannot compare with `{column}`: {e}")))?;
                    Some(not_in(column, allowed))
                }
                _ => None,
            };
            rows.push(RowState { failing, unique_seen, unexpected: 0, samples: Vec::new() });
        }
        Ok(CompiledSuite { suite: suite.clone(), rows, schema: schema.clone() })
    }

    /// Evaluates the row checks on one batch whose first row is row `offset` of the whole data.
    pub fn observe(&mut self, batch: &DataFrame, offset: u64) -> Result<(), DataError> {
        let mut exprs = Vec::new();
        let mut owners = Vec::new();
        for (index, state) in self.rows.iter().enumerate() {
            if let Some(failing) = &state.failing {
                exprs.push(failing.clone().alias(format!("__f{index}")));
                owners.push(index);
            }
        }
        if !exprs.is_empty() {
            let masks = batch.clone().lazy().select(exprs).collect()?;
            for (position, index) in owners.into_iter().enumerate() {
                let Some(mask) = masks.select_at_idx(position) else { continue };
                let mask = mask.as_materialized_series().bool()?.clone();
                let failing = mask.sum().unwrap_or(0) as u64;
                if failing == 0 {
                    continue;
                }
                let column = self.suite.expectations.get(index).and_then(|e| e.check.column()).map(str::to_string);
                let Some(state) = self.rows.get_mut(index) else { continue };
                state.unexpected += failing;
                if state.samples.len() < SAMPLE_ROWS {
                    let values = column.as_deref().map(|c| batch.column(c)).transpose()?;
                    for (row, failed) in mask.iter().enumerate() {
                        if state.samples.len() >= SAMPLE_ROWS {
                            break;
                        }
                        if failed == Some(true) {
                            let value = values.map(|v| v.get(row).map(any_to_json)).transpose()?.unwrap_or(Value::Null);
                            state.samples.push(json!({"row": offset + row as u64, "value": value}));
                        }
                    }
                }
            }
        }
        for index in 0..self.rows.len() {
            let Some(Check::Unique { column }) = self.suite.expectations.get(index).map(|e| &e.check) else { continue };
            let series = batch.column(column)?.as_materialized_series().clone();
            let Some(state) = self.rows.get_mut(index) else { continue };
            observe_unique(state, &series, offset)?;
        }
        Ok(())
    }

    /// The result of every expectation, given the profile of the same data and exact medians.
    pub fn finish(self, profile: &FrameProfile, medians: &BTreeMap<String, Option<f64>>, now_ms: i64) -> Value {
        let mut results = Vec::with_capacity(self.rows.len());
        let (mut passed, mut blocking) = (0usize, 0usize);
        for (index, (expectation, state)) in self.suite.expectations.iter().zip(self.rows).enumerate() {
            let outcome = evaluate(&expectation.check, state, profile, &self.schema, medians, now_ms);
            if outcome.success {
                passed += 1;
            } else if expectation.severity == Severity::Error {
                blocking += 1;
            }
            let mut result = Map::new();
            result.insert("index".into(), json!(index));
            result.insert("type".into(), json!(expectation.check.type_name()));
            result.insert("column".into(), json!(expectation.check.column()));
            result.insert("severity".into(), json!(expectation.severity));
            result.insert("success".into(), json!(outcome.success));
            result.insert("observed".into(), outcome.observed);
            result.insert("unexpected_count".into(), json!(outcome.unexpected));
            result.insert("unexpected_rows".into(), Value::Array(outcome.samples));
            result.insert("message".into(), json!(outcome.message));
            result.insert("expectation".into(), serde_json::to_value(&expectation.check).unwrap_or(Value::Null));
            results.push(Value::Object(result));
        }
        let evaluated = results.len();
        let suite_digest = serde_json::to_vec(&self.suite)
            .map(|bytes| format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes))))
            .unwrap_or_default();
        let score = if evaluated == 0 { 1.0 } else { passed as f64 / evaluated as f64 };
        json!({
            "success": blocking == 0, "score": score, "evaluated": evaluated, "passed": passed,
            "blocking_failures": blocking, "results": results, "suite_digest": suite_digest,
        })
    }
}

/// True on a non-null value that is not among `allowed`.
fn not_in(column: &str, allowed: Series) -> Expr {
    col(column).is_in(lit(allowed).implode(false), false).not().and(col(column).is_not_null())
}

fn regex_syntax_ok(index: usize, pattern: &str) -> Result<(), DataError> {
    // The engine compiles patterns lazily; compile once here so a bad one names its rule.
    let probe = Series::new("p".into(), [""]);
    probe
        .str()?
        .contains(pattern, true)
        .map(drop)
        .map_err(|e| DataError::invalid(format!("expectation {index} (regex): pattern `{pattern}` is invalid: {e}")))
}

fn observe_unique(state: &mut RowState, series: &Series, offset: u64) -> Result<(), DataError> {
    let Some(seen) = state.unique_seen.as_mut() else { return Ok(()) };
    let mut check = |row: usize, key: u128, value: &dyn Fn() -> Value| {
        if !seen.insert(key) {
            state.unexpected += 1;
            if state.samples.len() < SAMPLE_ROWS {
                state.samples.push(json!({"row": offset + row as u64, "value": value()}));
            }
        }
    };
    if let Ok(strings) = series.str() {
        for (row, value) in strings.iter().enumerate() {
            if let Some(value) = value {
                let first = hash_bytes(value.as_bytes());
                let key = (u128::from(first) << 64) | u128::from(hash_u64(first ^ value.len() as u64 ^ 0x5bd1_e995));
                check(row, key, &|| json!(value));
            }
        }
        return Ok(());
    }
    let physical = series.to_physical_repr();
    if physical.dtype().is_float() {
        let floats = physical.cast(&DataType::Float64)?;
        for (row, value) in floats.f64()?.iter().enumerate() {
            if let Some(value) = value {
                let bits = if value == 0.0 { 0 } else { value.to_bits() };
                check(row, u128::from(bits), &|| json!(value));
            }
        }
    } else {
        let ints = physical.cast(&DataType::Int64)?;
        for (row, value) in ints.i64()?.iter().enumerate() {
            if let Some(value) = value {
                check(row, u128::from(value as u64), &|| json!(value));
            }
        }
    }
    Ok(())
}

struct Outcome {
    success: bool,
    observed: Value,
    unexpected: u64,
    samples: Vec<Value>,
    message: String,
}

fn within(value: Option<f64>, min: Option<f64>, max: Option<f64>) -> bool {
    match value {
        Some(v) if v.is_finite() => min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m),
        _ => false,
    }
}

fn bounds(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("[{a}, {b}]"),
        (Some(a), None) => format!(">= {a}"),
        (None, Some(b)) => format!("<= {b}"),
        (None, None) => "any".into(),
    }
}

fn evaluate(
    check: &Check,
    state: RowState,
    profile: &FrameProfile,
    schema: &Schema,
    medians: &BTreeMap<String, Option<f64>>,
    now_ms: i64,
) -> Outcome {
    let rows = profile.row_count;
    let column = check.column().and_then(|c| profile.columns.get(c));
    let row_outcome = |what: &str| {
        let unexpected = state.unexpected;
        Outcome {
            success: unexpected == 0,
            observed: json!({"unexpected_count": unexpected, "row_count": rows}),
            unexpected,
            samples: state.samples.clone(),
            message: if unexpected == 0 {
                format!("all {rows} rows pass")
            } else {
                format!("{unexpected} of {rows} values {what}")
            },
        }
    };
    let aggregate = |name: &str, value: Option<f64>, min: Option<f64>, max: Option<f64>| {
        let success = within(value, min, max);
        Outcome {
            success,
            observed: json!({ name: value }),
            unexpected: 0,
            samples: Vec::new(),
            message: match value {
                Some(v) => {
                    format!("{name} {v} {} {}", if success { "is within" } else { "is outside" }, bounds(min, max))
                }
                None => format!("{name} is not computable (no values)"),
            },
        }
    };
    match check {
        Check::NotNull { .. } => {
            let mut outcome = row_outcome("are null");
            // NaN is missing too, as pandas counts it.
            let nan = column.map_or(0, |c| c.nan_count);
            if nan > 0 {
                outcome.unexpected += nan;
                outcome.success = false;
                outcome.observed = json!({"null_count": outcome.unexpected, "row_count": rows});
                outcome.message = format!("{} of {rows} values are null or NaN", outcome.unexpected);
            } else {
                outcome.observed = json!({"null_count": outcome.unexpected, "row_count": rows});
            }
            outcome
        }
        Check::Unique { .. } => row_outcome("repeat an earlier value"),
        Check::Between { min, max, .. } => row_outcome(&format!("are outside {}", bounds(*min, *max))),
        Check::InSet { .. } => row_outcome("are not in the set"),
        Check::Regex { pattern, .. } => row_outcome(&format!("do not match `{pattern}`")),
        Check::ReferentialIntegrity { dataset, to_column, .. } => {
            row_outcome(&format!("have no match in {dataset}.{to_column}"))
        }
        Check::Type { column: name, dtype } => {
            let actual = schema.get(name.as_str()).map(dtype_name).unwrap_or_default();
            let wanted = parse_dtype(dtype).map(|d| dtype_name(&d)).unwrap_or_default();
            let success = actual == wanted;
            Outcome {
                success,
                observed: json!({"dtype": actual}),
                unexpected: 0,
                samples: Vec::new(),
                message: format!("column type is {actual}, expected {wanted}"),
            }
        }
        Check::RowCountBetween { min, max } => {
            aggregate("row_count", Some(rows as f64), min.map(|v| v as f64), max.map(|v| v as f64))
        }
        Check::MeanBetween { min, max, .. } => aggregate("mean", column.and_then(|c| c.mean()), *min, *max),
        Check::StddevBetween { min, max, .. } => aggregate("stddev", column.and_then(|c| c.stddev()), *min, *max),
        Check::MedianBetween { column: name, min, max } => {
            aggregate("median", medians.get(name).copied().flatten(), *min, *max)
        }
        Check::MissingShareBelow { max, .. } => {
            let missing = column.map_or(0, |c| c.null_count);
            let share = if rows == 0 { None } else { Some(missing as f64 / rows as f64) };
            let success = share.is_some_and(|s| s < *max);
            Outcome {
                success,
                observed: json!({"missing_share": share, "missing_count": missing}),
                unexpected: missing,
                samples: Vec::new(),
                message: match share {
                    Some(s) => format!("missing share {s} {} {max}", if success { "is below" } else { "is not below" }),
                    None => "missing share is not computable on no rows".into(),
                },
            }
        }
        Check::Freshness { column: name, max_age_seconds } => {
            let dtype = schema.get(name.as_str()).cloned().unwrap_or(DataType::Null);
            let newest_ms = column.and_then(|c| c.max).and_then(|physical| match dtype {
                DataType::Date => Some(physical * 86_400_000.0),
                DataType::Datetime(TimeUnit::Milliseconds, _) => Some(physical),
                DataType::Datetime(TimeUnit::Microseconds, _) => Some(physical / 1_000.0),
                DataType::Datetime(TimeUnit::Nanoseconds, _) => Some(physical / 1_000_000.0),
                _ => None,
            });
            match newest_ms {
                Some(newest) => {
                    let age = (now_ms as f64 - newest) / 1_000.0;
                    let success = age <= *max_age_seconds;
                    Outcome {
                        success,
                        observed: json!({"age_seconds": age}),
                        unexpected: 0,
                        samples: Vec::new(),
                        message: format!("newest value is {age:.0} s old (limit {max_age_seconds} s)"),
                    }
                }
                None => Outcome {
                    success: false,
                    observed: json!({"age_seconds": null}),
                    unexpected: 0,
                    samples: Vec::new(),
                    message: format!("column `{name}` has no date or datetime values to judge freshness by"),
                },
            }
        }
    }
}

/// One cell as JSON (temporal values as ISO text).
pub fn any_to_json(value: AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => json!(b),
        AnyValue::String(s) => json!(s),
        AnyValue::StringOwned(s) => json!(s.as_str()),
        AnyValue::Int8(v) => json!(v),
        AnyValue::Int16(v) => json!(v),
        AnyValue::Int32(v) => json!(v),
        AnyValue::Int64(v) => json!(v),
        AnyValue::UInt8(v) => json!(v),
        AnyValue::UInt16(v) => json!(v),
        AnyValue::UInt32(v) => json!(v),
        AnyValue::UInt64(v) => json!(v),
        AnyValue::Float32(v) if v.is_finite() => json!(v),
        AnyValue::Float64(v) if v.is_finite() => json!(v),
        AnyValue::Float32(_) | AnyValue::Float64(_) => Value::Null,
        other => json!(format!("{other}")),
    }
}
