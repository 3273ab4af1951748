//! What each subcommand does. Configuration errors exit with status 2, other failures with 1.

use crate::cli::{AuditCommand, Cli, Command, ConfigCommand, DbCommand, GlobalArgs, TokenCommand, UserCommand};
use crate::logging;
use keelson_core::config::{Config, ConfigError, ConfigLoader};
use keelson_server::{ServeError, ServerOptions};
use keelson_store::worker::{default_worker_id, HandlerRegistry, Worker, WorkerOptions};
use keelson_store::{Store, StoreOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const CONFIG_ERROR: u8 = 2;

pub async fn run(cli: Cli) -> ExitCode {
    // Client commands talk to a server and need no local configuration.
    let cli = match cli.command {
        Command::Model(args) => return crate::model::run(args).await,
        Command::Catalog(args) => return crate::model::run_catalog(args).await,
        Command::Endpoint(args) => return crate::endpoint::run(args).await,
        Command::Lineage(args) => return crate::lineage::run(args).await,
        Command::Monitor(args) => return crate::monitor::run(args).await,
        command => Cli { global: cli.global, command },
    };
    let flags = match &cli.command {
        Command::Server(args) | Command::Quickstart(args) => args.flags(),
        Command::Worker(args) => args.flags(),
        Command::Db { command: DbCommand::Migrate { database_url } }
        | Command::Audit {
            command: AuditCommand::Verify { database_url } | AuditCommand::Export { database_url, .. },
        }
        | Command::User { command: UserCommand::Add { database_url, .. } }
        | Command::Token { command: TokenCommand::Create { database_url, .. } } => {
            database_url.iter().map(|url| ("database.url", url.clone(), "--database-url")).collect()
        }
        Command::Config { .. } => Vec::new(),
        Command::Model(_) | Command::Catalog(_) | Command::Endpoint(_) | Command::Lineage(_) | Command::Monitor(_) => {
            Vec::new()
        }
    };
    let config = match load_config(&cli.global, &flags) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    logging::init(&config.log.format, &config.log.level);
    let outcome = match cli.command {
        Command::Config { command: ConfigCommand::Show } => show_config(&config),
        Command::Db { command: DbCommand::Migrate { .. } } => migrate(&config).await,
        Command::Audit { command: AuditCommand::Verify { .. } } => verify_audit(&config).await,
        Command::User { command: UserCommand::Add { name, role, .. } } => {
            add_user(&config, &name, role.as_deref()).await
        }
        Command::Token { command: TokenCommand::Create { principal, role, description, expires_in_days, .. } } => {
            create_token(&config, &principal, role.as_deref(), &description, expires_in_days).await
        }
        Command::Audit { command: AuditCommand::Export { after, .. } } => export_audit(&config, after).await,
        Command::Server(_) => serve(config, false).await,
        Command::Quickstart(_) => serve(config, true).await,
        Command::Worker(args) => work(config, args.worker_id).await,
        Command::Model(_) | Command::Catalog(_) | Command::Endpoint(_) | Command::Lineage(_) | Command::Monitor(_) => {
            unreachable!("handled before configuration is loaded")
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Layers defaults, the config file, `KEELSON_*` variables and flags, in that order.
fn load_config(global: &GlobalArgs, flags: &[(&str, String, &str)]) -> Result<Config, ConfigError> {
    let mut loader = ConfigLoader::new()?;
    let file = match &global.config {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from("keelson.toml")).filter(|p| p.is_file()),
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            key: "config".into(),
            reason: format!("cannot read {}: {e}", path.display()),
            origin: Some("--config".into()),
        })?;
        loader = loader.with_toml(&text, &path.display().to_string())?;
    }
    loader = loader.with_env(std::env::vars())?;
    for name in &loader.ignored_env {
        if !name.starts_with("KEELSON_TEST") && name != "KEELSON_CONFIG" && name != "KEELSON_BIN" {
            eprintln!("warning: {name} names no keelson setting and is ignored");
        }
    }
    let mut global_flags = Vec::new();
    if let Some(dir) = &global.data_dir {
        global_flags.push(("data_dir", dir.clone(), "--data-dir"));
    }
    if let Some(format) = &global.log_format {
        global_flags.push(("log.format", format.clone(), "--log-format"));
    }
    if let Some(level) = &global.log_level {
        global_flags.push(("log.level", level.clone(), "--log-level"));
    }
    for (key, value, flag) in global_flags.iter().chain(flags.iter()) {
        loader = loader.with_flag(key, value, flag)?;
    }
    let mut config = loader.build()?;
    config.data_dir = absolute(&config.data_dir);
    Ok(config)
}

/// Relative data dirs are anchored at the working directory so URLs derived from them are valid.
fn absolute(dir: &str) -> String {
    let path = Path::new(dir);
    if path.is_absolute() {
        return dir.to_string();
    }
    std::env::current_dir().map(|cwd| cwd.join(path).display().to_string()).unwrap_or_else(|_| dir.to_string())
}

fn show_config(config: &Config) -> anyhow::Result<()> {
    print!("{}", toml::to_string_pretty(&config.redacted())?);
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url(), &StoreOptions::from_config(&config.database)).await?;
    let report = store.migrate().await?;
    if report.applied.is_empty() {
        println!("database {} is up to date at schema version {}", store.display_url(), report.to_version);
    } else {
        println!(
            "database {} migrated from schema version {} to {} (applied {})",
            store.display_url(),
            report.from_version,
            report.to_version,
            report.applied.join(", ")
        );
    }
    store.close().await;
    Ok(())
}

fn parse_role(role: Option<&str>) -> anyhow::Result<Option<keelson_core::auth::Role>> {
    role.map(|text| {
        keelson_core::auth::Role::parse(text)
            .ok_or_else(|| anyhow::anyhow!("role `{text}` is not one of viewer, editor, admin"))
    })
    .transpose()
}

async fn identities(config: &Config) -> anyhow::Result<(Store, keelson_server::identity::IdentityService)> {
    let store = Store::open(&config.database_url(), &StoreOptions::from_config(&config.database)).await?;
    let service = keelson_server::identity::IdentityService::new(store.clone(), None);
    Ok((store, service))
}

async fn add_user(config: &Config, name: &str, role: Option<&str>) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let (store, service) = identities(config).await?;
    let created = service.create_user(name, password, role, "keelson-cli").await;
    store.close().await;
    let user = created.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("user {} created{}", user.name, user.role.map(|r| format!(" ({r})")).unwrap_or_default());
    Ok(())
}

async fn create_token(
    config: &Config,
    principal: &str,
    role: Option<&str>,
    description: &str,
    expires_in_days: Option<u32>,
) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    let (store, service) = identities(config).await?;
    let outcome = async {
        if let Some(role) = role {
            service.bind_role(keelson_server::identity::DEFAULT_WORKSPACE, principal, role, "keelson-cli").await?;
        }
        service.mint_token(principal, description, expires_in_days, "keelson-cli").await
    }
    .await;
    store.close().await;
    let minted = outcome.map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("token {} for {} (shown once; store it now):", minted.info.id, minted.info.principal);
    println!("{}", minted.token);
    Ok(())
}

async fn verify_audit(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url(), &StoreOptions::from_config(&config.database)).await?;
    let check = store.verify_audit_chain().await;
    store.close().await;
    let check = check?;
    match (check.broken_at, check.reason) {
        (None, _) => {
            println!("audit log verified: {} records, chain intact", check.records);
            Ok(())
        }
        (Some(seq), reason) => anyhow::bail!(
            "audit log broken at record {seq}: {} ({} records verified before it)",
            reason.unwrap_or_default(),
            check.records
        ),
    }
}

async fn export_audit(config: &Config, after: Option<i64>) -> anyhow::Result<()> {
    use std::io::Write;
    let store = Store::connect(&config.database_url(), &StoreOptions::from_config(&config.database)).await?;
    let mut query = keelson_store::audit::AuditQuery { after_seq: after, limit: 1_000, ..Default::default() };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    loop {
        let records = store.audit_records(&query).await?;
        for record in &records {
            writeln!(out, "{}", serde_json::to_string(record)?)?;
        }
        match records.last() {
            Some(last) if records.len() == 1_000 => query.after_seq = Some(last.seq),
            _ => break,
        }
    }
    out.flush()?;
    store.close().await;
    Ok(())
}

async fn serve(config: Config, quickstart: bool) -> anyhow::Result<()> {
    let banner_config = config.redacted();
    let self_check_config = config.clone();
    let scheme = if config.server.tls_cert_file.is_empty() { "http" } else { "https" };
    let options = ServerOptions { config, job_handlers: HandlerRegistry::with_builtins() };
    let result = keelson_server::serve(options, shutdown_signal(), move |address| {
        let url = format!("{scheme}://{address}");
        if quickstart {
            println!("Keelson is running on the embedded default.");
            println!("  URL:       {url}");
            println!("  metadata:  {}", banner_config.database.url);
            println!("  artifacts: {}", banner_config.artifacts.url);
            println!("  try:       curl {url}/health/ready");
            println!("Press Ctrl-C to stop.");
            tokio::spawn(worker_self_check(self_check_config));
        } else {
            println!("keelson listening on {url}");
        }
    })
    .await;
    match result {
        Err(ServeError::Bind { address, source }) => {
            anyhow::bail!("cannot listen on {address}: {source} (choose another --port)")
        }
        other => Ok(other?),
    }
}

/// Shows the quickstart user that the queue and the in-process worker run: one no-op job.
async fn worker_self_check(config: Config) {
    let outcome = async {
        let store = Store::open(&config.database_url(), &StoreOptions::from_config(&config.database)).await?;
        let job = keelson_core::jobs::NewJob::new("system.noop", serde_json::json!({"quickstart": true}));
        let job = store.enqueue_job(&job, &config.retry_policy()).await?;
        for _ in 0..200 {
            let current = store.get_job(&job.id).await?;
            if current.status.is_terminal() {
                store.close().await;
                return Ok::<_, anyhow::Error>((current.status, current.updated_at - current.created_at));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        anyhow::bail!("the job did not finish within 10 s")
    };
    match outcome.await {
        Ok((status, millis)) => println!("  worker:    a system.noop job {status} in {millis} ms"),
        Err(error) => println!("  worker:    self-check failed: {error:#}"),
    }
}

/// Runs jobs of every workspace: one worker per workspace database, started for workspaces made
/// while it runs (the list is read again every `WORKSPACE_POLL`) and stopped for deleted ones.
async fn work(config: Config, worker_id: Option<String>) -> anyhow::Result<()> {
    const WORKSPACE_POLL: std::time::Duration = std::time::Duration::from_secs(30);
    let (store, artifacts) = keelson_server::serve::open_stores(&config).await?;
    let outbound = keelson_server::serve::Outbound::from_config(&config, &store)?;
    let options = WorkerOptions::from_config(&config, worker_id.unwrap_or_else(default_worker_id));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    println!("keelson worker {} polling {} and its workspaces", options.worker_id, store.display_url());
    let mut running: std::collections::BTreeMap<String, WorkspaceWorker> = Default::default();
    loop {
        let mut names = vec![keelson_core::workspaces::DEFAULT_WORKSPACE.to_string()];
        match store.list_workspaces().await {
            Ok(listed) => names.extend(listed.into_iter().map(|w| w.name)),
            Err(error) => tracing::warn!(%error, "could not list workspaces"),
        }
        let gone: Vec<String> = running.keys().filter(|name| !names.contains(name)).cloned().collect();
        for name in gone {
            if let Some(worker) = running.remove(&name) {
                worker.stop().await;
            }
        }
        let new: Vec<String> = names.into_iter().filter(|name| !running.contains_key(name)).collect();
        for name in &new {
            match WorkspaceWorker::start(&config, &store, &artifacts, &outbound, name, &options).await {
                Ok(worker) => {
                    running.insert(name.clone(), worker);
                }
                Err(error) => tracing::error!(error = %format!("{error:#}"), workspace = %name, "cannot run its jobs"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(WORKSPACE_POLL) => {}
            _ = stop_rx.wait_for(|stop| *stop) => break,
        }
    }
    for (_, worker) in std::mem::take(&mut running) {
        worker.stop().await;
    }
    store.close().await;
    Ok(())
}

/// One workspace's worker in a `keelson worker` process.
struct WorkspaceWorker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// The workspace's own store, closed with it; `None` for the default one, which the
    /// process keeps.
    own_store: Option<keelson_store::Store>,
}

impl WorkspaceWorker {
    async fn start(
        config: &Config,
        system: &keelson_store::Store,
        artifacts: &keelson_artifacts::ArtifactStore,
        outbound: &keelson_server::serve::Outbound,
        name: &str,
        options: &WorkerOptions,
    ) -> anyhow::Result<WorkspaceWorker> {
        let default = name == keelson_core::workspaces::DEFAULT_WORKSPACE;
        let store = if default { system.clone() } else { system.open_workspace(name).await? };
        let artifacts = if default { artifacts.clone() } else { artifacts.for_workspace(name).await? };
        let jobs = keelson_server::platform::workspace_jobs(
            config,
            &HandlerRegistry::with_builtins(),
            outbound,
            name,
            &store,
            &artifacts,
        )?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let worker = Worker::new(store.clone(), jobs.handlers, options.clone());
        let workspace = name.to_string();
        let task = tokio::spawn(async move {
            if let Err(error) = worker.run(stop_rx).await {
                tracing::error!(%error, workspace, "worker failed");
            }
        });
        Ok(WorkspaceWorker { stop, task, own_store: (!default).then_some(store) })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Some(store) = self.own_store {
            store.close().await;
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
}
