//! Command-line arguments. Flags that set configuration map to a dotted config key so they take
//! part in the layering (defaults < keelson.toml < KEELSON_* < flags).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "keelson", version, about = "MLOps and GenAIOps platform in one binary")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (default: ./keelson.toml when present).
    #[arg(long, global = true, env = "KEELSON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and artifacts.
    #[arg(long, global = true)]
    pub data_dir: Option<String>,
    /// Log format: auto, human or json.
    #[arg(long, global = true)]
    pub log_format: Option<String>,
    /// Log filter, e.g. `info` or `keelson_store=debug,info`.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server with an in-process worker.
    Server(ServerArgs),
    /// Run a worker that claims jobs from a shared metadata store.
    Worker(WorkerArgs),
    /// Start the embedded default (SQLite and local files) and print where it listens.
    Quickstart(ServerArgs),
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage the metadata database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Users in the configured metadata database (to set up the first admin without a server).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Service tokens in the configured metadata database; the token is printed once.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit log in the configured metadata database: check its hash chain, export it.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Registered models on a running server: aliases, policies, approvals, lineage, export.
    Model(ModelArgs),
    /// The model catalog on a running server: list models, sync catalog files.
    Catalog(CatalogArgs),
    /// Online endpoints on a running server: deployments, traffic, rollback, canary rollouts.
    Endpoint(EndpointArgs),
    /// The lineage graph on a running server (OpenLineage events and Keelson's own links).
    Lineage(LineageArgs),
    /// Drift reports and monitors on a running server.
    Monitor(MonitorArgs),
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Server URL.
    #[arg(long, env = "KEELSON_SERVER_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// API token (sent as a bearer token).
    #[arg(long, env = "KEELSON_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: MonitorCommand,
}

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// A drift report between two dataset versions (`NAME` for the newest, `NAME:VERSION`):
    /// prints each column's verdict; writes the JSON and HTML reports when asked.
    Report {
        #[arg(long)]
        reference: String,
        #[arg(long)]
        current: String,
        /// Drift options as a JSON or YAML file (method per column, thresholds, drift_share…).
        #[arg(long)]
        options: Option<std::path::PathBuf>,
        /// Write the JSON report here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Write the self-contained HTML report here.
        #[arg(long)]
        html: Option<std::path::PathBuf>,
        /// Exit with status 3 when the dataset drifts (for CI/CD gates).
        #[arg(long)]
        fail_on_drift: bool,
    },
    /// Creates a monitor from a `version: 1` spec (YAML or JSON file; `-` reads standard input).
    Create { spec: std::path::PathBuf },
    /// Replaces a monitor's spec.
    Update { spec: std::path::PathBuf },
    /// Lists monitors.
    List,
    /// Runs a monitor now; prints its tests and alerts.
    Run {
        name: String,
        /// Exit with status 3 when a test fails (for CI/CD gates).
        #[arg(long)]
        fail_on_alert: bool,
    },
    /// Lists alerts, newest first.
    Alerts {
        #[arg(long)]
        monitor: Option<String>,
        /// `firing` or `resolved`.
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// Server URL.
    #[arg(long, env = "KEELSON_SERVER_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// API token (sent as a bearer token).
    #[arg(long, env = "KEELSON_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: LineageCommand,
}

#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// The graph around a node, as JSON: `dataset:<namespace>:<name>`, `job:<namespace>:<name>`,
    /// `run:<id>`, `model:<name>:<version>` or `deployment:<endpoint>:<deployment>`.
    Show {
        node_id: String,
        /// Follow edges upstream only (what the node came from).
        #[arg(long, conflicts_with = "downstream")]
        upstream: bool,
        /// Follow edges downstream only (what was made from the node).
        #[arg(long)]
        downstream: bool,
        /// How many edges to follow (at most 100).
        #[arg(long, default_value_t = 20)]
        depth: u32,
    },
}

#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Server URL.
    #[arg(long, env = "KEELSON_SERVER_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// API token (sent as a bearer token).
    #[arg(long, env = "KEELSON_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: EndpointCommand,
}

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Every endpoint with its traffic.
    List,
    /// One endpoint with its deployments, as JSON.
    Show { name: String },
    /// Create an endpoint.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Create or replace a deployment from a JSON spec file (`-` for standard input); it gets
    /// traffic only after it loads and passes its smoke test.
    Deploy { name: String, deployment: String, file: PathBuf },
    /// Set the traffic split, e.g. `blue=90 green=10` (shares sum to 100, or 0 to stop).
    Traffic {
        name: String,
        #[arg(required = true)]
        shares: Vec<String>,
        /// Mirror a share of requests to a deployment, e.g. `--mirror shadow=10`.
        #[arg(long)]
        mirror: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Restore the routing configuration in place before the last change, at once.
    Rollback { name: String },
    /// Routing changes of an endpoint, newest first.
    History {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Start a canary rollout from a JSON spec file (`-` for standard input).
    Rollout { name: String, file: PathBuf },
    /// Stop the endpoint's rollout and give the primary all traffic back.
    AbortRollout { name: String },
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Server URL.
    #[arg(long, env = "KEELSON_SERVER_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// API token (sent as a bearer token).
    #[arg(long, env = "KEELSON_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: CatalogCommand,
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Active catalog models (with --all, removed ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Sync one source (a configured one, or SOURCE with --location), or all configured ones.
    Sync {
        source: Option<String>,
        /// Catalog file: a path on the server, file:// or http(s):// URL.
        #[arg(long)]
        location: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Server URL.
    #[arg(long, env = "KEELSON_SERVER_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// API token (sent as a bearer token).
    #[arg(long, env = "KEELSON_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: ModelCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Point an alias at a version (checked against the alias's promotion policy).
    SetAlias {
        name: String,
        alias: String,
        version: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Move an alias back to the version it pointed at before its last move.
    Rollback { name: String, alias: String },
    /// Every alias move of a model, oldest first.
    History {
        name: String,
        #[arg(long)]
        alias: Option<String>,
    },
    /// Set the promotion policy of an alias from a JSON file (`-` for standard input).
    SetPolicy { name: String, alias: String, file: PathBuf },
    /// Show the promotion policy of an alias.
    Policy { name: String, alias: String },
    /// Approve a version for an alias, as the user of --token.
    Approve {
        name: String,
        version: String,
        #[arg(long)]
        alias: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// A version's lineage as a tree: run, code, data, environment, signature, metrics.
    Lineage {
        name: String,
        version: String,
        /// Print JSON instead of the tree.
        #[arg(long)]
        json: bool,
    },
    /// Write NAME@ALIAS or NAME/VERSION as a self-describing package into DIR.
    Export { model: String, dir: PathBuf },
    /// Register a package written by `export` on this server.
    Import {
        dir: PathBuf,
        /// Register under this name instead of the exported one.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration with secrets masked.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Add {
        name: String,
        /// Workspace role: viewer, editor or admin.
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for a principal (a user or a service) and print it.
    Create {
        principal: String,
        /// Also bind this workspace role to the principal: viewer, editor or admin.
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain; exit status 1 and the first bad record if it was edited or cut.
    Verify {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Print the log as JSON Lines, in sequence order.
    Export {
        #[arg(long)]
        database_url: Option<String>,
        /// Only records after this sequence number.
        #[arg(long)]
        after: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending schema migrations.
    Migrate {
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long)]
    pub port: Option<String>,
    #[arg(long)]
    pub database_url: Option<String>,
    /// Artifact store URL: file:///PATH, s3://BUCKET/PREFIX, az://CONTAINER/PREFIX, gs://BUCKET/PREFIX.
    #[arg(long)]
    pub artifacts: Option<String>,
    /// Do not run the in-process worker (use `keelson worker` processes instead).
    #[arg(long)]
    pub no_worker: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long)]
    pub artifacts: Option<String>,
    /// Jobs run at the same time.
    #[arg(long)]
    pub concurrency: Option<String>,
    /// Name in leases and the attempt log (default: host:pid:random).
    #[arg(long)]
    pub worker_id: Option<String>,
}

impl ServerArgs {
    pub fn flags(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut flags = Vec::new();
        push(&mut flags, "server.host", &self.host, "--host");
        push(&mut flags, "server.port", &self.port, "--port");
        push(&mut flags, "database.url", &self.database_url, "--database-url");
        push(&mut flags, "artifacts.url", &self.artifacts, "--artifacts");
        if self.no_worker {
            flags.push(("worker.in_process", "false".to_string(), "--no-worker"));
        }
        flags
    }
}

impl WorkerArgs {
    pub fn flags(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut flags = Vec::new();
        push(&mut flags, "database.url", &self.database_url, "--database-url");
        push(&mut flags, "artifacts.url", &self.artifacts, "--artifacts");
        push(&mut flags, "worker.concurrency", &self.concurrency, "--concurrency");
        flags
    }
}

fn push(
    flags: &mut Vec<(&'static str, String, &'static str)>,
    key: &'static str,
    value: &Option<String>,
    flag: &'static str,
) {
    if let Some(value) = value {
        flags.push((key, value.clone(), flag));
    }
}
