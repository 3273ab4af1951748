//! Scaler: (x − offset) · scale, per feature column or with one value for all, output FP32.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
pub(crate) struct Scaler {
    ctx: OpContext,
    offset: Vec<f32>,
    scale: Vec<f32>,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let scale = attrs.floats("scale")?;
    let offset = attrs.floats("offset")?;
    // onnxruntime needs both, of the same length (it has no default offset).
    if scale.is_empty() || scale.len() != offset.len() {
        return Err(attrs.error(format!(
            "`scale` and `offset` must be non-empty and equally long, got {} and {}",
            scale.len(),
            offset.len()
        )));
    }
    Ok(Box::new(Scaler { ctx, offset, scale }))
}

impl MlOp for Scaler {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        // onnxruntime takes the second dimension as the feature count whatever the rank.
        let stride = match x.shape.as_slice() {
            [] => return Err(self.ctx.input("a scalar input has no features")),
            [features] | [_, features, ..] => *features,
        };
        let per_feature = self.scale.len() == stride;
        if !per_feature && self.scale.len() != 1 {
            return Err(self.ctx.input(format!(
                "{} scale/offset values for {stride} features (need {stride} or 1)",
                self.scale.len()
            )));
        }
        let at = |i: usize| {
            let k = if per_feature { i % stride } else { 0 };
            (self.offset.get(k).copied().unwrap_or(0.0), self.scale.get(k).copied().unwrap_or(1.0))
        };
        // Each type is computed as onnxruntime's C++ does: doubles stay double until the end.
        let out: Vec<f32> = match &x.data {
            TensorData::Fp64(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let (offset, scale) = at(i);
                    ((x - f64::from(offset)) * f64::from(scale)) as f32
                })
                .collect(),
            _ => input::as_f32(&self.ctx, x)?
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let (offset, scale) = at(i);
                    (x - offset) * scale
                })
                .collect(),
        };
        Ok(vec![input::tensor(&self.ctx, x.shape.clone(), TensorData::Fp32(out))?])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn scaler(offset: &[f32], scale: &[f32]) -> tract_onnx::pb::NodeProto {
        node("Scaler", vec![attr_floats("offset", offset), attr_floats("scale", scale)])
    }

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn scales_per_feature_or_with_one_value() {
        let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let out = run(&scaler(&[1.0, 2.0, 3.0], &[0.5, 2.0, -1.0]), &[&x]).unwrap();
        assert_close(&out[0], &[2, 3], &[0.0, 0.0, -0.0, 1.5, 6.0, -3.0]);
        let out = run(&scaler(&[1.0], &[2.0]), &[&x]).unwrap();
        assert_close(&out[0], &[2, 3], &[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let out = run(&scaler(&[1.0, 2.0, 3.0], &[0.5, 2.0, -1.0]), &[&f32s(&[3], &[4.0, 5.0, 6.0])]).unwrap();
        assert_close(&out[0], &[3], &[1.5, 6.0, -3.0]);
    }

    #[test]
    fn takes_doubles_and_integers() {
        let x = f64s(&[2, 3], &[1.05, 2.05, 3.05, 4.05, 5.05, 6.05]);
        let out = run(&scaler(&[0.1, 0.2, 0.3], &[3.0, 3.0, 3.0]), &[&x]).unwrap();
        assert_close(&out[0], &[2, 3], &[2.85, 5.55, 8.25, 11.85, 14.55, 17.25]);
        let out = run(&scaler(&[0.5], &[0.25]), &[&i64s(&[2, 3], &[1, 2, 3, 4, 5, 6])]).unwrap();
        assert_close(&out[0], &[2, 3], &[0.125, 0.375, 0.625, 0.875, 1.125, 1.375]);
    }

    #[test]
    fn refuses_bad_attributes_and_inputs() {
        assert_invalid_model(&node("Scaler", vec![attr_floats("scale", &[1.0, 2.0, 3.0])]));
        assert_invalid_model(&scaler(&[], &[]));
        let two = scaler(&[1.0, 2.0], &[1.0, 2.0]);
        assert_invalid_input(run(&two, &[&f32s(&[2, 3], &[0.0; 6])]));
        assert_invalid_input(run(&two, &[&bytes(&[2], &["a", "b"])]));
        assert_invalid_input(run(&two, &[&f32s(&[], &[1.0])]));
        assert!(run(&two, &[&f32s(&[0, 2], &[])]).is_ok());
    }
}
