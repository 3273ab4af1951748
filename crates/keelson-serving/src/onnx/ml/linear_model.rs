//! The affine map both linear operators compute: scores = X · coefficientsᵀ + intercepts, in
//! f32 as onnxruntime's GEMM does, with the coefficient matrix checked against the input width.

use super::context::OpContext;
use super::input;
use super::MlOpError;
use crate::tensor::Tensor;

#[derive(Debug)]
pub(crate) struct Affine {
    /// `outputs` rows of `features` coefficients.
    coefficients: Vec<f32>,
    /// One per output, or empty for none.
    intercepts: Vec<f32>,
    outputs: usize,
    features: usize,
}

impl Affine {
    /// Or why the coefficients cannot form `outputs` rows.
    pub(crate) fn new(coefficients: Vec<f32>, intercepts: Vec<f32>, outputs: usize) -> Result<Affine, String> {
        if coefficients.is_empty() || outputs == 0 || !coefficients.len().is_multiple_of(outputs) {
            return Err(format!("{} coefficients do not form {outputs} rows", coefficients.len()));
        }
        let features = coefficients.len() / outputs;
        Ok(Affine { coefficients, intercepts, outputs, features })
    }

    pub(crate) fn outputs(&self) -> usize {
        self.outputs
    }

    /// The rows of `x` (`[N, F]`, or `[F]` as one row; any numeric type, as f32) mapped to
    /// `outputs` scores each. onnxruntime reads past or short of a row whose width differs from
    /// the coefficients'; that is refused here.
    pub(crate) fn apply(&self, ctx: &OpContext, x: &Tensor) -> Result<(usize, Vec<f32>), MlOpError> {
        let (rows, features) = input::matrix(ctx, x)?;
        if features != self.features {
            return Err(ctx.input(format!("the model takes {} features, the input has {features}", self.features)));
        }
        let values = input::as_f32(ctx, x)?;
        let mut out = input::filled(ctx, input::product(ctx, rows, self.outputs)?, 0.0f32)?;
        for (r, scores) in out.chunks_mut(self.outputs).enumerate() {
            let row = values.get(r * features..(r + 1) * features).unwrap_or_default();
            for (j, score) in scores.iter_mut().enumerate() {
                let weights = self.coefficients.get(j * features..(j + 1) * features).unwrap_or_default();
                let dot: f32 = row.iter().zip(weights).map(|(x, w)| x * w).sum();
                *score = dot + self.intercepts.get(j).copied().unwrap_or(0.0);
            }
        }
        Ok((rows, out))
    }
}
