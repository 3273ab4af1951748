//! Wire protocols for inference: the Open Inference Protocol (KServe V2) with its binary tensor
//! extension, KServe V1 `:predict`, and MLflow's `/invocations`. Each turns bytes into named
//! tensors and outputs back into bytes; none knows about HTTP frameworks.

pub(crate) mod json_tensor;
pub mod mlflow;
mod rows;
pub mod v1;
pub mod v2;

/// A request the protocol cannot read: always the client's mistake (4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    pub fn new(message: impl Into<String>) -> Self {
        ProtocolError(message.into())
    }
}
