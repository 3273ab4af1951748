//! ONNX-ML operators (domain `ai.onnx.ml`) implemented natively: tract does not run most of the
//! ones scikit-learn exports, and runs its tree classifier far slower than onnxruntime. Each
//! operator is built once from its node (attributes checked then) and evaluated per request.

mod array_feature_extractor;
mod attrs;
mod binarizer;
mod context;
mod feature_vectorizer;
mod imputer;
mod input;
mod label_encoder;
mod linear_classifier;
mod linear_model;
mod linear_regressor;
mod normalizer;
mod one_hot_encoder;
mod post_transform;
mod proto_tensor;
mod scaler;
#[cfg(test)]
pub(crate) mod test_support;
mod tree;
mod zipmap;

use crate::tensor::Tensor;
use tract_onnx::pb::NodeProto;

/// The ONNX domain of these operators.
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// An operator ready to run: attributes parsed and checked at model load.
pub trait MlOp: Send + Sync + std::fmt::Debug {
    /// Outputs in the node's output order, one per declared output.
    fn eval(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, MlOpError>;
}

/// Why an operator could not be built (a broken model) or run (inputs it cannot take).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MlOpError {
    #[error("{op} node `{node}`: {message}")]
    InvalidModel { op: String, node: String, message: String },
    #[error("{op} node `{node}`: {message}")]
    InvalidInput { op: String, node: String, message: String },
}

/// The operator for `node`, or `None` when Keelson has no native implementation of its type.
pub fn build(node: &NodeProto) -> Option<Result<Box<dyn MlOp>, MlOpError>> {
    if node.domain != ML_DOMAIN {
        return None;
    }
    let build = match node.op_type.as_str() {
        "TreeEnsembleClassifier" => tree::build_classifier,
        "TreeEnsembleRegressor" => tree::build_regressor,
        "LinearClassifier" => linear_classifier::build,
        "LinearRegressor" => linear_regressor::build,
        "Scaler" => scaler::build,
        "Normalizer" => normalizer::build,
        "Binarizer" => binarizer::build,
        "Imputer" => imputer::build,
        "ArrayFeatureExtractor" => array_feature_extractor::build,
        "ZipMap" => zipmap::build,
        "FeatureVectorizer" => feature_vectorizer::build,
        "OneHotEncoder" => one_hot_encoder::build,
        "LabelEncoder" => label_encoder::build,
        _ => return None,
    };
    Some(build(node))
}
