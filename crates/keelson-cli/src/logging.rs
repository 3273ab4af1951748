//! `tracing` set-up: human-readable on a terminal, JSON lines for log shippers.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if format == "json" {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
    if let Err(error) = result {
        eprintln!("warning: logging was already initialised: {error}");
    }
}
