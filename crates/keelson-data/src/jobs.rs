//! Data work as queue jobs, so pipelines, schedules and any `keelson worker` run recipes and
//! ingests the same way the API does: `data.recipe` (payload `{"recipe": …}`) and `data.ingest`
//! (payload `{"dataset": …, …IngestRequest}`). Both are idempotent — a rerun after a worker
//! dies registers nothing new, because identical content maps to the existing version.

use crate::error::DataError;
use crate::service::{DataService, IngestRequest};
use async_trait::async_trait;
use keelson_core::jobs::Job;
use keelson_core::{ErrorKind, HasErrorKind};
use keelson_store::worker::{HandlerRegistry, JobFailure, JobHandler};
use serde_json::Value;
use std::sync::Arc;

pub const RECIPE_JOB: &str = "data.recipe";
pub const INGEST_JOB: &str = "data.ingest";

/// Adds the data job kinds to a worker's handlers.
pub fn register_data_jobs(registry: &mut HandlerRegistry, service: DataService) {
    registry.register(RECIPE_JOB, Arc::new(RecipeJob(service.clone())));
    registry.register(INGEST_JOB, Arc::new(IngestJob(service)));
}

/// The user's mistakes fail at once; a store or object store that is away is worth a retry.
fn failure(error: DataError) -> JobFailure {
    match error.kind() {
        ErrorKind::Unavailable | ErrorKind::Internal => JobFailure::retryable(error.to_string()),
        _ => JobFailure::permanent(error.to_string()),
    }
}

fn answer(registered: crate::Registered) -> Result<Value, JobFailure> {
    serde_json::to_value(registered).map_err(|e| JobFailure::permanent(format!("result: {e}")))
}

struct RecipeJob(DataService);

#[async_trait]
impl JobHandler for RecipeJob {
    async fn run(&self, job: &Job) -> Result<Value, JobFailure> {
        let recipe = job
            .payload
            .get("recipe")
            .ok_or_else(|| JobFailure::permanent("a data.recipe job needs {\"recipe\": …} in its payload"))?;
        answer(self.0.run_recipe(recipe, None).await.map_err(failure)?)
    }
}

struct IngestJob(DataService);

#[async_trait]
impl JobHandler for IngestJob {
    async fn run(&self, job: &Job) -> Result<Value, JobFailure> {
        let mut payload = job.payload.clone();
        let dataset = payload
            .as_object_mut()
            .and_then(|fields| fields.remove("dataset"))
            .and_then(|name| name.as_str().map(str::to_string))
            .ok_or_else(|| JobFailure::permanent("a data.ingest job needs a \"dataset\" name in its payload"))?;
        let request: IngestRequest =
            serde_json::from_value(payload).map_err(|e| JobFailure::permanent(format!("data.ingest payload: {e}")))?;
        answer(self.0.ingest(&dataset, request, None).await.map_err(failure)?)
    }
}
