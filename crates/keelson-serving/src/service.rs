//! The serving service: endpoints and deployments kept in the metadata store and live in
//! memory. Changes are serialised, checked, written to the store, then swapped in whole.

use crate::collector::{DataCollector, Record};
use crate::deployment::RuntimeKind;
use crate::deployment::{Deployment, DeploymentSpec, InferError};
use crate::endpoint::{ConfigPatch, EndpointConfig, LiveEndpoint};
use crate::onnx::OnnxModel;
use crate::onnxruntime::OrtModel;
use crate::remote::RemoteModel;
use crate::runtime::ModelRuntime;
use crate::signature::{NamedTensor, Signature, TensorSpec};
use crate::source::{ModelReference, ModelSource, SourceError};
use crate::stats::StatsSummary;
use crate::validation::smoke_test;
use keelson_core::clock::Clock;
use keelson_core::{ErrorKind, HasErrorKind};
use keelson_egress::{EgressClient, EgressPolicy};
use keelson_store::serving::ConfigEvent;
use keelson_store::{Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A model ready for its smoke test.
struct Loaded {
    runtime: Arc<dyn ModelRuntime>,
    version: String,
    /// How errors name it.
    label: String,
    input_example: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HasErrorKind for ServingError {
    fn kind(&self) -> ErrorKind {
        match self {
            ServingError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            ServingError::NotFound(_) => ErrorKind::NotFound,
            ServingError::Conflict(_) => ErrorKind::Conflict,
            ServingError::Unavailable(_) => ErrorKind::Unavailable,
            ServingError::Store(error) => error.kind(),
        }
    }
}

/// Endpoint and deployment names: DNS-label-like, so they fit URLs, metrics and hostnames.
pub fn check_name(what: &str, name: &str) -> Result<(), ServingError> {
    let valid = (1..=63).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ServingError::InvalidArgument(format!(
            "{what} name `{name}` is invalid: use 1 to 63 lower-case letters, digits and '-', starting with a letter or digit"
        )))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentView {
    pub name: String,
    pub endpoint: String,
    pub model: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub runtime: crate::deployment::RuntimeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<crate::deployment::ExternalSpec>,
    /// `ready`, or `failed` when it could not be loaded at start-up.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    pub replicas: usize,
    pub max_concurrent_requests: usize,
    pub max_queue: usize,
    pub request_timeout_ms: u64,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    pub stats: StatsSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub name: String,
    pub description: String,
    pub traffic: BTreeMap<String, u32>,
    pub mirror: BTreeMap<String, u32>,
    pub sticky_header: Option<String>,
    pub deployments: Vec<DeploymentView>,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigChange {
    pub id: i64,
    pub before: EndpointConfig,
    pub after: EndpointConfig,
    pub actor: String,
    pub reason: String,
    pub timestamp: i64,
}

/// How a request asks to be routed.
#[derive(Debug, Clone, Default)]
pub struct RouteRequest {
    /// A deployment named by the client (header).
    pub deployment: Option<String>,
    /// A registered model version named in the URL.
    pub version: Option<String>,
}

/// A routed request: the endpoint as it was when the request arrived and the chosen deployment.
pub struct Routed {
    pub endpoint: Arc<LiveEndpoint>,
    pub deployment: Arc<Deployment>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    collector: Option<DataCollector>,
    source: Arc<dyn ModelSource>,
    /// One client for external runtimes and rollout webhooks, bound to the egress policy (its
    /// connection pool is shared; building one per call would reload TLS roots each time).
    pub(crate) http: Result<EgressClient, String>,
    live: RwLock<BTreeMap<String, Arc<LiveEndpoint>>>,
    /// Serialises changes in this process; the store's compare-and-set guards across replicas.
    pub(crate) changes: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct ServingService {
    pub(crate) inner: Arc<Inner>,
}

impl ServingService {
    /// `collector` receives sampled requests of deployments that ask for collection (and every
    /// mirrored answer); without one nothing is collected.
    /// `egress` decides where external runtimes and rollout webhooks may be reached.
    pub fn new(
        store: Store,
        source: Arc<dyn ModelSource>,
        collector: Option<DataCollector>,
        egress: EgressPolicy,
    ) -> ServingService {
        ServingService {
            inner: Arc::new(Inner {
                store,
                http: egress.client().map_err(|error| error.to_string()),
                collector,
                source,
                live: RwLock::new(BTreeMap::new()),
                changes: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub(crate) fn live(&self, name: &str) -> Option<Arc<LiveEndpoint>> {
        self.inner.live.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    pub(crate) fn live_or_not_found(&self, name: &str) -> Result<Arc<LiveEndpoint>, ServingError> {
        self.live(name).ok_or_else(|| ServingError::NotFound(format!("endpoint `{name}` does not exist")))
    }

    fn swap(&self, endpoint: LiveEndpoint) -> Arc<LiveEndpoint> {
        let endpoint = Arc::new(endpoint);
        self.inner.live.write().unwrap_or_else(|p| p.into_inner()).insert(endpoint.name.clone(), endpoint.clone());
        endpoint
    }

    /// Loads every stored endpoint and deployment (at start-up). A deployment that cannot be
    /// loaded or fails its smoke test is kept as failed and gets no traffic.
    pub async fn load_all(&self) -> Result<(), ServingError> {
        let _guard = self.inner.changes.lock().await;
        let endpoints = self.inner.store.endpoints().await?;
        let deployments = self.inner.store.deployments(None).await?;
        for stored in endpoints {
            let config = parse_config(&stored.config)?;
            let mut live = BTreeMap::new();
            let mut failed = BTreeMap::new();
            for row in deployments.iter().filter(|d| d.endpoint == stored.name) {
                let mut spec: DeploymentSpec = serde_json::from_str(&row.spec)
                    .map_err(|e| StoreError::Corrupt(format!("deployment `{}`: {e}", row.name)))?;
                // The registry renames a model in the deployment's row, not in its stored spec.
                if !row.model_name.is_empty() {
                    spec.model = row.model_name.clone();
                }
                let reference = ModelReference::Version(row.model_version.clone());
                match self.prepare(&stored.name, &row.name, spec, &reference, None).await {
                    Ok(deployment) => {
                        live.insert(row.name.clone(), Arc::new(deployment));
                    }
                    Err(error) => {
                        tracing::error!(endpoint = %stored.name, deployment = %row.name, %error, "deployment failed to load");
                        failed.insert(row.name.clone(), error.to_string());
                    }
                }
            }
            self.swap(LiveEndpoint::new(
                stored.name,
                stored.description,
                config,
                live,
                failed,
                stored.created,
                stored.updated,
            ));
        }
        Ok(())
    }

    pub async fn create_endpoint(&self, name: &str, description: &str) -> Result<EndpointView, ServingError> {
        check_name("endpoint", name)?;
        if description.len() > 5_000 {
            return Err(ServingError::InvalidArgument("`description` is longer than 5000 bytes".into()));
        }
        let _guard = self.inner.changes.lock().await;
        let config = EndpointConfig::default();
        let stored = self.inner.store.create_endpoint(name, description, &config_json(&config)?).await?;
        let endpoint = self.swap(LiveEndpoint::new(
            stored.name,
            stored.description,
            config,
            BTreeMap::new(),
            BTreeMap::new(),
            stored.created,
            stored.updated,
        ));
        Ok(view(&endpoint))
    }

    pub fn endpoints(&self) -> Vec<EndpointView> {
        self.inner.live.read().unwrap_or_else(|p| p.into_inner()).values().map(|e| view(e)).collect()
    }

    pub fn endpoint(&self, name: &str) -> Result<EndpointView, ServingError> {
        let live = self.live_or_not_found(name)?;
        Ok(view(&live))
    }

    pub async fn delete_endpoint(&self, name: &str) -> Result<(), ServingError> {
        let _guard = self.inner.changes.lock().await;
        self.inner.store.delete_endpoint(name).await?;
        self.inner.live.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        Ok(())
    }

    pub fn deployment(&self, endpoint: &str, name: &str) -> Result<DeploymentView, ServingError> {
        let live = self.live_or_not_found(endpoint)?;
        view(&live)
            .deployments
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| ServingError::NotFound(format!("endpoint `{endpoint}` has no deployment `{name}`")))
    }

    /// Creates or replaces a deployment: fetches the model, loads it, checks its signature
    /// against the endpoint's other deployments and runs the smoke test, all before anything is
    /// stored or routed. The first deployment of an endpoint without traffic takes all of it.
    pub async fn put_deployment(
        &self,
        endpoint: &str,
        name: &str,
        spec: DeploymentSpec,
        actor: &str,
    ) -> Result<DeploymentView, ServingError> {
        check_name("deployment", name)?;
        spec.check().map_err(ServingError::InvalidArgument)?;
        let _guard = self.inner.changes.lock().await;
        let live = self.live_or_not_found(endpoint)?;
        let reference = match (&spec.version, &spec.alias) {
            (Some(version), _) => ModelReference::Version(version.clone()),
            (None, Some(alias)) => ModelReference::Alias(alias.clone()),
            // An external deployment names no registered model.
            (None, None) => ModelReference::Version(String::new()),
        };
        let model = spec.model.clone();
        let others: Vec<&Arc<Deployment>> = live.deployments.values().filter(|d| d.name != name).collect();
        let deployment = self.prepare(endpoint, name, spec, &reference, others.first().map(|d| d.signature())).await?;
        let stored_spec =
            serde_json::to_string(&deployment.spec).map_err(|e| ServingError::InvalidArgument(e.to_string()))?;
        // The registry's model and version; empty for an external deployment, so the registry's
        // "still deployed" check never matches a remote model that shares a registered name.
        let registry_version = if model.is_empty() { "" } else { deployment.model_version.as_str() };
        self.inner.store.put_deployment(endpoint, name, &stored_spec, &model, registry_version).await?;
        let mut deployments = live.deployments.clone();
        deployments.insert(name.to_string(), Arc::new(deployment));
        let mut failed = live.failed.clone();
        failed.remove(name);
        let mut config = live.config.clone();
        let mut updated = live.updated;
        // Only an endpoint that has never been given a split: shares set to 0 on purpose (traffic
        // stopped) stay 0 when a deployment is added or replaced.
        if config.traffic.is_empty() {
            let mut first = config.clone();
            first.traffic = BTreeMap::from([(name.to_string(), 100)]);
            let event = self
                .inner
                .store
                .update_endpoint_config(
                    endpoint,
                    &config_json(&config)?,
                    &config_json(&first)?,
                    actor,
                    &format!("deployment `{name}` is the first ready deployment: it takes all traffic"),
                )
                .await?;
            config = first;
            updated = event.event_time;
        }
        let endpoint = self.swap(LiveEndpoint::new(
            live.name.clone(),
            live.description.clone(),
            config,
            deployments,
            failed,
            live.created,
            updated,
        ));
        view(&endpoint)
            .deployments
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| ServingError::NotFound(format!("deployment `{name}` vanished")))
    }

    /// Fetches, loads and smoke-tests a deployment; nothing is stored.
    async fn prepare(
        &self,
        endpoint: &str,
        name: &str,
        mut spec: DeploymentSpec,
        reference: &ModelReference,
        endpoint_signature: Option<&Signature>,
    ) -> Result<Deployment, ServingError> {
        let loaded = match (&spec.runtime, &spec.external) {
            (RuntimeKind::External, Some(external)) => {
                let timeout = Duration::from_millis(spec.request_timeout_ms);
                let remote = RemoteModel::connect(external, timeout, &self.inner.http)
                    .await
                    .map_err(ServingError::InvalidArgument)?;
                let label = format!("external model `{}`", external.model);
                let version = external.version.clone().unwrap_or_default();
                Loaded { runtime: Arc::new(remote), version, label, input_example: None }
            }
            (RuntimeKind::External, None) => {
                return Err(ServingError::InvalidArgument("an `external` deployment needs `external`".into()))
            }
            (kind, _) => self.load_registered(*kind, &spec.model, reference, spec.replicas).await?,
        };
        let Loaded { runtime, version, label, input_example } = loaded;
        let validation = spec.validation.clone();
        let tested = runtime.clone();
        let checked = tokio::task::spawn_blocking(move || {
            smoke_test(tested.as_ref(), validation.as_ref(), input_example.as_deref())
                .map_err(|error| format!("{label} failed validation: {error}"))
        })
        .await
        .map_err(|error| ServingError::Unavailable(format!("validating the model stopped: {error}")))?
        .map_err(ServingError::InvalidArgument)?;
        if let Some(expected) = endpoint_signature {
            expected.compatible_with(runtime.signature()).map_err(|error| {
                ServingError::InvalidArgument(format!(
                    "the model's signature does not match the endpoint's other deployments: {error}"
                ))
            })?;
        }
        tracing::info!(endpoint, deployment = name, %version, %checked, "deployment ready");
        if spec.runtime != RuntimeKind::External {
            spec.version = Some(version.clone());
        }
        Deployment::start(endpoint, name, spec, &version, runtime)
            .map_err(|error| ServingError::Unavailable(format!("could not start the deployment's workers: {error}")))
    }

    /// Fetches a registered model version and loads it into the chosen in-process runtime.
    async fn load_registered(
        &self,
        kind: RuntimeKind,
        model: &str,
        reference: &ModelReference,
        replicas: usize,
    ) -> Result<Loaded, ServingError> {
        let package = self.inner.source.fetch(model, reference).await.map_err(|error| match error {
            SourceError::NotFound(message) => ServingError::NotFound(message),
            SourceError::Unservable(message) => ServingError::InvalidArgument(message),
            SourceError::Unavailable(message) => ServingError::Unavailable(message),
        })?;
        let label = format!("version {} of model `{}`", package.version, package.name);
        let failed = label.clone();
        let onnx = package.onnx;
        let external_data = package.external_data;
        let runtime = tokio::task::spawn_blocking(move || {
            let runtime: Arc<dyn ModelRuntime> = match kind {
                RuntimeKind::Onnxruntime => Arc::new(OrtModel::load(&onnx, &external_data, replicas)?),
                _ => Arc::new(OnnxModel::load_with_files(&onnx, &external_data).map_err(|error| error.to_string())?),
            };
            Ok::<_, String>(runtime)
        })
        .await
        .map_err(|error| ServingError::Unavailable(format!("loading the model stopped: {error}")))?
        .map_err(|error| ServingError::InvalidArgument(format!("{failed} cannot be served: {error}")))?;
        Ok(Loaded { runtime, version: package.version, label, input_example: package.input_example })
    }

    /// Removes a deployment that takes no live or mirrored traffic.
    pub async fn delete_deployment(&self, endpoint: &str, name: &str, actor: &str) -> Result<(), ServingError> {
        let _guard = self.inner.changes.lock().await;
        let live = self.live_or_not_found(endpoint)?;
        if live.config.references(name) {
            return Err(ServingError::Conflict(format!(
                "deployment `{name}` still takes traffic on endpoint `{endpoint}`; move its traffic and mirror share first"
            )));
        }
        self.inner.store.delete_deployment(endpoint, name).await?;
        let mut deployments = live.deployments.clone();
        deployments.remove(name);
        let mut failed = live.failed.clone();
        failed.remove(name);
        let mut config = live.config.clone();
        config.traffic.remove(name);
        config.mirror.remove(name);
        let mut updated = live.updated;
        if config != live.config {
            // Zero shares naming the deployment go with it, in the store too: later changes are
            // compared against the stored configuration.
            let event = self
                .inner
                .store
                .update_endpoint_config(
                    endpoint,
                    &config_json(&live.config)?,
                    &config_json(&config)?,
                    actor,
                    &format!("deployment `{name}` was deleted"),
                )
                .await?;
            updated = event.event_time;
        }
        self.swap(LiveEndpoint::new(
            live.name.clone(),
            live.description.clone(),
            config,
            deployments,
            failed,
            live.created,
            updated,
        ));
        Ok(())
    }

    /// Changes the routing configuration (traffic, mirror, sticky key) at once; parts the patch
    /// leaves out stay as they are.
    pub async fn patch_config(
        &self,
        endpoint: &str,
        patch: ConfigPatch,
        actor: &str,
        reason: &str,
    ) -> Result<EndpointView, ServingError> {
        let _guard = self.inner.changes.lock().await;
        let live = self.live_or_not_found(endpoint)?;
        let config = patch.apply(&live.config);
        self.apply_config(&live, config, actor, reason).await
    }

    pub(crate) async fn apply_config(
        &self,
        live: &LiveEndpoint,
        config: EndpointConfig,
        actor: &str,
        reason: &str,
    ) -> Result<EndpointView, ServingError> {
        let ready: Vec<&str> = live.deployments.keys().map(String::as_str).collect();
        config.check(&ready).map_err(ServingError::InvalidArgument)?;
        let event = self
            .inner
            .store
            .update_endpoint_config(&live.name, &config_json(&live.config)?, &config_json(&config)?, actor, reason)
            .await?;
        let endpoint = self.swap(LiveEndpoint::new(
            live.name.clone(),
            live.description.clone(),
            config,
            live.deployments.clone(),
            live.failed.clone(),
            live.created,
            event.event_time,
        ));
        Ok(view(&endpoint))
    }

    /// Restores the configuration before the latest change (a second rollback undoes the first).
    pub async fn rollback(&self, endpoint: &str, actor: &str) -> Result<EndpointView, ServingError> {
        let _guard = self.inner.changes.lock().await;
        let live = self.live_or_not_found(endpoint)?;
        let events = self.inner.store.endpoint_config_events(endpoint, 1).await?;
        let Some(latest) = events.first() else {
            return Err(ServingError::Conflict(format!(
                "endpoint `{endpoint}` has no configuration change to roll back"
            )));
        };
        let previous = parse_config(&latest.before_config)?;
        let view = self.apply_config(&live, previous, actor, &format!("rollback of change {}", latest.id)).await?;
        // A rollback is a person taking over: a progressive rollout must not move traffic again.
        self.abort_rollouts_of(endpoint, &format!("aborted by a rollback by {actor}")).await?;
        Ok(view)
    }

    /// Configuration changes, newest first.
    pub async fn history(&self, endpoint: &str, limit: i64) -> Result<Vec<ConfigChange>, ServingError> {
        self.live_or_not_found(endpoint)?;
        let events = self.inner.store.endpoint_config_events(endpoint, limit.clamp(1, 1000)).await?;
        events.iter().map(change).collect()
    }

    /// Picks the deployment that answers a request.
    /// `header` reads a request header by (lower-case) name, for the endpoint's sticky key.
    pub fn route(
        &self,
        endpoint: &str,
        request: &RouteRequest,
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<Routed, InferError> {
        let live =
            self.live(endpoint).ok_or_else(|| InferError::NotFound(format!("endpoint `{endpoint}` does not exist")))?;
        let deployment = if let Some(name) = &request.deployment {
            let found = live.deployments.get(name).cloned().ok_or_else(|| match live.failed.get(name) {
                Some(reason) => InferError::Unavailable(format!("deployment `{name}` is not ready: {reason}")),
                None => InferError::NotFound(format!("endpoint `{endpoint}` has no deployment `{name}`")),
            })?;
            // A URL naming a version and a header naming a deployment must agree.
            match &request.version {
                Some(version) if *version != found.model_version => {
                    return Err(InferError::NotFound(format!(
                        "deployment `{name}` of endpoint `{endpoint}` serves model version {}, not {version}",
                        found.model_version
                    )))
                }
                _ => found,
            }
        } else if let Some(version) = &request.version {
            live.deployment_for_version(version).cloned().ok_or_else(|| {
                InferError::NotFound(format!("endpoint `{endpoint}` serves no deployment of model version {version}"))
            })?
        } else {
            let sticky_value = live.config.sticky_header.as_deref().and_then(&header);
            let bucket = live.bucket(sticky_value.as_deref());
            live.pick(bucket).cloned().ok_or_else(|| {
                InferError::Unavailable(format!("endpoint `{endpoint}` has no deployment taking traffic"))
            })?
        };
        Ok(Routed { endpoint: live, deployment })
    }

    /// Runs a routed request: copies go to mirror targets in the background (their answers
    /// are recorded, never returned), the chosen deployment answers. Sampled requests of a
    /// deployment that collects are handed to the collector under `correlation_id`.
    pub async fn serve(
        &self,
        routed: &Routed,
        inputs: Vec<NamedTensor>,
        correlation_id: &str,
    ) -> Result<Vec<NamedTensor>, InferError> {
        for mirror in routed.endpoint.mirrors_for_request() {
            if Arc::ptr_eq(&mirror, &routed.deployment) {
                continue;
            }
            let copy = inputs.clone();
            let service = self.clone();
            let correlation_id = correlation_id.to_string();
            tokio::spawn(async move {
                // Mirrored answers exist to be compared, so they are always recorded.
                let kept = service.inner.collector.is_some().then(|| copy.clone());
                let started = std::time::Instant::now();
                let outcome = mirror.infer(copy, true).await;
                if let Some(inputs) = kept {
                    service.collect(&mirror, &correlation_id, started, inputs, &outcome, true);
                }
            });
        }
        let deployment = &routed.deployment;
        let sampled = self.inner.collector.is_some() && deployment.spec.collect.as_ref().is_some_and(|c| c.sampled());
        let kept = sampled.then(|| inputs.clone());
        let started = std::time::Instant::now();
        let outcome = deployment.infer(inputs, false).await;
        if let Some(inputs) = kept {
            self.collect(deployment, correlation_id, started, inputs, &outcome, false);
        }
        outcome
    }

    fn collect(
        &self,
        deployment: &Deployment,
        correlation_id: &str,
        started: std::time::Instant,
        inputs: Vec<NamedTensor>,
        outcome: &Result<Vec<NamedTensor>, InferError>,
        mirrored: bool,
    ) {
        let Some(collector) = &self.inner.collector else { return };
        let now_ms = keelson_core::clock::SystemClock.now_millis();
        collector.offer(Record {
            endpoint: deployment.endpoint.clone(),
            deployment: deployment.name.clone(),
            model_version: deployment.model_version.clone(),
            correlation_id: correlation_id.to_string(),
            timestamp_ms: now_ms,
            latency_us: started.elapsed().as_micros() as u64,
            mirrored,
            inputs,
            outcome: outcome.clone().map_err(|error| error.to_string()),
        });
    }

    /// The collector's counters, when collection is on.
    pub fn collector(&self) -> Option<&DataCollector> {
        self.inner.collector.as_ref()
    }

    /// Every live endpoint, for metrics.
    pub fn live_endpoints(&self) -> Vec<Arc<LiveEndpoint>> {
        self.inner.live.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

pub(crate) fn config_json(config: &EndpointConfig) -> Result<String, ServingError> {
    serde_json::to_string(config).map_err(|e| ServingError::InvalidArgument(e.to_string()))
}

fn parse_config(text: &str) -> Result<EndpointConfig, ServingError> {
    serde_json::from_str(text)
        .map_err(|e| ServingError::Store(StoreError::Corrupt(format!("endpoint configuration: {e}"))))
}

fn change(event: &ConfigEvent) -> Result<ConfigChange, ServingError> {
    Ok(ConfigChange {
        id: event.id,
        before: parse_config(&event.before_config)?,
        after: parse_config(&event.after_config)?,
        actor: event.actor.clone(),
        reason: event.reason.clone(),
        timestamp: event.event_time,
    })
}

fn view(endpoint: &LiveEndpoint) -> EndpointView {
    let mut deployments: Vec<DeploymentView> = endpoint
        .deployments
        .values()
        .map(|d| DeploymentView {
            name: d.name.clone(),
            endpoint: d.endpoint.clone(),
            model: d.spec.model.clone(),
            version: d.model_version.clone(),
            alias: d.spec.alias.clone(),
            runtime: d.spec.runtime,
            external: d.spec.external.clone(),
            state: "ready",
            message: None,
            execution: Some(d.describe_runtime()),
            replicas: d.spec.replicas,
            max_concurrent_requests: d.spec.max_concurrent_requests,
            max_queue: d.spec.max_queue,
            request_timeout_ms: d.spec.request_timeout_ms,
            inputs: d.signature().inputs.clone(),
            outputs: d.signature().outputs.clone(),
            stats: d.stats.summary(),
        })
        .collect();
    for (name, reason) in &endpoint.failed {
        deployments.push(DeploymentView {
            name: name.clone(),
            endpoint: endpoint.name.clone(),
            model: String::new(),
            version: String::new(),
            alias: None,
            runtime: Default::default(),
            external: None,
            state: "failed",
            message: Some(reason.clone()),
            execution: None,
            replicas: 0,
            max_concurrent_requests: 0,
            max_queue: 0,
            request_timeout_ms: 0,
            inputs: Vec::new(),
            outputs: Vec::new(),
            stats: StatsSummary { requests: 0, mirrored_requests: 0, errors: 0, in_flight: 0 },
        });
    }
    deployments.sort_by(|a, b| a.name.cmp(&b.name));
    EndpointView {
        name: endpoint.name.clone(),
        description: endpoint.description.clone(),
        traffic: endpoint.config.traffic.clone(),
        mirror: endpoint.config.mirror.clone(),
        sticky_header: endpoint.config.sticky_header.clone(),
        deployments,
        created: endpoint.created,
        updated: endpoint.updated,
    }
}
