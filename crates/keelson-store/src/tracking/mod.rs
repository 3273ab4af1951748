//! SQL for MLflow-compatible tracking: experiments, runs, metrics, params, tags, inputs,
//! logged models and traces.

mod experiments;
mod logged_models;
mod metrics;
mod runs;
pub mod search_sql;
mod traces;

pub use logged_models::NewLoggedModel;
pub use runs::{RunSearch, RunUpdate, RUN_NAME_TAG};
pub use traces::StoredTrace;

use crate::error::StoreError;

/// MLflow page tokens are opaque; ours carry an offset.
pub(crate) fn encode_offset_token(offset: i64) -> String {
    format!("o{offset}")
}

pub(crate) fn decode_offset_token(token: Option<&str>) -> Result<i64, StoreError> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => token
            .strip_prefix('o')
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| StoreError::InvalidArgument(format!("invalid page_token `{token}`"))),
    }
}

/// Experiment ids are decimal strings on the wire and integers in the database.
pub(crate) fn parse_experiment_id(id: &str) -> Result<i64, StoreError> {
    id.trim().parse::<i64>().map_err(|_| {
        StoreError::InvalidArgument(format!("Invalid experiment ID: '{id}'. Experiment IDs must be integers."))
    })
}

/// NaN is stored as 0 with a flag, since SQLite cannot store it.
pub(crate) fn split_nan(value: f64) -> (f64, i64) {
    if value.is_nan() {
        (0.0, 1)
    } else {
        (value, 0)
    }
}

pub(crate) fn join_nan(value: f64, is_nan: i64) -> f64 {
    if is_nan != 0 {
        f64::NAN
    } else {
        value
    }
}

/// `$a, $b, …` for `count` placeholders starting at `first`.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Rows of `width` placeholders: `($1, $2), ($3, $4)`.
pub(crate) fn row_placeholders(rows: usize, width: usize) -> String {
    (0..rows).map(|row| format!("({})", placeholders(row * width + 1, width))).collect::<Vec<_>>().join(", ")
}
