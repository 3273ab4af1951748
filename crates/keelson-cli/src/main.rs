//! The `keelson` command.

mod cli;
mod client;
mod endpoint;
mod lineage;
mod logging;
mod model;
mod monitor;
mod package;
mod run;

use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Still one thread here, so changing the environment is sound; a value the user set wins.
    for (name, value) in keelson_data::ENGINE_ENVIRONMENT {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run::run(args))
}
