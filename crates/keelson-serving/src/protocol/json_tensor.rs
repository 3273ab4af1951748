//! JSON numbers and strings to and from tensor elements, for every datatype. Nested arrays are
//! flattened in row-major order, as the V2 protocol allows.

use super::ProtocolError;
use crate::tensor::{DataType, TensorData};
use serde_json::Value;
use tract_onnx::prelude::f16;

/// Flattens `value` (a scalar or nested arrays) into elements of `datatype`.
pub fn elements_from_json(value: &Value, datatype: DataType, what: &str) -> Result<TensorData, ProtocolError> {
    let mut leaves = Vec::new();
    flatten(value, &mut leaves);
    let bad = |index: usize, expected: &str| {
        ProtocolError::new(format!("{what}: element {index} is not {expected} (datatype {datatype})"))
    };
    macro_rules! integers {
        ($variant:ident, $ty:ty) => {{
            let mut out = Vec::with_capacity(leaves.len());
            for (index, leaf) in leaves.iter().enumerate() {
                let number = leaf
                    .as_i64()
                    .and_then(|n| <$ty>::try_from(n).ok())
                    .or_else(|| leaf.as_u64().and_then(|n| <$ty>::try_from(n).ok()));
                out.push(number.ok_or_else(|| bad(index, concat!("an integer that fits ", stringify!($ty))))?);
            }
            TensorData::$variant(out)
        }};
    }
    Ok(match datatype {
        DataType::Bool => {
            let mut out = Vec::with_capacity(leaves.len());
            for (index, leaf) in leaves.iter().enumerate() {
                out.push(leaf.as_bool().ok_or_else(|| bad(index, "true or false"))?);
            }
            TensorData::Bool(out)
        }
        DataType::Uint8 => integers!(Uint8, u8),
        DataType::Uint16 => integers!(Uint16, u16),
        DataType::Uint32 => integers!(Uint32, u32),
        DataType::Uint64 => integers!(Uint64, u64),
        DataType::Int8 => integers!(Int8, i8),
        DataType::Int16 => integers!(Int16, i16),
        DataType::Int32 => integers!(Int32, i32),
        DataType::Int64 => integers!(Int64, i64),
        DataType::Fp16 => {
            let mut out = Vec::with_capacity(leaves.len());
            for (index, leaf) in leaves.iter().enumerate() {
                out.push(f16::from_f64(number(leaf).ok_or_else(|| bad(index, "a number"))?).to_bits());
            }
            TensorData::Fp16(out)
        }
        DataType::Fp32 => {
            let mut out = Vec::with_capacity(leaves.len());
            for (index, leaf) in leaves.iter().enumerate() {
                out.push(number(leaf).ok_or_else(|| bad(index, "a number"))? as f32);
            }
            TensorData::Fp32(out)
        }
        DataType::Fp64 => {
            let mut out = Vec::with_capacity(leaves.len());
            for (index, leaf) in leaves.iter().enumerate() {
                out.push(number(leaf).ok_or_else(|| bad(index, "a number"))?);
            }
            TensorData::Fp64(out)
        }
        DataType::Bytes => {
            let mut out = Vec::with_capacity(leaves.len());
            for (index, leaf) in leaves.iter().enumerate() {
                out.push(leaf.as_str().ok_or_else(|| bad(index, "a string"))?.as_bytes().to_vec());
            }
            TensorData::Bytes(out)
        }
    })
}

/// A JSON number, or one of the spellings Python's json module writes for non-finite floats
/// (which serde_json reads as strings only when given as strings).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other),
    }
}

/// Elements as JSON values, flat. Non-finite floats have no JSON spelling and become null.
pub fn elements_to_json(data: &TensorData) -> Vec<Value> {
    fn float(x: f64) -> Value {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
    match data {
        TensorData::Bool(v) => v.iter().map(|x| Value::Bool(*x)).collect(),
        TensorData::Uint8(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Uint16(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Uint32(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Uint64(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Int8(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Int16(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Int32(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Int64(v) => v.iter().map(|x| Value::from(*x)).collect(),
        TensorData::Fp16(v) => v.iter().map(|x| float(f16::from_bits(*x).to_f64())).collect(),
        TensorData::Fp32(v) => v.iter().map(|x| float(f64::from(*x))).collect(),
        TensorData::Fp64(v) => v.iter().map(|x| float(*x)).collect(),
        TensorData::Bytes(v) => v.iter().map(|x| Value::String(String::from_utf8_lossy(x).into_owned())).collect(),
    }
}

/// Nests flat elements by `shape` (row-major), for protocols that answer nested lists.
pub fn nest(elements: Vec<Value>, shape: &[usize]) -> Value {
    match shape {
        [] => elements.into_iter().next().unwrap_or(Value::Null),
        [_] => Value::Array(elements),
        [_, rest @ ..] => {
            let chunk: usize = rest.iter().product();
            if chunk == 0 {
                return Value::Array(vec![Value::Array(Vec::new()); shape[0]]);
            }
            let mut rows = Vec::with_capacity(elements.len() / chunk);
            let mut iter = elements.into_iter();
            loop {
                let row: Vec<Value> = iter.by_ref().take(chunk).collect();
                if row.is_empty() {
                    break;
                }
                rows.push(nest(row, rest));
            }
            Value::Array(rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_arrays_flatten_row_major() {
        let data = elements_from_json(&json!([[1, 2], [3, 4]]), DataType::Fp32, "x").unwrap();
        assert_eq!(data, TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0]));
        let data = elements_from_json(&json!(["a", "b"]), DataType::Bytes, "x").unwrap();
        assert_eq!(data, TensorData::Bytes(vec![b"a".to_vec(), b"b".to_vec()]));
    }

    #[test]
    fn out_of_range_and_wrong_kinds_are_named() {
        let error = elements_from_json(&json!([1, 300]), DataType::Uint8, "input `x`").unwrap_err();
        assert_eq!(error.0, "input `x`: element 1 is not an integer that fits u8 (datatype UINT8)");
        let error = elements_from_json(&json!([1.5]), DataType::Int64, "input `x`").unwrap_err();
        assert!(error.0.contains("element 0 is not an integer"));
        let error = elements_from_json(&json!(["a"]), DataType::Fp32, "input `x`").unwrap_err();
        assert!(error.0.contains("is not a number"));
        let error = elements_from_json(&json!([1]), DataType::Bool, "input `x`").unwrap_err();
        assert!(error.0.contains("true or false"));
    }

    #[test]
    fn nest_rebuilds_rows() {
        let flat: Vec<Value> = (1..=6).map(Value::from).collect();
        assert_eq!(nest(flat.clone(), &[2, 3]), json!([[1, 2, 3], [4, 5, 6]]));
        assert_eq!(nest(flat.clone(), &[3, 2, 1]), json!([[[1], [2]], [[3], [4]], [[5], [6]]]));
        assert_eq!(nest(flat, &[6]), json!([1, 2, 3, 4, 5, 6]));
        assert_eq!(nest(vec![json!(7)], &[]), json!(7));
    }

    #[test]
    fn non_finite_floats_become_null() {
        assert_eq!(elements_to_json(&TensorData::Fp32(vec![1.0, f32::NAN])), vec![json!(1.0), Value::Null]);
    }
}
