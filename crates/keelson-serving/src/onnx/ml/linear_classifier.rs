//! LinearClassifier: one affine score per class, the label of the highest (first on ties),
//! scores `[N, classes]` FP32. One coefficient row with two labels is the binary case: the
//! label follows the score's sign and the score expands to two columns, as in onnxruntime.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::linear_model::Affine;
use super::post_transform::{logistic, probit, PostTransform};
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<Vec<u8>>),
}

#[derive(Debug)]
pub(crate) struct LinearClassifier {
    ctx: OpContext,
    affine: Affine,
    labels: Labels,
    post_transform: PostTransform,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let intercepts = attrs.floats("intercepts")?;
    let classes = intercepts.len();
    let affine = Affine::new(attrs.floats("coefficients")?, intercepts, classes).map_err(|why| attrs.error(why))?;
    let ints = attrs.ints("classlabels_ints")?;
    let strings = attrs.strings("classlabels_strings")?;
    let labels = match (ints.is_empty(), strings.is_empty()) {
        (false, true) => Labels::Ints(ints),
        (true, false) => Labels::Strings(strings),
        _ => return Err(attrs.error("exactly one of classlabels_ints and classlabels_strings is needed")),
    };
    let count = match &labels {
        Labels::Ints(v) => v.len(),
        Labels::Strings(v) => v.len(),
    };
    // onnxruntime's checks: two labels for one score row, at least one label per row otherwise.
    let enough = if classes == 1 { count == 2 } else { count >= classes };
    if !enough {
        return Err(attrs.error(format!("{count} class labels for {classes} coefficient rows")));
    }
    // `multi_class` is accepted and, as in onnxruntime, has no effect.
    attrs.int("multi_class")?;
    let post_transform = PostTransform::read(&attrs)?;
    Ok(Box::new(LinearClassifier { ctx, affine, labels, post_transform }))
}

impl MlOp for LinearClassifier {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let (rows, scores) = self.affine.apply(&self.ctx, x)?;
        let classes = self.affine.outputs();
        let picks: Vec<usize> = if classes == 1 {
            scores.iter().map(|s| usize::from(*s > 0.0)).collect()
        } else {
            scores.chunks(classes).map(first_max).collect()
        };
        let labels = match &self.labels {
            Labels::Ints(labels) => {
                TensorData::Int64(picks.iter().map(|k| labels.get(*k).copied().unwrap_or_default()).collect())
            }
            Labels::Strings(labels) => {
                TensorData::Bytes(picks.iter().map(|k| labels.get(*k).cloned().unwrap_or_default()).collect())
            }
        };
        let (columns, scores) = if classes == 1 {
            (2, self.expand_binary(&scores)?)
        } else {
            let mut scores = scores;
            scores.chunks_mut(classes).for_each(|row| self.post_transform.apply(row));
            (classes, scores)
        };
        Ok(vec![
            input::tensor(&self.ctx, vec![rows], labels)?,
            input::tensor(&self.ctx, vec![rows, columns], TensorData::Fp32(scores))?,
        ])
    }
}

impl LinearClassifier {
    /// One score per row becomes [1 − p, p] (through the logistic for LOGISTIC). onnxruntime
    /// writes PROBIT scores packed in the first N slots and leaves the rest unwritten: we keep
    /// its layout and write zeros there.
    fn expand_binary(&self, scores: &[f32]) -> Result<Vec<f32>, MlOpError> {
        let mut out = input::filled(&self.ctx, input::product(&self.ctx, scores.len(), 2)?, 0.0f32)?;
        if self.post_transform == PostTransform::Probit {
            out.iter_mut().zip(scores).for_each(|(slot, s)| *slot = probit(*s));
            return Ok(out);
        }
        for (pair, s) in out.chunks_mut(2).zip(scores) {
            let (negative, positive) = match self.post_transform {
                PostTransform::Logistic => (logistic(-s), logistic(*s)),
                _ => (1.0 - s, *s),
            };
            pair.copy_from_slice(&[negative, positive]);
        }
        Ok(out)
    }
}

/// Index of the largest score, the first one on ties (and with NaNs, as onnxruntime's `>` loop).
fn first_max(scores: &[f32]) -> usize {
    let mut best = 0;
    for (k, s) in scores.iter().enumerate().skip(1) {
        if scores.get(best).is_some_and(|top| s > top) {
            best = k;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use tract_onnx::pb::{AttributeProto, NodeProto};

    fn x() -> crate::tensor::Tensor {
        f32s(&[3, 2], &[1.0, -2.0, 0.5, 0.25, -1.0, 3.0])
    }

    fn binary(post_transform: &str) -> NodeProto {
        node(
            "LinearClassifier",
            vec![
                attr_floats("coefficients", &[0.5, 0.25]),
                attr_floats("intercepts", &[0.1]),
                attr_ints("classlabels_ints", &[7, 9]),
                attr_string("post_transform", post_transform),
            ],
        )
    }

    fn three_classes(post_transform: &str, labels: AttributeProto) -> NodeProto {
        node(
            "LinearClassifier",
            vec![
                attr_floats("coefficients", &[0.5, 0.25, -1.0, 1.0, 0.0, 0.0]),
                attr_floats("intercepts", &[0.1, 0.2, 0.0]),
                labels,
                attr_string("post_transform", post_transform),
            ],
        )
    }

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn binary_expands_one_score() {
        let cases: [(&str, [f32; 6]); 4] = [
            ("NONE", [0.9, 0.1, 0.5875, 0.4125, 0.65, 0.35]),
            ("LOGISTIC", [0.47502083, 0.5249792, 0.39831287, 0.60168713, 0.4133824, 0.5866176]),
            ("SOFTMAX", [0.9, 0.1, 0.5875, 0.4125, 0.65, 0.35]),
            ("SOFTMAX_ZERO", [0.9, 0.1, 0.5875, 0.4125, 0.65, 0.35]),
        ];
        for (post_transform, expected) in cases {
            let out = run(&binary(post_transform), &[&x()]).unwrap();
            assert_eq!(int64_values(&out[0]), [9, 9, 9]);
            assert_close(&out[1], &[3, 2], &expected);
        }
        // PROBIT: the first N slots hold the probits; onnxruntime leaves the rest unwritten.
        let out = run(&binary("PROBIT"), &[&x()]).unwrap();
        let probits = match &out[1].data {
            crate::tensor::TensorData::Fp32(v) => v[..3].to_vec(),
            other => panic!("{other:?}"),
        };
        assert_close(&f32s(&[3], &probits), &[3], &[-1.2817129, -0.22112188, -0.38534024]);
    }

    #[test]
    fn binary_with_string_labels_and_integer_input() {
        let node = node(
            "LinearClassifier",
            vec![
                attr_floats("coefficients", &[0.5, 0.25]),
                attr_floats("intercepts", &[-0.3]),
                attr_strings("classlabels_strings", &["neg", "pos"]),
                attr_string("post_transform", "LOGISTIC"),
            ],
        );
        let out = run(&node, &[&i64s(&[2, 2], &[1, -2, 2, 1])]).unwrap();
        assert_eq!(string_values(&out[0]), ["neg", "pos"]);
        assert_close(&out[1], &[2, 2], &[0.5744425, 0.4255575, 0.27888483, 0.7211152]);
    }

    #[test]
    fn three_classes_with_each_post_transform() {
        let nan = f32::NAN;
        let ninf = f32::NEG_INFINITY;
        let cases: [(&str, [f32; 9]); 5] = [
            ("NONE", [0.1, -2.8, 0.0, 0.4125, -0.049999997, 0.0, 0.35, 4.2, 0.0]),
            ("LOGISTIC", [0.5249792, 0.05732414, 0.5, 0.6016872, 0.4875026, 0.5, 0.5866176, 0.9852259, 0.5]),
            (
                "SOFTMAX",
                [
                    0.5102404,
                    0.028075073,
                    0.46168458,
                    0.43635717,
                    0.27477735,
                    0.28886548,
                    0.020534832,
                    0.96499455,
                    0.014470653,
                ],
            ),
            ("SOFTMAX_ZERO", [0.9478465, 0.052153572, 0.0, 0.6136071, 0.38639292, 0.0, 0.020836348, 0.9791637, 0.0]),
            ("PROBIT", [-1.2817129, nan, ninf, -0.22112188, nan, ninf, -0.38534024, nan, ninf]),
        ];
        for (post_transform, expected) in cases {
            let out =
                run(&three_classes(post_transform, attr_strings("classlabels_strings", &["a", "b", "c"])), &[&x()])
                    .unwrap();
            assert_eq!(string_values(&out[0]), ["a", "a", "b"]);
            assert_close(&out[1], &[3, 3], &expected);
        }
        let out = run(&three_classes("NONE", attr_ints("classlabels_ints", &[1, 2, 3, 4])), &[&x()]).unwrap();
        assert_eq!(int64_values(&out[0]), [1, 1, 2]);
    }

    #[test]
    fn refuses_bad_attributes_and_inputs() {
        assert_invalid_model(&three_classes("NONE", attr_ints("classlabels_ints", &[1, 2])));
        assert_invalid_model(&node(
            "LinearClassifier",
            vec![attr_floats("coefficients", &[0.5]), attr_ints("classlabels_ints", &[0, 1])],
        ));
        assert_invalid_model(&node(
            "LinearClassifier",
            vec![
                attr_floats("coefficients", &[0.5, 0.25, 1.0]),
                attr_floats("intercepts", &[0.0, 0.0]),
                attr_ints("classlabels_ints", &[0, 1]),
            ],
        ));
        assert_invalid_model(&node(
            "LinearClassifier",
            vec![
                attr_floats("coefficients", &[0.5]),
                attr_floats("intercepts", &[0.0]),
                attr_ints("classlabels_ints", &[0, 1, 2]),
            ],
        ));
        assert_invalid_model(&node(
            "LinearClassifier",
            vec![attr_floats("coefficients", &[0.5]), attr_floats("intercepts", &[0.0])],
        ));
        let node = binary("NONE");
        assert_invalid_input(run(&node, &[&f32s(&[1, 3], &[0.0; 3])]));
        assert_invalid_input(run(&node, &[&bytes(&[1, 2], &["a", "b"])]));
        assert_invalid_input(run(&node, &[&f32s(&[1, 1, 2], &[0.0; 2])]));
        let one_row = run(&node, &[&f32s(&[2], &[1.0, -2.0])]).unwrap();
        assert_close(&one_row[1], &[1, 2], &[0.9, 0.1]);
    }
}
