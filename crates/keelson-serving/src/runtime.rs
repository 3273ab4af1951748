//! What a deployment runs: a model behind one synchronous call. Runtimes are loaded once and
//! shared by a deployment's worker threads.

use crate::onnx::{OnnxError, OnnxModel};
use crate::signature::Signature;
use crate::tensor::Tensor;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// The inputs passed the signature check but the model cannot take them.
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Failed(String),
}

pub trait ModelRuntime: Send + Sync + std::fmt::Debug + 'static {
    fn signature(&self) -> &Signature;
    /// How the model runs, for the deployment's description.
    fn describe(&self) -> String;
    /// Inputs in signature order, already checked against it; outputs in signature order.
    fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError>;
    /// Whether a prediction may run on an async thread when it is quick: only for a runtime that
    /// never waits (for a lock held across predictions, a session, the network).
    fn runs_inline(&self) -> bool {
        false
    }
}

impl ModelRuntime for OnnxModel {
    fn signature(&self) -> &Signature {
        OnnxModel::signature(self)
    }

    fn describe(&self) -> String {
        self.execution()
    }

    fn runs_inline(&self) -> bool {
        true
    }

    fn infer(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        self.run(inputs).map_err(|error| match error {
            OnnxError::Input(message) => RuntimeError::Input(message),
            other => RuntimeError::Failed(other.to_string()),
        })
    }
}
