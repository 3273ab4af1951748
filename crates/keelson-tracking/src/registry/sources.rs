//! Where a model version comes from. MLflow's server checks that a version's `source` belongs to
//! the run or logged model the request names (so nobody registers another team's files under
//! their run), resolves `models:/` sources to the files they stand for, and records the version
//! on its logged model. Same rules and messages here.

use super::{CreateModelVersion, RegistryService};
use crate::uris::{has_relative_parts, is_local, is_proxied_artifact, scheme_lowercase, split_uri, within_root};
use crate::TrackingError;
use keelson_core::registry::{ModelVersion, PROMPT_TAG};
use keelson_core::tracking::Tag;
use keelson_store::StoreError;

/// Sources the prompt registry uses: a prompt's "files" are its template tag.
const PROMPT_SOURCES: [&str; 2] = ["dummy-source", "prompt-template"];
/// Logged-model tag listing the registry versions made from it (MLflow's `mlflow.modelVersions`).
const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

pub(super) struct ResolvedSource {
    pub storage_location: Option<String>,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub is_prompt: bool,
}

fn invalid_source(source: &str, id_name: &str) -> TrackingError {
    TrackingError::Invalid(format!(
        "Invalid model version source: '{source}'. The {id_name} request parameter must identify the resource that \
         contains the source."
    ))
}

impl RegistryService {
    pub(super) async fn resolve_source(&self, request: &CreateModelVersion) -> Result<ResolvedSource, TrackingError> {
        let source = request.source.as_str();
        let run_id = request.run_id.clone().filter(|r| !r.is_empty());
        let model_id = request.model_id.clone().filter(|m| !m.is_empty());
        let is_prompt = request
            .tags
            .iter()
            .rev()
            .find(|t| t.key == PROMPT_TAG)
            .is_some_and(|t| t.value.eq_ignore_ascii_case("true"));
        if source.is_empty() {
            return Err(super::validation::missing_value("source"));
        }
        if is_prompt {
            if !PROMPT_SOURCES.contains(&source) {
                return Err(TrackingError::Invalid(format!(
                    "Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder."
                )));
            }
            return Ok(ResolvedSource { storage_location: None, run_id, model_id, is_prompt });
        }
        if is_local(source) {
            let id_name = if model_id.is_some() { "model_id" } else { "run_id" };
            return Err(TrackingError::Invalid(format!(
                "Invalid model version source: '{source}'. To use a local path as a model version source, the {id_name} \
                 request parameter has to be specified and the local path has to be contained within the artifact \
                 directory of the run specified by the {id_name}."
            )));
        }
        if has_relative_parts(source) {
            return Err(TrackingError::Invalid(format!(
                "Invalid model version source: '{source}'. If supplying a source as an http, https, local file path, \
                 ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path \
                 references present. Please provide an absolute path."
            )));
        }
        let (_, authority, segments) = split_uri(source);
        let scheme = scheme_lowercase(source);
        let scheme = scheme.as_deref();
        match scheme {
            Some("models") => {
                if authority.is_some() {
                    return Err(TrackingError::Invalid(format!(
                        "Invalid model version source: '{source}'. Registered model sources must use the active model \
                         registry."
                    )));
                }
                self.resolve_models_uri(source, &segments, run_id, model_id).await
            }
            Some("runs") => {
                if authority.is_some() || model_id.is_some() {
                    return Err(invalid_source(source, if model_id.is_some() { "model_id" } else { "run_id" }));
                }
                match (segments.first(), run_id.as_deref()) {
                    (Some(source_run), Some(run)) if *source_run == run => {
                        Ok(ResolvedSource { storage_location: None, run_id, model_id: None, is_prompt })
                    }
                    _ => Err(invalid_source(source, "run_id")),
                }
            }
            _ if is_proxied_artifact(scheme, &segments) => {
                let root = match (&model_id, &run_id) {
                    (Some(model), _) => self
                        .store()
                        .get_logged_model(model)
                        .await
                        .map(|m| m.artifact_uri)
                        .map_err(|_| invalid_source(source, "model_id"))?,
                    (None, Some(run)) => self
                        .store()
                        .get_run_info(run)
                        .await
                        .map(|r| r.artifact_uri)
                        .map_err(|_| invalid_source(source, "run_id"))?,
                    (None, None) => return Err(invalid_source(source, "run_id")),
                };
                if !within_root(source, &root) {
                    return Err(invalid_source(source, if model_id.is_some() { "model_id" } else { "run_id" }));
                }
                Ok(ResolvedSource { storage_location: None, run_id, model_id, is_prompt })
            }
            // Any other store (s3://, gs://…): MLflow records it as given.
            _ => Ok(ResolvedSource { storage_location: None, run_id, model_id, is_prompt }),
        }
    }

    async fn resolve_models_uri(
        &self,
        source: &str,
        segments: &[&str],
        run_id: Option<String>,
        model_id: Option<String>,
    ) -> Result<ResolvedSource, TrackingError> {
        // `models:/<model_id>`: a logged model; its files are its artifact location.
        if let [only] = segments {
            if !only.contains('@') {
                // The request must name the logged model the source points into.
                if model_id.as_deref() != Some(*only) {
                    return Err(invalid_source(source, "model_id"));
                }
                let model = self.store().get_logged_model(only).await.map_err(|e| match e {
                    StoreError::NotFound(_) => TrackingError::Invalid(format!(
                        "Unable to fetch model from model URI source artifact location '{source}'.Error: {e}"
                    )),
                    other => other.into(),
                })?;
                return Ok(ResolvedSource {
                    storage_location: Some(model.artifact_uri.clone()),
                    run_id: run_id.or(model.source_run_id.clone()),
                    model_id: Some(model.model_id),
                    is_prompt: false,
                });
            }
        }
        // `models:/<name>/<version>` or `models:/<name>@<alias>`: another registry version.
        let referenced: ModelVersion = match segments {
            [name, version] => self.get_model_version(name, version).await?,
            [name_alias] => match name_alias.split_once('@') {
                Some((name, alias)) => self.get_model_version_by_alias(name, alias).await?,
                None => return Err(invalid_source(source, "model_id")),
            },
            _ => return Err(invalid_source(source, "model_id")),
        };
        let parent = self.store().get_registered_model(&referenced.name).await?;
        if parent.is_prompt() {
            return Err(TrackingError::Invalid(format!(
                "Invalid model version source: '{source}'. Prompt versions cannot be used as model version sources."
            )));
        }
        if run_id.as_ref().is_some_and(|r| Some(r) != referenced.run_id.as_ref())
            || model_id.as_ref().is_some_and(|m| Some(m) != referenced.model_id.as_ref())
        {
            return Err(TrackingError::Invalid(format!(
                "Invalid model version source: '{source}'. The run_id and model_id request parameters must match the \
                 referenced model version."
            )));
        }
        Ok(ResolvedSource {
            storage_location: Some(referenced.download_uri().to_string()),
            run_id: run_id.or(referenced.run_id.clone()),
            model_id: model_id.or(referenced.model_id.clone()),
            is_prompt: false,
        })
    }

    /// Adds `{name, version}` to the logged model's `mlflow.modelVersions` tag (a JSON list).
    pub(super) async fn record_version_on_logged_model(
        &self,
        model_id: &str,
        version: &ModelVersion,
    ) -> Result<(), TrackingError> {
        let model = self.store().get_logged_model(model_id).await?;
        let mut entries: Vec<serde_json::Value> = model
            .tags
            .iter()
            .find(|t| t.key == MODEL_VERSIONS_TAG)
            .and_then(|t| serde_json::from_str(&t.value).ok())
            .unwrap_or_default();
        let entry = serde_json::json!({ "name": version.name, "version": version.version });
        if !entries.contains(&entry) {
            entries.push(entry);
        }
        let value = serde_json::Value::Array(entries).to_string();
        self.store().set_logged_model_tags(model_id, &[Tag::new(MODEL_VERSIONS_TAG, value)]).await?;
        Ok(())
    }
}
