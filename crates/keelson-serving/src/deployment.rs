//! A deployment: one model version loaded once and kept warm, served by its replicas with a
//! bound on concurrent work, a bounded queue (429 beyond it) and a deadline per request (408).

use crate::pool::WorkerPool;
use crate::runtime::{ModelRuntime, RuntimeError};
use crate::signature::{NamedTensor, Signature};
use crate::stats::DeploymentStats;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Which runtime serves a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// tract with Keelson's native ONNX-ML operators, in-process.
    #[default]
    Tract,
    /// onnxruntime, in-process, loaded from the library the server is configured with.
    Onnxruntime,
    /// Another Open Inference Protocol (KServe V2) server, e.g. Triton or MLServer: requests are
    /// forwarded to it, so routing, mirroring, rollouts and collection work for models Keelson
    /// cannot run itself.
    External,
}

/// The remote model an `external` deployment forwards to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalSpec {
    /// Base URL of the V2 server (`http://host:port`, or with a path prefix).
    pub url: String,
    /// The model's name on that server.
    pub model: String,
    /// Its version there; by default the server's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ExternalSpec {
    pub fn check(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("`external.url` `{}` is not a URL: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("`external.url` must be an http:// or https:// URL with a host, not `{}`", self.url));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`external.url` must not carry a query or fragment: `{}`", self.url));
        }
        let segment_ok = |value: &str| {
            !value.is_empty() && value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
        };
        if !segment_ok(&self.model) {
            return Err(format!("`external.model` must be a model name without '/' or spaces, not `{}`", self.model));
        }
        if let Some(version) = &self.version {
            if !segment_ok(version) {
                return Err(format!("`external.version` must be a version without '/' or spaces, not `{version}`"));
            }
        }
        Ok(())
    }
}

fn default_replicas() -> usize {
    1
}
fn default_max_concurrent_requests() -> usize {
    16
}
fn default_max_queue() -> usize {
    256
}
fn default_request_timeout_ms() -> u64 {
    5_000
}

/// What a client asks for when it creates or replaces a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// Registered model name (none for an `external` deployment).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// The version to serve; exactly one of `version` and `alias`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// An alias resolved to its version when deploying (the deployment stays on that version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default)]
    pub runtime: RuntimeKind,
    /// Where an `external` deployment forwards requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpec>,
    /// Worker threads computing predictions.
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Requests computed at once; more wait in the queue.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Requests allowed to wait; beyond that the deployment answers 429.
    #[serde(default = "default_max_queue")]
    pub max_queue: usize,
    /// Deadline from the parsed request to the answer; past it the client gets 408.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<crate::validation::ValidationSpec>,
    /// Data collection of sampled requests and responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect: Option<crate::collector::CollectSpec>,
}

impl DeploymentSpec {
    /// Checks the settings; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        self.check_model()?;
        let bounded = |name: &str, value: u64, low: u64, high: u64| {
            if value < low || value > high {
                Err(format!("`{name}` must be between {low} and {high}, not {value}"))
            } else {
                Ok(())
            }
        };
        bounded("replicas", self.replicas as u64, 1, 64)?;
        bounded("max_concurrent_requests", self.max_concurrent_requests as u64, 1, 4096)?;
        bounded("max_queue", self.max_queue as u64, 0, 100_000)?;
        bounded("request_timeout_ms", self.request_timeout_ms, 1, 600_000)?;
        if let Some(validation) = &self.validation {
            validation.check()?;
        }
        if let Some(collect) = &self.collect {
            collect.check()?;
        }
        Ok(())
    }

    /// What the deployment serves: a registered model version, or a remote model.
    fn check_model(&self) -> Result<(), String> {
        if self.runtime == RuntimeKind::External {
            let Some(external) = &self.external else {
                return Err("an `external` deployment needs `external`: {\"url\": …, \"model\": …}".into());
            };
            if !self.model.is_empty() || self.version.is_some() || self.alias.is_some() {
                return Err("an `external` deployment serves the remote server's model: leave out `model`, `version` and `alias`".into());
            }
            return external.check();
        }
        if self.external.is_some() {
            return Err("`external` is only for deployments with runtime `external`".into());
        }
        match (&self.version, &self.alias) {
            (Some(_), Some(_)) => return Err("give either `version` or `alias`, not both".into()),
            (None, None) => return Err("give the model `version` or an `alias` to resolve".into()),
            _ => {}
        }
        if self.model.trim().is_empty() {
            return Err("`model` must name a registered model".into());
        }
        if let Some(version) = &self.version {
            if version.parse::<u64>().map_or(true, |v| v == 0) {
                return Err(format!("`version` must be a positive integer, not `{version}`"));
            }
        }
        Ok(())
    }
}

/// Why a request got no prediction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Input(String),
    #[error("deployment `{0}` is at its limit of queued requests; retry later")]
    Overloaded(String),
    #[error("the request took longer than the deployment's limit of {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// Predictions expected to take less than this run on the async thread that received the
/// request. For such a model the hop to a replica thread and back (two wake-ups, two context
/// switches) costs more than the prediction itself, and holding an async thread this long is
/// harmless; slower ones, or a request with more rows than usual, go to the replicas.
const INLINE_BUDGET_NANOS: u64 = 100_000;

/// What one row of a prediction costs, learned from the predictions made (an exponentially
/// weighted mean; 0 until the first is measured).
#[derive(Debug, Default)]
struct CostPerRow {
    nanos: AtomicU64,
}

impl CostPerRow {
    fn fits_inline(&self, rows: u64) -> bool {
        let per_row = self.nanos.load(Ordering::Relaxed);
        per_row > 0 && per_row.saturating_mul(rows) < INLINE_BUDGET_NANOS
    }

    fn record(&self, elapsed: Duration, rows: u64) {
        let sample = (elapsed.as_nanos() as u64 / rows).max(1);
        let old = self.nanos.load(Ordering::Relaxed);
        // Racing updates may lose a sample; the estimate only steers where work runs.
        let new = if old == 0 { sample } else { (old * 7 + sample) / 8 };
        self.nanos.store(new.max(1), Ordering::Relaxed);
    }
}

/// A loaded deployment.
#[derive(Debug)]
pub struct Deployment {
    pub endpoint: String,
    pub name: String,
    pub spec: DeploymentSpec,
    pub model_version: String,
    runtime: Arc<dyn ModelRuntime>,
    pool: WorkerPool,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    cost: Arc<CostPerRow>,
    pub stats: DeploymentStats,
}

impl Deployment {
    pub fn start(
        endpoint: &str,
        name: &str,
        spec: DeploymentSpec,
        model_version: &str,
        runtime: Arc<dyn ModelRuntime>,
    ) -> Result<Deployment, std::io::Error> {
        let pool = WorkerPool::start(&format!("{endpoint}-{name}"), spec.replicas)?;
        Ok(Deployment {
            endpoint: endpoint.to_string(),
            name: name.to_string(),
            permits: Arc::new(Semaphore::new(spec.max_concurrent_requests)),
            spec,
            model_version: model_version.to_string(),
            runtime,
            pool,
            waiting: AtomicUsize::new(0),
            cost: Arc::new(CostPerRow::default()),
            stats: DeploymentStats::default(),
        })
    }

    pub fn signature(&self) -> &Signature {
        self.runtime.signature()
    }

    pub fn describe_runtime(&self) -> String {
        self.runtime.describe()
    }

    /// Requests waiting for a turn, in the admission queue or the replicas' queue.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed) + self.pool.queued()
    }

    /// Runs one prediction and records it in the deployment's statistics.
    pub async fn infer(&self, inputs: Vec<NamedTensor>, mirrored: bool) -> Result<Vec<NamedTensor>, InferError> {
        let started = Instant::now();
        let _in_flight = self.stats.enter();
        let result = self.infer_inner(inputs, started).await;
        self.stats.record(started.elapsed(), result.as_ref().err(), mirrored);
        result
    }

    async fn infer_inner(&self, inputs: Vec<NamedTensor>, started: Instant) -> Result<Vec<NamedTensor>, InferError> {
        let ordered = self.signature().arrange_inputs(inputs).map_err(|error| InferError::Input(error.0))?;
        let timeout_ms = self.spec.request_timeout_ms;
        let deadline = tokio::time::Instant::from_std(started + Duration::from_millis(timeout_ms));
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.spec.max_queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(InferError::Overloaded(self.name.clone()));
                }
                let acquired = tokio::time::timeout_at(deadline, self.permits.clone().acquire_owned()).await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                match acquired {
                    Err(_) => return Err(InferError::Timeout(timeout_ms)),
                    Ok(Err(_)) => {
                        return Err(InferError::Unavailable(format!("deployment `{}` is stopping", self.name)))
                    }
                    Ok(Ok(permit)) => permit,
                }
            }
        };
        let rows = ordered.first().and_then(|tensor| tensor.shape.first()).map_or(1, |&rows| rows.max(1) as u64);
        let result = if self.runtime.runs_inline() && self.cost.fits_inline(rows) {
            let computed = Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.runtime.infer(ordered)));
            self.cost.record(computed.elapsed(), rows);
            drop(permit);
            result.ok()
        } else {
            let (answer, answered) = tokio::sync::oneshot::channel();
            let runtime = self.runtime.clone();
            let cost = self.cost.clone();
            self.pool
                .submit(move || {
                    let computed = Instant::now();
                    let result = runtime.infer(ordered);
                    cost.record(computed.elapsed(), rows);
                    // The permit is the job's: a request that timed out still holds its share
                    // of the concurrency until the computation really ends.
                    drop(permit);
                    let _ = answer.send(result);
                })
                .map_err(|error| InferError::Unavailable(error.to_string()))?;
            match tokio::time::timeout_at(deadline, answered).await {
                Err(_) => return Err(InferError::Timeout(timeout_ms)),
                Ok(answer) => answer.ok(),
            }
        };
        let outputs = match result {
            None => return Err(InferError::Failed("the model failed while computing the prediction".into())),
            Some(Err(RuntimeError::Input(message))) => return Err(InferError::Input(message)),
            Some(Err(RuntimeError::Failed(message))) => return Err(InferError::Failed(message)),
            Some(Ok(outputs)) => outputs,
        };
        Ok(self
            .signature()
            .outputs
            .iter()
            .zip(outputs)
            .map(|(spec, tensor)| NamedTensor { name: spec.name.clone(), tensor })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(json: serde_json::Value) -> Result<(), String> {
        serde_json::from_value::<DeploymentSpec>(json).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn only_predictions_known_to_be_quick_run_inline() {
        let cost = CostPerRow::default();
        assert!(!cost.fits_inline(1), "nothing measured yet: the replicas take it");
        cost.record(Duration::from_micros(8), 1);
        assert!(cost.fits_inline(1) && cost.fits_inline(12));
        assert!(!cost.fits_inline(13), "13 rows at 8 µs are over the budget");
        for _ in 0..40 {
            cost.record(Duration::from_millis(2), 4);
        }
        assert!(!cost.fits_inline(1), "a model that became slow goes back to the replicas");
    }

    #[test]
    fn registered_and_external_deployments_name_their_model_each_their_way() {
        assert_eq!(spec(serde_json::json!({"model": "m", "version": "2"})), Ok(()));
        assert_eq!(spec(serde_json::json!({"model": "m", "alias": "prod", "runtime": "onnxruntime"})), Ok(()));
        let external = serde_json::json!({"runtime": "external",
            "external": {"url": "http://127.0.0.1:8000/prefix", "model": "resnet", "version": "2"}});
        assert_eq!(spec(external), Ok(()));
        let mistakes = [
            (serde_json::json!({"runtime": "external"}), "needs `external`"),
            (
                serde_json::json!({"runtime": "external", "model": "m", "version": "1",
                    "external": {"url": "http://h", "model": "r"}}),
                "leave out",
            ),
            (
                serde_json::json!({"model": "m", "version": "1", "external": {"url": "http://h", "model": "r"}}),
                "only for",
            ),
            (serde_json::json!({"runtime": "external", "external": {"url": "unix:/x", "model": "r"}}), "http"),
            (serde_json::json!({"runtime": "external", "external": {"url": "http://h?x=1", "model": "r"}}), "query"),
            (
                serde_json::json!({"runtime": "external", "external": {"url": "http://h", "model": "a b"}}),
                "external.model",
            ),
            (
                serde_json::json!({"runtime": "external", "external": {"url": "http://h", "model": "r", "version": "../1"}}),
                "external.version",
            ),
            (serde_json::json!({"runtime": "gpu", "model": "m", "version": "1"}), "unknown variant"),
            (serde_json::json!({"model": "m"}), "`version` or an `alias`"),
        ];
        for (body, words) in mistakes {
            let error = spec(body.clone()).unwrap_err();
            assert!(error.contains(words), "{body}: {error}");
        }
    }
}
