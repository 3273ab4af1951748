//! The `post_transform` attribute shared by the classifiers and regressors, computed in f32 with
//! the same formulas as onnxruntime (including its approximate inverse error function), so
//! scores agree with what users validated their exports against.

use super::attrs::Attrs;
use super::MlOpError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    /// The node's `post_transform` (default NONE); an unknown name is a broken model.
    pub(crate) fn read(attrs: &Attrs) -> Result<PostTransform, MlOpError> {
        let name = attrs.string("post_transform")?.unwrap_or_else(|| "NONE".to_string());
        Ok(match name.as_str() {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            other => return Err(attrs.error(format!("unknown post_transform `{other}`"))),
        })
    }

    /// Transforms a row of two or more scores in place.
    pub(crate) fn apply(self, scores: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            PostTransform::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
            PostTransform::Softmax => softmax(scores),
            PostTransform::SoftmaxZero => softmax_zero(scores),
        }
    }
}

/// 1 / (1 + e^-x), computed on |x| so large magnitudes do not overflow.
pub(crate) fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// √2 · erfinv(2x − 1), with onnxruntime's closed-form erfinv approximation (a = 0.147).
pub(crate) fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let log = ((1.0 - x) * (1.0 + x)).ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    sign * (-v + (v * v - v2).sqrt()).sqrt()
}

fn softmax(scores: &mut [f32]) {
    let max = row_max(scores);
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    scores.iter_mut().for_each(|s| *s /= sum);
}

/// Softmax over the non-zero scores: a zero score stays (about) zero instead of weighing e^0.
fn softmax_zero(scores: &mut [f32]) {
    let max = row_max(scores);
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        if *s > 0.000_000_1 || *s < -0.000_000_1 {
            *s = (*s - max).exp();
            sum += *s;
        } else {
            *s *= exp_neg_max;
        }
    }
    scores.iter_mut().for_each(|s| *s /= sum);
}

fn row_max(scores: &[f32]) -> f32 {
    scores.iter().fold(-f32::MAX, |max, s| if *s > max { *s } else { max })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: onnxruntime 1.32.0 (LinearRegressor with two targets and each transform).
    #[test]
    fn transforms_match_onnxruntime() {
        let mut row = [0.1f32, -2.8];
        PostTransform::Logistic.apply(&mut row);
        assert!((row[0] - 0.524_979_2).abs() < 1e-6 && (row[1] - 0.057_324_14).abs() < 1e-6);
        let mut row = [0.1f32, -2.8];
        PostTransform::Softmax.apply(&mut row);
        assert!((row[0] - 0.947_846_5).abs() < 1e-6 && (row[1] - 0.052_153_57).abs() < 1e-6);
        let mut row = [0.1f32, -2.8];
        PostTransform::Probit.apply(&mut row);
        assert!((row[0] + 1.281_712_9).abs() < 1e-5 && row[1].is_nan());
        let mut row = [0.5f32, 0.0];
        PostTransform::SoftmaxZero.apply(&mut row);
        assert_eq!(row, [1.0, 0.0]);
    }
}
