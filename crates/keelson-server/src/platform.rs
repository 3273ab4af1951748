//! One process, many workspaces. Each workspace has its own metadata database (a SQLite file or
//! a PostgreSQL schema), its own artifact prefix, services, in-process worker, monitor scheduler
//! and serving runtime; what the whole server shares (identities, secrets, audit log, egress
//! policy, model catalog) is built once. A request names its workspace by header; the
//! dispatcher hands it to that workspace's routes, or, when the caller cannot see it, to the
//! default workspace's routes marked [`Hidden`], which refuse it as absence.
//!
//! Isolation is structural: a workspace's services hold only its own store, so no query of one
//! workspace can reach another's rows, whatever a handler does.

use crate::app::{AppState, SharedState};
use crate::auth::{AuthContext, RolePolicy, RouteSpec, TokenAuthenticator};
use crate::identity::{IdentityService, DEFAULT_WORKSPACE};
use crate::metrics::HttpMetrics;
use crate::serve::{data_service, monitor_service, Outbound, ServeError};
use crate::workspace::{Hidden, Workspace};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use keelson_artifacts::ArtifactStore;
use keelson_core::auth::Principal;
use keelson_core::config::Config;
use keelson_store::worker::{default_worker_id, HandlerRegistry, Worker, WorkerOptions};
use keelson_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// How a platform is started: the configuration, the job kinds every workspace's worker runs,
/// and the operator's tokens file when one is configured.
pub struct PlatformOptions {
    pub config: Config,
    pub job_handlers: HandlerRegistry,
    pub tokens_file: Option<TokenAuthenticator>,
}

/// Everything the server runs, by workspace.
pub struct Platform {
    config: Config,
    system_store: Store,
    artifacts_root: ArtifactStore,
    outbound: Outbound,
    identities: IdentityService,
    audit: crate::audit::AuditLog,
    catalog: keelson_genai::CatalogService,
    metrics: Arc<HttpMetrics>,
    browser: Arc<crate::browser::BrowserGuard>,
    auth: AuthContext,
    rate_limiter: Option<Arc<crate::rate_limit::PrincipalLimiter>>,
    base_jobs: HandlerRegistry,
    /// The OpenAPI document, serialised once, and the route table it lists: the default
    /// workspace's (a superset of every other's), set when that workspace opens, first.
    document: OnceLock<bytes::Bytes>,
    routes: OnceLock<Vec<RouteSpec>>,
    open: RwLock<HashMap<String, Arc<OpenWorkspace>>>,
    /// Serialises opening and closing, so a workspace is never built twice at once.
    changing: tokio::sync::Mutex<()>,
    /// Workspace names recently found not to exist, and when.
    absent: std::sync::Mutex<HashMap<String, std::time::Instant>>,
}

/// A workspace being served: its state, its routes and what runs in the background for it.
pub struct OpenWorkspace {
    pub state: AppState,
    router: Router,
    stop: watch::Sender<bool>,
    /// The rollout controller, which runs until aborted.
    rollouts: JoinHandle<()>,
    /// Held while stopping, so a second caller waits for the first to finish.
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Platform {
    /// Builds the shared parts on the opened default stores, then opens the default workspace
    /// and every listed one (their endpoints load and their workers start before it returns).
    pub async fn start(
        options: PlatformOptions,
        store: Store,
        artifacts: ArtifactStore,
    ) -> Result<Arc<Platform>, ServeError> {
        let config = options.config;
        let outbound = Outbound::from_config(&config, &store)?;
        let mut identities = IdentityService::new(store.clone(), options.tokens_file);
        if let Some(verifier) =
            crate::oidc::OidcVerifier::from_config(&config.auth, &outbound.egress).await.map_err(ServeError::Oidc)?
        {
            identities = identities.with_oidc(verifier);
        }
        let auth = AuthContext {
            authenticator: Arc::new(identities.clone()),
            policy: Arc::new(RolePolicy { auth_disabled: config.auth.disabled }),
        };
        let catalog = keelson_genai::CatalogService::new(
            store.clone(),
            config.retry_policy(),
            Some(config.catalog.on_new_model_job.clone())
                .filter(|kind| !kind.is_empty())
                .map(|job_kind| keelson_genai::catalog::NewModelHook { job_kind }),
        );
        if !config.serving.onnxruntime_library.is_empty() {
            keelson_serving::onnxruntime::configure(std::path::Path::new(&config.serving.onnxruntime_library))
                .map_err(ServeError::Serving)?;
        }
        let platform = Arc::new(Platform {
            audit: crate::audit::AuditLog::start(store.clone()),
            rate_limiter: crate::rate_limit::PrincipalLimiter::new(config.auth.rate_limit_per_second).map(Arc::new),
            metrics: Arc::new(HttpMetrics::default()),
            browser: Arc::new(crate::browser::BrowserGuard::new(
                &config.server.allowed_hosts,
                &config.server.allowed_origins,
            )),
            system_store: store,
            artifacts_root: artifacts,
            outbound,
            identities,
            catalog,
            auth,
            base_jobs: options.job_handlers,
            document: OnceLock::new(),
            routes: OnceLock::new(),
            open: RwLock::new(HashMap::new()),
            changing: tokio::sync::Mutex::new(()),
            absent: std::sync::Mutex::new(HashMap::new()),
            config,
        });
        platform.open_workspace(DEFAULT_WORKSPACE).await?;
        for listed in platform.system_store.list_workspaces().await? {
            platform.open_workspace(&listed.name).await?;
        }
        Ok(platform)
    }

    /// The whole application: the dispatcher behind the middleware every request passes.
    pub fn router(self: &Arc<Self>) -> Router {
        let dispatcher = Router::new().fallback(dispatch).with_state(self.clone());
        crate::app::outer_layers(dispatcher, self.auth.clone(), self.browser.clone())
    }

    /// Every route with its permission (the default workspace's table, which includes the
    /// server-wide routes).
    pub fn routes(&self) -> &[RouteSpec] {
        self.routes.get().map_or(&[], Vec::as_slice)
    }

    pub fn identities(&self) -> &IdentityService {
        &self.identities
    }

    pub fn catalog(&self) -> &keelson_genai::CatalogService {
        &self.catalog
    }

    pub fn egress(&self) -> &keelson_egress::EgressPolicy {
        &self.outbound.egress
    }

    /// The open workspace of that name.
    pub fn workspace(&self, name: &str) -> Option<Arc<OpenWorkspace>> {
        self.open.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Names of the open workspaces, `default` first.
    pub fn workspace_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.open.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        names.sort_by_key(|name| (name != DEFAULT_WORKSPACE, name.clone()));
        names
    }

    /// Creates workspace `name` (listed, its database made and migrated, its services started)
    /// and makes `creator` its admin.
    pub async fn create_workspace(
        self: &Arc<Self>,
        name: &str,
        description: &str,
        creator: &str,
    ) -> Result<keelson_store::workspaces::WorkspaceRecord, ServeError> {
        let record = self.system_store.create_workspace(name, description, creator).await?;
        if let Err(error) = self.open_workspace(name).await {
            // Half-made is not made: the listing goes, so the name can be tried again.
            let _ = self.system_store.delete_workspace_record(name).await;
            return Err(error);
        }
        if creator != "anonymous" {
            self.system_store.bind_role(name, creator, keelson_core::auth::Role::Admin.as_str(), creator).await?;
        }
        self.identities.forget_cached_roles();
        Ok(record)
    }

    /// Stops workspace `name`'s background work, drops its database and artifacts and its role
    /// bindings, and unlists it. The default workspace cannot be deleted.
    pub async fn delete_workspace(&self, name: &str) -> Result<(), ServeError> {
        let _changing = self.changing.lock().await;
        self.system_store.get_workspace(name).await?;
        self.close_workspace(name).await;
        self.system_store.delete_workspace_record(name).await?;
        self.system_store.delete_role_bindings_in(name).await?;
        self.identities.forget_cached_roles();
        self.system_store.drop_workspace_storage(name).await?;
        self.artifacts_root.delete_workspace(name).await?;
        Ok(())
    }

    /// Lets every workspace's worker finish its job and stops the rest of the background work.
    pub async fn shut_down(&self) {
        let open: Vec<Arc<OpenWorkspace>> =
            self.open.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for workspace in open {
            workspace.shut_down().await;
        }
    }

    async fn open_workspace(self: &Arc<Self>, name: &str) -> Result<Arc<OpenWorkspace>, ServeError> {
        let _changing = self.changing.lock().await;
        if let Some(open) = self.workspace(name) {
            return Ok(open);
        }
        let (store, artifacts) = if name == DEFAULT_WORKSPACE {
            (self.system_store.clone(), self.artifacts_root.clone())
        } else {
            (self.system_store.open_workspace(name).await?, self.artifacts_root.for_workspace(name).await?)
        };
        let (state, registry) = self.state_for(name, store.clone(), &artifacts)?;
        // Deployments come back before the workspace takes requests: a restart must not answer
        // 404 for endpoints that exist. A model that fails to load is kept as failed.
        state.serving.load_all().await.map_err(|e| ServeError::Serving(e.to_string()))?;
        let (stop, stop_rx) = watch::channel(false);
        let rollouts = state.serving.spawn_rollout_controller(Duration::from_millis(500));
        let mut tasks = Vec::new();
        if self.config.worker.in_process {
            let options = WorkerOptions::from_config(&self.config, default_worker_id());
            let worker = Worker::new(store.clone(), registry, options);
            let workspace = name.to_string();
            let stop_rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(error) = worker.run(stop_rx).await {
                    tracing::error!(%error, workspace, "in-process worker failed");
                }
            }));
        }
        if self.config.monitoring.scheduler_interval_seconds > 0 {
            let interval = Duration::from_secs(self.config.monitoring.scheduler_interval_seconds);
            tasks.push(tokio::spawn(run_monitor_scheduler(state.monitoring.clone(), interval, stop_rx)));
        }
        let document = self
            .document
            .get_or_init(|| {
                let routes = self.routes.get_or_init(|| crate::app::route_table(&state));
                bytes::Bytes::from(crate::openapi::document(routes).to_string())
            })
            .clone();
        let router = crate::app::workspace_router(state.clone(), document);
        let open = Arc::new(OpenWorkspace { state, router, stop, rollouts, tasks: tokio::sync::Mutex::new(tasks) });
        self.open.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), open.clone());
        tracing::info!(workspace = name, database = store.display_url(), "workspace open");
        Ok(open)
    }

    /// The state of workspace `name` over its stores, and the job kinds its worker runs.
    fn state_for(
        self: &Arc<Self>,
        name: &str,
        store: Store,
        artifacts: &ArtifactStore,
    ) -> Result<(AppState, HandlerRegistry), ServeError> {
        let WorkspaceJobs { config, outbound, data, monitoring, handlers: job_handlers } =
            workspace_jobs(&self.config, &self.base_jobs, &self.outbound, name, &store, artifacts)?;
        let model_source = crate::model_source::RegistryModelSource {
            registry: keelson_tracking::RegistryService::new(store.clone(), artifacts.clone()),
            artifacts: artifacts.clone(),
        };
        let collector = keelson_serving::collector::DataCollector::start(
            artifacts.clone(),
            keelson_serving::collector::CollectorOptions {
                buffer_records: config.serving.collector_buffer_records,
                batch_records: config.serving.collector_batch_records,
                flush_interval: Duration::from_millis(config.serving.collector_flush_ms),
            },
        );
        let serving = keelson_serving::ServingService::new(
            store.clone(),
            Arc::new(model_source),
            Some(collector),
            outbound.egress.clone(),
        );
        let state = AppState::new(SharedState {
            workspace: name.to_string(),
            system_store: self.system_store.clone(),
            platform: Arc::downgrade(self),
            secrets: self.outbound.secrets.clone(),
            audit: self.audit.clone(),
            rate_limiter: self.rate_limiter.clone(),
            rate_limit_per_second: self.config.auth.rate_limit_per_second,
            serving,
            data,
            monitoring,
            tracking: keelson_tracking::TrackingService::new(store.clone(), artifacts.clone()),
            registry: keelson_tracking::RegistryService::new(store.clone(), artifacts.clone()),
            catalog: self.catalog.clone(),
            catalog_sources: self.config.catalog.sources.clone(),
            access: crate::access::AccessControl::new(store.clone()),
            egress: outbound.egress.clone(),
            store,
            artifacts: artifacts.clone(),
            job_kinds: Arc::new(job_handlers.clone()),
            retry: self.config.retry_policy(),
            metrics: self.metrics.clone(),
            browser: self.browser.clone(),
            auth: self.auth.clone(),
            identities: self.identities.clone(),
            max_body_bytes: usize::try_from(self.config.server.max_body_bytes).unwrap_or(usize::MAX),
        });
        Ok((state, job_handlers))
    }

    /// Whether the caller may see workspace `name`, and the principal as it acts there.
    async fn admit(self: &Arc<Self>, principal: Principal, name: &str) -> Option<Principal> {
        if name == DEFAULT_WORKSPACE {
            return Some(principal);
        }
        self.ensure_open(name).await?;
        if matches!(principal, Principal::Anonymous) {
            return self.config.auth.disabled.then_some(Principal::Anonymous);
        }
        match self.identities.in_workspace(principal, name).await {
            Ok(principal) if principal.workspace_role().is_some() => Some(principal),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, workspace = name, "could not read a role binding");
                None
            }
        }
    }
}

impl Platform {
    /// The open workspace `name`, opening it when another replica made it since this one
    /// started. Names that are not listed are remembered as absent for a few seconds, so a
    /// caller naming workspaces at random costs no query per request.
    async fn ensure_open(self: &Arc<Self>, name: &str) -> Option<Arc<OpenWorkspace>> {
        if let Some(open) = self.workspace(name) {
            return Some(open);
        }
        keelson_core::workspaces::validate_workspace_name(name).ok()?;
        {
            let mut absent = self.absent.lock().unwrap_or_else(|p| p.into_inner());
            if absent.get(name).is_some_and(|at| at.elapsed() < ABSENT_FOR) {
                return None;
            }
            absent.remove(name);
        }
        match self.system_store.get_workspace(name).await {
            Ok(_) => match self.open_workspace(name).await {
                Ok(open) => Some(open),
                Err(error) => {
                    tracing::error!(%error, workspace = name, "cannot open a listed workspace");
                    None
                }
            },
            Err(_) => {
                let mut absent = self.absent.lock().unwrap_or_else(|p| p.into_inner());
                if absent.len() >= MAX_ABSENT {
                    absent.clear();
                }
                absent.insert(name.to_string(), std::time::Instant::now());
                None
            }
        }
    }

    /// Brings the open workspaces in line with the list (other replicas make and delete
    /// workspaces): opens new ones, closes deleted ones. The server runs it every 30 s.
    pub async fn sync_workspaces(self: &Arc<Self>) -> Result<(), ServeError> {
        let listed: Vec<String> = self.system_store.list_workspaces().await?.into_iter().map(|w| w.name).collect();
        for name in &listed {
            if self.workspace(name).is_none() {
                self.open_workspace(name).await?;
            }
        }
        let gone: Vec<String> = self
            .workspace_names()
            .into_iter()
            .filter(|name| name != DEFAULT_WORKSPACE && !listed.contains(name))
            .collect();
        for name in gone {
            let _changing = self.changing.lock().await;
            if self.close_workspace(&name).await {
                tracing::info!(workspace = %name, "workspace closed: deleted elsewhere");
            }
        }
        Ok(())
    }

    /// Stops serving workspace `name` and closes its store, keeping its data; `false` when it
    /// was not open. The caller holds `changing`.
    async fn close_workspace(&self, name: &str) -> bool {
        let removed = self.open.write().unwrap_or_else(|p| p.into_inner()).remove(name);
        let Some(open) = removed else { return false };
        open.shut_down().await;
        open.state.store.close().await;
        true
    }
}

/// How long a workspace name found absent is not looked up again.
const ABSENT_FOR: Duration = Duration::from_secs(5);
const MAX_ABSENT: usize = 10_000;

impl OpenWorkspace {
    async fn shut_down(&self) {
        let _ = self.stop.send(true);
        self.rollouts.abort();
        let mut tasks = self.tasks.lock().await;
        let grace = Duration::from_secs(30);
        for mut task in tasks.drain(..) {
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

/// What runs jobs in one workspace: its configuration (own scratch space), its outbound policy
/// (its own egress settings), its data and monitoring services, and the job handlers over them.
/// The server's in-process workers and standalone `keelson worker` processes build it alike.
pub struct WorkspaceJobs {
    pub config: Config,
    pub outbound: Outbound,
    pub data: keelson_data::DataService,
    pub monitoring: keelson_monitor::MonitorService,
    pub handlers: HandlerRegistry,
}

pub fn workspace_jobs(
    config: &Config,
    base_jobs: &HandlerRegistry,
    base_outbound: &Outbound,
    name: &str,
    store: &Store,
    artifacts: &ArtifactStore,
) -> Result<WorkspaceJobs, ServeError> {
    let config = workspace_config(config, name);
    // Server-side requests of this workspace go where its own egress settings allow.
    let outbound = if config.egress.workspaces.contains_key(name) {
        let egress = keelson_egress::EgressPolicy::from_config(&config.egress.for_workspace(name))
            .map_err(ServeError::Egress)?;
        Outbound { egress, secrets: base_outbound.secrets.clone() }
    } else {
        base_outbound.clone()
    };
    let data = data_service(&config, store, artifacts, &outbound)?;
    let mut handlers = base_jobs.clone();
    keelson_data::jobs::register_data_jobs(&mut handlers, data.clone());
    let mut job_kinds = handlers.kinds();
    job_kinds.push(keelson_monitor::service::MONITOR_RUN_JOB.to_string());
    let monitoring = monitor_service(&config, store, artifacts, job_kinds, &outbound)?;
    keelson_monitor::jobs::register_monitor_jobs(&mut handlers, monitoring.clone());
    Ok(WorkspaceJobs { config, outbound, data, monitoring, handlers })
}

/// The configuration as workspace `name` sees it: its own scratch space.
fn workspace_config(config: &Config, name: &str) -> Config {
    let mut config = config.clone();
    if name != DEFAULT_WORKSPACE {
        let scratch = if config.data.scratch_dir.is_empty() {
            std::path::Path::new(&config.data_dir).join("scratch")
        } else {
            std::path::PathBuf::from(&config.data.scratch_dir)
        };
        config.data.scratch_dir = scratch.join("workspaces").join(name).display().to_string();
    }
    config
}

/// Hands each request to its workspace's routes (see the module's comment).
async fn dispatch(State(platform): State<Arc<Platform>>, mut request: Request) -> Response {
    let name = request.extensions().get::<Workspace>().map_or(DEFAULT_WORKSPACE.to_string(), |w| w.0.clone());
    let principal = request.extensions().get::<Principal>().cloned().unwrap_or(Principal::Anonymous);
    let target = match platform.admit(principal, &name).await {
        Some(principal) => {
            request.extensions_mut().insert(principal);
            platform.workspace(&name)
        }
        None => {
            request.extensions_mut().insert(Hidden);
            // Nobody's role applies in a workspace the caller cannot see.
            if let Some(Principal::User { name, .. }) = request.extensions().get::<Principal>().cloned() {
                request.extensions_mut().insert(Principal::User { name, roles: Vec::new(), role: None });
            }
            platform.workspace(DEFAULT_WORKSPACE)
        }
    };
    let Some(target) = target else {
        return crate::error::ApiError::new(crate::error::ErrorCode::TemporarilyUnavailable, "the server is stopping")
            .into_response();
    };
    match target.router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Enqueues due monitor runs every `interval`, until `stop`. Replicas may all run it: each due
/// run is claimed once in the store.
async fn run_monitor_scheduler(
    monitoring: keelson_monitor::MonitorService,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match monitoring.enqueue_due().await {
            Ok(enqueued) if !enqueued.is_empty() => tracing::info!(?enqueued, "monitor runs enqueued"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "monitor scheduler"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// A weak handle's platform, for handlers; gone only while the server stops.
pub fn upgrade(platform: &Weak<Platform>) -> Result<Arc<Platform>, crate::error::ApiError> {
    platform.upgrade().ok_or_else(|| {
        crate::error::ApiError::new(crate::error::ErrorCode::TemporarilyUnavailable, "the server is stopping")
    })
}
