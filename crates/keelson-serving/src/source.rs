//! Where deployments get their models: the registry, reached through this trait so serving
//! does not depend on the tracking crate (the server wires the two together).

use async_trait::async_trait;

/// Which version of a registered model to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelReference {
    Version(String),
    Alias(String),
}

/// A model version's files as a deployment needs them.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    pub name: String,
    pub version: String,
    pub onnx: Vec<u8>,
    /// Other files next to the model by name, for initializers stored as external data.
    pub external_data: std::collections::HashMap<String, Vec<u8>>,
    /// MLflow's `serving_input_example.json`, an `/invocations` body, when the model was logged
    /// with an input example.
    pub input_example: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    NotFound(String),
    /// The version exists but holds nothing Keelson can serve.
    #[error("{0}")]
    Unservable(String),
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ModelSource: Send + Sync + 'static {
    async fn fetch(&self, model: &str, reference: &ModelReference) -> Result<ModelPackage, SourceError>;
}
