//! Moves tensors across the tract boundary: ours (flat, protocol-shaped) to tract's and back.

use crate::tensor::{DataType, Tensor, TensorData};
use tract_onnx::pb::tensor_proto::DataType as OnnxType;
use tract_onnx::prelude::{f16, tract_ndarray, DatumType, IntoTensor, Tensor as TractTensor, TractResult};

pub fn to_tract(tensor: &Tensor) -> Result<TractTensor, String> {
    let shape = &tensor.shape;
    let result = match &tensor.data {
        TensorData::Bool(v) => TractTensor::from_shape(shape, v),
        TensorData::Uint8(v) => TractTensor::from_shape(shape, v),
        TensorData::Uint16(v) => TractTensor::from_shape(shape, v),
        TensorData::Uint32(v) => TractTensor::from_shape(shape, v),
        TensorData::Uint64(v) => TractTensor::from_shape(shape, v),
        TensorData::Int8(v) => TractTensor::from_shape(shape, v),
        TensorData::Int16(v) => TractTensor::from_shape(shape, v),
        TensorData::Int32(v) => TractTensor::from_shape(shape, v),
        TensorData::Int64(v) => TractTensor::from_shape(shape, v),
        TensorData::Fp16(v) => {
            let halves: Vec<f16> = v.iter().map(|bits| f16::from_bits(*bits)).collect();
            TractTensor::from_shape(shape, &halves)
        }
        TensorData::Fp32(v) => TractTensor::from_shape(shape, v),
        TensorData::Fp64(v) => TractTensor::from_shape(shape, v),
        TensorData::Bytes(v) => {
            // ONNX strings are UTF-8; a BYTES element that is not cannot become one.
            let strings = v
                .iter()
                .enumerate()
                .map(|(i, bytes)| {
                    String::from_utf8(bytes.clone()).map_err(|_| format!("BYTES element {i} is not valid UTF-8"))
                })
                .collect::<Result<Vec<String>, String>>()?;
            tract_ndarray::ArrayD::from_shape_vec(shape.as_slice(), strings)
                .map(|array| array.into_tensor())
                .map_err(tract_onnx::prelude::TractError::from)
        }
    };
    result.map_err(|error| error.to_string())
}

fn elements<T: tract_onnx::prelude::Datum + Clone>(tensor: &TractTensor) -> TractResult<Vec<T>> {
    Ok(tensor.to_plain_array_view::<T>()?.iter().cloned().collect())
}

pub fn from_tract(tensor: &TractTensor) -> Result<Tensor, String> {
    let shape = tensor.shape().to_vec();
    let data = match tensor.datum_type() {
        DatumType::Bool => elements::<bool>(tensor).map(TensorData::Bool),
        DatumType::U8 => elements::<u8>(tensor).map(TensorData::Uint8),
        DatumType::U16 => elements::<u16>(tensor).map(TensorData::Uint16),
        DatumType::U32 => elements::<u32>(tensor).map(TensorData::Uint32),
        DatumType::U64 => elements::<u64>(tensor).map(TensorData::Uint64),
        DatumType::I8 => elements::<i8>(tensor).map(TensorData::Int8),
        DatumType::I16 => elements::<i16>(tensor).map(TensorData::Int16),
        DatumType::I32 => elements::<i32>(tensor).map(TensorData::Int32),
        DatumType::I64 => elements::<i64>(tensor).map(TensorData::Int64),
        DatumType::F16 => elements::<f16>(tensor).map(|v| TensorData::Fp16(v.iter().map(|h| h.to_bits()).collect())),
        DatumType::F32 => elements::<f32>(tensor).map(TensorData::Fp32),
        DatumType::F64 => elements::<f64>(tensor).map(TensorData::Fp64),
        DatumType::String => {
            elements::<String>(tensor).map(|v| TensorData::Bytes(v.into_iter().map(String::into_bytes).collect()))
        }
        // tract computes integer values it can see through (a Cast of a known int64, shapes) as
        // symbolic dimensions; once evaluated they are plain int64s.
        DatumType::TDim => match tensor.cast_to::<i64>() {
            Ok(values) => elements::<i64>(&values).map(TensorData::Int64),
            Err(error) => return Err(format!("the model produced dimensions that are not numbers: {error:#}")),
        },
        other => return Err(format!("the model produced a {other:?} tensor, which no protocol can carry")),
    }
    .map_err(|error| error.to_string())?;
    Tensor::new(shape, data).map_err(|error| error.to_string())
}

pub fn datum_type(datatype: DataType) -> DatumType {
    match datatype {
        DataType::Bool => DatumType::Bool,
        DataType::Uint8 => DatumType::U8,
        DataType::Uint16 => DatumType::U16,
        DataType::Uint32 => DatumType::U32,
        DataType::Uint64 => DatumType::U64,
        DataType::Int8 => DatumType::I8,
        DataType::Int16 => DatumType::I16,
        DataType::Int32 => DatumType::I32,
        DataType::Int64 => DatumType::I64,
        DataType::Fp16 => DatumType::F16,
        DataType::Fp32 => DatumType::F32,
        DataType::Fp64 => DatumType::F64,
        DataType::Bytes => DatumType::String,
    }
}

/// The protocol datatype of an ONNX element type; none for types no protocol carries.
pub fn datatype_of_onnx(elem_type: i32) -> Option<DataType> {
    Some(match OnnxType::try_from(elem_type).ok()? {
        OnnxType::Bool => DataType::Bool,
        OnnxType::Uint8 => DataType::Uint8,
        OnnxType::Uint16 => DataType::Uint16,
        OnnxType::Uint32 => DataType::Uint32,
        OnnxType::Uint64 => DataType::Uint64,
        OnnxType::Int8 => DataType::Int8,
        OnnxType::Int16 => DataType::Int16,
        OnnxType::Int32 => DataType::Int32,
        OnnxType::Int64 => DataType::Int64,
        OnnxType::Float16 => DataType::Fp16,
        OnnxType::Float => DataType::Fp32,
        OnnxType::Double => DataType::Fp64,
        OnnxType::String => DataType::Bytes,
        _ => return None,
    })
}

/// The ONNX element type of a protocol datatype.
pub fn onnx_elem_type(datatype: DataType) -> i32 {
    let onnx = match datatype {
        DataType::Bool => OnnxType::Bool,
        DataType::Uint8 => OnnxType::Uint8,
        DataType::Uint16 => OnnxType::Uint16,
        DataType::Uint32 => OnnxType::Uint32,
        DataType::Uint64 => OnnxType::Uint64,
        DataType::Int8 => OnnxType::Int8,
        DataType::Int16 => OnnxType::Int16,
        DataType::Int32 => OnnxType::Int32,
        DataType::Int64 => OnnxType::Int64,
        DataType::Fp16 => OnnxType::Float16,
        DataType::Fp32 => OnnxType::Float,
        DataType::Fp64 => OnnxType::Double,
        DataType::Bytes => OnnxType::String,
    };
    onnx as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_through_tract() {
        let cases = vec![
            Tensor::new(vec![2, 2], TensorData::Fp32(vec![1.0, -2.5, f32::NAN, 4.0])),
            Tensor::new(vec![3], TensorData::Int64(vec![i64::MIN, 0, i64::MAX])),
            Tensor::new(vec![2], TensorData::Bool(vec![true, false])),
            Tensor::new(vec![1, 2], TensorData::Bytes(vec![b"a".to_vec(), "é".as_bytes().to_vec()])),
            Tensor::new(vec![2], TensorData::Fp16(vec![0x3c00, 0xc000])),
            Tensor::new(vec![], TensorData::Fp64(vec![0.5])),
        ];
        for case in cases {
            let Ok(tensor) = case else { panic!("bad case") };
            let back = to_tract(&tensor).and_then(|t| from_tract(&t));
            match (&tensor.data, back) {
                (TensorData::Fp32(a), Ok(Tensor { data: TensorData::Fp32(b), shape })) => {
                    assert_eq!(shape, tensor.shape);
                    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
                }
                (_, back) => assert_eq!(back, Ok(tensor.clone())),
            }
        }
    }

    #[test]
    fn element_types_round_trip() {
        for datatype in DataType::ALL {
            assert_eq!(datatype_of_onnx(onnx_elem_type(datatype)), Some(datatype));
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused() {
        let tensor = Tensor::new(vec![1], TensorData::Bytes(vec![vec![0xff, 0xfe]]));
        let Ok(tensor) = tensor else { panic!("bad case") };
        assert_eq!(to_tract(&tensor).err(), Some("BYTES element 0 is not valid UTF-8".to_string()));
    }
}
