//! Normalizer: divides each row by its max, L1 norm or L2 norm (a zero norm leaves the row as
//! is), output FP32. The arithmetic follows onnxruntime: norms are summed in f32.

use super::attrs::Attrs;
use super::context::OpContext;
use super::input;
use super::{MlOp, MlOpError};
use crate::tensor::{Tensor, TensorData};
use tract_onnx::pb::NodeProto;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Norm {
    Max,
    L1,
    L2,
}

#[derive(Debug)]
pub(crate) struct Normalizer {
    ctx: OpContext,
    norm: Norm,
}

pub(crate) fn build(node: &NodeProto) -> Result<Box<dyn MlOp>, MlOpError> {
    let ctx = OpContext::of(node);
    let attrs = Attrs::new(node, &ctx);
    let name = attrs.string("norm")?.unwrap_or_else(|| "MAX".to_string());
    let norm = match name.as_str() {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        other => return Err(attrs.error(format!("unknown norm `{other}`"))),
    };
    Ok(Box::new(Normalizer { ctx, norm }))
}

/// An element as the three numbers the norms need, each computed in the input's own type
/// before the f32 conversion, as onnxruntime does.
#[derive(Clone, Copy)]
struct Element {
    value: f32,
    abs: f32,
    square: f32,
}

impl MlOp for Normalizer {
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError> {
        let x = input::nth(&self.ctx, inputs, 0)?;
        let columns = match x.shape.as_slice() {
            [columns] | [_, columns] => *columns,
            shape => return Err(self.ctx.input(format!("expected a 1-D or 2-D input, got shape {shape:?}"))),
        };
        let elements: Vec<Element> = match &x.data {
            TensorData::Fp32(v) => v.iter().map(|x| Element { value: *x, abs: x.abs(), square: x * x }).collect(),
            TensorData::Fp64(v) => {
                v.iter().map(|x| Element { value: *x as f32, abs: x.abs() as f32, square: (x * x) as f32 }).collect()
            }
            TensorData::Int64(v) => v.iter().map(|x| integer(*x as f64)).collect(),
            TensorData::Int32(v) => v.iter().map(|x| integer(f64::from(*x))).collect(),
            other => return Err(input::unsupported(&self.ctx, other)),
        };
        let mut out = Vec::with_capacity(elements.len());
        if columns > 0 {
            for row in elements.chunks(columns) {
                self.normalize(row, &mut out);
            }
        }
        Ok(vec![input::tensor(&self.ctx, x.shape.clone(), TensorData::Fp32(out))?])
    }
}

/// Integer squares are taken in f64: the C++ integer square overflows for large values.
fn integer(x: f64) -> Element {
    Element { value: x as f32, abs: x.abs() as f32, square: (x * x) as f32 }
}

impl Normalizer {
    fn normalize(&self, row: &[Element], out: &mut Vec<f32>) {
        let norm = match self.norm {
            // NaN never wins the comparison, so it is skipped as in std::max.
            Norm::Max => row.iter().fold(f32::MIN, |max, e| if max < e.value { e.value } else { max }),
            Norm::L1 => row.iter().map(|e| e.abs).sum(),
            Norm::L2 => row.iter().map(|e| e.square).sum(),
        };
        if norm == 0.0 {
            out.extend(row.iter().map(|e| e.value));
            return;
        }
        out.extend(row.iter().map(|e| match self.norm {
            Norm::Max | Norm::L1 => e.value / norm,
            Norm::L2 if e.value < 0.0 => -(e.square / norm).sqrt(),
            Norm::L2 => (e.square / norm).sqrt(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn rows() -> crate::tensor::Tensor {
        f32s(&[4, 3], &[1.0, -2.0, 3.0, 0.0, 0.0, 0.0, -4.0, 1.0, 0.5, -1.0, -2.0, -3.0])
    }

    fn normalize(norm: &str, x: &crate::tensor::Tensor) -> Vec<crate::tensor::Tensor> {
        run(&node("Normalizer", vec![attr_string("norm", norm)]), &[x]).unwrap()
    }

    // Expected values are onnxruntime 1.32.0's outputs for the same node.
    #[test]
    fn each_norm() {
        let max = [0.33333334, -0.6666667, 1.0, 0.0, 0.0, 0.0, -4.0, 1.0, 0.5, 1.0, 2.0, 3.0];
        assert_close(&normalize("MAX", &rows())[0], &[4, 3], &max);
        assert_close(&run(&node("Normalizer", vec![]), &[&rows()]).unwrap()[0], &[4, 3], &max);
        let l1 = [
            0.16666667,
            -0.33333334,
            0.5,
            0.0,
            0.0,
            0.0,
            -0.72727275,
            0.18181819,
            0.09090909,
            -0.16666667,
            -0.33333334,
            -0.5,
        ];
        assert_close(&normalize("L1", &rows())[0], &[4, 3], &l1);
        let l2 = [
            0.26726124,
            -0.5345225,
            0.80178374,
            0.0,
            0.0,
            0.0,
            -0.96308684,
            0.24077171,
            0.120385855,
            -0.26726124,
            -0.5345225,
            -0.80178374,
        ];
        assert_close(&normalize("L2", &rows())[0], &[4, 3], &l2);
    }

    #[test]
    fn other_types_and_nan() {
        assert_close(&normalize("L2", &i64s(&[2, 2], &[3, -4, 0, 0]))[0], &[2, 2], &[0.6, -0.8, 0.0, 0.0]);
        assert_close(&normalize("MAX", &f64s(&[3], &[2.0, -4.0, 1.0]))[0], &[3], &[1.0, -2.0, 0.5]);
        assert_close(&normalize("MAX", &f32s(&[1, 3], &[f32::NAN, 2.0, 1.0]))[0], &[1, 3], &[f32::NAN, 1.0, 0.5]);
    }

    #[test]
    fn refuses_bad_norms_and_inputs() {
        assert_invalid_model(&node("Normalizer", vec![attr_string("norm", "L3")]));
        let max = node("Normalizer", vec![]);
        assert_invalid_input(run(&max, &[&f32s(&[1, 1, 2], &[1.0, 2.0])]));
        assert_invalid_input(run(&max, &[&f32s(&[], &[1.0])]));
        assert_invalid_input(run(&max, &[&bytes(&[1], &["a"])]));
        assert_eq!(run(&max, &[&f32s(&[3, 0], &[])]).unwrap()[0].shape, [3, 0]);
    }
}
