//! Row-oriented JSON (KServe V1 instances, MLflow's dataframes) to tensors and back: a list of
//! rows becomes a batch along the first axis; answers go back as one entry per row.

use super::json_tensor::{elements_from_json, elements_to_json, nest};
use super::ProtocolError;
use crate::signature::{NamedTensor, Signature, TensorSpec};
use crate::tensor::Tensor;
use serde_json::{Map, Value};

/// A batch for one input from a list of rows (each a scalar or nested list).
pub fn batch_from_rows(spec: &TensorSpec, rows: &[Value]) -> Result<NamedTensor, ProtocolError> {
    let what = format!("input `{}`", spec.name);
    let mut row_shape: Option<Vec<usize>> = None;
    for (index, row) in rows.iter().enumerate() {
        let shape = shape_of(row).ok_or_else(|| ProtocolError::new(format!("{what}: row {index} is ragged")))?;
        match &row_shape {
            None => row_shape = Some(shape),
            Some(first) if *first != shape => {
                return Err(ProtocolError::new(format!(
                    "{what}: row {index} has shape {shape:?} but row 0 has {first:?}"
                )))
            }
            Some(_) => {}
        }
    }
    let mut shape = vec![rows.len()];
    shape.extend(row_shape.unwrap_or_default());
    // A model taking [N, 1] is fed scalars per row as a column.
    if shape.len() + 1 == spec.shape.len() && spec.shape.last() == Some(&1) {
        shape.push(1);
    }
    let data = elements_from_json(&Value::Array(rows.to_vec()), spec.datatype, &what)?;
    let tensor = Tensor::new(shape, data).map_err(|error| ProtocolError::new(format!("{what}: {error}")))?;
    Ok(NamedTensor { name: spec.name.clone(), tensor })
}

/// Inputs from `instances`: a list of rows for a one-input model, or a list of objects keyed
/// by input name.
pub fn inputs_from_instances(signature: &Signature, instances: &[Value]) -> Result<Vec<NamedTensor>, ProtocolError> {
    let keyed = instances.first().is_some_and(Value::is_object);
    if !keyed {
        return match signature.inputs.as_slice() {
            [only] => Ok(vec![batch_from_rows(only, instances)?]),
            _ => Err(ProtocolError::new(format!(
                "the model has {} inputs; send each instance as an object keyed by input name",
                signature.inputs.len()
            ))),
        };
    }
    let mut columns: Vec<(&TensorSpec, Vec<Value>)> = signature.inputs.iter().map(|s| (s, Vec::new())).collect();
    for (index, instance) in instances.iter().enumerate() {
        let Some(object) = instance.as_object() else {
            return Err(ProtocolError::new(format!("instance {index} is not an object like instance 0")));
        };
        if let Some(unknown) = object.keys().find(|key| signature.input(key).is_none()) {
            return Err(ProtocolError::new(format!("instance {index} has unknown input `{unknown}`")));
        }
        for (spec, column) in columns.iter_mut() {
            match object.get(&spec.name) {
                Some(value) => column.push(value.clone()),
                None => {
                    return Err(ProtocolError::new(format!("instance {index} lacks input `{}`", spec.name)));
                }
            }
        }
    }
    columns.into_iter().map(|(spec, column)| batch_from_rows(spec, &column)).collect()
}

/// One JSON value per row of `tensor` (its first axis).
pub fn rows_of(tensor: &Tensor) -> Vec<Value> {
    let elements = elements_to_json(&tensor.data);
    match tensor.shape.as_slice() {
        [] => elements,
        [_] => elements,
        [rows, rest @ ..] => match nest(elements, &tensor.shape) {
            Value::Array(items) if items.len() == *rows => items,
            other => vec![other; usize::from(rest.is_empty())],
        },
    }
}

/// V1-style predictions: one entry per row; with several outputs, an object per row.
pub fn predictions_by_row(outputs: &[NamedTensor]) -> Value {
    if let [only] = outputs {
        return Value::Array(rows_of(&only.tensor));
    }
    let columns: Vec<(&str, Vec<Value>)> = outputs.iter().map(|o| (o.name.as_str(), rows_of(&o.tensor))).collect();
    let rows = columns.iter().map(|(_, values)| values.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(rows);
    for row in 0..rows {
        let mut object = Map::new();
        for (name, values) in &columns {
            object.insert((*name).to_string(), values.get(row).cloned().unwrap_or(Value::Null));
        }
        out.push(Value::Object(object));
    }
    Value::Array(out)
}

/// The shape of a nested list, or none when it is ragged.
fn shape_of(value: &Value) -> Option<Vec<usize>> {
    match value {
        Value::Array(items) => {
            let mut inner: Option<Vec<usize>> = None;
            for item in items {
                let shape = shape_of(item)?;
                match &inner {
                    None => inner = Some(shape),
                    Some(first) if *first != shape => return None,
                    Some(_) => {}
                }
            }
            let mut shape = vec![items.len()];
            shape.extend(inner.unwrap_or_default());
            Some(shape)
        }
        _ => Some(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DataType;
    use serde_json::json;

    fn spec(name: &str, shape: Vec<i64>) -> TensorSpec {
        TensorSpec { name: name.into(), datatype: DataType::Fp32, shape, class_labels: None }
    }

    #[test]
    fn rows_become_a_batch() {
        let batch = batch_from_rows(&spec("x", vec![-1, 2]), &[json!([1, 2]), json!([3, 4])]).unwrap();
        assert_eq!(batch.tensor, Tensor::f32(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
        let column = batch_from_rows(&spec("x", vec![-1, 1]), &[json!(1), json!(2)]).unwrap();
        assert_eq!(column.tensor.shape, vec![2, 1]);
        let ragged = batch_from_rows(&spec("x", vec![-1, 2]), &[json!([1, 2]), json!([3])]).unwrap_err();
        assert_eq!(ragged.0, "input `x`: row 1 has shape [1] but row 0 has [2]");
    }

    #[test]
    fn keyed_instances_feed_each_input() {
        let signature = Signature { inputs: vec![spec("a", vec![-1, 1]), spec("b", vec![-1, 1])], outputs: vec![] };
        let inputs = inputs_from_instances(&signature, &[json!({"a": 1, "b": 2}), json!({"a": 3, "b": 4})]).unwrap();
        assert_eq!(inputs[1].tensor, Tensor::f32(vec![2, 1], vec![2.0, 4.0]).unwrap());
        let error = inputs_from_instances(&signature, &[json!({"a": 1})]).unwrap_err();
        assert_eq!(error.0, "instance 0 lacks input `b`");
        let error = inputs_from_instances(&signature, &[json!([1, 2])]).unwrap_err();
        assert!(error.0.contains("the model has 2 inputs"));
    }

    #[test]
    fn predictions_are_one_entry_per_row() {
        let label = NamedTensor { name: "label".into(), tensor: Tensor::i64(vec![2], vec![1, 0]).unwrap() };
        let p = NamedTensor { name: "p".into(), tensor: Tensor::f32(vec![2, 2], vec![0.5, 0.5, 1.0, 0.0]).unwrap() };
        assert_eq!(predictions_by_row(std::slice::from_ref(&label)), json!([1, 0]));
        assert_eq!(
            predictions_by_row(&[label, p]),
            json!([{"label": 1, "p": [0.5, 0.5]}, {"label": 0, "p": [1.0, 0.0]}])
        );
    }
}
