//! MLflow's scoring protocol (`POST …/invocations`): `dataframe_split`, `dataframe_records`,
//! `instances` or `inputs` in, `{"predictions": …}` out.

use super::rows::{batch_from_rows, inputs_from_instances, predictions_by_row, rows_of};
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

/// Data-frame requests get one record per row; tensor requests get the outputs by name.
pub fn encode_invocation_response(outputs: &[NamedTensor], form: InputForm) -> Value {
    match form {
        InputForm::DataFrame => json!({"predictions": predictions_by_row(outputs)}),
        InputForm::Tensor => {
            let mut object = Map::new();
            for output in outputs {
                object.insert(output.name.clone(), Value::Array(rows_of(&output.tensor)));
            }
            json!({"predictions": object})
        }
    }
}
