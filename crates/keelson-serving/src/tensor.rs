//! The tensor every part of serving speaks: protocols decode into it, runtimes compute on it.
//! Row-major, flat storage, one variant per Open Inference Protocol datatype.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Open Inference Protocol datatypes, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    pub const ALL: [DataType; 13] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|datatype| datatype.as_str() == name)
    }

    /// Bytes per element in the binary tensor extension; none for BYTES (length-prefixed).
    pub fn element_size(self) -> Option<usize> {
        Some(match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => 8,
            DataType::Bytes => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Elements, flat and row-major. FP16 is kept as its raw bits.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    Uint8(Vec<u8>),
    Uint16(Vec<u16>),
    Uint32(Vec<u32>),
    Uint64(Vec<u64>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp16(Vec<u16>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

impl TensorData {
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Uint8(_) => DataType::Uint8,
            TensorData::Uint16(_) => DataType::Uint16,
            TensorData::Uint32(_) => DataType::Uint32,
            TensorData::Uint64(_) => DataType::Uint64,
            TensorData::Int8(_) => DataType::Int8,
            TensorData::Int16(_) => DataType::Int16,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp16(_) => DataType::Fp16,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
            TensorData::Bytes(_) => DataType::Bytes,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Uint8(v) => v.len(),
            TensorData::Uint16(v) | TensorData::Fp16(v) => v.len(),
            TensorData::Uint32(v) => v.len(),
            TensorData::Uint64(v) => v.len(),
            TensorData::Int8(v) => v.len(),
            TensorData::Int16(v) => v.len(),
            TensorData::Int32(v) => v.len(),
            TensorData::Int64(v) => v.len(),
            TensorData::Fp32(v) => v.len(),
            TensorData::Fp64(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every element as f64 (numbers and booleans); none for BYTES and FP16.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        Some(match self {
            TensorData::Bool(v) => v.iter().map(|x| f64::from(u8::from(*x))).collect(),
            TensorData::Uint8(v) => v.iter().map(|x| f64::from(*x)).collect(),
            TensorData::Uint16(v) => v.iter().map(|x| f64::from(*x)).collect(),
            TensorData::Uint32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            TensorData::Uint64(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::Int8(v) => v.iter().map(|x| f64::from(*x)).collect(),
            TensorData::Int16(v) => v.iter().map(|x| f64::from(*x)).collect(),
            TensorData::Int32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            TensorData::Int64(v) => v.iter().map(|x| *x as f64).collect(),
            TensorData::Fp32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            TensorData::Fp64(v) => v.clone(),
            TensorData::Fp16(_) | TensorData::Bytes(_) => return None,
        })
    }

    /// Every element as f32 (numbers and booleans); none for BYTES and FP16.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match self {
            TensorData::Fp32(v) => Some(v.clone()),
            other => other.to_f64().map(|v| v.into_iter().map(|x| x as f32).collect()),
        }
    }
}

/// A shaped tensor. `shape.iter().product() == data.len()` always holds for tensors built with
/// [`Tensor::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("shape {shape:?} holds {expected} elements but {actual} were given")]
pub struct ShapeMismatch {
    pub shape: Vec<usize>,
    pub expected: usize,
    pub actual: usize,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, ShapeMismatch> {
        let expected = element_count(&shape);
        if expected != data.len() {
            return Err(ShapeMismatch { shape, expected, actual: data.len() });
        }
        Ok(Tensor { shape, data })
    }

    pub fn datatype(&self) -> DataType {
        self.data.datatype()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, TensorData::Fp32(data))
    }

    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, TensorData::Int64(data))
    }

    /// Rows and columns when the tensor is read as a batch of feature vectors: `[N]` is N rows
    /// of one value, `[N, C]` is N rows of C, `[N, a, b…]` is N rows of a·b… values.
    pub fn rows_and_columns(&self) -> (usize, usize) {
        match self.shape.as_slice() {
            [] => (1, 1),
            [n] => (*n, 1),
            [n, rest @ ..] => (*n, element_count(rest)),
        }
    }
}

/// Elements in a tensor of this shape (1 for a scalar).
pub fn element_count(shape: &[usize]) -> usize {
    shape.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatypes_round_trip_their_wire_names() {
        for datatype in DataType::ALL {
            assert_eq!(DataType::parse(datatype.as_str()), Some(datatype));
            let json = serde_json::to_string(&datatype).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", datatype.as_str()));
        }
        assert_eq!(DataType::parse("FLOAT32"), None);
    }

    #[test]
    fn new_refuses_data_that_does_not_fill_the_shape() {
        assert!(Tensor::f32(vec![2, 3], vec![0.0; 6]).is_ok());
        let error = Tensor::f32(vec![2, 3], vec![0.0; 5]).err();
        assert_eq!(error, Some(ShapeMismatch { shape: vec![2, 3], expected: 6, actual: 5 }));
        assert!(Tensor::f32(vec![], vec![1.0]).is_ok());
        assert!(Tensor::f32(vec![0, 4], vec![]).is_ok());
    }

    #[test]
    fn rows_and_columns_read_a_batch() {
        let t = |shape: Vec<usize>| Tensor::f32(shape.clone(), vec![0.0; element_count(&shape)]).ok();
        assert_eq!(t(vec![5]).map(|t| t.rows_and_columns()), Some((5, 1)));
        assert_eq!(t(vec![5, 3]).map(|t| t.rows_and_columns()), Some((5, 3)));
        assert_eq!(t(vec![5, 3, 2]).map(|t| t.rows_and_columns()), Some((5, 6)));
    }
}
