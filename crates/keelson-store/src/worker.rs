//! The worker loop: claims jobs of the kinds it has handlers for, runs them with a heartbeat,
//! records the outcome. `keelson server` runs one in-process; `keelson worker` runs one alone
//! against a shared database.

use crate::backend::Store;
use crate::error::StoreError;
use crate::jobs::{ClaimedJob, FailureMode};
use async_trait::async_trait;
use keelson_core::jobs::{Job, RetryPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailure {
    /// Worth retrying (timeouts, unavailable dependencies).
    Retryable(String),
    /// Retrying cannot help (invalid payload); dead-letter at once.
    Permanent(String),
}

impl JobFailure {
    pub fn retryable(message: impl Into<String>) -> Self {
        JobFailure::Retryable(message.into())
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        JobFailure::Permanent(message.into())
    }
}

/// Runs one kind of job. Handlers must be idempotent: a job whose worker dies is run again.
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &Job) -> Result<serde_json::Value, JobFailure>;
}

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, Arc<dyn JobHandler>>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registry with the built-in `system.*` kinds.
    pub fn with_builtins() -> Self {
        let mut registry = Self::new();
        registry.register("system.noop", Arc::new(builtin::Noop));
        registry.register("system.sleep", Arc::new(builtin::Sleep));
        registry
    }

    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_string(), handler);
    }

    pub fn kinds(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.handlers.contains_key(kind)
    }

    fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }
}

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Names this worker in leases and the attempt log.
    pub worker_id: String,
    pub concurrency: usize,
    pub lease: Duration,
    pub heartbeat: Duration,
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
    /// How long shutdown waits for running jobs before releasing their leases.
    pub shutdown_grace: Duration,
}

impl WorkerOptions {
    pub fn from_config(config: &keelson_core::config::Config, worker_id: String) -> Self {
        Self {
            worker_id,
            concurrency: config.worker.concurrency as usize,
            lease: Duration::from_secs(config.worker.lease_seconds),
            heartbeat: Duration::from_secs(config.worker.heartbeat_seconds),
            poll_interval: Duration::from_millis(config.worker.poll_interval_ms),
            retry: config.retry_policy(),
            shutdown_grace: Duration::from_secs(config.server.shutdown_grace_seconds),
        }
    }
}

/// A default worker id: host name and process id, readable in the attempt log.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:{}:{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..6])
}

pub struct Worker {
    store: Store,
    registry: Arc<HandlerRegistry>,
    options: WorkerOptions,
}

impl Worker {
    pub fn new(store: Store, registry: HandlerRegistry, options: WorkerOptions) -> Self {
        Self { store, registry: Arc::new(registry), options }
    }

    /// Runs until `shutdown` turns true. Running jobs then get `shutdown_grace` to finish; the
    /// rest are released back to the queue without spending an attempt.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let kinds = self.registry.kinds();
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let (stop_jobs_tx, stop_jobs_rx) = watch::channel(false);
        let mut running = JoinSet::new();
        tracing::info!(worker = %self.options.worker_id, ?kinds, concurrency = self.options.concurrency, "worker started");
        let lease_ms = i64::try_from(self.options.lease.as_millis()).unwrap_or(i64::MAX);
        loop {
            if *shutdown.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = shutdown.changed() => break,
            };
            let claimed = match self.store.claim_job(&self.options.worker_id, &kinds, lease_ms).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(%error, "claiming a job failed; retrying after the poll interval");
                    None
                }
            };
            let Some(claimed) = claimed else {
                drop(permit);
                tokio::select! {
                    _ = tokio::time::sleep(self.options.poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            };
            let Some(handler) = self.registry.get(&claimed.job.kind) else {
                continue;
            };
            let store = self.store.clone();
            let options = self.options.clone();
            let stop = stop_jobs_rx.clone();
            let span = tracing::info_span!(
                "job",
                job = %claimed.job.id,
                kind = %claimed.job.kind,
                attempt = claimed.job.attempts
            );
            running.spawn(
                async move {
                    run_claimed(store, handler, claimed, options, stop).await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        tracing::info!(worker = %self.options.worker_id, running = running.len(), "worker stopping");
        let drained =
            tokio::time::timeout(self.options.shutdown_grace, async { while running.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            let _ = stop_jobs_tx.send(true);
            while running.join_next().await.is_some() {}
        }
        tracing::info!(worker = %self.options.worker_id, "worker stopped");
        Ok(())
    }
}

/// Runs one claimed job beside its heartbeat, then records the outcome.
async fn run_claimed(
    store: Store,
    handler: Arc<dyn JobHandler>,
    claimed: ClaimedJob,
    options: WorkerOptions,
    mut stop: watch::Receiver<bool>,
) {
    let lease_ms = i64::try_from(options.lease.as_millis()).unwrap_or(i64::MAX);
    let work = handler.run(&claimed.job);
    tokio::pin!(work);
    let mut heartbeat = tokio::time::interval(options.heartbeat);
    heartbeat.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break Some(outcome),
            _ = heartbeat.tick() => {
                if let Err(error) = store.heartbeat_job(&claimed, lease_ms).await {
                    tracing::warn!(%error, "heartbeat failed; abandoning the job");
                    if matches!(error, StoreError::LeaseLost(_)) {
                        return;
                    }
                }
            }
            _ = stop.changed() => break None,
        }
    };
    let recorded = match outcome {
        None => {
            tracing::warn!("shutdown grace expired; releasing the job to the queue");
            store.release_job(&claimed).await.map(|_| ())
        }
        Some(Ok(result)) => store.complete_job(&claimed, &result).await.map(|_| ()),
        Some(Err(failure)) => {
            let (message, mode) = match failure {
                JobFailure::Retryable(message) => (message, FailureMode::Retry),
                JobFailure::Permanent(message) => (message, FailureMode::Permanent),
            };
            tracing::warn!(error = %message, "job attempt failed");
            store.fail_job(&claimed, &message, mode, &options.retry).await.map(|_| ())
        }
    };
    if let Err(error) = recorded {
        tracing::error!(%error, "could not record the job outcome");
    }
}

/// Built-in job kinds: health checks of the queue itself.
pub mod builtin {
    use super::*;

    /// Succeeds at once, echoing its payload.
    pub struct Noop;

    #[async_trait]
    impl JobHandler for Noop {
        async fn run(&self, job: &Job) -> Result<serde_json::Value, JobFailure> {
            Ok(serde_json::json!({ "echo": job.payload }))
        }
    }

    /// Sleeps `{"ms": N}` milliseconds (at most ten minutes).
    pub struct Sleep;

    #[async_trait]
    impl JobHandler for Sleep {
        async fn run(&self, job: &Job) -> Result<serde_json::Value, JobFailure> {
            let ms = job
                .payload
                .get("ms")
                .and_then(serde_json::Value::as_u64)
                .filter(|ms| *ms <= 600_000)
                .ok_or_else(|| JobFailure::permanent("system.sleep needs a payload {\"ms\": 0..=600000}"))?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(serde_json::json!({ "slept_ms": ms }))
        }
    }
}
