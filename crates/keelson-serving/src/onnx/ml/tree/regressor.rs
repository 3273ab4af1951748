//! TreeEnsembleRegressor: sums (or averages, or takes the min/max of) the leaf weights each
//! tree gives a row, per target, then adds the base values and applies the post transform.

use super::super::attrs::Attrs;
use super::super::context::OpContext;
use super::super::input;
use super::super::post_transform::{probit, PostTransform};
use super::super::{MlOp, MlOpError};
use super::ensemble::{row, Aggregate, Batch, Ensemble, Rows, Score};
use super::forest::Forest;
use super::real::Real;
use super::spec::TreeSpec;
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
pub(crate) struct TreeEnsembleRegressor {
    ctx: OpContext,
    ensemble: Ensemble,
    targets: usize,
    aggregate: Aggregate,
    /// Empty, or one per target (onnxruntime refuses other lengths).
    base_values: Vec<f64>,
    post_transform: PostTransform,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let targets = attrs
        .int("n_targets")?
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| attrs.error("`n_targets` must be a positive number"))?;
    let name = attrs.string("aggregate_function")?.unwrap_or_else(|| "SUM".to_string());
    let aggregate =
        Aggregate::parse(&name).ok_or_else(|| attrs.error(format!("unknown aggregate_function `{name}`")))?;
    let base_values = attrs.reals("base_values", "base_values_as_tensor")?;
    if !base_values.is_empty() && base_values.len() != targets {
        return Err(attrs.error(format!("{} base values for {targets} targets", base_values.len())));
    }
    let post_transform = PostTransform::read(&attrs)?;
    let spec = TreeSpec::read(&attrs, "target")?;
    let ensemble = Ensemble::build(&ctx, &spec, targets, aggregate, targets == 1)?;
    Ok(Box::new(TreeEnsembleRegressor { ctx, ensemble, targets, aggregate, base_values, post_transform }))
}

impl MlOp for TreeEnsembleRegressor {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let batch = self.ensemble.batch(&self.ctx, x)?;
        let scores = match &batch.data {
            Rows::Single(data) => self.predict(self.ensemble.single(), data, &batch)?,
            Rows::Double(data) => self.predict(self.ensemble.double(), data, &batch)?,
        };
        let shape = vec![batch.rows, self.targets];
        Ok(vec![input::tensor(&self.ctx, shape, TensorData::Fp32(scores))?])
    }
}

impl TreeEnsembleRegressor {
    fn predict<T: Real>(&self, forest: &Forest<T>, data: &[T], batch: &Batch) -> Result<Vec<f32>, MlOpError> {
        let len = input::product(&self.ctx, batch.rows, self.targets)?;
        let mut out = input::filled(&self.ctx, len, 0.0f32)?;
        let mut scores = vec![Score::<T>::default(); self.targets];
        for (r, targets) in out.chunks_mut(self.targets.max(1)).enumerate() {
            self.ensemble.accumulate(forest, row(data, batch.columns, r), &mut scores);
            self.finish(&scores, targets);
        }
        Ok(out)
    }

    /// onnxruntime's finishing rules: one target gets the base value even when untouched and
    /// only PROBIT as post transform; several targets report untouched ones as 0 and take any.
    fn finish<T: Real>(&self, scores: &[Score<T>], out: &mut [f32]) {
        let trees = T::from_count(self.ensemble.trees());
        if self.targets == 1 {
            let score = scores.first().copied().unwrap_or_default();
            let origin = self.base_values.first().map_or(T::default(), |b| T::from_f64(*b));
            let value = match self.aggregate {
                Aggregate::Sum => score.value + origin,
                Aggregate::Average => score.value / trees + origin,
                Aggregate::Min | Aggregate::Max if score.touched => score.value + origin,
                Aggregate::Min | Aggregate::Max => origin,
            };
            if let Some(slot) = out.first_mut() {
                *slot = match self.post_transform {
                    PostTransform::Probit => probit(value.to_f32()),
                    _ => value.to_f32(),
                };
            }
            return;
        }
        for (j, (slot, score)) in out.iter_mut().zip(scores).enumerate() {
            let base = self.base_values.get(j).map(|b| T::from_f64(*b));
            let value = match self.aggregate {
                Aggregate::Sum => base.map_or(score.value, |b| score.value + b),
                Aggregate::Average => base.map_or(score.value / trees, |b| score.value / trees + b),
                Aggregate::Min | Aggregate::Max => base.unwrap_or_default() + score.read(),
            };
            *slot = if score.touched { value.to_f32() } else { 0.0 };
        }
        self.post_transform.apply(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::onnx::ml::test_support::*;
    use tract_onnx::pb::{AttributeProto, NodeProto};

    const SINGLE: [f32; 8] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

    fn regressor(extra: Vec<AttributeProto>) -> NodeProto {
        node("TreeEnsembleRegressor", with(vec![forest(), extra]))
    }

    fn single(aggregate: &str, extra: Vec<AttributeProto>) -> NodeProto {
        let head = vec![attr_int("n_targets", 1), attr_string("aggregate_function", aggregate)];
        regressor(with(vec![head, one_column("target", 0, &SINGLE), extra]))
    }

    fn three(aggregate: &str, post_transform: &str, base: &[f32]) -> NodeProto {
        let mut head = vec![
            attr_int("n_targets", 3),
            attr_string("aggregate_function", aggregate),
            attr_string("post_transform", post_transform),
        ];
        if !base.is_empty() {
            head.push(attr_floats("base_values", base));
        }
        regressor(with(vec![head, three_columns("target")]))
    }

    fn predict(node: &NodeProto) -> Vec<crate::tensor::Tensor> {
        run(node, &[&rows()]).unwrap()
    }

    // Expected values in these tests are onnxruntime 1.32.0's outputs for the same node.

    #[test]
    fn single_target_aggregates_with_a_base_value() {
        let base = || vec![attr_floats("base_values", &[0.5])];
        let cases: [(&str, [f32; 6]); 4] = [
            ("SUM", [1.25, 2.0, 1.9000001, 1.7, 1.6, 1.6]),
            ("AVERAGE", [0.75, 1.0, 0.9666667, 0.9, 0.8666667, 0.8666667]),
            ("MIN", [0.6, 0.8, 0.7, 0.7, 0.6, 0.6]),
            ("MAX", [0.9, 1.2, 1.3, 1.1, 1.1, 1.1]),
        ];
        for (aggregate, expected) in cases {
            assert_close(&predict(&single(aggregate, base()))[0], &[6, 1], &expected);
        }
    }

    #[test]
    fn single_target_applies_only_probit() {
        let expected = [-0.38534024, -1.0366131, -1.0366131, -1.0366131, -1.0366131, -1.0366131];
        let small = regressor(with(vec![
            vec![attr_int("n_targets", 1), attr_string("post_transform", "PROBIT")],
            one_column("target", 0, &[0.05; 8]),
        ]));
        assert_close(&predict(&small)[0], &[6, 1], &expected);
        // LOGISTIC is ignored for one target; the leaf without weight adds its node value 0.25.
        let logistic = single("SUM", vec![attr_string("post_transform", "LOGISTIC")]);
        assert_close(&predict(&logistic)[0], &[6, 1], &[0.75, 1.5, 1.4000001, 1.2, 1.1, 1.1]);
    }

    #[test]
    fn three_targets_aggregate_and_leave_untouched_targets_at_zero() {
        let base = [0.1, -0.2, 0.3];
        let cases: [(&str, [f32; 18]); 4] = [
            (
                "SUM",
                [
                    0.6, 0.3, 0.90000004, 0.0, 0.75, 0.0, 1.4, 0.0, 0.90000004, 0.70000005, 0.0, 0.8, 0.6, 0.3, 0.8,
                    0.6, 0.3, 0.8,
                ],
            ),
            (
                "AVERAGE",
                [
                    0.26666668,
                    -0.03333333,
                    0.5,
                    0.0,
                    0.11666666,
                    0.0,
                    0.5333333,
                    0.0,
                    0.5,
                    0.3,
                    0.0,
                    0.4666667,
                    0.26666668,
                    -0.03333333,
                    0.4666667,
                    0.26666668,
                    -0.03333333,
                    0.4666667,
                ],
            ),
            (
                "MIN",
                [
                    0.2, 0.3, 0.90000004, 0.0, -0.5, 0.0, 0.3, 0.0, 0.90000004, 0.3, 0.0, 0.20000002, 0.2, 0.3,
                    0.20000002, 0.2, 0.3, 0.20000002,
                ],
            ),
            (
                "MAX",
                [
                    0.5, 0.3, 0.90000004, 0.0, 0.8, 0.0, 0.8, 0.0, 0.90000004, 0.5, 0.0, 0.90000004, 0.5, 0.3,
                    0.90000004, 0.5, 0.3, 0.90000004,
                ],
            ),
        ];
        for (aggregate, expected) in cases {
            assert_close(&predict(&three(aggregate, "NONE", &base))[0], &[6, 3], &expected);
        }
    }

    #[test]
    fn three_targets_take_every_post_transform() {
        let ninf = f32::NEG_INFINITY;
        let cases: [(&str, [f32; 18]); 4] = [
            (
                "SOFTMAX",
                [
                    0.32204345, 0.32204345, 0.35591307, 0.21806876, 0.5638625, 0.21806876, 0.5652537, 0.15404962,
                    0.2806967, 0.40755624, 0.2236716, 0.36877212, 0.33333334, 0.33333334, 0.33333334, 0.33333334,
                    0.33333334, 0.33333334,
                ],
            ),
            (
                "LOGISTIC",
                [
                    0.62245935, 0.62245935, 0.6456563, 0.5, 0.7211152, 0.5, 0.785835, 0.5, 0.6456563, 0.6456563, 0.5,
                    0.62245935, 0.62245935, 0.62245935, 0.62245935, 0.62245935, 0.62245935, 0.62245935,
                ],
            ),
            (
                "SOFTMAX_ZERO",
                [
                    0.32204345, 0.32204345, 0.35591307, 0.0, 1.0, 0.0, 0.66818774, 0.0, 0.33181223, 0.5249792, 0.0,
                    0.4750208, 0.33333334, 0.33333334, 0.33333334, 0.33333334, 0.33333334, 0.33333334,
                ],
            ),
            (
                "PROBIT",
                [
                    0.0,
                    0.0,
                    0.2533535,
                    ninf,
                    1.6446697,
                    ninf,
                    f32::NAN,
                    ninf,
                    0.2533535,
                    0.2533535,
                    ninf,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ],
            ),
        ];
        for (post_transform, expected) in cases {
            assert_close(&predict(&three("SUM", post_transform, &[]))[0], &[6, 3], &expected);
        }
    }

    #[test]
    fn double_inputs_use_the_double_tensor_attributes() {
        let mut attributes: Vec<AttributeProto> = forest()
            .into_iter()
            .map(|a| match a.name.as_str() {
                "nodes_values" => attr_tensor_f64(
                    "nodes_values_as_tensor",
                    &[0.5, 0.0, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.25],
                ),
                _ => a,
            })
            .collect();
        for a in three_columns("target") {
            attributes.push(match a.name.as_str() {
                "target_weights" => {
                    attr_tensor_f64("target_weights_as_tensor", &[0.1, 0.5, 0.2, -0.3, 0.4, 0.6, 0.25, -0.1, 1.0, 0.7])
                }
                _ => a,
            });
        }
        attributes.push(attr_int("n_targets", 3));
        attributes.push(attr_tensor_f64("base_values_as_tensor", &[0.1, -0.2, 0.3]));
        let node = node("TreeEnsembleRegressor", attributes);
        let x = rows();
        let doubles: Vec<f64> = x.data.to_f64().unwrap();
        let out = run(&node, &[&f64s(&[6, 3], &doubles)]).unwrap();
        let expected = [0.6, 0.3, 0.9, 0.0, 0.75, 0.0, 1.4, 0.0, 0.9, 0.7, 0.0, 0.8, 0.6, 0.3, 0.8, 0.6, 0.3, 0.8];
        assert_close(&out[0], &[6, 3], &expected);
    }

    // onnxruntime refuses 1-D inputs and has no integer regressor kernel: these expect its
    // output for the same row given as a [1, 3] FP32 tensor.
    #[test]
    fn one_dimensional_input_is_one_row() {
        let node = single("SUM", vec![]);
        let out = run(&node, &[&f32s(&[3], &[0.2, 1.0, 1.0])]).unwrap();
        assert_close(&out[0], &[1, 1], &[0.75]);
    }

    #[test]
    fn refuses_malformed_models() {
        let ok = || single("SUM", vec![]);
        let replace = |name: &str, with: AttributeProto| {
            let mut node = ok();
            node.attribute.retain(|a| a.name != name);
            node.attribute.push(with);
            node
        };
        assert_invalid_model(&replace("nodes_truenodeids", attr_ints("nodes_truenodeids", &[1, 0, 3])));
        assert_invalid_model(&replace("nodes_values", attr_floats("nodes_values", &[0.5])));
        assert_invalid_model(&replace("nodes_modes", attr_strings("nodes_modes", &["BRANCH_LEQ"; 15])));
        assert_invalid_model(&replace("target_weights", attr_floats("target_weights", &[0.1])));
        assert_invalid_model(&replace("n_targets", attr_int("n_targets", 0)));
        assert_invalid_model(&replace("n_targets", attr_floats("n_targets", &[1.0])));
        assert_invalid_model(&replace("aggregate_function", attr_string("aggregate_function", "MEDIAN")));
        assert_invalid_model(&replace("post_transform", attr_string("post_transform", "TANH")));
        assert_invalid_model(&replace("base_values", attr_floats("base_values", &[0.1, 0.2])));
        assert_invalid_model(&replace("target_ids", attr_ints("target_ids", &[1; 8])));
        // A child that does not exist, and a cycle (tree 2's node 4 sends true rows back to node 1).
        let mut falses = vec![2, 0, 4, 0, 0, 2, 0, 0, 2, 4, 0, 0, 6, 0, 0];
        falses[2] = 9;
        assert_invalid_model(&replace("nodes_falsenodeids", attr_ints("nodes_falsenodeids", &falses)));
        let cycle = [1, 0, 3, 0, 0, 1, 0, 0, 1, 3, 0, 0, 1, 0, 0];
        assert_invalid_model(&replace("nodes_truenodeids", attr_ints("nodes_truenodeids", &cycle)));
    }

    #[test]
    fn refuses_inputs_it_cannot_read() {
        let node = single("SUM", vec![]);
        assert_invalid_input(run(&node, &[&f32s(&[2, 2], &[0.0; 4])]));
        assert_invalid_input(run(&node, &[&bytes(&[1, 3], &["a", "b", "c"])]));
        assert_invalid_input(run(&node, &[&f32s(&[1, 1, 3], &[0.0; 3])]));
        assert_invalid_input(run(&node, &[]));
        // Integers are compared as f32, as onnxruntime's integer classifier kernels do.
        let out = run(&node, &[&i64s(&[1, 3], &[0, 1, 1])]).unwrap();
        assert_close(&out[0], &[1, 1], &[1.1]);
    }
}
