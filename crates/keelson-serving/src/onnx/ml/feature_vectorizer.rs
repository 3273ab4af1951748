//! FeatureVectorizer: concatenates its inputs' rows into one FP32 row, input i contributing
//! exactly `inputdimensions[i]` columns (cut short or padded with zeros).

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
pub(crate) struct FeatureVectorizer {
    ctx: OpContext,
    dimensions: Vec<usize>,
    width: usize,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let dimensions = attrs
        .ints("inputdimensions")?
        .iter()
        .map(|d| usize::try_from(*d).ok())
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| attrs.error("`inputdimensions` must not be negative"))?;
    if dimensions.is_empty() {
        return Err(attrs.error("`inputdimensions` is empty"));
    }
    let width = dimensions
        .iter()
        .try_fold(0usize, |sum, d| sum.checked_add(*d))
        .ok_or_else(|| attrs.error("`inputdimensions` overflow"))?;
    Ok(Box::new(FeatureVectorizer { ctx, dimensions, width }))
}

impl MlOp for FeatureVectorizer {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        if inputs.len() != self.dimensions.len() {
            return Err(self.ctx.input(format!(
                "{} inputs for {} inputdimensions",
                inputs.len(),
                self.dimensions.len()
            )));
        }
        let rows = input::nth(&self.ctx, inputs, 0).and_then(|x| self.rows_and_width(x))?.0;
        let mut out = input::filled(&self.ctx, input::product(&self.ctx, rows, self.width)?, 0.0f32)?;
        let mut offset = 0;
        for (x, &dimension) in inputs.iter().zip(&self.dimensions) {
            let (x_rows, x_width) = self.rows_and_width(x)?;
            if x_rows != rows {
                return Err(self.ctx.input(format!("inputs have {rows} and {x_rows} rows")));
            }
            let values = input::as_f32(&self.ctx, x)?;
            let copied = x_width.min(dimension);
            for r in 0..rows {
                let from = values.get(r * x_width..r * x_width + copied).unwrap_or_default();
                let at = r * self.width + offset;
                if let Some(to) = out.get_mut(at..at + copied) {
                    to.copy_from_slice(from);
                }
            }
            offset += dimension;
        }
        Ok(vec![input::tensor(&self.ctx, vec![rows, self.width], TensorData::Fp32(out))?])
    }
}

impl FeatureVectorizer {
    /// `[F]` is one row of F values; `[N, …]` is N rows of the remaining dimensions' product.
    fn rows_and_width(&self, x: &Tensor) -> Result<(usize, usize), MlOpError> {
        match x.shape.as_slice() {
            [] => Err(self.ctx.input("a scalar input has no features")),
            [width] => Ok((1, *width)),
            [rows, ..] => Ok((*rows, x.len() / (*rows).max(1))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn concatenates_cutting_and_padding() {
        let fv = node("FeatureVectorizer", vec![attr_ints("inputdimensions", &[2, 1, 3])]);
        let a = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = f32s(&[2, 1], &[7.0, 8.0]);
        let c = f32s(&[2, 2], &[0.5, 1.5, 2.5, 3.5]);
        let expected = [1.0, 2.0, 7.0, 0.5, 1.5, 0.0, 4.0, 5.0, 8.0, 2.5, 3.5, 0.0];
        assert_close(&run(&fv, &[&a, &b, &c]).unwrap()[0], &[2, 6], &expected);

        let fv = node("FeatureVectorizer", vec![attr_ints("inputdimensions", &[1, 2])]);
        let out = run(&fv, &[&i64s(&[2, 1], &[7, 8]), &i64s(&[2, 2], &[1, 2, 3, 4])]).unwrap();
        assert_close(&out[0], &[2, 3], &[7.0, 1.0, 2.0, 8.0, 3.0, 4.0]);

        let fv = node("FeatureVectorizer", vec![attr_ints("inputdimensions", &[2])]);
        let out = run(&fv, &[&f64s(&[3], &[0.25, 0.5, 0.75])]).unwrap();
        assert_close(&out[0], &[1, 2], &[0.25, 0.5]);
    }

    // onnxruntime needs one type for all inputs: this expects its output for the values as FP32.
    #[test]
    fn mixes_input_types() {
        let fv = node("FeatureVectorizer", vec![attr_ints("inputdimensions", &[1, 1])]);
        let out = run(&fv, &[&i32s(&[1, 1], &[3]), &f64s(&[1, 1], &[0.5])]).unwrap();
        assert_close(&out[0], &[1, 2], &[3.0, 0.5]);
    }

    #[test]
    fn refuses_bad_dimensions_and_inputs() {
        assert_invalid_model(&node("FeatureVectorizer", vec![attr_ints("inputdimensions", &[2, -1])]));
        assert_invalid_model(&node("FeatureVectorizer", vec![]));
        let fv = node("FeatureVectorizer", vec![attr_ints("inputdimensions", &[1, 1])]);
        let one = f32s(&[1, 1], &[1.0]);
        assert_invalid_input(run(&fv, &[&one]));
        assert_invalid_input(run(&fv, &[&one, &f32s(&[2, 1], &[1.0, 2.0])]));
        assert_invalid_input(run(&fv, &[&one, &bytes(&[1, 1], &["a"])]));
        assert_invalid_input(run(&fv, &[&one, &f32s(&[], &[1.0])]));
    }
}
