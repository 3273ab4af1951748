//! Monitor runs as queue jobs: the scheduler enqueues `monitor.run` (payload `{"monitor": …,
//! "at": <unix ms>}`) and any `keelson worker` runs it. A rerun after a worker dies writes a
//! second report; alerts stay one per rule (repeats are counted), so nothing fires twice.

use crate::error::MonitorError;
use crate::service::{MonitorService, MONITOR_RUN_JOB};
use async_trait::async_trait;
use keelson_core::jobs::Job;
use keelson_core::{ErrorKind, HasErrorKind};
use keelson_store::worker::{HandlerRegistry, JobFailure, JobHandler};
use serde_json::Value;
use std::sync::Arc;

pub fn register_monitor_jobs(registry: &mut HandlerRegistry, service: MonitorService) {
    registry.register(MONITOR_RUN_JOB, Arc::new(RunJob(service)));
}

fn failure(error: MonitorError) -> JobFailure {
    match error.kind() {
        ErrorKind::Unavailable | ErrorKind::Internal => JobFailure::retryable(error.to_string()),
        _ => JobFailure::permanent(error.to_string()),
    }
}

struct RunJob(MonitorService);

#[async_trait]
impl JobHandler for RunJob {
    async fn run(&self, job: &Job) -> Result<Value, JobFailure> {
        let monitor = job
            .payload
            .get("monitor")
            .and_then(Value::as_str)
            .ok_or_else(|| JobFailure::permanent("a monitor.run job needs {\"monitor\": NAME} in its payload"))?;
        let at = job.payload.get("at").and_then(Value::as_i64);
        let outcome = self.0.run_monitor(monitor, at).await.map_err(failure)?;
        Ok(serde_json::json!({
            "report": outcome.report.id,
            "failed_tests": outcome.tests.iter().filter(|t| !t.passed).count(),
            "alerts": outcome.alerts.iter().map(|a| &a.id).collect::<Vec<_>>(),
            "triggered_job": outcome.triggered_job,
        }))
    }
}
