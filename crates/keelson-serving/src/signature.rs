//! What a model takes and gives: named tensors with datatypes and shapes (-1 where any size
//! goes). Requests are checked against it before a runtime sees them, so every mistake gets a
//! precise message instead of a runtime failure.

use crate::tensor::{DataType, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: DataType,
    /// -1 marks a dimension of any size.
    pub shape: Vec<i64>,
    /// For class probabilities a ZipMap turned into maps: the class of each column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_labels: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Signature {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

/// A named tensor, as requests carry them.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub tensor: Tensor,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl TensorSpec {
    /// Whether `shape` fits this spec: same rank, fixed dimensions equal.
    pub fn accepts_shape(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self.shape.iter().zip(shape).all(|(want, got)| *want < 0 || usize::try_from(*want).ok() == Some(*got))
    }

    pub fn shape_text(&self) -> String {
        format!("[{}]", self.shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))
    }
}

impl Signature {
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|spec| spec.name == name)
    }

    /// Checks names, datatypes and shapes, and returns the tensors in the signature's input
    /// order. Every input is required; unknown and repeated names are refused.
    pub fn arrange_inputs(&self, given: Vec<NamedTensor>) -> Result<Vec<Tensor>, InputError> {
        let mut slots: Vec<Option<Tensor>> = vec![None; self.inputs.len()];
        for named in given {
            let Some(index) = self.inputs.iter().position(|spec| spec.name == named.name) else {
                return Err(InputError(format!(
                    "unexpected input `{}`; the model's inputs are {}",
                    named.name,
                    self.input_names()
                )));
            };
            if slots[index].is_some() {
                return Err(InputError(format!("input `{}` is given more than once", named.name)));
            }
            let spec = &self.inputs[index];
            if named.tensor.datatype() != spec.datatype {
                return Err(InputError(format!(
                    "input `{}` has datatype {} but the model expects {}",
                    spec.name,
                    named.tensor.datatype(),
                    spec.datatype
                )));
            }
            if !spec.accepts_shape(&named.tensor.shape) {
                return Err(InputError(format!(
                    "input `{}` has shape {:?} but the model expects {}",
                    spec.name,
                    named.tensor.shape,
                    spec.shape_text()
                )));
            }
            slots[index] = Some(named.tensor);
        }
        let mut inputs = Vec::with_capacity(slots.len());
        for (spec, slot) in self.inputs.iter().zip(slots) {
            match slot {
                Some(tensor) => inputs.push(tensor),
                None => {
                    return Err(InputError(format!(
                        "input `{}` ({} {}) is missing",
                        spec.name,
                        spec.datatype,
                        spec.shape_text()
                    )))
                }
            }
        }
        self.check_batch(&inputs)?;
        Ok(inputs)
    }

    /// Inputs whose leading axis is the open batch axis are rows of one batch: they must agree
    /// on its size, or the model would fail deep inside with a less useful message.
    fn check_batch(&self, inputs: &[Tensor]) -> Result<(), InputError> {
        let mut first: Option<(&str, usize)> = None;
        for (spec, tensor) in self.inputs.iter().zip(inputs) {
            if spec.shape.first() != Some(&-1) {
                continue;
            }
            let Some(&rows) = tensor.shape.first() else { continue };
            match first {
                None => first = Some((&spec.name, rows)),
                Some((name, batch)) if batch != rows => {
                    return Err(InputError(format!(
                        "input `{}` has {rows} rows (batch dimension) but input `{name}` has {batch}; \
                         inputs must have the same number of rows",
                        spec.name
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn input_names(&self) -> String {
        self.inputs.iter().map(|spec| format!("`{}`", spec.name)).collect::<Vec<_>>().join(", ")
    }

    /// Whether a deployment with `other` can stand in for one with this signature: the same
    /// input and output names with the same datatypes and ranks.
    pub fn compatible_with(&self, other: &Signature) -> Result<(), String> {
        fn same(side: &str, a: &[TensorSpec], b: &[TensorSpec]) -> Result<(), String> {
            for spec in a {
                match b.iter().find(|other| other.name == spec.name) {
                    None => return Err(format!("{side} `{}` is missing", spec.name)),
                    Some(other) if other.datatype != spec.datatype => {
                        return Err(format!(
                            "{side} `{}` is {} here but {} on the endpoint",
                            spec.name, other.datatype, spec.datatype
                        ))
                    }
                    Some(other) if other.shape.len() != spec.shape.len() => {
                        return Err(format!(
                            "{side} `{}` has shape {} here but {} on the endpoint",
                            spec.name,
                            other.shape_text(),
                            spec.shape_text()
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(extra) = b.iter().find(|spec| !a.iter().any(|mine| mine.name == spec.name)) {
                return Err(format!("{side} `{}` is not on the endpoint", extra.name));
            }
            Ok(())
        }
        same("input", &self.inputs, &other.inputs)?;
        same("output", &self.outputs, &other.outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature() -> Signature {
        Signature {
            inputs: vec![
                TensorSpec { name: "x".into(), datatype: DataType::Fp32, shape: vec![-1, 3], class_labels: None },
                TensorSpec { name: "c".into(), datatype: DataType::Int64, shape: vec![-1, 1], class_labels: None },
            ],
            outputs: vec![TensorSpec {
                name: "y".into(),
                datatype: DataType::Fp32,
                shape: vec![-1],
                class_labels: None,
            }],
        }
    }

    fn x(rows: usize, columns: usize) -> NamedTensor {
        NamedTensor { name: "x".into(), tensor: Tensor::f32(vec![rows, columns], vec![0.0; rows * columns]).unwrap() }
    }

    fn c(rows: usize) -> NamedTensor {
        NamedTensor { name: "c".into(), tensor: Tensor::i64(vec![rows, 1], vec![1; rows]).unwrap() }
    }

    #[test]
    fn inputs_come_back_in_signature_order() {
        let arranged = signature().arrange_inputs(vec![c(2), x(2, 3)]).unwrap();
        assert_eq!(arranged[0].shape, vec![2, 3]);
        assert_eq!(arranged[1].shape, vec![2, 1]);
    }

    #[test]
    fn each_mistake_is_named() {
        let s = signature();
        let message = |given| s.arrange_inputs(given).unwrap_err().0;
        assert_eq!(message(vec![x(2, 3)]), "input `c` (INT64 [-1, 1]) is missing");
        assert_eq!(message(vec![x(2, 4), c(2)]), "input `x` has shape [2, 4] but the model expects [-1, 3]");
        assert_eq!(message(vec![x(2, 3), c(2), x(1, 3)]), "input `x` is given more than once");
        let unknown = NamedTensor { name: "z".into(), tensor: x(1, 3).tensor };
        assert_eq!(message(vec![unknown]), "unexpected input `z`; the model's inputs are `x`, `c`");
        let wrong_type = NamedTensor { name: "c".into(), tensor: Tensor::f32(vec![2, 1], vec![0.0; 2]).unwrap() };
        assert_eq!(message(vec![x(2, 3), wrong_type]), "input `c` has datatype FP32 but the model expects INT64");
        let flat = NamedTensor { name: "x".into(), tensor: Tensor::f32(vec![3], vec![0.0; 3]).unwrap() };
        assert!(message(vec![flat, c(1)]).contains("has shape [3]"));
        assert_eq!(
            message(vec![x(2, 3), c(3)]),
            "input `c` has 3 rows (batch dimension) but input `x` has 2; inputs must have the same number of rows"
        );
    }

    #[test]
    fn compatibility_compares_names_types_and_ranks() {
        let a = signature();
        assert_eq!(a.compatible_with(&a), Ok(()));
        let mut b = signature();
        b.inputs[0].datatype = DataType::Fp64;
        assert_eq!(a.compatible_with(&b), Err("input `x` is FP64 here but FP32 on the endpoint".into()));
        let mut b = signature();
        b.outputs.push(TensorSpec { name: "p".into(), datatype: DataType::Fp32, shape: vec![-1], class_labels: None });
        assert_eq!(a.compatible_with(&b), Err("output `p` is not on the endpoint".into()));
    }
}
