//! Tensor-valued attributes (`*_as_tensor`, `keys_tensor`, `default_tensor`…): their values,
//! whether stored in the typed fields or little-endian in `raw_data`.

use tract_onnx::pb::tensor_proto::DataType as ProtoType;
use tract_onnx::pb::TensorProto;

/// The values of a tensor attribute, flat, in the widest type of their kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TensorValues {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bytes(Vec<Vec<u8>>),
}

impl TensorValues {
    pub(crate) fn len(&self) -> usize {
        match self {
            TensorValues::F32(v) => v.len(),
            TensorValues::F64(v) => v.len(),
            TensorValues::I64(v) => v.len(),
            TensorValues::Bytes(v) => v.len(),
        }
    }

    /// Floating-point values widened to f64; none for integers and strings.
    pub(crate) fn reals(&self) -> Option<Vec<f64>> {
        match self {
            TensorValues::F32(v) => Some(v.iter().map(|x| f64::from(*x)).collect()),
            TensorValues::F64(v) => Some(v.clone()),
            TensorValues::I64(_) | TensorValues::Bytes(_) => None,
        }
    }
}

/// Decodes `tensor`, or says why it cannot be read (the caller turns that into InvalidModel).
pub(crate) fn decode(tensor: &TensorProto) -> Result<TensorValues, String> {
    if tensor.data_location == Some(1) {
        return Err("tensor attributes stored as external data are not supported".into());
    }
    let count = element_count(&tensor.dims)?;
    let raw = &tensor.raw_data;
    let values = match ProtoType::try_from(tensor.data_type) {
        Ok(ProtoType::Float) if raw.is_empty() => TensorValues::F32(tensor.float_data.clone()),
        Ok(ProtoType::Float) => TensorValues::F32(little_endian(raw, f32::from_le_bytes)?),
        Ok(ProtoType::Double) if raw.is_empty() => TensorValues::F64(tensor.double_data.clone()),
        Ok(ProtoType::Double) => TensorValues::F64(little_endian(raw, f64::from_le_bytes)?),
        Ok(ProtoType::Int64) if raw.is_empty() => TensorValues::I64(tensor.int64_data.clone()),
        Ok(ProtoType::Int64) => TensorValues::I64(little_endian(raw, i64::from_le_bytes)?),
        Ok(ProtoType::Int32) if raw.is_empty() => {
            TensorValues::I64(tensor.int32_data.iter().map(|x| i64::from(*x)).collect())
        }
        Ok(ProtoType::Int32) => {
            let values: Vec<i32> = little_endian(raw, i32::from_le_bytes)?;
            TensorValues::I64(values.into_iter().map(i64::from).collect())
        }
        Ok(ProtoType::String) => TensorValues::Bytes(tensor.string_data.clone()),
        _ => return Err(format!("tensor data type {} is not supported here", tensor.data_type)),
    };
    if values.len() != count {
        return Err(format!("tensor of shape {:?} holds {} values", tensor.dims, values.len()));
    }
    Ok(values)
}

/// Elements in a tensor of these dims (a scalar has one); negative or overflowing dims are errors.
fn element_count(dims: &[i64]) -> Result<usize, String> {
    dims.iter().try_fold(1usize, |count, dim| {
        usize::try_from(*dim)
            .ok()
            .and_then(|dim| count.checked_mul(dim))
            .ok_or_else(|| format!("invalid tensor dims {dims:?}"))
    })
}

fn little_endian<T, const N: usize>(raw: &[u8], from: fn([u8; N]) -> T) -> Result<Vec<T>, String> {
    if !raw.len().is_multiple_of(N) {
        return Err(format!("raw_data of {} bytes is not a whole number of {N}-byte values", raw.len()));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|chunk| {
            let mut bytes = [0u8; N];
            bytes.copy_from_slice(chunk);
            from(bytes)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(data_type: ProtoType, dims: Vec<i64>) -> TensorProto {
        TensorProto { data_type: data_type as i32, dims, ..TensorProto::default() }
    }

    #[test]
    fn reads_typed_fields_and_raw_little_endian_data() {
        let mut typed = proto(ProtoType::Double, vec![2]);
        typed.double_data = vec![0.5, -1.25];
        assert_eq!(decode(&typed), Ok(TensorValues::F64(vec![0.5, -1.25])));

        let mut raw = proto(ProtoType::Float, vec![2]);
        raw.raw_data = [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat();
        assert_eq!(decode(&raw), Ok(TensorValues::F32(vec![1.5, -2.0])));

        let mut ints = proto(ProtoType::Int32, vec![1, 2]);
        ints.int32_data = vec![3, -4];
        assert_eq!(decode(&ints), Ok(TensorValues::I64(vec![3, -4])));

        let mut scalar = proto(ProtoType::Int64, vec![]);
        scalar.int64_data = vec![7];
        assert_eq!(decode(&scalar), Ok(TensorValues::I64(vec![7])));
    }

    #[test]
    fn refuses_inconsistent_tensors() {
        let mut short = proto(ProtoType::Double, vec![3]);
        short.double_data = vec![0.5];
        assert!(decode(&short).is_err());

        let mut ragged = proto(ProtoType::Double, vec![1]);
        ragged.raw_data = vec![0; 7];
        assert!(decode(&ragged).is_err());

        assert!(decode(&proto(ProtoType::Float, vec![-1])).is_err());
        assert!(decode(&proto(ProtoType::Float, vec![i64::MAX, i64::MAX])).is_err());
        assert!(decode(&proto(ProtoType::Complex64, vec![0])).is_err());

        let mut external = proto(ProtoType::Float, vec![0]);
        external.data_location = Some(1);
        assert!(decode(&external).is_err());
    }
}
