//! TreeEnsembleClassifier: sums each class's leaf weights over the trees, adds the base values,
//! then picks the label and writes the scores with onnxruntime's rules, including its special
//! cases for two classes (one weighted column expanded into two scores).

use super::super::attrs::Attrs;
use super::super::context::OpContext;
use super::super::input;
use super::super::post_transform::{logistic, probit, PostTransform};
use super::super::{MlOp, MlOpError};
use super::ensemble::{row, Aggregate, Batch, Ensemble, Rows, Score};
use super::forest::Forest;
use super::real::Real;
use super::spec::TreeSpec;
use crate::tensor::{Tensor, TensorData};
use std::collections::HashSet;
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<Vec<u8>>),
}

/// The label a row gets: a class index, or, for two classes weighted in both columns, just
/// whether the positive score is above zero; onnxruntime then reports 1 or 0 itself (or the
/// first or second string label) rather than the model's int64 labels.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Class(usize),
    Positive(bool),
}

/// How onnxruntime expands a lone score into two columns.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expand {
    /// Only the first column is written.
    None,
    /// Weights are all positive: the score is a probability p, giving [1 - p, p].
    Complement,
    /// Weights have both signs: the score is a margin m, giving [-m, m].
    Negate,
}

#[derive(Debug)]
pub(crate) struct TreeEnsembleClassifier {
    ctx: OpContext,
    ensemble: Ensemble,
    labels: Labels,
    classes: usize,
    /// Empty, one or two values for two classes; empty or one per class otherwise.
    base_values: Vec<f64>,
    post_transform: PostTransform,
    /// Two classes but every weight is for the same class.
    binary_case: bool,
    weights_all_positive: bool,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let ints = attrs.ints("classlabels_int64s")?;
    let strings = attrs.strings("classlabels_strings")?;
    let labels = match (ints.is_empty(), strings.is_empty()) {
        (false, true) => Labels::Ints(ints),
        (true, false) => Labels::Strings(strings),
        _ => return Err(attrs.error("exactly one of classlabels_int64s and classlabels_strings is needed")),
    };
    let classes = match &labels {
        Labels::Ints(v) => v.len(),
        Labels::Strings(v) => v.len(),
    };
    if classes < 2 {
        return Err(attrs.error("a classifier needs at least two class labels"));
    }
    let base_values = attrs.reals("base_values", "base_values_as_tensor")?;
    let base_ok =
        if classes == 2 { base_values.len() <= 2 } else { base_values.is_empty() || base_values.len() == classes };
    if !base_ok {
        return Err(attrs.error(format!("{} base values for {classes} classes", base_values.len())));
    }
    let post_transform = PostTransform::read(&attrs)?;
    let spec = TreeSpec::read(&attrs, "class")?;
    let weighted_classes: HashSet<i64> = spec.weights.iter().map(|w| w.target).collect();
    let binary_case = classes == 2 && weighted_classes.len() == 1;
    let weights_all_positive = spec.weights.iter().all(|w| w.weight >= 0.0 || w.weight.is_nan());
    let ensemble = Ensemble::build(&ctx, &spec, classes, Aggregate::Sum, false)?;
    Ok(Box::new(TreeEnsembleClassifier {
        ctx,
        ensemble,
        labels,
        classes,
        base_values,
        post_transform,
        binary_case,
        weights_all_positive,
    }))
}

impl MlOp for TreeEnsembleClassifier {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let batch = self.ensemble.batch(&self.ctx, x)?;
        let (picks, scores) = match &batch.data {
            Rows::Single(data) => self.predict(self.ensemble.single(), data, &batch)?,
            Rows::Double(data) => self.predict(self.ensemble.double(), data, &batch)?,
        };
        let labels = match &self.labels {
            Labels::Ints(labels) => TensorData::Int64(
                picks
                    .iter()
                    .map(|pick| match pick {
                        Pick::Class(k) => labels.get(*k).copied().unwrap_or_default(),
                        Pick::Positive(positive) => i64::from(*positive),
                    })
                    .collect(),
            ),
            Labels::Strings(labels) => TensorData::Bytes(
                picks
                    .iter()
                    .map(|pick| {
                        let k = match pick {
                            Pick::Class(k) => *k,
                            Pick::Positive(positive) => usize::from(*positive),
                        };
                        labels.get(k).cloned().unwrap_or_default()
                    })
                    .collect(),
            ),
        };
        Ok(vec![
            input::tensor(&self.ctx, vec![batch.rows], labels)?,
            input::tensor(&self.ctx, vec![batch.rows, self.classes], TensorData::Fp32(scores))?,
        ])
    }
}

impl TreeEnsembleClassifier {
    fn predict<T: Real>(
        &self,
        forest: &Forest<T>,
        data: &[T],
        batch: &Batch,
    ) -> Result<(Vec<Pick>, Vec<f32>), MlOpError> {
        let len = input::product(&self.ctx, batch.rows, self.classes)?;
        let mut out = input::filled(&self.ctx, len, 0.0f32)?;
        let mut picks = input::filled(&self.ctx, batch.rows, Pick::Class(0))?;
        let mut scores = vec![Score::<T>::default(); self.classes];
        for (r, (row_scores, pick)) in out.chunks_mut(self.classes.max(1)).zip(picks.iter_mut()).enumerate() {
            self.ensemble.accumulate(forest, row(data, batch.columns, r), &mut scores);
            *pick = if self.classes == 2 {
                self.finish_binary(&scores, row_scores)
            } else {
                self.finish_multiclass(&mut scores, row_scores)
                    .ok_or_else(|| self.ctx.input(format!("row {r} reaches no leaf weighted for any class")))?
            };
        }
        Ok((picks, out))
    }

    /// Base values join the scores; the label is the highest score among classes that have one
    /// (the first on ties). Without any, onnxruntime fails the request, and so do we.
    fn finish_multiclass<T: Real>(&self, scores: &mut [Score<T>], out: &mut [f32]) -> Option<Pick> {
        for (score, base) in scores.iter_mut().zip(&self.base_values) {
            score.value = if score.touched { score.value + T::from_f64(*base) } else { T::from_f64(*base) };
            score.touched = true;
        }
        let mut best: Option<(usize, T)> = None;
        for (k, score) in scores.iter().enumerate().filter(|(_, s)| s.touched) {
            if best.is_none_or(|(_, top)| score.value > top) {
                best = Some((k, score.value));
            }
        }
        for (slot, score) in out.iter_mut().zip(scores.iter()) {
            *slot = score.read().to_f32();
        }
        self.post_transform.apply(out);
        best.map(|(k, _)| Pick::Class(k))
    }

    /// onnxruntime's two-class rules, base-value quirks included: with two base values and a
    /// weighted second class, the second score becomes base[1] plus the *first* class's sum.
    fn finish_binary<T: Real>(&self, scores: &[Score<T>], out: &mut [f32]) -> Pick {
        let mut negative = scores.first().copied().unwrap_or_default();
        let mut positive = scores.get(1).copied().unwrap_or_default();
        let base = |k: usize| self.base_values.get(k).map_or(T::default(), |b| T::from_f64(*b));
        let mut two_scores = true;
        match self.base_values.len() {
            2 if positive.touched => {
                positive.value = base(1) + negative.value;
                negative.value = -positive.value;
            }
            2 => {
                positive.value = positive.value + base(1);
                negative.value = negative.value + base(0);
            }
            1 => {
                negative.value = negative.value + base(0);
                two_scores = positive.touched;
            }
            _ => two_scores = positive.touched,
        }
        let weight = if two_scores && positive.touched { positive.value } else { negative.read() };
        // Without base values onnxruntime expands a lone score as a margin unless told otherwise.
        let mut expand = if self.base_values.is_empty() { Expand::Negate } else { Expand::None };
        let pick = if self.binary_case {
            let (threshold, kind) =
                if self.weights_all_positive { (T::HALF, Expand::Complement) } else { (T::default(), Expand::Negate) };
            expand = kind;
            Pick::Class(usize::from(weight > threshold))
        } else {
            Pick::Positive(weight > T::default())
        };
        if two_scores {
            for (slot, score) in out.iter_mut().zip([negative, positive]) {
                *slot = score.read().to_f32();
            }
            self.post_transform.apply(out);
        } else {
            let score = negative.read();
            let pair = match (self.post_transform, expand) {
                // onnxruntime leaves the second column unwritten here; we write 0.
                (PostTransform::Probit, _) => [probit(score.to_f32()), 0.0],
                (PostTransform::Logistic, Expand::Complement | Expand::Negate) => {
                    [logistic((-score).to_f32()), logistic(score.to_f32())]
                }
                (_, Expand::Complement) => [(T::from_f64(1.0) - score).to_f32(), score.to_f32()],
                (_, Expand::Negate) => [(-score).to_f32(), score.to_f32()],
                (_, Expand::None) => [score.to_f32(), 0.0],
            };
            for (slot, value) in out.iter_mut().zip(pair) {
                *slot = value;
            }
        }
        pick
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::onnx::ml::test_support::*;
    use crate::tensor::Tensor;
    use tract_onnx::pb::{AttributeProto, NodeProto};

    const POSITIVE: [f32; 8] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

    fn classifier(parts: Vec<Vec<AttributeProto>>) -> NodeProto {
        node("TreeEnsembleClassifier", with([vec![forest()], parts].concat()))
    }

    fn three_classes(post_transform: &str) -> NodeProto {
        classifier(vec![
            three_columns("class"),
            vec![
                attr_ints("classlabels_int64s", &[7, 8, 9]),
                attr_string("post_transform", post_transform),
                attr_floats("base_values", &[0.1, -0.2, 0.3]),
            ],
        ])
    }

    fn two_classes(column: Vec<AttributeProto>, extra: Vec<AttributeProto>) -> NodeProto {
        classifier(vec![column, vec![attr_ints("classlabels_int64s", &[10, 20])], extra])
    }

    fn predict(node: &NodeProto) -> Vec<Tensor> {
        run(node, &[&rows()]).unwrap()
    }

    // Expected values in these tests are onnxruntime 1.32.0's outputs for the same node.

    #[test]
    fn three_classes_with_each_post_transform() {
        let nan = f32::NAN;
        let cases: [(&str, [f32; 18]); 5] = [
            (
                "NONE",
                [
                    0.6, 0.3, 0.90000004, 0.1, 0.75, 0.3, 1.4, -0.2, 0.90000004, 0.70000005, -0.2, 0.8, 0.6, 0.3, 0.8,
                    0.6, 0.3, 0.8,
                ],
            ),
            (
                "SOFTMAX",
                [
                    0.32355368, 0.23969446, 0.4367518, 0.24172436, 0.46303287, 0.2952428, 0.55296665, 0.11164205,
                    0.33539125, 0.39813027, 0.1618677, 0.440002, 0.33758453, 0.25008878, 0.41232666, 0.33758453,
                    0.25008878, 0.41232666,
                ],
            ),
            (
                "LOGISTIC",
                [
                    0.6456563, 0.5744425, 0.7109495, 0.5249792, 0.6791787, 0.5744425, 0.8021839, 0.45016605, 0.7109495,
                    0.6681878, 0.45016605, 0.6899745, 0.6456563, 0.5744425, 0.6899745, 0.6456563, 0.5744425, 0.6899745,
                ],
            ),
            (
                "SOFTMAX_ZERO",
                [
                    0.32355368, 0.23969446, 0.4367518, 0.24172436, 0.46303287, 0.2952428, 0.55296665, 0.11164205,
                    0.33539125, 0.39813027, 0.1618677, 0.440002, 0.33758453, 0.25008878, 0.41232666, 0.33758453,
                    0.25008878, 0.41232666,
                ],
            ),
            (
                "PROBIT",
                [
                    0.2533535, -0.5244459, 1.2817132, -1.2817129, 0.6745743, -0.5244459, nan, nan, 1.2817132,
                    0.5244459, nan, 0.8417561, 0.2533535, -0.5244459, 0.8417561, 0.2533535, -0.5244459, 0.8417561,
                ],
            ),
        ];
        for (post_transform, expected) in cases {
            let out = predict(&three_classes(post_transform));
            assert_eq!(int64_values(&out[0]), [9, 8, 7, 9, 9, 9], "{post_transform}");
            assert_close(&out[1], &[6, 3], &expected);
        }
    }

    #[test]
    fn string_labels() {
        let node =
            classifier(vec![three_columns("class"), vec![attr_strings("classlabels_strings", &["a", "b", "c"])]]);
        let out = predict(&node);
        assert_eq!(string_values(&out[0]), ["c", "b", "a", "a", "a", "a"]);
        let expected = [0.5, 0.5, 0.6, 0.0, 0.95, 0.0, 1.3, 0.0, 0.6, 0.6, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
        assert_close(&out[1], &[6, 3], &expected);
    }

    #[test]
    fn binary_with_positive_weights_in_the_second_column() {
        let ninf = f32::NEG_INFINITY;
        let nan = f32::NAN;
        let cases: [(&str, [f32; 12]); 4] = [
            ("NONE", [0.0, 0.5, 0.0, 1.5, 0.0, 1.4000001, 0.0, 1.2, 0.0, 1.1, 0.0, 1.1]),
            (
                "LOGISTIC",
                [0.5, 0.62245935, 0.5, 0.81757444, 0.5, 0.8021839, 0.5, 0.7685248, 0.5, 0.7502601, 0.5, 0.7502601],
            ),
            ("PROBIT", [ninf, 0.0, ninf, nan, ninf, nan, ninf, nan, ninf, nan, ninf, nan]),
            (
                "SOFTMAX",
                [
                    0.37754068, 0.62245935, 0.18242551, 0.81757444, 0.1978161, 0.8021839, 0.2314752, 0.7685248,
                    0.24973989, 0.7502601, 0.24973989, 0.7502601,
                ],
            ),
        ];
        for (post_transform, expected) in cases {
            let node =
                two_classes(one_column("class", 1, &POSITIVE), vec![attr_string("post_transform", post_transform)]);
            let out = predict(&node);
            assert_eq!(int64_values(&out[0]), [10, 20, 20, 20, 20, 20], "{post_transform}");
            assert_close(&out[1], &[6, 2], &expected);
        }
    }

    #[test]
    fn binary_with_mixed_weights_in_the_first_column_is_a_margin() {
        let weights = [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8];
        let cases: [(&str, [f32; 12]); 2] = [
            (
                "NONE",
                [
                    0.3,
                    -0.3,
                    -1.5,
                    1.5,
                    1.4000001,
                    -1.4000001,
                    1.2,
                    -1.2,
                    0.90000004,
                    -0.90000004,
                    0.90000004,
                    -0.90000004,
                ],
            ),
            (
                "LOGISTIC",
                [
                    0.5744425, 0.4255575, 0.18242556, 0.81757444, 0.8021839, 0.19781607, 0.7685248, 0.23147517,
                    0.7109495, 0.28905052, 0.7109495, 0.28905052,
                ],
            ),
        ];
        for (post_transform, expected) in cases {
            let node =
                two_classes(one_column("class", 0, &weights), vec![attr_string("post_transform", post_transform)]);
            let out = predict(&node);
            assert_eq!(int64_values(&out[0]), [10, 20, 10, 10, 10, 10], "{post_transform}");
            assert_close(&out[1], &[6, 2], &expected);
        }
    }

    #[test]
    fn binary_base_value_quirks() {
        // One base value, positive weights on the first column: [1 - p, p].
        let node = two_classes(one_column("class", 0, &POSITIVE), vec![attr_floats("base_values", &[0.2])]);
        let out = predict(&node);
        assert_eq!(int64_values(&out[0]), [20; 6]);
        let expected = [
            0.3,
            0.7,
            -0.70000005,
            1.7,
            -0.60000014,
            1.6000001,
            -0.4000001,
            1.4000001,
            -0.30000007,
            1.3000001,
            -0.30000007,
            1.3000001,
        ];
        assert_close(&out[1], &[6, 2], &expected);

        // Two base values and the second column weighted: the trees' sums are dropped.
        let node = two_classes(one_column("class", 1, &POSITIVE), vec![attr_floats("base_values", &[0.1, -0.2])]);
        let out = predict(&node);
        assert_eq!(int64_values(&out[0]), [10; 6]);
        assert_close(&out[1], &[6, 2], &[0.0, -0.2, 0.0, -0.2, 0.0, -0.2, 0.0, -0.2, 0.0, -0.2, 0.0, -0.2]);

        // Two base values and the first column weighted: the second score reads 0.
        let node = classifier(vec![
            one_column("class", 0, &POSITIVE),
            vec![attr_strings("classlabels_strings", &["no", "yes"]), attr_floats("base_values", &[0.1, -0.2])],
        ]);
        let out = predict(&node);
        assert_eq!(string_values(&out[0]), ["yes"; 6]);
        let expected = [0.6, 0.0, 1.6, 0.0, 1.5000001, 0.0, 1.3000001, 0.0, 1.2, 0.0, 1.2, 0.0];
        assert_close(&out[1], &[6, 2], &expected);
    }

    #[test]
    fn binary_weighted_in_both_columns_labels_by_the_second_score_sign() {
        let both = || {
            weights(
                "class",
                &[0, 1, 0, 1, 0, 1, 0, 1],
                &[0, 0, 0, 0, 1, 1, 2, 2],
                &[1, 1, 3, 3, 1, 1, 3, 3],
                &[0.6, 0.4, 0.3, 0.7, 0.2, 0.8, 0.9, 0.1],
            )
        };
        // onnxruntime reports 1 (not the int64 label 20) because the second score is positive.
        let out = predict(&two_classes(both(), vec![]));
        assert_eq!(int64_values(&out[0]), [1; 6]);
        assert_close(&out[1], &[6, 2], &[0.8, 1.2, 0.9, 0.1, 0.5, 1.5, 0.5, 1.5, 0.8, 1.2, 0.8, 1.2]);

        let node = classifier(vec![
            both(),
            vec![attr_strings("classlabels_strings", &["no", "yes"]), attr_string("post_transform", "LOGISTIC")],
        ]);
        let out = predict(&node);
        assert_eq!(string_values(&out[0]), ["yes"; 6]);
        let expected = [
            0.6899745, 0.7685248, 0.7109495, 0.5249792, 0.62245935, 0.81757444, 0.62245935, 0.81757444, 0.6899745,
            0.7685248, 0.6899745, 0.7685248,
        ];
        assert_close(&out[1], &[6, 2], &expected);
    }

    #[test]
    fn integer_features_are_compared_as_floats() {
        let node = classifier(vec![three_columns("class"), vec![attr_ints("classlabels_int64s", &[7, 8, 9])]]);
        let out = run(&node, &[&i64s(&[3, 3], &[0, 1, 1, 1, 2, -1, -1, 2, 1])]).unwrap();
        assert_eq!(int64_values(&out[0]), [7, 8, 7]);
        assert_close(&out[1], &[3, 3], &[0.5, 0.5, 0.5, 0.0, 0.95, 0.0, 0.5, 0.5, 0.5]);
        let int32 = run(&node, &[&i32s(&[3, 3], &[0, 1, 1, 1, 2, -1, -1, 2, 1])]).unwrap();
        assert_eq!(int32, out);
    }

    #[test]
    fn a_row_without_any_class_score_is_refused() {
        // Only tree 0's node 1 is weighted; onnxruntime fails rows that miss it ("narrowing_error").
        let node = classifier(vec![
            weights("class", &[0], &[0], &[1], &[1.0]),
            vec![attr_ints("classlabels_int64s", &[7, 8, 9])],
        ]);
        assert!(run(&node, &[&f32s(&[1, 3], &[0.2, 1.0, 1.0])]).is_ok());
        assert_invalid_input(run(&node, &[&f32s(&[1, 3], &[0.7, 1.0, 1.0])]));
    }

    #[test]
    fn refuses_malformed_models() {
        let labels = || vec![attr_ints("classlabels_int64s", &[7, 8, 9])];
        assert_invalid_model(&classifier(vec![three_columns("class")]));
        assert_invalid_model(&classifier(vec![three_columns("class"), vec![attr_ints("classlabels_int64s", &[7])]]));
        assert_invalid_model(&classifier(vec![
            three_columns("class"),
            labels(),
            vec![attr_strings("classlabels_strings", &["a", "b", "c"])],
        ]));
        assert_invalid_model(&classifier(vec![
            three_columns("class"),
            labels(),
            vec![attr_floats("base_values", &[0.1])],
        ]));
        let two = || vec![attr_ints("classlabels_int64s", &[7, 8])];
        assert_invalid_model(&classifier(vec![three_columns("class"), two()]));
        assert_invalid_model(&classifier(vec![weights("class", &[0, 1], &[0], &[1], &[1.0]), labels()]));
    }

    #[test]
    fn refuses_inputs_it_cannot_read() {
        let node = classifier(vec![three_columns("class"), vec![attr_ints("classlabels_int64s", &[7, 8, 9])]]);
        assert_invalid_input(run(&node, &[&f32s(&[1, 2], &[0.0; 2])]));
        assert_invalid_input(run(&node, &[&bytes(&[1, 3], &["a", "b", "c"])]));
        assert_invalid_input(run(&node, &[&f32s(&[], &[0.0])]));
        let empty = run(&node, &[&f32s(&[0, 3], &[])]).unwrap();
        assert_eq!(empty[1].shape, [0, 3]);
    }
}
