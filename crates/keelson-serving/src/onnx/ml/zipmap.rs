//! ZipMap turns each row of class scores into a map from class label to score. Keelson's
//! tensors cannot hold a sequence of maps, so the op passes its `[N, C]` FP32 scores through
//! unchanged: the C columns are the labels' scores in label order, which is what a client gets
//! from the map anyway (protocols that want a map can rebuild it from the model's labels).

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
pub(crate) struct ZipMap {
    ctx: OpContext,
    labels: usize,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let ints = attrs.ints("classlabels_int64s")?.len();
    let strings = attrs.strings("classlabels_strings")?.len();
    let labels = match (ints, strings) {
        (0, 0) | (1.., 1..) => {
            return Err(attrs.error("exactly one of classlabels_int64s and classlabels_strings is needed"))
        }
        (n, 0) | (0, n) => n,
    };
    Ok(Box::new(ZipMap { ctx, labels }))
}

impl MlOp for ZipMap {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        if !matches!(x.data, TensorData::Fp32(_)) {
            return Err(input::unsupported(&self.ctx, &x.data));
        }
        match x.shape.as_slice() {
            [columns] | [_, columns] if *columns == self.labels => Ok(vec![x.clone()]),
            shape => Err(self.ctx.input(format!("expected [N, {}] scores, got shape {shape:?}", self.labels))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn passes_scores_through() {
        let zipmap = node("ZipMap", vec![attr_strings("classlabels_strings", &["a", "b"])]);
        let x = f32s(&[2, 2], &[0.25, 0.75, 1.0, 0.0]);
        assert_eq!(run(&zipmap, &[&x]).unwrap(), vec![x]);
    }

    #[test]
    fn refuses_bad_labels_and_inputs() {
        assert_invalid_model(&node("ZipMap", vec![]));
        assert_invalid_model(&node(
            "ZipMap",
            vec![attr_strings("classlabels_strings", &["a"]), attr_ints("classlabels_int64s", &[1])],
        ));
        let zipmap = node("ZipMap", vec![attr_ints("classlabels_int64s", &[1, 2, 3])]);
        assert_invalid_input(run(&zipmap, &[&f32s(&[1, 2], &[0.5, 0.5])]));
        assert_invalid_input(run(&zipmap, &[&f64s(&[1, 3], &[0.5, 0.25, 0.25])]));
    }
}
