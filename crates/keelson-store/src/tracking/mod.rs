//! SQL for MLflow-compatible tracking: experiments, runs, metrics, params, tags, inputs,
//! logged models and traces.

mod experiments;
mod group_commit;
mod logged_models;
mod metrics;
mod runs;
pub mod search_sql;
mod traces;

pub use logged_models::NewLoggedModel;
pub use runs::{RunSearch, RunUpdate, RUN_NAME_TAG};
pub use traces::StoredTrace;

pub(crate) use group_commit::BatchQueue;
pub use group_commit::GroupCommitStats;

use crate::backend::Backend;
use crate::error::StoreError;

/// MLflow page tokens are opaque; ours carry an offset.
pub(crate) fn encode_offset_token(offset: i64) -> String {
    format!("o{offset}")
}

/// Searches fetch one row more than a page: when it came, the page is cut to `max_results` and
/// the token points past it.
pub(crate) fn cut_page<T>(items: &mut Vec<T>, max_results: i64, offset: i64) -> Option<String> {
    if items.len() as i64 > max_results {
        items.truncate(max_results as usize);
        Some(encode_offset_token(offset + max_results))
    } else {
        None
    }
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

/// `count` placeholders for parameters `first..first + count`.
///
/// SQLite looks a named parameter (`$N`, `?N`) up by walking a list, so binding thousands of
/// them costs quadratic time; anonymous `?`s cost nothing. sqlx numbers anonymous `?`s by its own
/// counter from 1 in textual order, so they are only used when these are the statement's first
/// parameters (callers put such lists first); later lists get explicit `?N`.
pub(crate) fn placeholders(backend: Backend, first: usize, count: usize) -> String {
    let numbered = |prefix: char| (first..first + count).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>().join(", ");
    match backend {
        Backend::Sqlite if first == 1 => vec!["?"; count].join(", "),
        Backend::Sqlite => numbered('?'),
        Backend::Postgres => numbered('$'),
    }
}

/// `$first, $first+1, …`: numbered on both backends, for short lists in statements whose other
/// placeholders are numbered too.
pub(crate) fn numbered_placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Rows of `width` placeholders, `(…), (…)`, for multi-row INSERTs that bind nothing else.
pub(crate) fn row_placeholders(backend: Backend, rows: usize, width: usize) -> String {
    let row = |i: usize| match backend {
        Backend::Sqlite => format!("({})", vec!["?"; width].join(", ")),
        Backend::Postgres => format!("({})", placeholders(backend, i * width + 1, width)),
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}
