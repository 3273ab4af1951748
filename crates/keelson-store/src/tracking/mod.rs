//! SQL for MLflow-compatible tracking: experiments, runs, metrics, params, tags, inputs,
//! logged models and traces.

pub mod search_sql;
