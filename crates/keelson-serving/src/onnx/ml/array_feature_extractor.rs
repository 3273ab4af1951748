//! ArrayFeatureExtractor: picks the INT64 indices `Y` along the last axis of `X` (any of FP32,
//! FP64, INT64, INT32, BYTES). A 1-D `X` gives a `[1, k]` result, as in onnxruntime.

use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug)]
pub(crate) struct ArrayFeatureExtractor {
    ctx: OpContext,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    Ok(Box::new(ArrayFeatureExtractor { ctx: OpContext::of(node) }))
}

impl MlOp for ArrayFeatureExtractor {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let y = input::nth(&self.ctx, inputs, 1)?;
        let Some(&stride) = x.shape.last() else {
            return Err(self.ctx.input("X is a scalar"));
        };
        let TensorData::Int64(raw) = &y.data else {
            return Err(self.ctx.input(format!("indices must be INT64, got {}", y.datatype())));
        };
        if raw.is_empty() {
            return Err(self.ctx.input("no indices given"));
        }
        let indices = raw
            .iter()
            .map(|i| usize::try_from(*i).ok().filter(|i| *i < stride))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| self.ctx.input(format!("indices {raw:?} must lie in [0, {stride})")))?;
        let shape = match x.shape.as_slice() {
            [_] => vec![1, indices.len()],
            [outer @ .., _] => [outer, &[indices.len()]].concat(),
            [] => vec![],
        };
        let data = match &x.data {
            TensorData::Fp32(v) => TensorData::Fp32(gather(v, stride, &indices)),
            TensorData::Fp64(v) => TensorData::Fp64(gather(v, stride, &indices)),
            TensorData::Int64(v) => TensorData::Int64(gather(v, stride, &indices)),
            TensorData::Int32(v) => TensorData::Int32(gather(v, stride, &indices)),
            TensorData::Bytes(v) => TensorData::Bytes(gather(v, stride, &indices)),
            other => return Err(input::unsupported(&self.ctx, other)),
        };
        Ok(vec![input::tensor(&self.ctx, shape, data)?])
    }
}

/// For each run of `stride` values, the ones at `indices` (all below `stride`, which is > 0).
fn gather<T: Clone>(values: &[T], stride: usize, indices: &[usize]) -> Vec<T> {
    values.chunks(stride.max(1)).flat_map(|run| indices.iter().filter_map(|i| run.get(*i).cloned())).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn extract(x: &crate::tensor::Tensor, indices: &[i64]) -> Result<Vec<crate::tensor::Tensor>, super::MlOpError> {
        run(&node("ArrayFeatureExtractor", vec![]), &[x, &i64s(&[indices.len()], indices)])
    }

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn gathers_along_the_last_axis() {
        let x = f32s(&[2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_close(&extract(&x, &[2, 0]).unwrap()[0], &[2, 2], &[3.0, 1.0, 7.0, 5.0]);
        let row = f32s(&[4], &[1.0, 2.0, 3.0, 4.0]);
        assert_close(&extract(&row, &[3, 1]).unwrap()[0], &[1, 2], &[4.0, 2.0]);
        let cube = i64s(&[2, 2, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let out = extract(&cube, &[2]).unwrap();
        assert_eq!((out[0].shape.clone(), int64_values(&out[0])), (vec![2, 2, 1], vec![2, 5, 8, 11]));
        let out = extract(&bytes(&[1, 3], &["a", "b", "c"]), &[1, 1]).unwrap();
        assert_eq!(string_values(&out[0]), ["b", "b"]);
        assert_close(&extract(&f64s(&[2], &[0.5, 1.5]), &[1]).unwrap()[0], &[1, 1], &[1.5]);
    }

    #[test]
    fn refuses_bad_indices_and_inputs() {
        let x = f32s(&[2, 4], &[0.0; 8]);
        assert_invalid_input(extract(&x, &[4]));
        assert_invalid_input(extract(&x, &[-1]));
        assert_invalid_input(extract(&x, &[]));
        assert_invalid_input(extract(&f32s(&[], &[1.0]), &[0]));
        assert_invalid_input(extract(&f32s(&[2, 0], &[]), &[0]));
        let afe = node("ArrayFeatureExtractor", vec![]);
        assert_invalid_input(run(&afe, &[&x, &f32s(&[1], &[0.0])]));
        assert_invalid_input(run(&afe, &[&x]));
    }
}
