//! Runs the whole platform in one process: API, metadata and artifact stores, in-process worker.

use keelson_artifacts::ArtifactStore;
use keelson_core::config::Config;
use keelson_store::worker::HandlerRegistry;
use keelson_store::{Store, StoreOptions};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("metadata store: {0}")]
    Store(#[from] keelson_store::StoreError),
    #[error("artifact store: {0}")]
    Artifacts(#[from] keelson_artifacts::ArtifactError),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid auth.tokens_file `{path}`: {reason}")]
    Tokens { path: String, reason: String },
    #[error("loading endpoints: {0}")]
    Serving(String),
    #[error("OIDC: {0}")]
    Oidc(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("authentication may be off only on a loopback address; this server listens on {0}")]
    AuthOffRemotely(String),
    #[error("setting up the first admin: {0}")]
    Bootstrap(String),
    #[error("invalid egress settings: {0}")]
    Egress(String),
}

pub struct ServerOptions {
    pub config: Config,
    /// Job kinds the in-process worker runs and the API accepts.
    pub job_handlers: HandlerRegistry,
}

/// What every service that reaches out shares, built once per process: the egress policy the
/// `egress` settings describe, and the secret store over the configured keys.
#[derive(Clone)]
pub struct Outbound {
    pub egress: keelson_egress::EgressPolicy,
    pub secrets: crate::secrets::SecretService,
}

impl Outbound {
    /// Without a usable secret key the store still starts, refusing secret operations with the
    /// reason (logged once here), so a server without secrets runs.
    pub fn from_config(config: &Config, store: &Store) -> Result<Outbound, ServeError> {
        let egress = keelson_egress::EgressPolicy::from_config(&config.egress).map_err(ServeError::Egress)?;
        let keyring = crate::secrets::Keyring::from_config(config, store.backend());
        if let Err(reason) = &keyring {
            tracing::warn!(%reason, "the secret store is off");
        }
        Ok(Outbound { egress, secrets: crate::secrets::SecretService::new(store.clone(), keyring) })
    }
}

/// The data service over the configured import root and scratch space (under `data_dir` unless
/// set); the server and standalone workers build it the same way.
pub fn data_service(
    config: &Config,
    store: &Store,
    artifacts: &ArtifactStore,
    outbound: &Outbound,
) -> Result<keelson_data::DataService, ServeError> {
    let data_dir = std::path::Path::new(&config.data_dir);
    let or_default = |value: &str, default: &str| {
        if value.is_empty() {
            data_dir.join(default)
        } else {
            std::path::PathBuf::from(value)
        }
    };
    let settings = keelson_data::DataSettings {
        import_root: or_default(&config.data.import_root, "imports"),
        scratch_dir: or_default(&config.data.scratch_dir, "scratch"),
        egress: outbound.egress.clone(),
    };
    keelson_data::DataService::new(store.clone(), artifacts.clone(), settings)
        .map_err(|e| ServeError::Serving(format!("data directories: {e}")))
}

/// The monitoring service; `job_kinds` are the kinds a monitor's trigger may enqueue. Scratch
/// space is the data scratch directory's.
pub fn monitor_service(
    config: &Config,
    store: &Store,
    artifacts: &ArtifactStore,
    job_kinds: Vec<String>,
    outbound: &Outbound,
) -> Result<keelson_monitor::MonitorService, ServeError> {
    let scratch_dir = if config.data.scratch_dir.is_empty() {
        std::path::Path::new(&config.data_dir).join("scratch")
    } else {
        std::path::PathBuf::from(&config.data.scratch_dir)
    };
    let settings = keelson_monitor::service::MonitorSettings {
        scratch_dir,
        job_kinds,
        retry: config.retry_policy(),
        egress: outbound.egress.clone(),
        // Channels read the passwords and signing keys they name from the secret store.
        secrets: Arc::new(outbound.secrets.clone()),
    };
    keelson_monitor::MonitorService::new(store.clone(), artifacts.clone(), settings)
        .map_err(|e| ServeError::Serving(format!("monitoring: {e}")))
}

/// On a server that has never had users, tokens or roles, makes principal `admin` an admin and
/// gives it one token for 24 hours, so the first person can get in and set up the rest.
async fn bootstrap_admin(
    store: &Store,
    identities: &crate::identity::IdentityService,
) -> Result<Option<String>, ServeError> {
    let failed = |e: &dyn std::fmt::Display| ServeError::Bootstrap(e.to_string());
    if store.identity_count().await? > 0 {
        return Ok(None);
    }
    identities
        .bind_role(crate::identity::DEFAULT_WORKSPACE, "admin", keelson_core::auth::Role::Admin, "keelson")
        .await
        .map_err(|e| failed(&e))?;
    let minted =
        identities.mint_token("admin", "made at first start", Some(1), "keelson").await.map_err(|e| failed(&e))?;
    tracing::info!(token = %minted.info.id, "no identities existed: made principal admin and a 24 h token");
    Ok(Some(minted.token))
}

/// Opens both stores (migrating the metadata schema).
pub async fn open_stores(config: &Config) -> Result<(Store, ArtifactStore), ServeError> {
    let store = Store::open(&config.database_url(), &StoreOptions::from_config(&config.database)).await?;
    let options: Vec<(String, String)> = config.artifacts.options.clone().into_iter().collect();
    let artifacts = ArtifactStore::open(&config.artifacts_url(), &options).await?;
    Ok((store, artifacts))
}

/// Serves until `shutdown` resolves, then stops accepting connections, lets in-flight requests
/// and running jobs finish (bounded by `server.shutdown_grace_seconds`) and returns.
/// `on_listening` receives the bound address (useful with port 0).
pub async fn serve<F, L>(options: ServerOptions, shutdown: F, on_listening: L) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
    L: FnOnce(SocketAddr),
{
    let config = options.config;
    let (store, artifacts) = open_stores(&config).await?;
    let address = format!("{}:{}", config.server.host, config.server.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| ServeError::Bind { address: address.clone(), source })?;
    let local = listener.local_addr()?;
    let tls = if config.server.tls_cert_file.is_empty() {
        None
    } else {
        let cert = std::path::Path::new(&config.server.tls_cert_file);
        let key = std::path::Path::new(&config.server.tls_key_file);
        Some(crate::tls::server_config(cert, key).map_err(ServeError::Tls)?)
    };
    // Configuration refuses auth.disabled on a non-loopback host; a name that resolved elsewhere
    // is refused here too.
    if config.auth.disabled && !local.ip().is_loopback() {
        return Err(ServeError::AuthOffRemotely(local.to_string()));
    }
    if config.auth.disabled {
        tracing::warn!(%local, "authentication is off (auth.disabled): every local caller acts as an admin");
    }
    let tokens_file = if config.auth.tokens_file.is_empty() {
        None
    } else {
        let path = config.auth.tokens_file.clone();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ServeError::Tokens { path: path.clone(), reason: e.to_string() })?;
        Some(crate::auth::TokenAuthenticator::from_toml(&text).map_err(|reason| ServeError::Tokens { path, reason })?)
    };
    let bootstrap_file = tokens_file.is_some();
    let platform = crate::platform::Platform::start(
        crate::platform::PlatformOptions { config: config.clone(), job_handlers: options.job_handlers, tokens_file },
        store.clone(),
        artifacts,
    )
    .await?;
    let bootstrap = if config.auth.disabled || bootstrap_file {
        None
    } else {
        bootstrap_admin(&store, platform.identities()).await?
    };
    let catalog_schedule = (config.catalog.sync_interval_seconds > 0 && !config.catalog.sources.is_empty())
        .then(|| (platform.catalog().clone(), config.catalog.sources.clone(), platform.egress().clone()));
    let app = platform.router();

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: finishing in-flight requests");
        let _ = stop_tx.send(true);
    });
    // Other replicas make and delete workspaces: follow the list.
    let following = platform.clone();
    let mut stop_following = stop_rx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = stop_following.wait_for(|stop| *stop) => return,
            }
            if let Err(error) = following.sync_workspaces().await {
                tracing::warn!(%error, "could not follow the list of workspaces");
            }
        }
    });
    // Workers stop claiming jobs when shutdown begins, beside the requests finishing.
    let stopping = platform.clone();
    let mut stop_workers = stop_rx.clone();
    tokio::spawn(async move {
        let _ = stop_workers.wait_for(|stop| *stop).await;
        stopping.shut_down().await;
    });

    if let Some((catalog, sources, egress)) = catalog_schedule {
        let interval = Duration::from_secs(config.catalog.sync_interval_seconds);
        tokio::spawn(crate::catalog_sync::run_schedule(catalog, egress, sources, interval, stop_rx.clone()));
    }

    tracing::info!(%local, database = store.display_url(), "keelson server listening");
    on_listening(local);
    if let Some(token) = bootstrap {
        // On stdout for the person who started the server, like Jupyter's login token; never in
        // the log.
        println!("  No users exist yet. An admin token was made for this start (shown once, valid 24 h):");
        println!("    {token}");
        println!(
            "  Use it as MLFLOW_TRACKING_TOKEN or `Authorization: Bearer …`; create users with POST /api/v1/users."
        );
    }

    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let mut graceful_rx = stop_rx.clone();
    let graceful = async move {
        let _ = graceful_rx.wait_for(|stop| *stop).await;
    };
    let make_service = app.into_make_service_with_connect_info::<crate::tls::PeerAddr>();
    let server: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        Some(config) => Box::pin(
            axum::serve(crate::tls::TlsListener::new(listener, config)?, make_service)
                .with_graceful_shutdown(graceful)
                .into_future(),
        ),
        None => Box::pin(axum::serve(listener, make_service).with_graceful_shutdown(graceful).into_future()),
    };
    let mut deadline_rx = stop_rx.clone();
    tokio::select! {
        result = server => result?,
        _ = async move {
            let _ = deadline_rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(?grace, "in-flight requests did not finish within the shutdown grace; closing"),
    }
    platform.shut_down().await;
    store.close().await;
    tracing::info!("keelson server stopped");
    Ok(())
}
