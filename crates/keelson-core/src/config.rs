//! Keelson's one typed configuration. Layers, lowest first: defaults, `keelson.toml`,
//! `KEELSON_*` environment variables (`__` separates nesting levels), command-line flags.
//! The caller reads files and the environment; this module merges, types and validates them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const ENV_PREFIX: &str = "KEELSON_";
const MASK: &str = "***";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Root for the embedded default: `keelson.db` and `artifacts/` live here.
    pub data_dir: String,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub artifacts: ArtifactsConfig,
    pub worker: WorkerConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub catalog: CatalogConfig,
    pub serving: ServingConfig,
    pub data: DataConfig,
    pub monitoring: MonitoringConfig,
    pub egress: EgressConfig,
    pub secrets: SecretsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// Largest request body accepted by routes that do not stream (JSON APIs).
    pub max_body_bytes: u64,
    /// How long shutdown waits for in-flight requests and running jobs.
    pub shutdown_grace_seconds: u64,
    /// Host names browsers may reach this server by, besides IP addresses and `localhost`
    /// (`keelson.corp.example`, `*.corp.example`, or `*` for any). Any other `Host` header is
    /// refused, which defeats DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Other origins (`https://ui.corp.example`) whose pages may send state-changing requests;
    /// by default only the server's own origin may.
    pub allowed_origins: Vec<String>,
    /// HTTPS: a PEM certificate chain and its PEM private key; both or neither.
    pub tls_cert_file: String,
    pub tls_key_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://DATA_DIR/keelson.db`.
    pub url: String,
    pub max_connections: u32,
    pub busy_timeout_ms: u64,
    /// SQLite `synchronous`: `full` survives power loss, `normal` only process crashes.
    pub sqlite_synchronous: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArtifactsConfig {
    /// `file:///…`, `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`;
    /// empty means `file://DATA_DIR/artifacts`.
    pub url: String,
    /// Passed to the object store (endpoint, region, credentials…).
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Run a worker inside `keelson server`.
    pub in_process: bool,
    /// Jobs one worker process runs at the same time.
    pub concurrency: u32,
    pub lease_seconds: u64,
    pub heartbeat_seconds: u64,
    pub poll_interval_ms: u64,
    pub max_attempts: i32,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `auto` (human on a terminal, JSON otherwise is NOT implied: auto means human), `human`, `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `keelson_store=debug,info`.
    pub level: String,
}

/// Who may call the API: service tokens and users in the metadata store, an operator's tokens
/// file, OIDC bearer tokens; authentication may be off only on loopback (`disabled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A TOML file of `[[users]]` with `name`, `token_sha256` (hex) and `roles`.
    pub tokens_file: String,
    /// Serve without authentication: anonymous callers act as admins. Only for a server on a
    /// loopback address (local development, tests); refused anywhere else.
    pub disabled: bool,
    /// Requests per second one principal may make (a burst of twice that); 0 for no limit.
    pub rate_limit_per_second: u32,
    /// OIDC bearer tokens: the issuer (`iss`) tokens must name; empty turns OIDC off.
    pub oidc_issuer: String,
    /// The audience (`aud`) tokens must be for, e.g. Keelson's client id at the provider.
    pub oidc_audience: String,
    /// The issuer's keys: a JWKS file, or its `jwks_uri` (fetched by the server, trusted as
    /// configuration).
    pub oidc_jwks: String,
    /// The claim that names the principal.
    pub oidc_principal_claim: String,
    /// The claim listing the principal's roles (`viewer`/`editor`/`admin` grant workspace roles;
    /// others count for promotion approvals).
    pub oidc_roles_claim: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            tokens_file: String::new(),
            disabled: false,
            rate_limit_per_second: 0,
            oidc_issuer: String::new(),
            oidc_audience: String::new(),
            oidc_jwks: String::new(),
            oidc_principal_claim: "sub".to_string(),
            oidc_roles_claim: "roles".to_string(),
        }
    }
}

/// The model catalog's sources and schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Catalog files by source name: a path, `file://…`, or an `http(s)://` URL.
    pub sources: BTreeMap<String, String>,
    /// Seconds between scheduled syncs of every source; 0 syncs only on request.
    pub sync_interval_seconds: u64,
    /// Job kind started for each model a sync adds (an evaluation pipeline); empty for none.
    pub on_new_model_job: String,
}

/// Online serving: the data collector's buffer and batching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServingConfig {
    /// Collected records held in memory; beyond this new records are dropped (and counted),
    /// so collection never slows a request down.
    pub collector_buffer_records: usize,
    /// Records per file the collector writes.
    pub collector_batch_records: usize,
    /// Longest time a collected record waits in memory before its file is written.
    pub collector_flush_ms: u64,
    /// Path of a `libonnxruntime.so` for deployments with `runtime: onnxruntime` (the PyPI
    /// `onnxruntime` wheel ships one under `onnxruntime/capi/`); empty: that runtime is off.
    pub onnxruntime_library: String,
}

impl Default for ServingConfig {
    fn default() -> Self {
        Self {
            collector_buffer_records: 10_000,
            collector_batch_records: 1_000,
            collector_flush_ms: 5_000,
            onnxruntime_library: String::new(),
        }
    }
}

/// Monitoring: how often the scheduler looks for monitors due a run (0 turns it off, e.g. on
/// replicas that should only serve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringConfig {
    pub scheduler_interval_seconds: u64,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self { scheduler_interval_seconds: 10 }
    }
}

/// DataOps: where file sources may be read from, and scratch space for the engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory that `file` sources are read below (paths escaping it are refused); empty:
    /// `<data_dir>/imports`.
    pub import_root: String,
    /// Scratch directory for downloads and Parquet files being written; empty:
    /// `<data_dir>/scratch`.
    pub scratch_dir: String,
}

/// The secret store's keys. Secrets are encrypted with the current key; earlier keys only
/// decrypt what was written before a rotation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The current key: 32 bytes, base64 (`openssl rand -base64 32`), e.g. from
    /// `KEELSON_SECRETS__KEY`. Takes precedence over `key_file`.
    pub key: String,
    /// A file holding the current key (base64). With neither set, the embedded default (SQLite)
    /// creates `<data_dir>/secret.key` on first use; PostgreSQL deployments must set one, the same
    /// on every replica.
    pub key_file: String,
    /// Files of earlier keys (base64), to read secrets written before the last rotation.
    pub previous_key_files: Vec<String>,
}

/// Where server-side requests to destinations that arrive through the API (dataset sources,
/// notification channels, external runtimes, rollout webhooks, catalog URLs) may go. Loopback,
/// private, link-local (cloud metadata) and other special ranges are refused unless listed here;
/// destinations written in this configuration file (catalog sources, the artifact store) are
/// trusted and not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Host names that may be reached whatever they resolve to: `db.internal` or `*.corp.example`.
    pub allow_hosts: Vec<String>,
    /// Address ranges that may be reached although special, e.g. `10.20.0.0/16`, `127.0.0.1/32`.
    pub allow_cidrs: Vec<String>,
    /// Whether public addresses may be reached without being listed; false makes the two lists
    /// the only destinations.
    pub allow_public: bool,
    pub connect_timeout_ms: u64,
    /// Bound on a whole request, answer included.
    pub request_timeout_ms: u64,
    /// Largest answer body read into memory (catalog files, webhook answers); downloads of
    /// dataset files stream to disk and are bounded by `data.max_download_bytes`.
    pub max_response_bytes: u64,
    /// Per workspace (by name): destinations its requests may reach besides the lists above, and
    /// whether it may reach public addresses (unset: as above). An operator's setting, not the
    /// workspace's: `[egress.workspaces.team-a] allow_hosts = ["warehouse.team-a.internal"]`.
    pub workspaces: std::collections::BTreeMap<String, WorkspaceEgressConfig>,
}

/// One workspace's additions to the egress policy (see [`EgressConfig::workspaces`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspaceEgressConfig {
    pub allow_hosts: Vec<String>,
    pub allow_cidrs: Vec<String>,
    pub allow_public: Option<bool>,
}

impl EgressConfig {
    /// The policy settings of workspace `name`: the server-wide lists with the workspace's own
    /// added, and its `allow_public` where set.
    pub fn for_workspace(&self, name: &str) -> EgressConfig {
        let mut merged = EgressConfig { workspaces: Default::default(), ..self.clone() };
        if let Some(own) = self.workspaces.get(name) {
            merged.allow_hosts.extend(own.allow_hosts.iter().cloned());
            merged.allow_cidrs.extend(own.allow_cidrs.iter().cloned());
            if let Some(allow_public) = own.allow_public {
                merged.allow_public = allow_public;
            }
        }
        merged
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, own) in &self.workspaces {
            if name != crate::workspaces::DEFAULT_WORKSPACE {
                crate::workspaces::validate_workspace_name(name)
                    .map_err(|reason| invalid("egress.workspaces", reason))?;
            }
            let lists = EgressConfig {
                allow_hosts: own.allow_hosts.clone(),
                allow_cidrs: own.allow_cidrs.clone(),
                workspaces: Default::default(),
                ..self.clone()
            };
            lists.validate().map_err(|error| ConfigError {
                key: error.key.replacen("egress.", &format!("egress.workspaces.{name}."), 1),
                ..error
            })?;
        }
        for cidr in &self.allow_cidrs {
            if !is_cidr(cidr) {
                return Err(invalid(
                    "egress.allow_cidrs",
                    format!(
                        "`{cidr}` is not an address range; write it as ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/8"
                    ),
                ));
            }
        }
        for host in &self.allow_hosts {
            let name = host.strip_prefix("*.").unwrap_or(host);
            let valid = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !valid {
                return Err(invalid(
                    "egress.allow_hosts",
                    format!("`{host}` is not a host name; write e.g. db.internal or *.corp.example"),
                ));
            }
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return Err(invalid("egress.request_timeout_ms", "timeouts must be at least 1 ms"));
        }
        if self.max_response_bytes == 0 {
            return Err(invalid("egress.max_response_bytes", "must be greater than 0"));
        }
        Ok(())
    }
}

/// 127.0.0.0/8, ::1 or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `ADDRESS/PREFIX` with a prefix no longer than the address.
fn is_cidr(text: &str) -> bool {
    let Some((address, prefix)) = text.split_once('/') else { return false };
    let Ok(prefix) = prefix.parse::<u8>() else { return false };
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => prefix <= 32,
        Ok(IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_hosts: Vec::new(),
            allow_cidrs: Vec::new(),
            allow_public: true,
            connect_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            max_response_bytes: 10 * 1024 * 1024,
            workspaces: Default::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: "keelson-data".to_string(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            artifacts: ArtifactsConfig::default(),
            worker: WorkerConfig::default(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            catalog: CatalogConfig::default(),
            serving: ServingConfig::default(),
            data: DataConfig::default(),
            monitoring: MonitoringConfig::default(),
            egress: EgressConfig::default(),
            secrets: SecretsConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_string(),
            port: 8080,
            max_body_bytes: 16 * 1024 * 1024,
            shutdown_grace_seconds: 30,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: String::new(), max_connections: 10, busy_timeout_ms: 5_000, sqlite_synchronous: "full".to_string() }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            in_process: true,
            concurrency: 2,
            lease_seconds: 30,
            heartbeat_seconds: 10,
            poll_interval_ms: 500,
            max_attempts: 5,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "auto".to_string(), level: "info".to_string() }
    }
}

/// A configuration value that is wrong, named by its dotted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration `{key}`{origin}: {reason}", origin = origin_suffix(.origin))]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
    /// Where the value came from (`keelson.toml`, `KEELSON_SERVER__PORT`, `--port`), when known.
    pub origin: Option<String>,
}

fn origin_suffix(origin: &Option<String>) -> String {
    origin.as_ref().map(|o| format!(" (from {o})")).unwrap_or_default()
}

/// One layer's contribution: a TOML table plus where each leaf came from.
#[derive(Debug, Default, Clone)]
pub struct ConfigLoader {
    merged: toml::Table,
    origins: BTreeMap<String, String>,
    /// `KEELSON_*` variables that name no setting; reported, not fatal, since the prefix is shared
    /// with test harness variables.
    pub ignored_env: Vec<String>,
}

impl ConfigLoader {
    pub fn new() -> Result<Self, ConfigError> {
        let defaults = toml::Table::try_from(Config::default()).map_err(|e| ConfigError {
            key: String::new(),
            reason: format!("defaults do not serialise: {e}"),
            origin: None,
        })?;
        Ok(Self { merged: defaults, ..Self::default() })
    }

    /// Overlays a `keelson.toml` document; `origin` names the file in error messages.
    pub fn with_toml(mut self, text: &str, origin: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            key: String::new(),
            reason: format!("not valid TOML: {}", e.message()),
            origin: Some(origin.to_string()),
        })?;
        let mut leaves = Vec::new();
        collect_leaves("", &table, &mut leaves);
        for key in leaves {
            self.origins.insert(key, origin.to_string());
        }
        merge_tables(&mut self.merged, table);
        Ok(self)
    }

    /// Overlays `KEELSON_*` variables. Values are typed by the default at the same key, so
    /// `KEELSON_SERVER__PORT=9000` is a number and a password of digits stays a string.
    pub fn with_env<I>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        vars.sort();
        for (name, raw) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            match self.set_typed(&path, &raw, &name) {
                Ok(true) => {}
                Ok(false) => self.ignored_env.push(name),
                Err(e) => return Err(e),
            }
        }
        Ok(self)
    }

    /// Overlays one command-line flag, e.g. (`server.port`, `9000`, `--port`).
    pub fn with_flag(mut self, key: &str, raw: &str, flag: &str) -> Result<Self, ConfigError> {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        if self.set_typed(&path, raw, flag)? {
            Ok(self)
        } else {
            Err(ConfigError { key: key.to_string(), reason: "no such setting".into(), origin: Some(flag.into()) })
        }
    }

    /// Sets a leaf typed like the existing value. Returns false when the key names no setting.
    fn set_typed(&mut self, path: &[String], raw: &str, origin: &str) -> Result<bool, ConfigError> {
        let key = path.join(".");
        let Some((leaf, parents)) = path.split_last() else {
            return Ok(false);
        };
        let mut table = &mut self.merged;
        let mut inside_free_map = false;
        for part in parents {
            match table.get_mut(part) {
                Some(toml::Value::Table(next)) => table = next,
                _ => return Ok(false),
            }
            // `artifacts.options` is a free-form map: any key below it is a setting.
            inside_free_map = key.starts_with("artifacts.options.") || key.starts_with("catalog.sources.");
        }
        let value = match table.get(leaf) {
            Some(toml::Value::Integer(_)) => {
                raw.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| ConfigError {
                    key: key.clone(),
                    reason: format!("`{raw}` is not an integer"),
                    origin: Some(origin.into()),
                })?
            }
            Some(toml::Value::Boolean(_)) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
                "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError {
                        key,
                        reason: format!("`{raw}` is not a boolean; use true or false"),
                        origin: Some(origin.into()),
                    })
                }
            },
            Some(toml::Value::Float(_)) => {
                raw.trim().parse::<f64>().map(toml::Value::Float).map_err(|_| ConfigError {
                    key: key.clone(),
                    reason: format!("`{raw}` is not a number"),
                    origin: Some(origin.into()),
                })?
            }
            Some(toml::Value::String(_)) => toml::Value::String(raw.to_string()),
            // Lists of strings from the environment or a flag: comma-separated.
            Some(toml::Value::Array(_)) => toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_string()))
                    .collect(),
            ),
            Some(_) => return Ok(false),
            None if inside_free_map => toml::Value::String(raw.to_string()),
            None => return Ok(false),
        };
        table.insert(leaf.clone(), value);
        self.origins.insert(key, origin.to_string());
        Ok(true)
    }

    /// Types, fills derived defaults and validates the merged layers.
    pub fn build(self) -> Result<Config, ConfigError> {
        let origins = self.origins;
        let value = toml::Value::Table(self.merged);
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let reason = e.inner().message().to_string();
            let origin = origins.get(&key).cloned();
            ConfigError { key, reason, origin }
        })?;
        config.validate().map_err(|mut e| {
            e.origin = origins.get(&e.key).cloned();
            e
        })?;
        Ok(config)
    }
}

fn collect_leaves(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => collect_leaves(&path, inner, out),
            _ => out.push(path),
        }
    }
}

fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_inner)), toml::Value::Table(overlay_inner)) => {
                merge_tables(base_inner, overlay_inner)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_string(), reason: reason.into(), origin: None }
}

impl Config {
    /// Loads defaults only; handy for tests.
    pub fn defaults_for(data_dir: &str) -> Self {
        Self { data_dir: data_dir.to_string(), ..Self::default() }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.trim().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.server.host.parse::<IpAddr>().is_err() && self.server.host != "localhost" {
            return Err(invalid(
                "server.host",
                format!("`{}` is not an IP address; use e.g. 127.0.0.1, ::1 or 0.0.0.0", self.server.host),
            ));
        }
        if self.server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes", "must be greater than 0"));
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "database.url",
                format!("`{}` has an unsupported scheme; use sqlite://PATH or postgres://…", mask_url_password(&url)),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if !["full", "normal", "extra"].contains(&self.database.sqlite_synchronous.as_str()) {
            return Err(invalid("database.sqlite_synchronous", "expected one of full, normal, extra"));
        }
        let artifacts = self.artifacts_url();
        let scheme = artifacts.split("://").next().unwrap_or_default();
        if !artifacts.contains("://")
            || !["file", "memory", "s3", "s3a", "az", "azure", "abfs", "abfss", "gs"].contains(&scheme)
        {
            return Err(invalid(
                "artifacts.url",
                format!("`{artifacts}` is not supported; use file:///PATH, s3://BUCKET, az://CONTAINER or gs://BUCKET"),
            ));
        }
        let worker = &self.worker;
        if !(1..=256).contains(&worker.concurrency) {
            return Err(invalid("worker.concurrency", "expected 1..=256"));
        }
        if worker.lease_seconds == 0 {
            return Err(invalid("worker.lease_seconds", "must be at least 1"));
        }
        if worker.heartbeat_seconds == 0 || worker.heartbeat_seconds >= worker.lease_seconds {
            return Err(invalid(
                "worker.heartbeat_seconds",
                "must be at least 1 and shorter than worker.lease_seconds",
            ));
        }
        if worker.poll_interval_ms == 0 {
            return Err(invalid("worker.poll_interval_ms", "must be at least 1"));
        }
        if !(1..=100).contains(&worker.max_attempts) {
            return Err(invalid("worker.max_attempts", "expected 1..=100"));
        }
        if worker.backoff_base_ms < 0 || worker.backoff_max_ms < worker.backoff_base_ms {
            return Err(invalid("worker.backoff_max_ms", "backoff must be non-negative and max ≥ base"));
        }
        let library = &self.serving.onnxruntime_library;
        if !library.is_empty() && !std::path::Path::new(library).is_file() {
            return Err(invalid("serving.onnxruntime_library", format!("`{library}` is not a file")));
        }
        if !["auto", "human", "json"].contains(&self.log.format.as_str()) {
            return Err(invalid("log.format", format!("`{}` is not one of auto, human, json", self.log.format)));
        }
        self.egress.validate()?;
        if self.server.tls_cert_file.is_empty() != self.server.tls_key_file.is_empty() {
            return Err(invalid(
                "server.tls_key_file",
                "set both server.tls_cert_file and server.tls_key_file, or neither",
            ));
        }
        for (key, path) in
            [("server.tls_cert_file", &self.server.tls_cert_file), ("server.tls_key_file", &self.server.tls_key_file)]
        {
            if !path.is_empty() && !std::path::Path::new(path).is_file() {
                return Err(invalid(key, format!("`{path}` is not a file")));
            }
        }
        if !self.auth.oidc_issuer.is_empty() && (self.auth.oidc_audience.is_empty() || self.auth.oidc_jwks.is_empty()) {
            return Err(invalid(
                "auth.oidc_audience",
                "with auth.oidc_issuer set, auth.oidc_audience and auth.oidc_jwks are needed",
            ));
        }
        if self.auth.disabled && !is_loopback_host(&self.server.host) {
            return Err(invalid(
                "auth.disabled",
                format!(
                    "authentication may be off only on a loopback address; server.host is `{}` (use 127.0.0.1 \
                     or ::1, or create users and tokens)",
                    self.server.host
                ),
            ));
        }
        Ok(())
    }

    /// The metadata URL in effect: configured, or SQLite under the data dir.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}/keelson.db", self.data_dir.trim_end_matches('/'))
        } else {
            self.database.url.clone()
        }
    }

    /// The artifact store URL in effect: configured, or local files under the data dir.
    pub fn artifacts_url(&self) -> String {
        if !self.artifacts.url.is_empty() {
            return self.artifacts.url.clone();
        }
        let dir = self.data_dir.trim_end_matches('/');
        if dir.starts_with('/') {
            format!("file://{dir}/artifacts")
        } else {
            format!("file:///{dir}/artifacts")
        }
    }

    pub fn retry_policy(&self) -> crate::jobs::RetryPolicy {
        crate::jobs::RetryPolicy {
            default_max_attempts: self.worker.max_attempts,
            backoff_base_ms: self.worker.backoff_base_ms,
            backoff_max_ms: self.worker.backoff_max_ms,
        }
    }

    /// The effective configuration with derived values filled in and secrets masked, for display.
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        shown.database.url = mask_url_password(&self.database_url());
        shown.artifacts.url = mask_url_password(&self.artifacts_url());
        if !shown.secrets.key.is_empty() {
            shown.secrets.key = MASK.to_string();
        }
        for (key, value) in shown.artifacts.options.iter_mut() {
            if is_secret_key(key) {
                *value = MASK.to_string();
            }
        }
        shown
    }
}

/// Option names that hold credentials.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "token", "access_key", "account_key", "sas", "credential", "private_key"]
        .iter()
        .any(|needle| key.contains(needle))
}

/// `scheme://user:password@host/…` → `scheme://user:***@host/…`; query parameters named like
/// secrets are masked too.
pub fn mask_url_password(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return raw.to_string();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if pairs.iter().any(|(k, _)| is_secret_key(k)) {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (key, value) in &pairs {
            query.append_pair(key, if is_secret_key(key) { MASK } else { value });
        }
    }
    url.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn egress_lists_come_from_toml_and_comma_separated_env_and_are_validated() {
        let config = ConfigLoader::new()
            .unwrap()
            .with_toml("[egress]\nallow_hosts = [\"db.internal\"]\n", "keelson.toml")
            .unwrap()
            .with_env(env(&[("KEELSON_EGRESS__ALLOW_CIDRS", "10.1.0.0/16, fd00::/8")]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(config.egress.allow_hosts, vec!["db.internal"]);
        assert_eq!(config.egress.allow_cidrs, vec!["10.1.0.0/16", "fd00::/8"]);
        for bad in ["10.0.0.0", "10.0.0.0/33", "::/129", "db/8"] {
            let error = ConfigLoader::new()
                .unwrap()
                .with_env(env(&[("KEELSON_EGRESS__ALLOW_CIDRS", bad)]))
                .unwrap()
                .build()
                .unwrap_err();
            assert_eq!(error.key, "egress.allow_cidrs", "{bad}");
            assert!(error.reason.contains(bad), "{}", error.reason);
        }
        let error = ConfigLoader::new()
            .unwrap()
            .with_env(env(&[("KEELSON_EGRESS__ALLOW_HOSTS", "http://x/")]))
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(error.key, "egress.allow_hosts");
    }

    #[test]
    fn layers_apply_in_order() {
        let config = ConfigLoader::new()
            .unwrap()
            .with_toml("data_dir = \"/srv/k\"\n[server]\nport = 7000\nhost = \"0.0.0.0\"\n", "keelson.toml")
            .unwrap()
            .with_env(env(&[("KEELSON_SERVER__PORT", "7100"), ("KEELSON_WORKER__CONCURRENCY", "4")]))
            .unwrap()
            .with_flag("server.port", "7200", "--port")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(config.data_dir, "/srv/k");
        assert_eq!(config.server.host, "0.0.0.0");
        assert_eq!(config.server.port, 7200);
        assert_eq!(config.worker.concurrency, 4);
        assert_eq!(config.database_url(), "sqlite:///srv/k/keelson.db");
        assert_eq!(config.artifacts_url(), "file:///srv/k/artifacts");
    }

    #[test]
    fn env_values_are_typed_by_the_default() {
        let config = ConfigLoader::new()
            .unwrap()
            .with_env(env(&[
                ("KEELSON_DATABASE__URL", "postgres://u:123@h/db"),
                ("KEELSON_ARTIFACTS__OPTIONS__AWS_REGION", "eu-west-1"),
                ("KEELSON_WORKER__IN_PROCESS", "false"),
                ("KEELSON_TEST_DATABASE_URL", "ignored"),
                ("OTHER", "x"),
            ]))
            .unwrap();
        assert_eq!(config.ignored_env, vec!["KEELSON_TEST_DATABASE_URL".to_string()]);
        let config = config.build().unwrap();
        assert_eq!(config.database.url, "postgres://u:123@h/db");
        assert_eq!(config.artifacts.options.get("aws_region").map(String::as_str), Some("eu-west-1"));
        assert!(!config.worker.in_process);
    }

    #[test]
    fn errors_name_the_key_the_reason_and_the_origin() {
        let err = ConfigLoader::new().unwrap().with_env(env(&[("KEELSON_SERVER__PORT", "eighty")])).unwrap_err();
        assert_eq!(err.key, "server.port");
        assert!(err.to_string().contains("KEELSON_SERVER__PORT"), "{err}");

        let err = ConfigLoader::new()
            .unwrap()
            .with_toml("[server]\nport = 70000\n", "keelson.toml")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err.key, "server.port");
        assert_eq!(err.origin.as_deref(), Some("keelson.toml"));

        let err = ConfigLoader::new()
            .unwrap()
            .with_toml("[server]\nprot = 1\n", "keelson.toml")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.reason.contains("prot"), "{err}");

        let err = ConfigLoader::new()
            .unwrap()
            .with_toml("[worker]\nheartbeat_seconds = 60\n", "keelson.toml")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err.key, "worker.heartbeat_seconds");
        assert!(err.to_string().contains("keelson.toml"), "{err}");

        let err = ConfigLoader::new()
            .unwrap()
            .with_flag("database.url", "mysql://x", "--database-url")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err.key, "database.url");
        assert_eq!(err.origin.as_deref(), Some("--database-url"));

        assert!(ConfigLoader::new().unwrap().with_toml("not = [valid", "keelson.toml").is_err());
    }

    #[test]
    fn secrets_are_masked() {
        let mut config = Config::default();
        config.database.url = "postgres://keelson:hunter2@db:5432/k?sslmode=require".into();
        config.artifacts.url = "s3://bucket/prefix".into();
        config.artifacts.options.insert("aws_secret_access_key".into(), "abc".into());
        config.artifacts.options.insert("aws_region".into(), "eu".into());
        config.secrets.key = "c2VjcmV0LWtleS1tYXRlcmlhbC1mb3ItdGVzdHMtMzI=".into();
        let shown = config.redacted();
        assert_eq!(shown.secrets.key, "***");
        assert_eq!(shown.database.url, "postgres://keelson:***@db:5432/k?sslmode=require");
        assert_eq!(shown.artifacts.options["aws_secret_access_key"], "***");
        assert_eq!(shown.artifacts.options["aws_region"], "eu");
        let text = toml::to_string(&shown).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("\"abc\"") && !text.contains("c2VjcmV0"), "{text}");
        assert_eq!(mask_url_password("https://h/x?sas_token=s3cr3t&a=b"), "https://h/x?sas_token=***&a=b");
    }

    #[test]
    fn a_workspace_adds_to_the_egress_lists_and_may_close_public_addresses() {
        let mut egress = EgressConfig { allow_hosts: vec!["shared.internal".into()], ..EgressConfig::default() };
        egress.workspaces.insert(
            "team-a".into(),
            WorkspaceEgressConfig {
                allow_hosts: vec!["warehouse.team-a.internal".into()],
                allow_cidrs: vec!["10.20.0.0/16".into()],
                allow_public: Some(false),
            },
        );
        let team = egress.for_workspace("team-a");
        assert_eq!(team.allow_hosts, ["shared.internal", "warehouse.team-a.internal"]);
        assert_eq!(team.allow_cidrs, ["10.20.0.0/16"]);
        assert!(!team.allow_public);
        let other = egress.for_workspace("team-b");
        assert_eq!((other.allow_hosts.len(), other.allow_cidrs.len(), other.allow_public), (1, 0, true));
        assert!(egress.validate().is_ok());
        egress.workspaces.insert("Bad_Name".into(), WorkspaceEgressConfig::default());
        assert_eq!(egress.validate().unwrap_err().key, "egress.workspaces");
        egress.workspaces.remove("Bad_Name");
        let bad_range = WorkspaceEgressConfig { allow_cidrs: vec!["10.0.0.1".into()], ..Default::default() };
        egress.workspaces.insert("team-c".into(), bad_range);
        assert_eq!(egress.validate().unwrap_err().key, "egress.workspaces.team-c.allow_cidrs");
    }
}
