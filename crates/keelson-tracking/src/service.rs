//! One function per MLflow tracking operation: validate, then call the store.

use crate::names::generate_run_name;
use crate::validation::*;
use crate::TrackingError;
use keelson_artifacts::{ArtifactKey, ArtifactStore};
use keelson_core::search::{parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by};
use keelson_core::tracking::limits::*;
use keelson_core::tracking::{
    DatasetInput, Experiment, LoggedModel, Metric, ModelInput, ModelOutput, Page, Param, Run, RunInfo, RunStatus, Tag,
    ViewType,
};
use keelson_store::tracking::{NewLoggedModel, RunSearch, RunUpdate, RUN_NAME_TAG};
use keelson_store::Store;

/// Artifact-store prefix under which the MLflow artifact proxy keeps its files.
pub const MLFLOW_ARTIFACTS_PREFIX: &str = "mlflow-artifacts";

#[derive(Clone)]
pub struct TrackingService {
    store: Store,
    artifacts: ArtifactStore,
}

#[derive(Debug, Clone, Default)]
pub struct CreateRun {
    pub experiment_id: String,
    pub user_id: String,
    pub start_time: Option<i64>,
    pub run_name: Option<String>,
    pub tags: Vec<Tag>,
}

impl TrackingService {
    pub fn new(store: Store, artifacts: ArtifactStore) -> Self {
        Self { store, artifacts }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// The store key of a proxied artifact path (`<experiment>/<run>/artifacts/<file>`); hostile
    /// paths are refused by the key validator.
    pub fn artifact_key(&self, path: &str) -> Result<ArtifactKey, TrackingError> {
        let path = path.trim_matches('/');
        let key = if path.is_empty() {
            MLFLOW_ARTIFACTS_PREFIX.to_string()
        } else {
            format!("{MLFLOW_ARTIFACTS_PREFIX}/{path}")
        };
        Ok(ArtifactKey::parse(&key)?)
    }

    // ---- experiments ----

    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<String, TrackingError> {
        validate_experiment_name(name)?;
        for (i, tag) in tags.iter().enumerate() {
            validate_tag(tag, &format!("tags[{i}]"))?;
        }
        Ok(self.store.create_experiment(name, artifact_location.filter(|l| !l.is_empty()), tags).await?)
    }

    pub async fn get_experiment(&self, id: &str) -> Result<Experiment, TrackingError> {
        Ok(self.store.get_experiment(id).await?)
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, TrackingError> {
        Ok(self.store.get_experiment_by_name(name).await?)
    }

    pub async fn search_experiments(
        &self,
        view: ViewType,
        filter: &str,
        order_by: &[String],
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>, TrackingError> {
        let max_results = max_results.unwrap_or(DEFAULT_SEARCH_EXPERIMENTS_RESULTS);
        validate_max_results(max_results, MAX_RESULTS_SEARCH_EXPERIMENTS)?;
        let filter = parse_experiment_filter(filter)?;
        let order_by = order_by.iter().map(|o| parse_experiment_order_by(o)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.store.search_experiments(view, &filter, &order_by, max_results, page_token).await?)
    }

    pub async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<(), TrackingError> {
        validate_experiment_name(new_name)?;
        Ok(self.store.rename_experiment(id, new_name).await?)
    }

    pub async fn delete_experiment(&self, id: &str) -> Result<(), TrackingError> {
        Ok(self.store.set_experiment_lifecycle(id, true).await?)
    }

    pub async fn restore_experiment(&self, id: &str) -> Result<(), TrackingError> {
        Ok(self.store.set_experiment_lifecycle(id, false).await?)
    }

    pub async fn set_experiment_tag(&self, id: &str, tag: &Tag) -> Result<(), TrackingError> {
        validate_tag(tag, "")?;
        Ok(self.store.set_experiment_tag(id, tag).await?)
    }

    pub async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<(), TrackingError> {
        Ok(self.store.delete_experiment_tag(id, key).await?)
    }

    // ---- runs ----

    /// Creates a run. The name comes from `run_name`, else the `mlflow.runName` tag, else is
    /// generated; it is mirrored into that tag as MLflow does.
    pub async fn create_run(&self, request: CreateRun, now: i64) -> Result<Run, TrackingError> {
        for (i, tag) in request.tags.iter().enumerate() {
            validate_tag(tag, &format!("tags[{i}]"))?;
        }
        let tag_name = request.tags.iter().find(|t| t.key == RUN_NAME_TAG).map(|t| t.value.clone());
        let run_name = match (request.run_name.filter(|n| !n.is_empty()), tag_name) {
            (Some(name), Some(tag)) if name != tag => {
                return Err(TrackingError::Invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values \
                     (run_name='{name}', mlflow.runName='{tag}')."
                )))
            }
            (Some(name), _) => name,
            (None, Some(tag)) if !tag.is_empty() => tag,
            _ => generate_run_name(),
        };
        let experiment_id = if request.experiment_id.is_empty() { "0".to_string() } else { request.experiment_id };
        let start_time = request.start_time.filter(|t| *t > 0).unwrap_or(now);
        Ok(self.store.create_run(&experiment_id, &request.user_id, start_time, &run_name, &request.tags).await?)
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run, TrackingError> {
        Ok(self.store.get_run(run_id).await?)
    }

    pub async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo, TrackingError> {
        Ok(self.store.update_run(run_id, &update).await?)
    }

    pub async fn delete_run(&self, run_id: &str) -> Result<(), TrackingError> {
        Ok(self.store.set_run_lifecycle(run_id, true).await?)
    }

    pub async fn restore_run(&self, run_id: &str) -> Result<(), TrackingError> {
        Ok(self.store.set_run_lifecycle(run_id, false).await?)
    }

    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<(), TrackingError> {
        validate_batch(metrics, params, tags)?;
        Ok(self.store.log_batch(run_id, metrics, params, tags).await?)
    }

    pub async fn log_metric(&self, run_id: &str, metric: &Metric) -> Result<(), TrackingError> {
        validate_metric(metric, "")?;
        Ok(self.store.log_batch(run_id, std::slice::from_ref(metric), &[], &[]).await?)
    }

    pub async fn log_param(&self, run_id: &str, param: &Param) -> Result<(), TrackingError> {
        validate_param(param, "")?;
        Ok(self.store.log_batch(run_id, &[], std::slice::from_ref(param), &[]).await?)
    }

    pub async fn set_tag(&self, run_id: &str, tag: &Tag) -> Result<(), TrackingError> {
        validate_tag(tag, "")?;
        Ok(self.store.log_batch(run_id, &[], &[], std::slice::from_ref(tag)).await?)
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), TrackingError> {
        Ok(self.store.delete_run_tag(run_id, key).await?)
    }

    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<(), TrackingError> {
        validate_dataset_inputs(datasets)?;
        Ok(self.store.log_inputs(run_id, datasets, models).await?)
    }

    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<(), TrackingError> {
        Ok(self.store.log_outputs(run_id, models).await?)
    }

    pub async fn search_runs(
        &self,
        experiment_ids: Vec<String>,
        filter: &str,
        view: ViewType,
        max_results: Option<i64>,
        order_by: &[String],
        page_token: Option<String>,
    ) -> Result<Page<Run>, TrackingError> {
        let max_results = max_results.unwrap_or(DEFAULT_SEARCH_RUNS_RESULTS);
        validate_max_results(max_results, MAX_RESULTS_SEARCH_RUNS)?;
        let search = RunSearch {
            experiment_ids,
            filter: parse_run_filter(filter)?,
            view,
            max_results,
            order_by: order_by.iter().map(|o| parse_run_order_by(o)).collect::<Result<Vec<_>, _>>()?,
            page_token,
        };
        Ok(self.store.search_runs(&search).await?)
    }

    pub async fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>, TrackingError> {
        if let Some(n) = max_results {
            if n <= 0 {
                return Err(TrackingError::Invalid(format!(
                    "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer."
                )));
            }
        }
        Ok(self.store.get_metric_history(run_id, key, max_results, page_token).await?)
    }

    /// The same page as [`Self::get_metric_history`], as a JSON array rendered by the store.
    pub async fn get_metric_history_json(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<(String, Option<String>), TrackingError> {
        if let Some(n) = max_results {
            if n <= 0 {
                return Err(TrackingError::Invalid(format!(
                    "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer."
                )));
            }
        }
        Ok(self.store.metric_history_json(run_id, key, max_results, page_token).await?)
    }

    pub async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: Option<i64>,
    ) -> Result<Vec<Metric>, TrackingError> {
        if run_ids.is_empty() {
            return Err(TrackingError::Invalid(
                "GetMetricHistoryBulkInterval request must specify at least one run_id.".into(),
            ));
        }
        if run_ids.len() > 100 {
            return Err(TrackingError::Invalid(format!(
                "GetMetricHistoryBulkInterval request cannot specify more than 100 run_ids. Received {} run_ids.",
                run_ids.len()
            )));
        }
        match (start_step, end_step) {
            (Some(start), Some(end)) if start > end => {
                return Err(TrackingError::Invalid(format!(
                    "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
                )));
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(TrackingError::Invalid(
                    "If either start step or end step are specified, both must be specified.".into(),
                ));
            }
            _ => {}
        }
        let max_results = max_results.unwrap_or(2500);
        if !(1..=2500).contains(&max_results) {
            return Err(TrackingError::Invalid(format!(
                "max_results must be between 1 and 2500 (inclusive). Got {max_results}."
            )));
        }
        Ok(self.store.get_metric_history_bulk_interval(run_ids, key, start_step, end_step, max_results).await?)
    }

    // ---- logged models ----

    pub async fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel, TrackingError> {
        for (i, tag) in new.tags.iter().enumerate() {
            validate_tag(tag, &format!("tags[{i}]"))?;
        }
        Ok(self.store.create_logged_model(&new).await?)
    }

    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel, TrackingError> {
        Ok(self.store.get_logged_model(model_id).await?)
    }

    pub async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel, TrackingError> {
        const STATUSES: [&str; 3] = ["LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"];
        if !STATUSES.contains(&status) {
            return Err(TrackingError::Invalid(format!("Invalid logged model status `{status}`")));
        }
        Ok(self.store.finalize_logged_model(model_id, status).await?)
    }

    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<(), TrackingError> {
        for (i, tag) in tags.iter().enumerate() {
            validate_tag(tag, &format!("tags[{i}]"))?;
        }
        Ok(self.store.set_logged_model_tags(model_id, tags).await?)
    }

    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<(), TrackingError> {
        Ok(self.store.delete_logged_model_tag(model_id, key).await?)
    }

    pub async fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<(), TrackingError> {
        for (i, param) in params.iter().enumerate() {
            validate_param(param, &format!("params[{i}]"))?;
        }
        Ok(self.store.log_logged_model_params(model_id, params).await?)
    }

    pub async fn delete_logged_model(&self, model_id: &str) -> Result<(), TrackingError> {
        Ok(self.store.delete_logged_model(model_id).await?)
    }

    pub async fn search_logged_models(
        &self,
        experiment_ids: &[String],
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<LoggedModel>, TrackingError> {
        let max_results = max_results.unwrap_or(100);
        validate_max_results(max_results, MAX_RESULTS_SEARCH_RUNS)?;
        Ok(self.store.search_logged_models(experiment_ids, max_results, page_token).await?)
    }

    /// Marks a run finished, as `mlflow.end_run` does through UpdateRun.
    pub fn terminated_update(status: RunStatus, end_time: i64) -> RunUpdate {
        RunUpdate { status: Some(status), end_time: Some(end_time), run_name: None }
    }
}
