//! Serving's model source: registry versions resolved by the tracking service, files read from
//! the artifact store. This is where the two domains meet, so neither depends on the other.

use async_trait::async_trait;
use keelson_artifacts::{ArtifactKey, ArtifactStore};
use keelson_core::{ErrorKind, HasErrorKind};
use keelson_serving::{ModelPackage, ModelReference, ModelSource, SourceError};
use keelson_tracking::{RegistryService, TrackingError};

/// ONNX files larger than this are refused: a deployment holds its model in memory.
const MAX_MODEL_BYTES: u64 = 2 << 30;

/// MLflow writes this next to MLmodel when a model is logged with an input example: a request
/// body for `/invocations`.
const SERVING_EXAMPLE: &str = "serving_input_example.json";

pub struct RegistryModelSource {
    pub registry: RegistryService,
    pub artifacts: ArtifactStore,
}

fn source_error(error: TrackingError) -> SourceError {
    match error.kind() {
        ErrorKind::NotFound | ErrorKind::InvalidArgument => SourceError::NotFound(error.to_string()),
        _ => SourceError::Unavailable(error.to_string()),
    }
}

#[async_trait]
impl ModelSource for RegistryModelSource {
    async fn fetch(&self, model: &str, reference: &ModelReference) -> Result<ModelPackage, SourceError> {
        let version = match reference {
            ModelReference::Version(version) => self.registry.get_model_version(model, version).await,
            ModelReference::Alias(alias) => self.registry.get_model_version_by_alias(model, alias).await,
        }
        .map_err(source_error)?;
        let label = format!("version {} of model `{}`", version.version, version.name);
        let uri = version.download_uri().to_string();
        let Some(path) = self.registry.artifact_prefix(&version).await else {
            return Err(SourceError::Unservable(format!(
                "{label} has its files at `{uri}`, outside this server's artifact store; only proxied \
                 (mlflow-artifacts:) models can be deployed"
            )));
        };
        let prefix = ArtifactKey::parse(&path).map_err(|e| SourceError::Unservable(format!("{label}: {e}")))?;
        let files = self
            .artifacts
            .list_recursive(Some(&prefix))
            .await
            .map_err(|e| SourceError::Unavailable(format!("listing the files of {label}: {e}")))?;
        let onnx: Vec<_> = files.iter().filter(|f| f.key.ends_with(".onnx")).collect();
        let chosen = match onnx.as_slice() {
            [] => {
                return Err(SourceError::Unservable(format!(
                    "{label} has no .onnx file; Keelson serves ONNX models (log them with mlflow.onnx.log_model)"
                )))
            }
            [only] => *only,
            several => several.iter().copied().find(|f| f.key.ends_with("/model.onnx")).ok_or_else(|| {
                SourceError::Unservable(format!(
                    "{label} has several .onnx files and none is model.onnx; deploy a version with one model"
                ))
            })?,
        };
        if chosen.size > MAX_MODEL_BYTES {
            return Err(SourceError::Unservable(format!(
                "{label}: {} is {} bytes, over the limit of {MAX_MODEL_BYTES}",
                chosen.key, chosen.size
            )));
        }
        let read = |key: &str| {
            let key = ArtifactKey::parse(key).map_err(|e| SourceError::Unservable(e.to_string()));
            async move { self.artifacts.get_bytes(&key?).await.map_err(|e| SourceError::Unavailable(e.to_string())) }
        };
        let onnx = read(&chosen.key).await?.to_vec();
        // Initializers saved as external data live in files beside the model (mlflow.onnx
        // writes them by default); they are read by name from the same folder.
        let folder = chosen.key.rsplit_once('/').map_or("", |(folder, _)| folder);
        let mut external_data = std::collections::HashMap::new();
        let mut external_bytes = 0u64;
        for file in files.iter().filter(|f| f.key != chosen.key && !is_mlflow_metadata(&f.key)) {
            let Some(name) = file.key.strip_prefix(folder).and_then(|rest| rest.strip_prefix('/')) else { continue };
            if name.contains('/') {
                continue;
            }
            external_bytes += file.size;
            if external_bytes > MAX_MODEL_BYTES {
                return Err(SourceError::Unservable(format!(
                    "{label}: the model's data files are over {MAX_MODEL_BYTES} bytes"
                )));
            }
            external_data.insert(name.to_string(), read(&file.key).await?.to_vec());
        }
        let example_key = format!("{}/{SERVING_EXAMPLE}", prefix.as_str());
        let input_example = match files.iter().find(|f| f.key == example_key) {
            Some(file) => Some(read(&file.key).await?.to_vec()),
            None => None,
        };
        Ok(ModelPackage { name: version.name, version: version.version, onnx, external_data, input_example })
    }
}

/// Files MLflow writes beside every model, which are never ONNX external data.
fn is_mlflow_metadata(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    matches!(
        name,
        "MLmodel"
            | "conda.yaml"
            | "python_env.yaml"
            | "requirements.txt"
            | "input_example.json"
            | "serving_input_example.json"
            | "registered_model_meta"
    ) || name.ends_with(".onnx")
}
