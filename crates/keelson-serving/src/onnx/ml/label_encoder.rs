//! LabelEncoder: maps each element through a key → value table, unknown keys to a default.
//! Opset 1 (`classes_strings`) maps strings to their index and indices back to strings; opsets
//! 2–4 give explicit `keys_*`/`values_*` lists or (opset 4) `keys_tensor`/`values_tensor`/
//! `default_tensor`. The node proto does not carry the opset, so float keys follow opset 4 for
//! all: NaN matches a NaN key (onnxruntime's opset-2 kernel never matches one) and −0 matches 0.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::proto_tensor::TensorValues;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use std::collections::HashMap;
use std::hash::Hash;
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
enum Keys {
    Strings(HashMap<Vec<u8>, usize>),
    Ints(HashMap<i64, usize>),
    Floats(HashMap<u64, usize>),
    Doubles(HashMap<u64, usize>),
}

#[derive(Debug)]
enum Values {
    Strings(Vec<Vec<u8>>, Vec<u8>),
    Ints(Vec<i64>, i64),
    Floats(Vec<f32>, f32),
    Doubles(Vec<f64>, f64),
}

/// One key type's table; values[i] belongs to the i-th key.
#[derive(Debug)]
struct Mapping {
    keys: Keys,
    values: Values,
}

#[derive(Debug)]
pub(crate) struct LabelEncoder {
    ctx: OpContext,
    /// Opset 1 holds both directions and picks by input type; later opsets hold one.
    mappings: Vec<Mapping>,
}

const KEY_NAMES: [&str; 4] = ["keys_strings", "keys_int64s", "keys_floats", "keys_tensor"];
const VALUE_NAMES: [&str; 4] = ["values_strings", "values_int64s", "values_floats", "values_tensor"];

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let mappings = if KEY_NAMES.iter().any(|name| attrs.has(name)) { vec![keyed(&attrs)?] } else { classes(&attrs)? };
    Ok(Box::new(LabelEncoder { ctx, mappings }))
}

/// Opset 1: strings map to their position (the last one when repeated), positions to strings.
fn classes(attrs: &Attrs) -> Result<Vec<Mapping>, MlOpError> {
    let classes = attrs.strings("classes_strings")?;
    let default_int = attrs.int("default_int64")?.unwrap_or(-1);
    let default_string = attrs.string("default_string")?.unwrap_or_else(|| "_Unused".to_string());
    let to_index = classes.iter().cloned().enumerate().map(|(i, s)| (s, i)).collect();
    let to_string = (0..classes.len()).map(|i| (i as i64, i)).collect();
    Ok(vec![
        Mapping {
            keys: Keys::Strings(to_index),
            values: Values::Ints((0..classes.len() as i64).collect(), default_int),
        },
        Mapping { keys: Keys::Ints(to_string), values: Values::Strings(classes, default_string.into_bytes()) },
    ])
}

/// Opsets 2–4: one key list, one value list of the same length, a default of the values' type.
fn keyed(attrs: &Attrs) -> Result<Mapping, MlOpError> {
    let given = |names: &[&str; 4]| names.iter().filter(|name| attrs.has(name)).count();
    if given(&KEY_NAMES) != 1 || given(&VALUE_NAMES) != 1 {
        return Err(attrs.error("exactly one keys_* and one values_* attribute are needed"));
    }
    let keys = if let Some(tensor) = attrs.tensor("keys_tensor")? {
        tensor
    } else if attrs.has("keys_strings") {
        TensorValues::Bytes(attrs.strings("keys_strings")?)
    } else if attrs.has("keys_int64s") {
        TensorValues::I64(attrs.ints("keys_int64s")?)
    } else {
        TensorValues::F32(attrs.floats("keys_floats")?)
    };
    let values = if let Some(tensor) = attrs.tensor("values_tensor")? {
        tensor
    } else if attrs.has("values_strings") {
        TensorValues::Bytes(attrs.strings("values_strings")?)
    } else if attrs.has("values_int64s") {
        TensorValues::I64(attrs.ints("values_int64s")?)
    } else {
        TensorValues::F32(attrs.floats("values_floats")?)
    };
    if keys.len() != values.len() {
        return Err(attrs.error(format!("{} keys but {} values", keys.len(), values.len())));
    }
    let keys = match keys {
        TensorValues::Bytes(k) => Keys::Strings(first_positions(k)),
        TensorValues::I64(k) => Keys::Ints(first_positions(k)),
        TensorValues::F32(k) => Keys::Floats(first_positions(k.iter().map(|x| float_key(f64::from(*x))))),
        TensorValues::F64(k) => Keys::Doubles(first_positions(k.iter().map(|x| float_key(*x)))),
    };
    let default = attrs.tensor("default_tensor")?;
    let wrong_default = || attrs.error("`default_tensor` must hold one value of the values' type");
    let values = match (values, default) {
        (TensorValues::Bytes(v), Some(TensorValues::Bytes(d))) => Values::Strings(v, one(d).ok_or_else(wrong_default)?),
        (TensorValues::I64(v), Some(TensorValues::I64(d))) => Values::Ints(v, one(d).ok_or_else(wrong_default)?),
        (TensorValues::F32(v), Some(TensorValues::F32(d))) => Values::Floats(v, one(d).ok_or_else(wrong_default)?),
        (TensorValues::F64(v), Some(TensorValues::F64(d))) => Values::Doubles(v, one(d).ok_or_else(wrong_default)?),
        (_, Some(_)) => return Err(wrong_default()),
        (TensorValues::Bytes(v), None) => {
            Values::Strings(v, attrs.string("default_string")?.unwrap_or_else(|| "_Unused".to_string()).into_bytes())
        }
        (TensorValues::I64(v), None) => Values::Ints(v, attrs.int("default_int64")?.unwrap_or(-1)),
        (TensorValues::F32(v), None) => Values::Floats(v, attrs.float("default_float")?.unwrap_or(-0.0)),
        (TensorValues::F64(v), None) => Values::Doubles(v, attrs.float("default_float")?.map_or(-0.0, f64::from)),
    };
    Ok(Mapping { keys, values })
}

/// Each key's first position: onnxruntime keeps the first of repeated keys.
fn first_positions<K: Eq + Hash>(keys: impl IntoIterator<Item = K>) -> HashMap<K, usize> {
    let mut map = HashMap::new();
    for (i, key) in keys.into_iter().enumerate() {
        map.entry(key).or_insert(i);
    }
    map
}

/// A hashable float key: both zeros are one key, and so are all NaNs.
fn float_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

fn one<T>(values: Vec<T>) -> Option<T> {
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

impl MlOp for LabelEncoder {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let found = self.mappings.iter().find_map(|m| {
            let positions: Vec<Option<usize>> = match (&m.keys, &x.data) {
                (Keys::Strings(map), TensorData::Bytes(v)) => v.iter().map(|s| map.get(s).copied()).collect(),
                (Keys::Ints(map), TensorData::Int64(v)) => v.iter().map(|i| map.get(i).copied()).collect(),
                (Keys::Floats(map), TensorData::Fp32(v)) => {
                    v.iter().map(|f| map.get(&float_key(f64::from(*f))).copied()).collect()
                }
                (Keys::Doubles(map), TensorData::Fp64(v)) => {
                    v.iter().map(|f| map.get(&float_key(*f)).copied()).collect()
                }
                _ => return None,
            };
            Some((m, positions))
        });
        let Some((mapping, positions)) = found else {
            return Err(input::unsupported(&self.ctx, &x.data));
        };
        let data = match &mapping.values {
            Values::Strings(values, default) => TensorData::Bytes(lookup(&positions, values, default)),
            Values::Ints(values, default) => TensorData::Int64(lookup(&positions, values, default)),
            Values::Floats(values, default) => TensorData::Fp32(lookup(&positions, values, default)),
            Values::Doubles(values, default) => TensorData::Fp64(lookup(&positions, values, default)),
        };
        Ok(vec![input::tensor(&self.ctx, x.shape.clone(), data)?])
    }
}

fn lookup<T: Clone>(positions: &[Option<usize>], values: &[T], default: &T) -> Vec<T> {
    positions.iter().map(|p| p.and_then(|i| values.get(i)).unwrap_or(default).clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::TensorProto;

    // Expected values are onnxruntime 1.32.0's outputs for the same node (opset noted).
    #[test]
    fn opset_1_classes_map_both_ways() {
        let encoder = node("LabelEncoder", vec![attr_strings("classes_strings", &["a", "b"])]);
        assert_eq!(int64_values(&run(&encoder, &[&bytes(&[2], &["b", "z"])]).unwrap()[0]), [1, -1]);
        assert_eq!(string_values(&run(&encoder, &[&i64s(&[2], &[1, 5])]).unwrap()[0]), ["b", "_Unused"]);
    }

    #[test]
    fn opset_2_lists_with_defaults() {
        let encoder = node(
            "LabelEncoder",
            vec![attr_floats("keys_floats", &[0.0, 1.0]), attr_strings("values_strings", &["zero", "one"])],
        );
        let out = run(&encoder, &[&f32s(&[3], &[-0.0, 1.0, 2.0])]).unwrap();
        assert_eq!(string_values(&out[0]), ["zero", "one", "_Unused"]);

        let encoder =
            node("LabelEncoder", vec![attr_strings("keys_strings", &["a"]), attr_floats("values_floats", &[1.5])]);
        let out = run(&encoder, &[&bytes(&[2], &["a", "q"])]).unwrap();
        assert_close(&out[0], &[2], &[1.5, -0.0]);

        let encoder =
            node("LabelEncoder", vec![attr_ints("keys_int64s", &[1, 2]), attr_ints("values_int64s", &[10, 20])]);
        assert_eq!(int64_values(&run(&encoder, &[&i64s(&[2], &[1, 3])]).unwrap()[0]), [10, -1]);

        let repeated = node(
            "LabelEncoder",
            vec![attr_ints("keys_int64s", &[1, 1]), attr_strings("values_strings", &["first", "second"])],
        );
        assert_eq!(string_values(&run(&repeated, &[&i64s(&[1], &[1])]).unwrap()[0]), ["first"]);
    }

    #[test]
    fn opset_4_tensors_and_nan_keys() {
        let encoder = node(
            "LabelEncoder",
            vec![attr_floats("keys_floats", &[f32::NAN, 0.0]), attr_strings("values_strings", &["nan", "zero"])],
        );
        let out = run(&encoder, &[&f32s(&[2], &[f32::NAN, -0.0])]).unwrap();
        assert_eq!(string_values(&out[0]), ["nan", "zero"]);

        let ints = |name: &str, values: &[i64]| {
            attr_tensor(
                name,
                TensorProto {
                    data_type: DataType::Int64 as i32,
                    dims: vec![values.len() as i64],
                    int64_data: values.to_vec(),
                    ..TensorProto::default()
                },
            )
        };
        let encoder = node(
            "LabelEncoder",
            vec![
                attr_tensor_f64("keys_tensor", &[1.5, 2.5]),
                ints("values_tensor", &[3, 4]),
                ints("default_tensor", &[-7]),
            ],
        );
        let out = run(&encoder, &[&f64s(&[2], &[1.5, 9.0])]).unwrap();
        assert_eq!(int64_values(&out[0]), [3, -7]);

        let encoder = node("LabelEncoder", vec![attr_ints("keys_int64s", &[1]), attr_floats("values_floats", &[2.0])]);
        assert_close(&run(&encoder, &[&i64s(&[2], &[1, 2])]).unwrap()[0], &[2], &[2.0, -0.0]);
    }

    #[test]
    fn refuses_bad_attributes_and_inputs() {
        assert_invalid_model(&node(
            "LabelEncoder",
            vec![attr_ints("keys_int64s", &[1, 2]), attr_ints("values_int64s", &[1])],
        ));
        assert_invalid_model(&node("LabelEncoder", vec![attr_ints("keys_int64s", &[1])]));
        assert_invalid_model(&node(
            "LabelEncoder",
            vec![
                attr_ints("keys_int64s", &[1]),
                attr_strings("keys_strings", &["a"]),
                attr_ints("values_int64s", &[1]),
            ],
        ));
        assert_invalid_model(&node(
            "LabelEncoder",
            vec![
                attr_ints("keys_int64s", &[1]),
                attr_ints("values_int64s", &[1]),
                attr_tensor_f64("default_tensor", &[1.0]),
            ],
        ));
        let encoder = node("LabelEncoder", vec![attr_ints("keys_int64s", &[1]), attr_ints("values_int64s", &[1])]);
        assert_invalid_input(run(&encoder, &[&f32s(&[1], &[1.0])]));
        assert_invalid_input(run(&encoder, &[]));
    }
}
