//! LinearRegressor: `targets` affine scores per row, FP32 `[N, targets]`. As in onnxruntime,
//! intercepts are used only when there is one per target, and a single target takes only the
//! PROBIT post transform.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::linear_model::Affine;
use super::post_transform::{probit, PostTransform};
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
pub(crate) struct LinearRegressor {
    ctx: OpContext,
    affine: Affine,
    post_transform: PostTransform,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let targets = attrs
        .int("targets")?
        .map_or(Some(1), |n| usize::try_from(n).ok().filter(|n| *n > 0))
        .ok_or_else(|| attrs.error("`targets` must be positive"))?;
    let mut intercepts = attrs.floats("intercepts")?;
    if intercepts.len() != targets {
        intercepts.clear();
    }
    let affine = Affine::new(attrs.floats("coefficients")?, intercepts, targets).map_err(|why| attrs.error(why))?;
    let post_transform = PostTransform::read(&attrs)?;
    Ok(Box::new(LinearRegressor { ctx, affine, post_transform }))
}

impl MlOp for LinearRegressor {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let (rows, mut scores) = self.affine.apply(&self.ctx, x)?;
        let targets = self.affine.outputs();
        if targets == 1 {
            if self.post_transform == PostTransform::Probit {
                scores.iter_mut().for_each(|s| *s = probit(*s));
            }
        } else {
            scores.chunks_mut(targets).for_each(|row| self.post_transform.apply(row));
        }
        Ok(vec![input::tensor(&self.ctx, vec![rows, targets], TensorData::Fp32(scores))?])
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use tract_onnx::pb::NodeProto;

    fn regressor(coefficients: &[f32], intercepts: &[f32], targets: i64, post_transform: &str) -> NodeProto {
        node(
            "LinearRegressor",
            vec![
                attr_floats("coefficients", coefficients),
                attr_floats("intercepts", intercepts),
                attr_int("targets", targets),
                attr_string("post_transform", post_transform),
            ],
        )
    }

    fn x() -> crate::tensor::Tensor {
        f32s(&[3, 2], &[1.0, -2.0, 0.5, 0.25, -1.0, 3.0])
    }

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn one_target_takes_only_probit() {
        for post_transform in ["NONE", "LOGISTIC", "SOFTMAX"] {
            let out = run(&regressor(&[0.5, 0.25], &[0.1], 1, post_transform), &[&x()]).unwrap();
            assert_close(&out[0], &[3, 1], &[0.1, 0.4125, 0.35]);
        }
        let out = run(&regressor(&[0.5, 0.25], &[0.1], 1, "PROBIT"), &[&x()]).unwrap();
        assert_close(&out[0], &[3, 1], &[-1.2817129, -0.22112188, -0.38534024]);
        // Intercepts that are not one per target are ignored.
        let out = run(&regressor(&[0.5, 0.25], &[1.0, 2.0], 1, "NONE"), &[&x()]).unwrap();
        assert_close(&out[0], &[3, 1], &[0.0, 0.3125, 0.25]);
        let out = run(&node("LinearRegressor", vec![attr_floats("coefficients", &[0.5, 0.25])]), &[&x()]).unwrap();
        assert_close(&out[0], &[3, 1], &[0.0, 0.3125, 0.25]);
    }

    #[test]
    fn two_targets_take_every_post_transform() {
        let cases: [(&str, [f32; 6]); 4] = [
            ("NONE", [0.1, -2.8, 0.4125, -0.049999997, 0.35, 4.2]),
            ("LOGISTIC", [0.5249792, 0.05732414, 0.6016872, 0.4875026, 0.5866176, 0.9852259]),
            ("SOFTMAX", [0.9478465, 0.052153572, 0.6136071, 0.38639292, 0.020836348, 0.9791637]),
            ("PROBIT", [-1.2817129, f32::NAN, -0.22112188, f32::NAN, -0.38534024, f32::NAN]),
        ];
        for (post_transform, expected) in cases {
            let node = regressor(&[0.5, 0.25, -1.0, 1.0], &[0.1, 0.2], 2, post_transform);
            assert_close(&run(&node, &[&x()]).unwrap()[0], &[3, 2], &expected);
        }
        let zero = regressor(&[0.5, 0.25, 0.0, 0.0], &[0.0, 0.0], 2, "SOFTMAX_ZERO");
        assert_close(&run(&zero, &[&x()]).unwrap()[0], &[3, 2], &[f32::NAN, f32::NAN, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn refuses_bad_attributes_and_inputs() {
        assert_invalid_model(&regressor(&[0.5, 0.25], &[], 0, "NONE"));
        assert_invalid_model(&regressor(&[0.5, 0.25, 1.0], &[], 2, "NONE"));
        assert_invalid_model(&regressor(&[], &[], 1, "NONE"));
        assert_invalid_model(&regressor(&[0.5], &[], 1, "EXP"));
        let node = regressor(&[0.5, 0.25, 1.0], &[0.0], 1, "NONE");
        assert_invalid_input(run(&node, &[&x()]));
        assert_invalid_input(run(&node, &[&bytes(&[1, 3], &["a", "b", "c"])]));
        // onnxruntime has only an FP32 kernel: this is its output for the row as FP32.
        let out = run(&regressor(&[0.5, 0.25], &[0.1], 1, "NONE"), &[&i64s(&[1, 2], &[2, 4])]).unwrap();
        assert_close(&out[0], &[1, 1], &[2.1]);
    }
}
