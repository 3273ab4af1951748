//! Which node an error is about: every error names the operator and the node, so a user with a
//! large graph can find the culprit.

use super::MlOpError;
use tract_onnx::pb::NodeProto;

/// The operator type and node name, kept by each operator for the errors it reports at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpContext {
    op: String,
    node: String,
}

impl OpContext {
    pub(crate) fn of(node: &NodeProto) -> OpContext {
        OpContext { op: node.op_type.clone(), node: node.name.clone() }
    }

    /// The model itself is broken (found while building the operator).
    pub(crate) fn model(&self, message: impl Into<String>) -> MlOpError {
        MlOpError::InvalidModel { op: self.op.clone(), node: self.node.clone(), message: message.into() }
    }

    /// The request's tensors cannot be run through this operator.
    pub(crate) fn input(&self, message: impl Into<String>) -> MlOpError {
        MlOpError::InvalidInput { op: self.op.clone(), node: self.node.clone(), message: message.into() }
    }
}
