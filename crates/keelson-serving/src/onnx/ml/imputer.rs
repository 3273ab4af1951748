//! Imputer: replaces every element equal to the replaced value (NaN matching NaN) with the
//! imputed value of its feature column, or the single imputed value.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
enum Values {
    Floats { imputed: Vec<f32>, replaced: f32 },
    Ints { imputed: Vec<i64>, replaced: i64 },
}

#[derive(Debug)]
pub(crate) struct Imputer {
    ctx: OpContext,
    values: Values,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let floats = attrs.floats("imputed_value_floats")?;
    let ints = attrs.ints("imputed_value_int64s")?;
    let values = match (floats.is_empty(), ints.is_empty()) {
        (false, true) => {
            Values::Floats { imputed: floats, replaced: attrs.float("replaced_value_float")?.unwrap_or(0.0) }
        }
        (true, false) => Values::Ints { imputed: ints, replaced: attrs.int("replaced_value_int64")?.unwrap_or(0) },
        _ => return Err(attrs.error("exactly one of imputed_value_floats and imputed_value_int64s is needed")),
    };
    Ok(Box::new(Imputer { ctx, values }))
}

impl MlOp for Imputer {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let stride = match x.shape.as_slice() {
            [] => return Err(self.ctx.input("a scalar input has no features")),
            [features] | [_, features, ..] => *features,
        };
        let data = match (&x.data, &self.values) {
            (TensorData::Fp32(v), Values::Floats { imputed, replaced }) => {
                TensorData::Fp32(impute(v, stride, imputed, |x| same_float(f64::from(x), f64::from(*replaced))))
            }
            (TensorData::Fp64(v), Values::Floats { imputed, replaced }) => {
                let imputed: Vec<f64> = imputed.iter().map(|x| f64::from(*x)).collect();
                TensorData::Fp64(impute(v, stride, &imputed, |x| same_float(x, f64::from(*replaced))))
            }
            (TensorData::Int64(v), Values::Ints { imputed, replaced }) => {
                TensorData::Int64(impute(v, stride, imputed, |x| x == *replaced))
            }
            (TensorData::Int32(v), Values::Ints { imputed, replaced }) => {
                let imputed: Vec<i32> = imputed.iter().map(|x| *x as i32).collect();
                TensorData::Int32(impute(v, stride, &imputed, |x| i64::from(x) == *replaced))
            }
            (other, _) => {
                return Err(self
                    .ctx
                    .input(format!("input datatype {} does not match the imputed values' type", other.datatype())))
            }
        };
        Ok(vec![input::tensor(&self.ctx, x.shape.clone(), data)?])
    }
}

fn same_float(x: f64, replaced: f64) -> bool {
    (x.is_nan() && replaced.is_nan()) || x == replaced
}

/// One imputed value per feature when there are exactly that many, else the first for all
/// (onnxruntime's rule, whatever the count).
fn impute<T: Copy>(values: &[T], stride: usize, imputed: &[T], replace: impl Fn(T) -> bool) -> Vec<T> {
    let per_feature = imputed.len() == stride;
    values
        .iter()
        .enumerate()
        .map(|(i, x)| {
            if !replace(*x) {
                return *x;
            }
            let k = if per_feature { i % stride.max(1) } else { 0 };
            imputed.get(k).copied().unwrap_or(*x)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn replaces_nan_per_feature() {
        let nan = f32::NAN;
        let imputer = node(
            "Imputer",
            vec![attr_floats("imputed_value_floats", &[10.0, 20.0, 30.0]), attr_float("replaced_value_float", nan)],
        );
        let x = f32s(&[2, 3], &[1.0, nan, 3.0, nan, 5.0, nan]);
        assert_close(&run(&imputer, &[&x]).unwrap()[0], &[2, 3], &[1.0, 20.0, 3.0, 10.0, 5.0, 30.0]);

        let single =
            node("Imputer", vec![attr_floats("imputed_value_floats", &[0.0]), attr_float("replaced_value_float", 3.0)]);
        assert_close(&run(&single, &[&x]).unwrap()[0], &[2, 3], &[1.0, nan, 0.0, nan, 5.0, nan]);

        let default_zero = node("Imputer", vec![attr_floats("imputed_value_floats", &[9.0])]);
        let out = run(&default_zero, &[&f32s(&[1, 3], &[0.0, 1.0, nan])]).unwrap();
        assert_close(&out[0], &[1, 3], &[9.0, 1.0, nan]);
    }

    #[test]
    fn replaces_integers() {
        let imputer = |values: &[i64]| {
            node("Imputer", vec![attr_ints("imputed_value_int64s", values), attr_int("replaced_value_int64", 0)])
        };
        let x = i64s(&[2, 2], &[0, 1, 2, 0]);
        assert_eq!(int64_values(&run(&imputer(&[7, 8]), &[&x]).unwrap()[0]), [7, 1, 2, 8]);
        assert_eq!(int64_values(&run(&imputer(&[7, 8, 9]), &[&x]).unwrap()[0]), [7, 1, 2, 7]);
    }

    #[test]
    fn refuses_bad_attributes_and_mismatched_inputs() {
        assert_invalid_model(&node("Imputer", vec![]));
        assert_invalid_model(&node(
            "Imputer",
            vec![attr_floats("imputed_value_floats", &[1.0]), attr_ints("imputed_value_int64s", &[1])],
        ));
        let ints = node("Imputer", vec![attr_ints("imputed_value_int64s", &[7])]);
        assert_invalid_input(run(&ints, &[&f32s(&[1, 2], &[0.0, 1.0])]));
        assert_invalid_input(run(&ints, &[&i64s(&[], &[0])]));
    }
}
