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
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration with secrets masked.
    Show,
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
