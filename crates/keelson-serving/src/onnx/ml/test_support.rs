//! Hand-built nodes and tensors for the operator tests, and the float comparison they share.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{build, MlOpError, ML_DOMAIN};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType as ProtoType;
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

pub(crate) fn node(op_type: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op_type.to_string(),
        domain: ML_DOMAIN.to_string(),
        name: format!("{op_type}_under_test"),
        attribute,
        ..NodeProto::default()
    }
}

fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto { name: name.to_string(), r#type: kind as i32, ..AttributeProto::default() }
}

pub(crate) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { i, ..attr(name, AttributeType::Int) }
}

pub(crate) fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { f, ..attr(name, AttributeType::Float) }
}

pub(crate) fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto { s: s.as_bytes().to_vec(), ..attr(name, AttributeType::String) }
}

pub(crate) fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto { ints: ints.to_vec(), ..attr(name, AttributeType::Ints) }
}

pub(crate) fn attr_floats(name: &str, floats: &[f32]) -> AttributeProto {
    AttributeProto { floats: floats.to_vec(), ..attr(name, AttributeType::Floats) }
}

pub(crate) fn attr_strings(name: &str, strings: &[&str]) -> AttributeProto {
    let strings = strings.iter().map(|s| s.as_bytes().to_vec()).collect();
    AttributeProto { strings, ..attr(name, AttributeType::Strings) }
}

pub(crate) fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { t: Some(t), ..attr(name, AttributeType::Tensor) }
}

pub(crate) fn attr_tensor_f64(name: &str, values: &[f64]) -> AttributeProto {
    attr_tensor(
        name,
        TensorProto {
            data_type: ProtoType::Double as i32,
            dims: vec![values.len() as i64],
            double_data: values.to_vec(),
            ..TensorProto::default()
        },
    )
}

pub(crate) fn f32s(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::new(shape.to_vec(), TensorData::Fp32(data.to_vec())).unwrap()
}

pub(crate) fn f64s(shape: &[usize], data: &[f64]) -> Tensor {
    Tensor::new(shape.to_vec(), TensorData::Fp64(data.to_vec())).unwrap()
}

pub(crate) fn i64s(shape: &[usize], data: &[i64]) -> Tensor {
    Tensor::new(shape.to_vec(), TensorData::Int64(data.to_vec())).unwrap()
}

pub(crate) fn i32s(shape: &[usize], data: &[i32]) -> Tensor {
    Tensor::new(shape.to_vec(), TensorData::Int32(data.to_vec())).unwrap()
}

pub(crate) fn bytes(shape: &[usize], data: &[&str]) -> Tensor {
    let data = data.iter().map(|s| s.as_bytes().to_vec()).collect();
    Tensor::new(shape.to_vec(), TensorData::Bytes(data)).unwrap()
}

/// Builds `node` (which must build) and runs it.
pub(crate) fn run(node: &NodeProto, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
    let op = build(node).expect("a native operator").expect("a valid model");
    op.eval(inputs)
}

/// Builds `node`, which must be refused as an invalid model.
pub(crate) fn assert_invalid_model(node: &NodeProto) {
    match build(node) {
        Some(Err(MlOpError::InvalidModel { .. })) => {}
        Some(Err(other)) => panic!("expected InvalidModel, got {other:?}"),
        Some(Ok(op)) => panic!("expected InvalidModel, built {op:?}"),
        None => panic!("expected InvalidModel, the operator is unknown"),
    }
}

pub(crate) fn assert_invalid_input(result: Result<Vec<Tensor>, MlOpError>) {
    match result {
        Err(MlOpError::InvalidInput { .. }) => {}
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// Floats equal to 1e-5 relative (1e-6 absolute near zero); NaN matches NaN.
pub(crate) fn assert_close(actual: &Tensor, shape: &[usize], expected: &[f32]) {
    assert_eq!(actual.shape, shape, "shape");
    let values = match &actual.data {
        TensorData::Fp32(v) => v.clone(),
        TensorData::Fp64(v) => v.iter().map(|x| *x as f32).collect(),
        other => panic!("expected floats, got {other:?}"),
    };
    assert_eq!(values.len(), expected.len(), "{values:?} vs {expected:?}");
    for (i, (a, e)) in values.iter().zip(expected).enumerate() {
        let close = (a.is_nan() && e.is_nan())
            || a == e
            || (a - e).abs() <= 1e-5 * e.abs().max(a.abs())
            || (a - e).abs() <= 1e-6;
        assert!(close, "element {i}: {a} vs expected {e}\nactual   {values:?}\nexpected {expected:?}");
    }
}

pub(crate) fn int64_values(tensor: &Tensor) -> Vec<i64> {
    match &tensor.data {
        TensorData::Int64(v) => v.clone(),
        other => panic!("expected INT64, got {other:?}"),
    }
}

pub(crate) fn string_values(tensor: &Tensor) -> Vec<String> {
    match &tensor.data {
        TensorData::Bytes(v) => v.iter().map(|b| String::from_utf8(b.clone()).unwrap()).collect(),
        other => panic!("expected BYTES, got {other:?}"),
    }
}
