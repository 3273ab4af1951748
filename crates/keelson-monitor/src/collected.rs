//! Collected traffic as tables: the records the serving data collector wrote for an endpoint
//! (JSON lines partitioned by endpoint, deployment, date and hour) within a time window, turned
//! into one row per predicted row — input tensors become feature columns, output tensors
//! prediction columns — and the ground-truth labels sent for them, joined by correlation id.

use crate::error::MonitorError;
use crate::sample::{ColumnKind, ColumnSample};
use keelson_artifacts::{ArtifactKey, ArtifactStore};
use keelson_core::time::{format_rfc3339_ms, parse_rfc3339_ms};
use keelson_core::HasErrorKind;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

use keelson_core::collected::{COLLECTED_PREFIX, GROUND_TRUTH_PREFIX};

/// A time window, `[start, end)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// Rows of collected traffic: each column a value per row, and who asked for each row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficTable {
    pub rows: usize,
    /// Column name → one value per row (None where the request lacked it).
    pub columns: BTreeMap<String, Vec<Option<Value>>>,
    /// Columns that came from outputs.
    pub outputs: Vec<String>,
    /// `(correlation id, row within its request)` per row.
    pub row_ids: Vec<(String, usize)>,
    pub records: usize,
    pub failed_requests: usize,
}

impl TrafficTable {
    /// The columns as samples. A column the reference has as numeric is numeric, and what is
    /// not a number in it counts as a type error; other columns are numeric when every present
    /// value is a number, else categorical (text when declared).
    pub fn samples(&self, text_columns: &[String], reference_kinds: &HashMap<String, ColumnKind>) -> Vec<ColumnSample> {
        self.columns
            .iter()
            .map(|(name, values)| {
                if reference_kinds.get(name) == Some(&ColumnKind::Numeric) {
                    let numbers = values.iter().filter(|v| v.as_ref().is_none_or(Value::is_number));
                    let mut sample = ColumnSample::numeric(name, numbers.map(|v| v.as_ref().and_then(Value::as_f64)));
                    sample.type_errors = values.iter().flatten().filter(|v| !v.is_number()).count() as u64;
                    sample.rows += sample.type_errors;
                    return sample;
                }
                let numeric = values.iter().flatten().all(Value::is_number);
                if numeric {
                    ColumnSample::numeric(name, values.iter().map(|v| v.as_ref().and_then(Value::as_f64)))
                } else {
                    let kind = if text_columns.contains(name) { ColumnKind::Text } else { ColumnKind::Categorical };
                    ColumnSample::strings(name, kind, values.iter().map(|v| v.as_ref().map(value_string)))
                }
            })
            .collect()
    }
}

fn value_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Hour partitions (`YYYY-MM-DD/HH`) a window touches.
fn hours(window: Window) -> Vec<String> {
    const HOUR: i64 = 3_600_000;
    let mut out = Vec::new();
    let mut at = window.start.div_euclid(HOUR) * HOUR;
    while at < window.end && out.len() < 24 * 400 {
        let stamp = format_rfc3339_ms(at);
        if let (Some(date), Some(hour)) = (stamp.get(..10), stamp.get(11..13)) {
            out.push(format!("{date}/{hour}"));
        }
        at += HOUR;
    }
    out
}

/// Keys of the files in the hour partitions (`{root}/{YYYY-MM-DD}/{HH}/…`) the window touches,
/// listing only those partitions, so a run's cost follows its window, not the endpoint's age.
async fn files_in_window(
    artifacts: &ArtifactStore,
    roots: &[String],
    window: Window,
) -> Result<Vec<String>, MonitorError> {
    let mut keys = Vec::new();
    for root in roots {
        for hour in hours(window) {
            let prefix =
                ArtifactKey::parse(&format!("{root}/{hour}")).map_err(|e| MonitorError::invalid(e.to_string()))?;
            match artifacts.list_recursive(Some(&prefix)).await {
                Ok(objects) => keys.extend(objects.into_iter().map(|o| o.key)),
                Err(error) if error.kind() == keelson_core::ErrorKind::NotFound => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// The partition roots of an endpoint's collected traffic: one deployment's, or every one's.
async fn traffic_roots(
    artifacts: &ArtifactStore,
    endpoint: &str,
    deployment: Option<&str>,
) -> Result<Vec<String>, MonitorError> {
    let root = format!("{COLLECTED_PREFIX}/{endpoint}");
    if let Some(deployment) = deployment {
        return Ok(vec![format!("{root}/{deployment}")]);
    }
    let key = ArtifactKey::parse(&root).map_err(|e| MonitorError::invalid(e.to_string()))?;
    match artifacts.list(Some(&key)).await {
        Ok(listing) => Ok(listing.dirs),
        Err(error) if error.kind() == keelson_core::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error.into()),
    }
}

async fn read_lines(artifacts: &ArtifactStore, key: &str) -> Result<Vec<Value>, MonitorError> {
    let parsed = ArtifactKey::parse(key).map_err(|e| MonitorError::Internal(e.to_string()))?;
    let bytes = artifacts.get_bytes(&parsed).await?;
    bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).map_err(|e| MonitorError::Internal(format!("{key}: {e}"))))
        .collect()
}

/// Reads the collected records of an endpoint (one deployment, or all) within the window.
/// `features` names the columns of two-dimensional tensors: tensor name → column names.
pub async fn read_traffic(
    artifacts: &ArtifactStore,
    endpoint: &str,
    deployment: Option<&str>,
    window: Window,
    features: &BTreeMap<String, Vec<String>>,
) -> Result<TrafficTable, MonitorError> {
    let roots = traffic_roots(artifacts, endpoint, deployment).await?;
    let mut table = TrafficTable::default();
    for key in files_in_window(artifacts, &roots, window).await? {
        for record in read_lines(artifacts, &key).await? {
            let at = record.get("timestamp").and_then(Value::as_str).and_then(parse_rfc3339_ms);
            if !at.is_some_and(|t| t >= window.start && t < window.end) {
                continue;
            }
            add_record(&mut table, &record, features)?;
        }
    }
    Ok(table)
}

/// One tensor as columns: `(column name, values per row)`.
fn tensor_columns(
    name: &str,
    tensor: &Value,
    features: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<(String, Vec<Value>)>, MonitorError> {
    let shape: Vec<usize> = tensor
        .get("shape")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_u64).map(|d| d as usize).collect())
        .unwrap_or_default();
    let data = tensor.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    let (rows, width) = match shape.as_slice() {
        [] => (1, 1),
        [rows] => (*rows, 1),
        [rows, width] => (*rows, *width),
        [rows, rest @ ..] => (*rows, rest.iter().product()),
    };
    if rows * width != data.len() {
        return Err(MonitorError::Internal(format!(
            "collected tensor `{name}` has shape {shape:?} but {} values",
            data.len()
        )));
    }
    let names: Vec<String> = match features.get(name) {
        Some(names) if names.len() == width => names.clone(),
        Some(names) => {
            return Err(MonitorError::invalid(format!(
                "`features.{name}` names {} columns but the tensor has {width}",
                names.len()
            )))
        }
        None if width == 1 => vec![name.to_string()],
        None => (0..width).map(|i| format!("{name}[{i}]")).collect(),
    };
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(column, name)| (name, (0..rows).map(|row| data[row * width + column].clone()).collect()))
        .collect())
}

fn add_record(
    table: &mut TrafficTable,
    record: &Value,
    features: &BTreeMap<String, Vec<String>>,
) -> Result<(), MonitorError> {
    table.records += 1;
    let Some(outputs) = record.get("outputs").and_then(Value::as_object) else {
        // A failed request predicted nothing; it counts, but has no rows to compare.
        table.failed_requests += 1;
        return Ok(());
    };
    let mut columns = Vec::new();
    for (side, tensors) in [("input", record.get("inputs").and_then(Value::as_object)), ("output", Some(outputs))] {
        for (name, tensor) in tensors.into_iter().flatten() {
            for column in tensor_columns(name, tensor, features)? {
                if side == "output" && !table.outputs.contains(&column.0) {
                    table.outputs.push(column.0.clone());
                }
                columns.push(column);
            }
        }
    }
    let rows = columns.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let correlation = record.get("correlation_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let before = table.rows;
    for (name, values) in columns {
        let column = table.columns.entry(name).or_insert_with(|| vec![None; before]);
        column.extend(values.into_iter().map(Some));
        column.resize(before + rows, None);
    }
    table.rows += rows;
    for column in table.columns.values_mut() {
        column.resize(table.rows, None);
    }
    table.row_ids.extend((0..rows).map(|row| (correlation.clone(), row)));
    Ok(())
}

/// Ground-truth labels of an endpoint received from `since` on, by correlation id; the newest
/// label for an id wins. A label is one value, or an array with one value per row of a batch.
pub async fn read_labels(
    artifacts: &ArtifactStore,
    endpoint: &str,
    since: i64,
    until: i64,
) -> Result<HashMap<String, Value>, MonitorError> {
    let roots = [format!("{GROUND_TRUTH_PREFIX}/{endpoint}")];
    let mut labels = HashMap::new();
    for key in files_in_window(artifacts, &roots, Window { start: since, end: until }).await? {
        for line in read_lines(artifacts, &key).await? {
            if let (Some(id), Some(label)) = (line.get("correlation_id").and_then(Value::as_str), line.get("label")) {
                labels.insert(id.to_string(), label.clone());
            }
        }
    }
    Ok(labels)
}

/// The label of one row: the value itself, or its element of a per-row array.
pub fn row_label(label: &Value, row: usize) -> Option<&Value> {
    match label {
        Value::Array(items) => items.get(row),
        other => (row == 0).then_some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_become_rows_with_named_feature_columns() {
        let mut table = TrafficTable::default();
        let features = BTreeMap::from([("x".to_string(), vec!["a".to_string(), "b".to_string()])]);
        let record = json!({
            "correlation_id": "r1", "timestamp": "2026-01-01T00:00:00.000Z",
            "inputs": {"x": {"datatype": "FP32", "shape": [2, 2], "data": [1.0, 2.0, 3.0, 4.0]}},
            "outputs": {"label": {"datatype": "INT64", "shape": [2], "data": [0, 1]}}
        });
        add_record(&mut table, &record, &features).unwrap();
        let failed = json!({"correlation_id": "r2", "inputs": {}, "error": "boom"});
        add_record(&mut table, &failed, &features).unwrap();
        assert_eq!(table.rows, 2);
        assert_eq!(table.columns["a"], vec![Some(json!(1.0)), Some(json!(3.0))]);
        assert_eq!(table.columns["b"], vec![Some(json!(2.0)), Some(json!(4.0))]);
        assert_eq!(table.columns["label"], vec![Some(json!(0)), Some(json!(1))]);
        assert_eq!(table.outputs, vec!["label".to_string()]);
        assert_eq!(table.row_ids, vec![("r1".to_string(), 0), ("r1".to_string(), 1)]);
        assert_eq!((table.records, table.failed_requests), (2, 1));
        let wrong = BTreeMap::from([("x".to_string(), vec!["a".to_string()])]);
        assert!(add_record(&mut TrafficTable::default(), &record, &wrong)
            .unwrap_err()
            .to_string()
            .contains("features.x"));
    }

    #[test]
    fn windows_list_the_hours_they_touch() {
        let start = parse_rfc3339_ms("2026-01-01T22:30:00Z").unwrap();
        let end = parse_rfc3339_ms("2026-01-02T00:10:00Z").unwrap();
        assert_eq!(hours(Window { start, end }), ["2026-01-01/22", "2026-01-01/23", "2026-01-02/00"]);
    }

    #[test]
    fn labels_apply_per_row_of_a_batch() {
        assert_eq!(row_label(&json!([1, 0]), 1), Some(&json!(0)));
        assert_eq!(row_label(&json!("cat"), 0), Some(&json!("cat")));
        assert_eq!(row_label(&json!("cat"), 1), None);
    }
}
