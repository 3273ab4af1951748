//! MLflow's scoring protocol (`POST …/invocations`): `dataframe_split`, `dataframe_records`,
//! `instances` or `inputs` in, `{"predictions": …}` out.

use super::rows::{batch_from_rows, inputs_from_instances, rows_of};
use super::ProtocolError;
use crate::signature::{NamedTensor, Signature};
use serde_json::{json, Map, Value};

/// Which form the request came in; the answer's shape follows it, as MLflow's does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    DataFrame,
    Tensor,
}

pub fn parse_invocation(body: &[u8], signature: &Signature) -> Result<(Vec<NamedTensor>, InputForm), ProtocolError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ProtocolError::new(format!("the request body is not valid JSON: {error}")))?;
    let Some(object) = value.as_object() else {
        return Err(ProtocolError::new("the request body must be a JSON object"));
    };
    const KEYS: [&str; 4] = ["dataframe_split", "dataframe_records", "instances", "inputs"];
    let given: Vec<&str> = KEYS.iter().copied().filter(|key| object.contains_key(*key)).collect();
    let [key] = given.as_slice() else {
        return Err(ProtocolError::new(format!(
            "the request needs exactly one of {}; it has {}",
            KEYS.map(|k| format!("`{k}`")).join(", "),
            if given.is_empty() { "none".to_string() } else { given.join(", ") }
        )));
    };
    let payload = &object[*key];
    match *key {
        "dataframe_split" => {
            let columns = payload.get("columns").and_then(Value::as_array).map(|c| strings(c)).transpose()?;
            let data = payload
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| ProtocolError::new("`dataframe_split` needs a `data` list of rows"))?;
            let rows: Vec<&[Value]> = data
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    row.as_array()
                        .map(Vec::as_slice)
                        .ok_or_else(|| ProtocolError::new(format!("row {i} is not a list")))
                })
                .collect::<Result<_, _>>()?;
            Ok((frame_inputs(signature, columns.as_deref(), &rows)?, InputForm::DataFrame))
        }
        "dataframe_records" => {
            let records = payload.as_array().ok_or_else(|| ProtocolError::new("`dataframe_records` must be a list"))?;
            let mut columns: Vec<String> = Vec::new();
            for record in records {
                let Some(record) = record.as_object() else {
                    return Err(ProtocolError::new("each record must be an object of column values"));
                };
                for key in record.keys() {
                    if !columns.contains(key) {
                        columns.push(key.clone());
                    }
                }
            }
            let rows: Vec<Vec<Value>> = records
                .iter()
                .map(|record| columns.iter().map(|c| record.get(c).cloned().unwrap_or(Value::Null)).collect())
                .collect();
            let rows: Vec<&[Value]> = rows.iter().map(Vec::as_slice).collect();
            Ok((frame_inputs(signature, Some(&columns), &rows)?, InputForm::DataFrame))
        }
        _ => {
            let inputs = match payload {
                Value::Array(instances) if !instances.is_empty() => inputs_from_instances(signature, instances)?,
                Value::Object(named) => named_inputs(signature, named)?,
                _ => {
                    return Err(ProtocolError::new(format!("`{key}` must be a non-empty list or an object of inputs")))
                }
            };
            Ok((inputs, InputForm::Tensor))
        }
    }
}

fn strings(values: &[Value]) -> Result<Vec<String>, ProtocolError> {
    values
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| ProtocolError::new("column names must be strings")))
        .collect()
}

/// A one-input model takes the whole frame as a matrix; a model with several inputs takes one
/// column per input, by name.
fn frame_inputs(
    signature: &Signature,
    columns: Option<&[String]>,
    rows: &[&[Value]],
) -> Result<Vec<NamedTensor>, ProtocolError> {
    if rows.is_empty() {
        return Err(ProtocolError::new("the data frame has no rows"));
    }
    if let [only] = signature.inputs.as_slice() {
        let rows: Vec<Value> = rows.iter().map(|row| Value::Array(row.to_vec())).collect();
        return Ok(vec![batch_from_rows(only, &rows)?]);
    }
    let Some(columns) = columns else {
        return Err(ProtocolError::new("the model has several inputs; name the data frame's columns after them"));
    };
    signature
        .inputs
        .iter()
        .map(|spec| {
            let index = columns
                .iter()
                .position(|c| *c == spec.name)
                .ok_or_else(|| ProtocolError::new(format!("the data frame has no column `{}`", spec.name)))?;
            let column: Vec<Value> = rows.iter().map(|row| row.get(index).cloned().unwrap_or(Value::Null)).collect();
            batch_from_rows(spec, &column)
        })
        .collect()
}

fn named_inputs(signature: &Signature, named: &Map<String, Value>) -> Result<Vec<NamedTensor>, ProtocolError> {
    if let Some(unknown) = named.keys().find(|key| signature.input(key).is_none()) {
        return Err(ProtocolError::new(format!("unknown input `{unknown}`")));
    }
    signature
        .inputs
        .iter()
        .map(|spec| match named.get(&spec.name).and_then(Value::as_array) {
            Some(rows) => batch_from_rows(spec, rows),
            None => Err(ProtocolError::new(format!("input `{}` is missing or not a list", spec.name))),
        })
        .collect()
}

/// The answer MLflow's scoring server gives for an ONNX model: data-frame requests get one
/// record per row (`{output: value}`, a one-column output as a scalar), tensor requests get each
/// output whole. Probabilities a ZipMap keyed by class come back as `{class: probability}`.
pub fn encode_invocation_response(outputs: &[NamedTensor], signature: &Signature, form: InputForm) -> Value {
    let rows_of_output = |output: &NamedTensor| -> Vec<Value> {
        let labels =
            signature.outputs.iter().find(|spec| spec.name == output.name).and_then(|spec| spec.class_labels.as_ref());
        let rows = rows_of(&output.tensor);
        match labels {
            Some(labels) if !labels.is_empty() => rows
                .into_iter()
                .map(|row| match row {
                    Value::Array(values) => {
                        Value::Object(labels.iter().cloned().zip(values).collect::<Map<String, Value>>())
                    }
                    other => other,
                })
                .collect(),
            _ => rows,
        }
    };
    match form {
        InputForm::DataFrame => {
            let columns: Vec<(&str, Vec<Value>)> =
                outputs.iter().map(|output| (output.name.as_str(), rows_of_output(output))).collect();
            let count = columns.iter().map(|(_, rows)| rows.len()).max().unwrap_or(0);
            let records = (0..count)
                .map(|row| {
                    let mut record = Map::new();
                    for (name, rows) in &columns {
                        let value = match rows.get(row).cloned().unwrap_or(Value::Null) {
                            Value::Array(mut single) if single.len() == 1 => single.remove(0),
                            other => other,
                        };
                        record.insert((*name).to_string(), value);
                    }
                    Value::Object(record)
                })
                .collect();
            json!({"predictions": Value::Array(records)})
        }
        InputForm::Tensor => {
            let mut object = Map::new();
            for output in outputs {
                object.insert(output.name.clone(), Value::Array(rows_of_output(output)));
            }
            json!({"predictions": object})
        }
    }
}
