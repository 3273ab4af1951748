//! Keelson serving: model runtimes, inference protocols, endpoints and deployments.

pub mod onnx;
pub mod tensor;
