//! The model registry: MLflow's registry operations with its rules, plus Keelson's governance —
//! promotion policies checked on every alias move (whichever API makes it), approvals, the alias
//! history and rollback.

mod governance;
mod lineage;
mod sources;
pub mod validation;

pub use governance::{Actor, PolicyView};
pub use lineage::{Lineage, LineageNode};

use crate::TrackingError;
use keelson_artifacts::ArtifactStore;
use keelson_core::registry::limits::*;
use keelson_core::registry::{ModelVersion, RegisteredModel, Stage};
use keelson_core::search::{
    parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
    parse_registered_model_order_by, RegistryOrderBy, RegistryOrderKey,
};
use keelson_core::tracking::{Page, Tag};
use keelson_store::registry::NewModelVersion;
use keelson_store::Store;
use validation::*;

#[derive(Clone)]
pub struct RegistryService {
    store: Store,
    artifacts: ArtifactStore,
}

/// A version to create, as MLflow's `CreateModelVersion` carries it.
#[derive(Debug, Clone, Default)]
pub struct CreateModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
    pub model_id: Option<String>,
}

impl RegistryService {
    pub fn new(store: Store, artifacts: ArtifactStore) -> Self {
        Self { store, artifacts }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    // ---- registered models ----

    pub async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
        actor: &Actor,
    ) -> Result<RegisteredModel, TrackingError> {
        validate_model_name(name)?;
        for tag in tags {
            validate_registry_tag(tag)?;
        }
        // MLflow does not return a registered model's user_id; Keelson records the creator only
        // when one is identified.
        let user = Some(actor.name.as_str()).filter(|name| *name != "anonymous");
        Ok(self.store.create_registered_model(name, description, tags, user).await?)
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.get_registered_model(name).await?)
    }

    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel, TrackingError> {
        validate_model_name(name)?;
        if new_name.trim().is_empty() {
            return Err(missing_value("new_name"));
        }
        validate_model_name(new_name)?;
        Ok(self.store.rename_registered_model(name, new_name).await?)
    }

    pub async fn update_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<RegisteredModel, TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.update_registered_model(name, description).await?)
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.delete_registered_model(name).await?)
    }

    pub async fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        validate_registry_tag(tag)?;
        Ok(self.store.set_registered_model_tag(name, tag).await?)
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.delete_registered_model_tag(name, key).await?)
    }

    pub async fn search_registered_models(
        &self,
        filter: Option<&str>,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>, TrackingError> {
        let max_results = max_results.unwrap_or(DEFAULT_SEARCH_REGISTERED_MODELS_RESULTS);
        if max_results > MAX_RESULTS_SEARCH_REGISTERED_MODELS {
            return Err(TrackingError::Invalid(format!(
                "Invalid value for request parameter max_results. It must be at most \
                 {MAX_RESULTS_SEARCH_REGISTERED_MODELS}, but got value {max_results}"
            )));
        }
        if max_results < 1 {
            return Err(TrackingError::Invalid(format!(
                "Invalid value for request parameter max_results. It must be a positive integer, but got value \
                 {max_results}"
            )));
        }
        let filter = parse_registered_model_filter(filter.unwrap_or(""))?;
        let order: Vec<RegistryOrderBy> =
            order_by.iter().map(|o| parse_registered_model_order_by(o)).collect::<Result<_, _>>()?;
        Ok(self.store.search_registered_models(&filter, &order, max_results, page_token).await?)
    }

    pub async fn get_latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>, TrackingError> {
        validate_model_name(name)?;
        let wanted: Vec<Stage> =
            stages.iter().map(|s| s.parse::<Stage>().map_err(TrackingError::Invalid)).collect::<Result<_, _>>()?;
        self.store.require_registered_model(name).await?;
        let latest = self.store.latest_versions(name).await?;
        Ok(latest
            .into_iter()
            .filter(|v| wanted.is_empty() || wanted.iter().any(|s| s.as_str() == v.current_stage))
            .collect())
    }

    // ---- versions ----

    pub async fn create_model_version(
        &self,
        request: CreateModelVersion,
        actor: &Actor,
    ) -> Result<ModelVersion, TrackingError> {
        validate_model_name(&request.name)?;
        for tag in &request.tags {
            validate_registry_tag(tag)?;
        }
        let resolved = self.resolve_source(&request).await?;
        let registration_metrics = if resolved.is_prompt {
            None
        } else {
            let metrics = self.metrics_of(resolved.run_id.as_deref(), resolved.model_id.as_deref()).await?;
            let finite: serde_json::Map<String, serde_json::Value> =
                metrics.into_iter().filter(|(_, v)| v.is_finite()).map(|(k, v)| (k, serde_json::json!(v))).collect();
            Some(serde_json::Value::Object(finite).to_string())
        };
        let version = self
            .store
            .create_model_version(&NewModelVersion {
                name: request.name.clone(),
                source: request.source.clone(),
                storage_location: resolved.storage_location,
                // Unset strings are "" on MLflow's wire (proto3 defaults stored as sent).
                run_id: Some(resolved.run_id.unwrap_or_default()),
                run_link: Some(request.run_link.clone().unwrap_or_default()),
                description: Some(request.description.clone().unwrap_or_default()),
                tags: request.tags.clone(),
                model_id: resolved.model_id.clone(),
                user_id: Some(actor.name.clone()).filter(|name| name != "anonymous"),
                registration_metrics,
            })
            .await?;
        if let (Some(model_id), false) = (resolved.model_id.as_deref(), resolved.is_prompt) {
            self.record_version_on_logged_model(model_id, &version).await?;
        }
        Ok(version)
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion, TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.get_model_version(name, parse_version(version)?).await?)
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: Option<&str>,
    ) -> Result<ModelVersion, TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.update_model_version(name, parse_version(version)?, description).await?)
    }

    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion, TrackingError> {
        validate_model_name(name)?;
        let version = parse_version(version)?;
        let stage: Stage = stage.parse().map_err(TrackingError::Invalid)?;
        if archive_existing_versions && !stage.is_active() {
            return Err(TrackingError::Invalid(format!(
                "Model version transition cannot archive existing model versions because '{stage}' is not an Active \
                 stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        Ok(self.store.transition_model_version_stage(name, version, stage, archive_existing_versions).await?)
    }

    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.delete_model_version(name, parse_version(version)?).await?)
    }

    pub async fn get_model_version_download_uri(&self, name: &str, version: &str) -> Result<String, TrackingError> {
        let version = self.get_model_version(name, version).await?;
        Ok(version.download_uri().to_string())
    }

    pub async fn set_model_version_tag(&self, name: &str, version: &str, tag: &Tag) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        validate_registry_tag(tag)?;
        Ok(self.store.set_model_version_tag(name, parse_version(version)?, tag).await?)
    }

    pub async fn delete_model_version_tag(&self, name: &str, version: &str, key: &str) -> Result<(), TrackingError> {
        validate_model_name(name)?;
        Ok(self.store.delete_model_version_tag(name, parse_version(version)?, key).await?)
    }

    pub async fn search_model_versions(
        &self,
        filter: Option<&str>,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>, TrackingError> {
        let max_results = max_results.unwrap_or(DEFAULT_SEARCH_MODEL_VERSIONS_RESULTS);
        if max_results < 1 {
            return Err(TrackingError::Invalid(format!(
                "Invalid value for max_results. It must be a positive integer, but got {max_results}"
            )));
        }
        if max_results > MAX_RESULTS_SEARCH_MODEL_VERSIONS {
            return Err(TrackingError::Invalid(format!(
                "Invalid value for request parameter max_results. It must be at most \
                 {MAX_RESULTS_SEARCH_MODEL_VERSIONS}, but got value {max_results}"
            )));
        }
        let filter = parse_model_version_filter(filter.unwrap_or(""))?;
        let order: Vec<RegistryOrderBy> = if order_by.is_empty() {
            vec![
                RegistryOrderBy { key: RegistryOrderKey::LastUpdatedTimestamp, ascending: false },
                RegistryOrderBy { key: RegistryOrderKey::Name, ascending: true },
                RegistryOrderBy { key: RegistryOrderKey::VersionNumber, ascending: false },
            ]
        } else {
            order_by.iter().map(|o| parse_model_version_order_by(o)).collect::<Result<_, _>>()?
        };
        Ok(self.store.search_model_versions(&filter, &order, max_results, page_token).await?)
    }

    // ---- aliases (MLflow's calls; governance in governance.rs) ----

    pub async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, TrackingError> {
        validate_model_name(name)?;
        validate_alias(alias)?;
        if alias.eq_ignore_ascii_case("latest") {
            let latest = self.get_latest_versions(name, &[]).await?;
            return latest.into_iter().max_by_key(|v| v.number()).ok_or_else(|| {
                TrackingError::Store(keelson_store::StoreError::NotFound(format!(
                    "Latest version not found for model {name}."
                )))
            });
        }
        Ok(self.store.get_model_version_by_alias(name, alias).await?)
    }
}
