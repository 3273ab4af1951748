//! OneHotEncoder: each element becomes a row of zeros with a one at its category's position,
//! output FP32 of shape input.shape + [categories]. Numbers are truncated to int64 first.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use std::collections::HashMap;
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
enum Categories {
    Ints(HashMap<i64, usize>),
    Strings(HashMap<Vec<u8>, usize>),
}

#[derive(Debug)]
pub(crate) struct OneHotEncoder {
    ctx: OpContext,
    categories: Categories,
    count: usize,
    /// Unknown categories give an all-zero row; otherwise they fail the request.
    zeros: bool,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let ints = attrs.ints("cats_int64s")?;
    let strings = attrs.strings("cats_strings")?;
    // A repeated category keeps its last position, as in onnxruntime's map.
    let (categories, count) = match (ints.is_empty(), strings.is_empty()) {
        (false, true) => (Categories::Ints(positions(&ints)), ints.len()),
        (true, false) => (Categories::Strings(positions(&strings)), strings.len()),
        _ => return Err(attrs.error("exactly one of cats_int64s and cats_strings is needed")),
    };
    let zeros = attrs.int("zeros")?.unwrap_or(1) != 0;
    Ok(Box::new(OneHotEncoder { ctx, categories, count, zeros }))
}

fn positions<K: Clone + Eq + std::hash::Hash>(keys: &[K]) -> HashMap<K, usize> {
    keys.iter().cloned().enumerate().map(|(i, k)| (k, i)).collect()
}

/// A float truncated toward zero as C++'s cast does; NaN and out-of-range values become
/// i64::MIN, the x86 result onnxruntime ends up looking up.
fn truncate(x: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_POW_63..TWO_POW_63).contains(&x) {
        x as i64
    } else {
        i64::MIN
    }
}

impl MlOp for OneHotEncoder {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        if x.shape.len() > 2 {
            return Err(self.ctx.input(format!("expected at most 2 dimensions, got shape {:?}", x.shape)));
        }
        let found: Vec<Option<usize>> = match (&x.data, &self.categories) {
            (TensorData::Bytes(v), Categories::Strings(map)) => v.iter().map(|s| map.get(s).copied()).collect(),
            (TensorData::Bytes(v), Categories::Ints(_)) => vec![None; v.len()],
            (TensorData::Int64(v), Categories::Ints(map)) => v.iter().map(|i| map.get(i).copied()).collect(),
            (TensorData::Int32(v), Categories::Ints(map)) => {
                v.iter().map(|i| map.get(&i64::from(*i)).copied()).collect()
            }
            (TensorData::Fp32(v), Categories::Ints(map)) => {
                v.iter().map(|f| map.get(&truncate(f64::from(*f))).copied()).collect()
            }
            (TensorData::Fp64(v), Categories::Ints(map)) => v.iter().map(|f| map.get(&truncate(*f)).copied()).collect(),
            (TensorData::Int64(_) | TensorData::Int32(_) | TensorData::Fp32(_) | TensorData::Fp64(_), _) => {
                vec![None; x.len()]
            }
            (other, _) => return Err(input::unsupported(&self.ctx, other)),
        };
        if !self.zeros {
            if let Some(i) = found.iter().position(Option::is_none) {
                return Err(self.ctx.input(format!("element {i} is not a known category and zeros is 0")));
            }
        }
        let mut out = input::filled(&self.ctx, input::product(&self.ctx, found.len(), self.count)?, 0.0f32)?;
        for (i, category) in found.iter().enumerate() {
            if let Some(slot) = category.and_then(|k| out.get_mut(i * self.count + k)) {
                *slot = 1.0;
            }
        }
        let shape = [x.shape.as_slice(), &[self.count]].concat();
        Ok(vec![input::tensor(&self.ctx, shape, TensorData::Fp32(out))?])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn encoder(cats: &[i64], zeros: i64) -> tract_onnx::pb::NodeProto {
        node("OneHotEncoder", vec![attr_ints("cats_int64s", cats), attr_int("zeros", zeros)])
    }

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn encodes_ints_strings_and_truncated_floats() {
        let out = run(&encoder(&[1, 3, 5], 1), &[&i64s(&[2, 2], &[1, 5, 3, 7])]).unwrap();
        let expected = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        assert_close(&out[0], &[2, 2, 3], &expected);

        let strings = node("OneHotEncoder", vec![attr_strings("cats_strings", &["a", "b"])]);
        let out = run(&strings, &[&bytes(&[3], &["b", "a", "z"])]).unwrap();
        assert_close(&out[0], &[3, 2], &[0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);

        let out = run(&encoder(&[1, 3, -2], 1), &[&f32s(&[1, 4], &[1.7, 3.2, -2.9, f32::NAN])]).unwrap();
        let expected = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        assert_close(&out[0], &[1, 4, 3], &expected);

        let out = run(&encoder(&[1, 3], 1), &[&f64s(&[2], &[3.99, 1.0])]).unwrap();
        assert_close(&out[0], &[2, 2], &[0.0, 1.0, 1.0, 0.0]);

        let out = run(&encoder(&[1, 1, 3], 1), &[&i64s(&[1], &[1])]).unwrap();
        assert_close(&out[0], &[1, 3], &[0.0, 1.0, 0.0]);
    }

    #[test]
    fn unknown_category_without_zeros_is_refused() {
        assert_invalid_input(run(&encoder(&[1, 3, 5], 0), &[&i64s(&[2, 2], &[1, 5, 3, 7])]));
        assert!(run(&encoder(&[1, 3, 5], 0), &[&i64s(&[2], &[1, 5])]).is_ok());
    }

    #[test]
    fn refuses_bad_attributes_and_inputs() {
        assert_invalid_model(&node("OneHotEncoder", vec![]));
        assert_invalid_model(&node(
            "OneHotEncoder",
            vec![attr_ints("cats_int64s", &[1]), attr_strings("cats_strings", &["a"])],
        ));
        let ints = encoder(&[1], 1);
        assert_invalid_input(run(&ints, &[&i64s(&[1, 1, 1], &[1])]));
        let bools = crate::tensor::Tensor::new(vec![1], crate::tensor::TensorData::Bool(vec![true])).unwrap();
        assert_invalid_input(run(&ints, &[&bools]));
    }
}
