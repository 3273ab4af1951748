//! Reading request tensors and allocating outputs without ever panicking or aborting: shapes and
//! types come from users, so every mismatch becomes InvalidInput.

use super::context::OpContext;
use super::MlOpError;
use crate::tensor::{Tensor, TensorData};
use std::borrow::Cow;

/// Input `index`, or an error when the request supplied fewer.
pub(crate) fn nth<'a>(ctx: &OpContext, inputs: &[&'a Tensor], index: usize) -> Result<&'a Tensor, MlOpError> {
    inputs.get(index).copied().ok_or_else(|| ctx.input(format!("expected at least {} input(s)", index + 1)))
}

/// Rows and features of a feature matrix: `[N, F]`, or `[F]` read as a single row.
pub(crate) fn matrix(ctx: &OpContext, tensor: &Tensor) -> Result<(usize, usize), MlOpError> {
    match tensor.shape.as_slice() {
        [features] => Ok((1, *features)),
        [rows, features] => Ok((*rows, *features)),
        shape => Err(ctx.input(format!("expected a [N, F] or [F] tensor, got shape {shape:?}"))),
    }
}

/// Numeric elements as f32, converted the way a C++ `static_cast<float>` would; FP32 is borrowed.
pub(crate) fn as_f32<'a>(ctx: &OpContext, tensor: &'a Tensor) -> Result<Cow<'a, [f32]>, MlOpError> {
    Ok(match &tensor.data {
        TensorData::Fp32(v) => Cow::Borrowed(v.as_slice()),
        TensorData::Fp64(v) => Cow::Owned(v.iter().map(|x| *x as f32).collect()),
        TensorData::Int64(v) => Cow::Owned(v.iter().map(|x| *x as f32).collect()),
        TensorData::Int32(v) => Cow::Owned(v.iter().map(|x| *x as f32).collect()),
        other => return Err(unsupported(ctx, other)),
    })
}

/// The error for an input datatype an operator does not take.
pub(crate) fn unsupported(ctx: &OpContext, data: &TensorData) -> MlOpError {
    ctx.input(format!("input datatype {} is not supported", data.datatype()))
}

/// `len` copies of `value`, or InvalidInput when that much memory cannot be had: a tiny request
/// (e.g. a `[10^12, 0]` tensor) can ask for a huge output, and that must not abort the server.
pub(crate) fn filled<T: Clone>(ctx: &OpContext, len: usize, value: T) -> Result<Vec<T>, MlOpError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| ctx.input(format!("output of {len} elements is too large")))?;
    out.resize(len, value);
    Ok(out)
}

/// `a * b` elements, or InvalidInput on overflow.
pub(crate) fn product(ctx: &OpContext, a: usize, b: usize) -> Result<usize, MlOpError> {
    a.checked_mul(b).ok_or_else(|| ctx.input("output size overflows"))
}

/// A tensor of `shape`; the data length is always right by construction, but a mismatch is
/// still reported rather than unwrapped.
pub(crate) fn tensor(ctx: &OpContext, shape: Vec<usize>, data: TensorData) -> Result<Tensor, MlOpError> {
    Tensor::new(shape, data).map_err(|e| ctx.input(format!("internal shape error: {e}")))
}
