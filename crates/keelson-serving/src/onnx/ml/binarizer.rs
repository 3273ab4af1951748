//! Binarizer: 1 where an element is above `threshold` (default 0), else 0, in the input's type.
//! NaN has no side of the threshold; onnxruntime fails the request, and so do we.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
pub(crate) struct Binarizer {
    ctx: OpContext,
    threshold: f32,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let threshold = Attrs::new(node, &ctx).float("threshold")?.unwrap_or(0.0);
    Ok(Box::new(Binarizer { ctx, threshold }))
}

impl MlOp for Binarizer {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let t = self.threshold;
        let data = match &x.data {
            TensorData::Fp32(v) => TensorData::Fp32(self.binarize(v, |x| x.is_nan(), |x| x > t, 1.0, 0.0)?),
            TensorData::Fp64(v) => {
                TensorData::Fp64(self.binarize(v, |x| x.is_nan(), |x| x > f64::from(t), 1.0, 0.0)?)
            }
            // onnxruntime compares an integer with the float threshold as a float.
            TensorData::Int64(v) => TensorData::Int64(self.binarize(v, |_| false, |x| x as f32 > t, 1, 0)?),
            TensorData::Int32(v) => TensorData::Int32(self.binarize(v, |_| false, |x| x as f32 > t, 1, 0)?),
            other => return Err(input::unsupported(&self.ctx, other)),
        };
        Ok(vec![input::tensor(&self.ctx, x.shape.clone(), data)?])
    }
}

impl Binarizer {
    fn binarize<T: Copy>(
        &self,
        values: &[T],
        is_nan: impl Fn(T) -> bool,
        above: impl Fn(T) -> bool,
        one: T,
        zero: T,
    ) -> Result<Vec<T>, MlOpError> {
        if let Some(i) = values.iter().position(|x| is_nan(*x)) {
            return Err(self.ctx.input(format!("input element {i} is NaN")));
        }
        Ok(values.iter().map(|x| if above(*x) { one } else { zero }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn maps_above_threshold_to_one() {
        let x = f32s(&[1, 4], &[0.5, -1.0, 0.0, 2.0]);
        let out = run(&node("Binarizer", vec![attr_float("threshold", 0.5)]), &[&x]).unwrap();
        assert_close(&out[0], &[1, 4], &[0.0, 0.0, 0.0, 1.0]);
        let out = run(&node("Binarizer", vec![]), &[&x]).unwrap();
        assert_close(&out[0], &[1, 4], &[1.0, 0.0, 0.0, 1.0]);
    }

    // onnxruntime only has an FP32 kernel: these expect its output for the same values as FP32,
    // returned in the input's own type.
    #[test]
    fn keeps_the_input_type() {
        let binarizer = node("Binarizer", vec![attr_float("threshold", 0.5)]);
        let out = run(&binarizer, &[&i64s(&[3], &[0, 1, 2])]).unwrap();
        assert_eq!(int64_values(&out[0]), [0, 1, 1]);
        let out = run(&binarizer, &[&f64s(&[2], &[0.5, 0.75])]).unwrap();
        assert_close(&out[0], &[2], &[0.0, 1.0]);
    }

    #[test]
    fn refuses_nan_and_strings() {
        let binarizer = node("Binarizer", vec![]);
        assert_invalid_input(run(&binarizer, &[&f32s(&[2], &[0.5, f32::NAN])]));
        assert_invalid_input(run(&binarizer, &[&bytes(&[1], &["a"])]));
        assert_invalid_model(&node("Binarizer", vec![attr_ints("threshold", &[1])]));
    }
}
