//! Compiles the search ASTs of `keelson_core::search` into parameterised SQL that runs unchanged
//! on SQLite and PostgreSQL.
//!
//! Semantics follow MLflow 3's SQL store (`mlflow/store/tracking/sqlalchemy_store.py`:
//! `_get_sqlalchemy_filter_clauses`, `_get_orderby_clauses`,
//! `_get_search_experiments_filter_clauses`, `_get_search_experiments_order_by_clauses`):
//!
//! - a comparison on a metric, param, tag or dataset matches runs that *have* that key and whose
//!   value satisfies it (runs lacking the key never match, not even `!=`);
//! - NaN metrics (stored as 0 with `is_nan = 1`) satisfy only `!=`;
//! - `LIKE` is case-sensitive and `ILIKE` case-insensitive on both backends; `%` and `_` are the
//!   wildcards and a backslash escapes the next character;
//! - run ordering puts runs lacking the key last (after NaN for metrics) in either direction,
//!   then breaks ties with `start_time DESC, run_uuid ASC`; experiments end with `experiment_id`.
//!
//! User text only ever reaches the database as a bound value: keys, values and patterns become
//! `$N` placeholders, and column and table names come from fixed match arms.

use crate::backend::{Backend, Store};
use crate::error::StoreError;
use keelson_core::registry::PROMPT_TAG;
use keelson_core::search::{
    CompareOp, DatasetField, ExperimentComparison, ExperimentFilter, ExperimentKey, ExperimentOrderBy, FilterValue,
    RegistryFilter, RegistryKey, RegistryOrderBy, RegistryOrderKey, RunAttribute, RunComparison, RunFilter, RunKey,
    RunOrderBy,
};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};
use std::collections::HashSet;

/// A value bound to one `$N` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
}

/// SQL text with `$N` placeholders and the values for them, in placeholder order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SqlFragment {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// Binds a fragment's values, in order, after whatever the query has bound already.
pub fn bind_all<'q>(mut query: Query<'q, Any, AnyArguments<'q>>, binds: &[Bind]) -> Query<'q, Any, AnyArguments<'q>> {
    for bind in binds {
        query = match bind {
            Bind::Text(value) => query.bind(value.clone()),
            Bind::Int(value) => query.bind(*value),
            Bind::Float(value) => query.bind(*value),
        };
    }
    query
}

/// A boolean expression over `runs r` for the filter; `1 = 1` when it has no clauses.
///
/// `next_placeholder` is the number the first placeholder gets; it is left one past the last.
pub fn run_filter_sql(
    filter: &RunFilter,
    next_placeholder: &mut usize,
    backend: Backend,
) -> Result<SqlFragment, StoreError> {
    let mut builder = Builder::new(next_placeholder, backend);
    let mut conditions = Vec::with_capacity(filter.clauses.len());
    for clause in &filter.clauses {
        conditions.push(builder.run_condition(clause)?);
    }
    Ok(builder.finish(conjunction(conditions)))
}

/// A run ordering: LEFT JOINs that bring each ordered metric, param or tag alongside its run (one
/// index lookup per run, instead of correlated subqueries per sort term), and the ORDER BY list
/// (without the keywords) over `r` and those joins, ending with MLflow's tie-breakers. The binds
/// belong to `joins`, numbered from the `next_placeholder` given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOrderSql {
    pub joins: String,
    pub order_by: String,
    pub binds: Vec<Bind>,
}

pub fn run_order_sql(order: &[RunOrderBy], next_placeholder: &mut usize) -> Result<RunOrderSql, StoreError> {
    // Ordering never compares patterns, so the backend does not matter here.
    let mut builder = Builder::new(next_placeholder, Backend::Sqlite);
    let mut terms = Vec::new();
    let mut joins = Vec::new();
    let mut seen = HashSet::new();
    for (index, order_by) in order.iter().enumerate() {
        if !seen.insert(&order_by.key) {
            return Err(StoreError::InvalidArgument(format!(
                "order_by contains the field {} more than once",
                describe_run_key(&order_by.key)
            )));
        }
        builder.run_order_terms(order_by, index, &mut joins, &mut terms)?;
    }
    if !seen.contains(&RunKey::Attribute(RunAttribute::StartTime)) {
        terms.push("r.start_time DESC".to_string());
    }
    terms.push("r.run_uuid ASC".to_string());
    let fragment = builder.finish(String::new());
    Ok(RunOrderSql { joins: joins.join(" "), order_by: terms.join(", "), binds: fragment.binds })
}

/// A boolean expression over `experiments e` for the filter; `1 = 1` when it has no clauses.
pub fn experiment_filter_sql(
    filter: &ExperimentFilter,
    next_placeholder: &mut usize,
    backend: Backend,
) -> Result<SqlFragment, StoreError> {
    let mut builder = Builder::new(next_placeholder, backend);
    let mut conditions = Vec::with_capacity(filter.clauses.len());
    for clause in &filter.clauses {
        conditions.push(builder.experiment_condition(clause)?);
    }
    Ok(builder.finish(conjunction(conditions)))
}

/// An ORDER BY list over `experiments e`. With no clauses: `creation_time DESC, experiment_id
/// ASC`; otherwise the clauses, then `experiment_id DESC` unless they order by it already.
pub fn experiment_order_sql(
    order: &[ExperimentOrderBy],
    next_placeholder: &mut usize,
) -> Result<SqlFragment, StoreError> {
    let builder = Builder::new(next_placeholder, Backend::Sqlite);
    if order.is_empty() {
        return Ok(builder.finish("e.creation_time DESC, e.experiment_id ASC".to_string()));
    }
    let mut terms = Vec::with_capacity(order.len() + 1);
    for order_by in order {
        let column = match &order_by.key {
            ExperimentKey::Name => "e.name",
            ExperimentKey::CreationTime => "e.creation_time",
            ExperimentKey::LastUpdateTime => "e.last_update_time",
            ExperimentKey::ExperimentId => "e.experiment_id",
            ExperimentKey::Tag(key) => {
                return Err(StoreError::InvalidArgument(format!(
                    "experiments cannot be ordered by tag '{key}'; order by name, \
                     experiment_id, creation_time or last_update_time"
                )))
            }
        };
        terms.push(format!("{column} {}", direction(order_by.ascending)));
    }
    if !order.iter().any(|order_by| order_by.key == ExperimentKey::ExperimentId) {
        terms.push("e.experiment_id DESC".to_string());
    }
    Ok(builder.finish(terms.join(", ")))
}

impl Store {
    /// Runs `SELECT r.run_uuid FROM runs r WHERE <filter> ORDER BY <order>`; for tests of the
    /// search compiler against a real database.
    #[doc(hidden)]
    pub async fn query_run_ids_for_tests(
        &self,
        where_fragment: &SqlFragment,
        order: &RunOrderSql,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT r.run_uuid FROM runs r {} WHERE {} ORDER BY {}",
            order.joins, where_fragment.sql, order.order_by
        );
        let query = bind_all(sqlx::query(&sql), &where_fragment.binds);
        let rows = bind_all(query, &order.binds).fetch_all(&self.reader).await?;
        rows.iter().map(|row| row.try_get::<String, _>(0).map_err(StoreError::from)).collect()
    }

    /// Runs `SELECT e.experiment_id FROM experiments e WHERE <filter> ORDER BY <order>`; for tests.
    #[doc(hidden)]
    pub async fn query_experiment_ids_for_tests(
        &self,
        where_fragment: &SqlFragment,
        order: &SqlFragment,
    ) -> Result<Vec<i64>, StoreError> {
        let sql =
            format!("SELECT e.experiment_id FROM experiments e WHERE {} ORDER BY {}", where_fragment.sql, order.sql);
        let query = bind_all(sqlx::query(&sql), &where_fragment.binds);
        let rows = bind_all(query, &order.binds).fetch_all(&self.reader).await?;
        rows.iter().map(|row| row.try_get::<i64, _>(0).map_err(StoreError::from)).collect()
    }
}

fn conjunction(conditions: Vec<String>) -> String {
    if conditions.is_empty() {
        return "1 = 1".to_string();
    }
    conditions.iter().map(|condition| format!("({condition})")).collect::<Vec<_>>().join(" AND ")
}

fn direction(ascending: bool) -> &'static str {
    if ascending {
        "ASC"
    } else {
        "DESC"
    }
}

fn describe_run_key(key: &RunKey) -> String {
    match key {
        RunKey::Metric(key) => format!("metrics.`{key}`"),
        RunKey::Param(key) => format!("params.`{key}`"),
        RunKey::Tag(key) => format!("tags.`{key}`"),
        RunKey::Attribute(attribute) => format!("attributes.{}", attribute_column(*attribute).1),
        RunKey::Dataset(field) => format!(
            "datasets.{}",
            match field {
                DatasetField::Name => "name",
                DatasetField::Digest => "digest",
                DatasetField::Context => "context",
            }
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Text,
    Integer,
    Real,
}

/// The `runs` column behind an attribute, its MLflow name (for messages) and its type.
fn attribute_column(attribute: RunAttribute) -> (&'static str, &'static str, ColumnType) {
    match attribute {
        RunAttribute::RunId => ("r.run_uuid", "run_id", ColumnType::Text),
        // MLflow filters run_name through the `mlflow.runName` tag because runs from MLflow
        // <= 1.29 have an empty name column; our `name` column is always set and kept equal to
        // that tag, so it is used directly.
        RunAttribute::RunName => ("r.name", "run_name", ColumnType::Text),
        RunAttribute::Status => ("r.status", "status", ColumnType::Text),
        RunAttribute::UserId => ("r.user_id", "user_id", ColumnType::Text),
        RunAttribute::ArtifactUri => ("r.artifact_uri", "artifact_uri", ColumnType::Text),
        RunAttribute::LifecycleStage => ("r.lifecycle_stage", "lifecycle_stage", ColumnType::Text),
        RunAttribute::StartTime => ("r.start_time", "start_time", ColumnType::Integer),
        RunAttribute::EndTime => ("r.end_time", "end_time", ColumnType::Integer),
    }
}

/// One piece of a LIKE pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternPart {
    Literal(char),
    AnySequence,
    AnyChar,
}

/// `%` and `_` are wildcards; a backslash makes the next character literal (a trailing lone
/// backslash is itself literal).
fn parse_like_pattern(pattern: &str) -> Vec<PatternPart> {
    let mut parts = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '%' => PatternPart::AnySequence,
            '_' => PatternPart::AnyChar,
            '\\' => PatternPart::Literal(chars.next().unwrap_or('\\')),
            other => PatternPart::Literal(other),
        });
    }
    parts
}

/// The pattern for `LIKE … ESCAPE '\'` (PostgreSQL's default escape is also `\`).
fn like_pattern(parts: &[PatternPart]) -> String {
    let mut pattern = String::with_capacity(parts.len());
    for part in parts {
        match part {
            PatternPart::AnySequence => pattern.push('%'),
            PatternPart::AnyChar => pattern.push('_'),
            PatternPart::Literal(c @ ('%' | '_' | '\\')) => {
                pattern.push('\\');
                pattern.push(*c);
            }
            PatternPart::Literal(c) => pattern.push(*c),
        }
    }
    pattern
}

/// The pattern for SQLite's GLOB, which is case-sensitive (SQLite's LIKE is not, for ASCII).
fn glob_pattern(parts: &[PatternPart]) -> String {
    let mut pattern = String::with_capacity(parts.len());
    for part in parts {
        match part {
            PatternPart::AnySequence => pattern.push('*'),
            PatternPart::AnyChar => pattern.push('?'),
            PatternPart::Literal('*') => pattern.push_str("[*]"),
            PatternPart::Literal('?') => pattern.push_str("[?]"),
            PatternPart::Literal('[') => pattern.push_str("[[]"),
            PatternPart::Literal(c) => pattern.push(*c),
        }
    }
    pattern
}

struct Builder<'a> {
    next_placeholder: &'a mut usize,
    backend: Backend,
    binds: Vec<Bind>,
}

impl<'a> Builder<'a> {
    fn new(next_placeholder: &'a mut usize, backend: Backend) -> Self {
        Self { next_placeholder, backend, binds: Vec::new() }
    }

    fn finish(self, sql: String) -> SqlFragment {
        SqlFragment { sql, binds: self.binds }
    }

    /// Records a value and returns its placeholder. Doubles get an explicit cast: PostgreSQL
    /// connections cache prepared statements by SQL text, and the same text once prepared with
    /// an integer parameter would otherwise read a double's bytes as an integer.
    fn bind(&mut self, value: Bind) -> String {
        let placeholder = match value {
            Bind::Float(_) => format!("CAST(${} AS DOUBLE PRECISION)", *self.next_placeholder),
            _ => format!("${}", *self.next_placeholder),
        };
        *self.next_placeholder += 1;
        self.binds.push(value);
        placeholder
    }

    fn bind_text(&mut self, value: &str) -> String {
        self.bind(Bind::Text(value.to_string()))
    }

    /// `column <op> value` for one comparison on a column of a known type.
    fn predicate(
        &mut self,
        column: &str,
        column_type: ColumnType,
        op: CompareOp,
        value: &FilterValue,
        subject: &str,
    ) -> Result<String, StoreError> {
        let mismatch = || {
            StoreError::InvalidArgument(format!(
                "cannot compare {subject} with {} {}",
                op.as_str(),
                describe_value(value)
            ))
        };
        match (op, value) {
            (CompareOp::Eq | CompareOp::Ne | CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge, _) => {
                let operator = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Ne => "<>",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    _ => ">=",
                };
                let bind = match (column_type, value) {
                    (ColumnType::Text, FilterValue::String(text)) => Bind::Text(text.clone()),
                    (ColumnType::Integer, FilterValue::Number(number)) => integer_bind(*number),
                    (ColumnType::Real, FilterValue::Number(number)) => Bind::Float(*number),
                    _ => return Err(mismatch()),
                };
                let placeholder = self.bind(bind);
                Ok(format!("{column} {operator} {placeholder}"))
            }
            (CompareOp::Like | CompareOp::ILike, FilterValue::String(pattern)) if column_type == ColumnType::Text => {
                Ok(self.like(column, pattern, op == CompareOp::Like))
            }
            (CompareOp::In | CompareOp::NotIn, FilterValue::List(values)) if column_type == ColumnType::Text => {
                let placeholders: Vec<String> = values.iter().map(|value| self.bind_text(value)).collect();
                Ok(in_list(column, op == CompareOp::NotIn, &placeholders))
            }
            (CompareOp::IsNull, FilterValue::None) => Ok(format!("{column} IS NULL")),
            (CompareOp::IsNotNull, FilterValue::None) => Ok(format!("{column} IS NOT NULL")),
            _ => Err(mismatch()),
        }
    }

    fn like(&mut self, column: &str, pattern: &str, case_sensitive: bool) -> String {
        let parts = parse_like_pattern(pattern);
        match (self.backend, case_sensitive) {
            (Backend::Postgres, true) => {
                let placeholder = self.bind(Bind::Text(like_pattern(&parts)));
                format!("{column} LIKE {placeholder}")
            }
            (Backend::Postgres, false) => {
                let placeholder = self.bind(Bind::Text(like_pattern(&parts)));
                format!("{column} ILIKE {placeholder}")
            }
            (Backend::Sqlite, true) => {
                let placeholder = self.bind(Bind::Text(glob_pattern(&parts)));
                format!("{column} GLOB {placeholder}")
            }
            // LOWER on both sides keeps this case-insensitive even on a connection that turned
            // on `case_sensitive_like` (as MLflow does). SQLite folds ASCII letters only.
            (Backend::Sqlite, false) => {
                let placeholder = self.bind(Bind::Text(like_pattern(&parts)));
                format!("LOWER({column}) LIKE LOWER({placeholder}) ESCAPE '\\'")
            }
        }
    }

    fn run_condition(&mut self, clause: &RunComparison) -> Result<String, StoreError> {
        let subject = describe_run_key(&clause.key);
        match &clause.key {
            RunKey::Metric(key) | RunKey::Param(key) | RunKey::Tag(key) => {
                let (table, alias, column, column_type) = match clause.key {
                    RunKey::Metric(_) => ("latest_metrics", "lm", "lm.value", ColumnType::Real),
                    RunKey::Param(_) => ("params", "p", "p.value", ColumnType::Text),
                    _ => ("tags", "t", "t.value", ColumnType::Text),
                };
                let key_placeholder = self.bind_text(key);
                let has_key = format!(
                    "SELECT 1 FROM {table} {alias} WHERE {alias}.run_uuid = r.run_uuid \
                     AND {alias}.key = {key_placeholder}"
                );
                match clause.op {
                    CompareOp::IsNull => return Ok(format!("NOT EXISTS ({has_key})")),
                    CompareOp::IsNotNull => return Ok(format!("EXISTS ({has_key})")),
                    _ => {}
                }
                let is_metric = matches!(clause.key, RunKey::Metric(_));
                let mut condition = self.predicate(column, column_type, clause.op, &clause.value, &subject)?;
                if is_metric {
                    // NaN is stored as 0 with a flag: it satisfies `!=` and nothing else.
                    condition = if clause.op == CompareOp::Ne {
                        format!("({condition} OR lm.is_nan = 1)")
                    } else {
                        format!("{condition} AND lm.is_nan = 0")
                    };
                }
                Ok(format!("EXISTS ({has_key} AND {condition})"))
            }
            RunKey::Attribute(attribute) => {
                let (column, _, column_type) = attribute_column(*attribute);
                self.predicate(column, column_type, clause.op, &clause.value, &subject)
            }
            RunKey::Dataset(field) => {
                if matches!(clause.op, CompareOp::IsNull | CompareOp::IsNotNull) {
                    return Err(StoreError::InvalidArgument(format!(
                        "IS NULL / IS NOT NULL is only supported for tags and params, not for \
                         {subject}"
                    )));
                }
                // Only the inputs that carry a value take part: a NULL context satisfies no
                // comparison, as in MLflow, which joins on the context input tag.
                let (column, from) = match field {
                    DatasetField::Name => {
                        ("ds.name", "run_dataset_inputs rdi JOIN datasets ds ON ds.dataset_uuid = rdi.dataset_uuid")
                    }
                    DatasetField::Digest => {
                        ("ds.digest", "run_dataset_inputs rdi JOIN datasets ds ON ds.dataset_uuid = rdi.dataset_uuid")
                    }
                    DatasetField::Context => ("rdi.context", "run_dataset_inputs rdi"),
                };
                let condition = self.predicate(column, ColumnType::Text, clause.op, &clause.value, &subject)?;
                Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE rdi.run_uuid = r.run_uuid AND {condition})"))
            }
        }
    }

    fn run_order_terms(
        &mut self,
        order_by: &RunOrderBy,
        index: usize,
        joins: &mut Vec<String>,
        terms: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let direction = direction(order_by.ascending);
        match &order_by.key {
            RunKey::Metric(key) => {
                // Real values first, then NaN, then runs without the metric, whatever the
                // direction (MLflow's `clause_N` CASE column).
                let alias = format!("o{index}");
                let key = self.bind_text(key);
                joins.push(format!(
                    "LEFT JOIN latest_metrics {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = {key}"
                ));
                terms.push(format!("COALESCE({alias}.is_nan, 2) ASC"));
                terms.push(format!("{alias}.value {direction}"));
            }
            RunKey::Param(key) | RunKey::Tag(key) => {
                let table = if matches!(order_by.key, RunKey::Param(_)) { "params" } else { "tags" };
                let alias = format!("o{index}");
                let key = self.bind_text(key);
                joins.push(format!(
                    "LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = {key}"
                ));
                terms.push(format!("CASE WHEN {alias}.run_uuid IS NULL THEN 1 ELSE 0 END ASC"));
                terms.push(format!("{alias}.value {direction}"));
            }
            RunKey::Attribute(attribute) => {
                let (column, _, _) = attribute_column(*attribute);
                if *attribute == RunAttribute::EndTime {
                    // The only nullable attribute: runs still going sort last.
                    terms.push(format!("CASE WHEN {column} IS NULL THEN 1 ELSE 0 END ASC"));
                }
                terms.push(format!("{column} {direction}"));
            }
            RunKey::Dataset(_) => {
                return Err(StoreError::InvalidArgument(format!(
                    "runs cannot be ordered by {}; order by a metric, parameter, tag or attribute",
                    describe_run_key(&order_by.key)
                )))
            }
        }
        Ok(())
    }

    fn experiment_condition(&mut self, clause: &ExperimentComparison) -> Result<String, StoreError> {
        match &clause.key {
            ExperimentKey::Name => self.predicate("e.name", ColumnType::Text, clause.op, &clause.value, "name"),
            ExperimentKey::CreationTime => {
                self.predicate("e.creation_time", ColumnType::Integer, clause.op, &clause.value, "creation_time")
            }
            ExperimentKey::LastUpdateTime => {
                self.predicate("e.last_update_time", ColumnType::Integer, clause.op, &clause.value, "last_update_time")
            }
            ExperimentKey::ExperimentId => self.experiment_id_condition(clause),
            ExperimentKey::Tag(key) => {
                let key_placeholder = self.bind_text(key);
                let has_key = format!(
                    "SELECT 1 FROM experiment_tags et WHERE et.experiment_id = e.experiment_id \
                     AND et.key = {key_placeholder}"
                );
                match clause.op {
                    CompareOp::IsNull => Ok(format!("NOT EXISTS ({has_key})")),
                    CompareOp::IsNotNull => Ok(format!("EXISTS ({has_key})")),
                    _ => {
                        let subject = format!("tags.`{key}`");
                        let condition =
                            self.predicate("et.value", ColumnType::Text, clause.op, &clause.value, &subject)?;
                        Ok(format!("EXISTS ({has_key} AND {condition})"))
                    }
                }
            }
        }
    }

    /// Experiment ids are decimal strings in filters and integers in the table.
    fn experiment_id_condition(&mut self, clause: &ExperimentComparison) -> Result<String, StoreError> {
        let parse = |id: &str| {
            id.trim().parse::<i64>().map_err(|_| {
                StoreError::InvalidArgument(format!(
                    "invalid experiment ID '{id}'; an experiment ID must be a valid integer"
                ))
            })
        };
        match (clause.op, &clause.value) {
            (CompareOp::Eq | CompareOp::Ne, FilterValue::String(id)) => {
                let placeholder = self.bind(Bind::Int(parse(id)?));
                let operator = if clause.op == CompareOp::Eq { "=" } else { "<>" };
                Ok(format!("e.experiment_id {operator} {placeholder}"))
            }
            (CompareOp::In | CompareOp::NotIn, FilterValue::List(ids)) => {
                let mut placeholders = Vec::with_capacity(ids.len());
                for id in ids {
                    let id = parse(id)?;
                    placeholders.push(self.bind(Bind::Int(id)));
                }
                Ok(in_list("e.experiment_id", clause.op == CompareOp::NotIn, &placeholders))
            }
            (op, value) => Err(StoreError::InvalidArgument(format!(
                "invalid comparison experiment_id {} {}; experiment_id accepts =, !=, IN and \
                 NOT IN with quoted ids",
                op.as_str(),
                describe_value(value)
            ))),
        }
    }
}

/// What a registry search returns: registered models (`registered_models rm`) or model versions
/// (`model_versions mv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryTable {
    Models,
    Versions,
}

/// A boolean expression over `rm` or `mv` for a registry filter. Prompts (models tagged
/// `mlflow.prompt.is_prompt = 'true'`) are left out unless the filter asks for them with that
/// very tag, as MLflow does.
pub fn registry_filter_sql(
    filter: &RegistryFilter,
    table: RegistryTable,
    next_placeholder: &mut usize,
    backend: Backend,
) -> Result<SqlFragment, StoreError> {
    let mut builder = Builder::new(next_placeholder, backend);
    let asks_for_prompts = filter.clauses.iter().any(|clause| match (&clause.key, &clause.value) {
        (RegistryKey::Tag(key), FilterValue::String(value)) if key == PROMPT_TAG => {
            (clause.op == CompareOp::Eq && value.eq_ignore_ascii_case("true"))
                || (clause.op == CompareOp::Ne && value.eq_ignore_ascii_case("false"))
        }
        _ => false,
    });
    let (row, tag_table, tag_join) = match table {
        RegistryTable::Models => ("rm", "registered_model_tags", "t.name = rm.name"),
        RegistryTable::Versions => ("mv", "model_version_tags", "t.name = mv.name AND t.version = mv.version"),
    };
    let mut conditions = Vec::new();
    for clause in &filter.clauses {
        let subject = match &clause.key {
            RegistryKey::Tag(key) => format!("tag '{key}'"),
            other => format!("attribute '{other:?}'"),
        };
        let condition = match &clause.key {
            RegistryKey::Tag(key) if key == PROMPT_TAG && !asks_for_prompts => continue,
            RegistryKey::Tag(key) => {
                let key_placeholder = builder.bind_text(key);
                let predicate = builder.predicate("t.value", ColumnType::Text, clause.op, &clause.value, &subject)?;
                format!(
                    "EXISTS (SELECT 1 FROM {tag_table} t WHERE {tag_join} AND t.key = {key_placeholder} AND {predicate})"
                )
            }
            RegistryKey::Name => {
                builder.predicate(&format!("{row}.name"), ColumnType::Text, clause.op, &clause.value, &subject)?
            }
            RegistryKey::RunId => {
                builder.predicate("mv.run_id", ColumnType::Text, clause.op, &clause.value, &subject)?
            }
            RegistryKey::SourcePath => {
                builder.predicate("mv.source", ColumnType::Text, clause.op, &clause.value, &subject)?
            }
            RegistryKey::VersionNumber => {
                builder.predicate("mv.version", ColumnType::Integer, clause.op, &clause.value, &subject)?
            }
        };
        conditions.push(condition);
    }
    if !asks_for_prompts {
        let prompt_key = builder.bind_text(PROMPT_TAG);
        conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM registered_model_tags pt WHERE pt.name = {row}.name \
             AND pt.key = {prompt_key} AND LOWER(pt.value) = 'true')"
        ));
    }
    Ok(builder.finish(conjunction(conditions)))
}

/// ORDER BY terms for a registry search, with MLflow's tie-breakers (name ascending, then for
/// versions the version descending) unless the caller ordered by those.
pub fn registry_order_sql(order: &[RegistryOrderBy], table: RegistryTable) -> Result<String, StoreError> {
    let row = match table {
        RegistryTable::Models => "rm",
        RegistryTable::Versions => "mv",
    };
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    for clause in order {
        if !seen.insert(clause.key) {
            return Err(StoreError::InvalidArgument(format!("`order_by` contains duplicate fields: {order:?}")));
        }
        let column = match clause.key {
            RegistryOrderKey::Name => "name",
            RegistryOrderKey::CreationTimestamp => "creation_time",
            RegistryOrderKey::LastUpdatedTimestamp => "last_updated_time",
            RegistryOrderKey::VersionNumber => "version",
        };
        terms.push(format!("{row}.{column} {}", direction(clause.ascending)));
    }
    if !seen.contains(&RegistryOrderKey::Name) {
        terms.push(format!("{row}.name ASC"));
    }
    if table == RegistryTable::Versions && !seen.contains(&RegistryOrderKey::VersionNumber) {
        terms.push("mv.version DESC".to_string());
    }
    Ok(terms.join(", "))
}

fn in_list(column: &str, negated: bool, placeholders: &[String]) -> String {
    if placeholders.is_empty() {
        // Nothing is in an empty list; the parser never produces one, but be exact anyway.
        return if negated { "1 = 1" } else { "1 = 0" }.to_string();
    }
    let not = if negated { "NOT " } else { "" };
    format!("{column} {not}IN ({})", placeholders.join(", "))
}

/// Millisecond timestamps are integers; a fractional bound stays a float (`> 5.5` is valid).
fn integer_bind(number: f64) -> Bind {
    // 2^63 as f64; integral values strictly inside ±2^63 convert exactly.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if number.fract() == 0.0 && number > -LIMIT && number < LIMIT {
        Bind::Int(number as i64)
    } else {
        Bind::Float(number)
    }
}

fn describe_value(value: &FilterValue) -> String {
    match value {
        FilterValue::Number(number) => number.to_string(),
        FilterValue::String(text) => format!("'{text}'"),
        FilterValue::List(values) => format!("a list of {} values", values.len()),
        FilterValue::None => "NULL".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_core::search::{
        parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by,
    };

    fn run_where(filter: &str, backend: Backend) -> (SqlFragment, usize) {
        let mut next = 3;
        let fragment = run_filter_sql(&parse_run_filter(filter).unwrap(), &mut next, backend)
            .unwrap_or_else(|e| panic!("{filter}: {e}"));
        (fragment, next)
    }

    fn run_order(clauses: &[&str]) -> Result<RunOrderSql, StoreError> {
        let order: Vec<RunOrderBy> = clauses.iter().map(|clause| parse_run_order_by(clause).unwrap()).collect();
        run_order_sql(&order, &mut 1)
    }

    fn text(value: &str) -> Bind {
        Bind::Text(value.to_string())
    }

    #[test]
    fn empty_filter_is_true_and_binds_nothing() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (fragment, next) = run_where("", backend);
            assert_eq!(fragment.sql, "1 = 1");
            assert!(fragment.binds.is_empty());
            assert_eq!(next, 3);
        }
        let mut next = 1;
        let fragment = experiment_filter_sql(&ExperimentFilter::default(), &mut next, Backend::Sqlite).unwrap();
        assert_eq!((fragment.sql.as_str(), next), ("1 = 1", 1));
    }

    #[test]
    fn run_filters_compile_to_exists_subqueries_and_columns() {
        // (filter, backend, sql, binds)
        let cases: Vec<(&str, Backend, &str, Vec<Bind>)> = vec![
            (
                "metrics.acc > 0.5",
                Backend::Sqlite,
                "(EXISTS (SELECT 1 FROM latest_metrics lm WHERE lm.run_uuid = r.run_uuid AND \
                 lm.key = $3 AND lm.value > CAST($4 AS DOUBLE PRECISION) AND lm.is_nan = 0))",
                vec![text("acc"), Bind::Float(0.5)],
            ),
            (
                "metrics.acc != 1",
                Backend::Postgres,
                "(EXISTS (SELECT 1 FROM latest_metrics lm WHERE lm.run_uuid = r.run_uuid AND \
                 lm.key = $3 AND (lm.value <> CAST($4 AS DOUBLE PRECISION) OR lm.is_nan = 1)))",
                vec![text("acc"), Bind::Float(1.0)],
            ),
            (
                "params.lr = '0.1'",
                Backend::Sqlite,
                "(EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = $3 \
                 AND p.value = $4))",
                vec![text("lr"), text("0.1")],
            ),
            (
                "tags.a IS NULL",
                Backend::Sqlite,
                "(NOT EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = $3))",
                vec![text("a")],
            ),
            (
                "params.a IS NOT NULL",
                Backend::Postgres,
                "(EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = $3))",
                vec![text("a")],
            ),
            (
                "tags.a LIKE 'x%_\\%'",
                Backend::Sqlite,
                "(EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = $3 AND \
                 t.value GLOB $4))",
                vec![text("a"), text("x*?%")],
            ),
            (
                "tags.a LIKE 'x%_\\%'",
                Backend::Postgres,
                "(EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = $3 AND \
                 t.value LIKE $4))",
                vec![text("a"), text("x%_\\%")],
            ),
            (
                "tags.a ILIKE 'X%'",
                Backend::Sqlite,
                "(EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = $3 AND \
                 LOWER(t.value) LIKE LOWER($4) ESCAPE '\\'))",
                vec![text("a"), text("X%")],
            ),
            (
                "tags.a ILIKE 'X%'",
                Backend::Postgres,
                "(EXISTS (SELECT 1 FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = $3 AND \
                 t.value ILIKE $4))",
                vec![text("a"), text("X%")],
            ),
            ("run_id IN ('a', 'b')", Backend::Sqlite, "(r.run_uuid IN ($3, $4))", vec![text("a"), text("b")]),
            ("attributes.run_id NOT IN ('a')", Backend::Postgres, "(r.run_uuid NOT IN ($3))", vec![text("a")]),
            (
                "status = 'FINISHED' AND run_name != 'x'",
                Backend::Sqlite,
                "(r.status = $3) AND (r.name <> $4)",
                vec![text("FINISHED"), text("x")],
            ),
            (
                "start_time >= 1700000000000 AND end_time < 5.5",
                Backend::Sqlite,
                "(r.start_time >= $3) AND (r.end_time < CAST($4 AS DOUBLE PRECISION))",
                vec![Bind::Int(1_700_000_000_000), Bind::Float(5.5)],
            ),
            (
                "datasets.name = 'train'",
                Backend::Sqlite,
                "(EXISTS (SELECT 1 FROM run_dataset_inputs rdi JOIN datasets ds ON \
                 ds.dataset_uuid = rdi.dataset_uuid WHERE rdi.run_uuid = r.run_uuid AND \
                 ds.name = $3))",
                vec![text("train")],
            ),
            (
                "datasets.context IN ('training', 'eval')",
                Backend::Postgres,
                "(EXISTS (SELECT 1 FROM run_dataset_inputs rdi WHERE rdi.run_uuid = r.run_uuid \
                 AND rdi.context IN ($3, $4)))",
                vec![text("training"), text("eval")],
            ),
        ];
        for (filter, backend, sql, binds) in cases {
            let (fragment, next) = run_where(filter, backend);
            assert_eq!(fragment.sql, sql, "{filter} on {backend:?}");
            assert_eq!(fragment.binds, binds, "{filter} on {backend:?}");
            assert_eq!(next, 3 + binds.len(), "{filter}: placeholders advance");
        }
    }

    #[test]
    fn user_text_only_reaches_binds() {
        let hostile = "x') OR 1=1; DROP TABLE runs; --";
        let filter = RunFilter {
            clauses: vec![RunComparison {
                key: RunKey::Param(hostile.into()),
                op: CompareOp::Like,
                value: FilterValue::String(hostile.into()),
            }],
        };
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let fragment = run_filter_sql(&filter, &mut 1, backend).unwrap();
            assert!(!fragment.sql.contains("DROP"), "{}", fragment.sql);
            assert_eq!(fragment.binds.len(), 2);
        }
        let order = run_order_sql(&[RunOrderBy { key: RunKey::Tag(hostile.into()), ascending: true }], &mut 1).unwrap();
        assert!(!order.joins.contains("DROP") && !order.order_by.contains("DROP"), "{order:?}");
    }

    #[test]
    fn like_patterns_translate_per_backend() {
        // (MLflow pattern, LIKE pattern with `\` escapes, GLOB pattern)
        let cases = [
            ("abc", "abc", "abc"),
            ("a%", "a%", "a*"),
            ("_b_", "_b_", "?b?"),
            ("100\\%", "100\\%", "100%"),
            ("a\\_b", "a\\_b", "a_b"),
            ("C:\\\\dir", "C:\\\\dir", "C:\\dir"),
            ("\\x", "x", "x"),
            ("ends\\", "ends\\\\", "ends\\"),
            ("what?*", "what?*", "what[?][*]"),
            ("[abc]%", "[abc]%", "[[]abc]*"),
            ("ünï%", "ünï%", "ünï*"),
        ];
        for (input, like, glob) in cases {
            let parts = parse_like_pattern(input);
            assert_eq!(like_pattern(&parts), like, "{input}");
            assert_eq!(glob_pattern(&parts), glob, "{input}");
        }
    }

    #[test]
    fn mismatched_values_are_invalid_arguments() {
        let cases = [
            (RunKey::Metric("m".into()), CompareOp::Gt, FilterValue::String("x".into())),
            (RunKey::Metric("m".into()), CompareOp::Like, FilterValue::String("x".into())),
            (RunKey::Param("p".into()), CompareOp::Eq, FilterValue::Number(1.0)),
            (RunKey::Attribute(RunAttribute::StartTime), CompareOp::Eq, FilterValue::String("1".into())),
            (RunKey::Attribute(RunAttribute::StartTime), CompareOp::In, FilterValue::List(vec!["1".into()])),
            (RunKey::Attribute(RunAttribute::Status), CompareOp::Eq, FilterValue::List(vec!["x".into()])),
            (RunKey::Dataset(DatasetField::Name), CompareOp::IsNull, FilterValue::None),
        ];
        for (key, op, value) in cases {
            let filter = RunFilter { clauses: vec![RunComparison { key: key.clone(), op, value: value.clone() }] };
            match run_filter_sql(&filter, &mut 1, Backend::Sqlite) {
                Err(StoreError::InvalidArgument(message)) => {
                    assert!(!message.is_empty(), "{key:?} {op:?} {value:?}")
                }
                other => panic!("{key:?} {op:?} {value:?}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn run_order_ends_with_mlflow_tie_breakers() {
        assert_eq!(run_order(&[]).unwrap().order_by, "r.start_time DESC, r.run_uuid ASC");
        let metric = run_order(&["metrics.acc DESC"]).unwrap();
        assert_eq!(metric.joins, "LEFT JOIN latest_metrics o0 ON o0.run_uuid = r.run_uuid AND o0.key = $1");
        assert_eq!(metric.order_by, "COALESCE(o0.is_nan, 2) ASC, o0.value DESC, r.start_time DESC, r.run_uuid ASC");
        assert_eq!(metric.binds, vec![text("acc")]);
        let param = run_order(&["params.lr", "tags.t DESC"]).unwrap();
        assert_eq!(
            param.joins,
            "LEFT JOIN params o0 ON o0.run_uuid = r.run_uuid AND o0.key = $1 \
             LEFT JOIN tags o1 ON o1.run_uuid = r.run_uuid AND o1.key = $2"
        );
        assert_eq!(
            param.order_by,
            "CASE WHEN o0.run_uuid IS NULL THEN 1 ELSE 0 END ASC, o0.value ASC, \
             CASE WHEN o1.run_uuid IS NULL THEN 1 ELSE 0 END ASC, o1.value DESC, r.start_time DESC, r.run_uuid ASC"
        );
        assert_eq!(run_order(&["created ASC"]).unwrap().order_by, "r.start_time ASC, r.run_uuid ASC");
        assert_eq!(
            run_order(&["end_time DESC", "status"]).unwrap().order_by,
            "CASE WHEN r.end_time IS NULL THEN 1 ELSE 0 END ASC, r.end_time DESC, r.status ASC, \
             r.start_time DESC, r.run_uuid ASC"
        );
    }

    #[test]
    fn run_order_rejects_duplicates_and_datasets() {
        let err = run_order(&["start_time", "created DESC"]).unwrap_err();
        assert!(err.to_string().contains("attributes.start_time more than once"), "{err}");
        let err = run_order(&["metrics.a", "metric.a DESC"]).unwrap_err();
        assert!(err.to_string().contains("metrics.`a`"), "{err}");
        let err = run_order_sql(&[RunOrderBy { key: RunKey::Dataset(DatasetField::Name), ascending: true }], &mut 1)
            .unwrap_err();
        assert!(err.to_string().contains("cannot be ordered by datasets.name"), "{err}");
    }

    #[test]
    fn experiment_filters_and_orders() {
        let mut next = 2;
        let filter = parse_experiment_filter(
            "name LIKE 'a%' AND experiment_id IN ('1', ' 2') AND creation_time > 5 AND tags.t \
             IS NULL AND tags.u = 'v'",
        )
        .unwrap();
        let fragment = experiment_filter_sql(&filter, &mut next, Backend::Postgres).unwrap();
        assert_eq!(
            fragment.sql,
            "(e.name LIKE $2) AND (e.experiment_id IN ($3, $4)) AND (e.creation_time > $5) AND \
             (NOT EXISTS (SELECT 1 FROM experiment_tags et WHERE et.experiment_id = \
             e.experiment_id AND et.key = $6)) AND (EXISTS (SELECT 1 FROM experiment_tags et \
             WHERE et.experiment_id = e.experiment_id AND et.key = $7 AND et.value = $8))"
        );
        assert_eq!(
            fragment.binds,
            vec![text("a%"), Bind::Int(1), Bind::Int(2), Bind::Int(5), text("t"), text("u"), text("v"),]
        );
        assert_eq!(next, 9);

        let bad = ExperimentFilter {
            clauses: vec![ExperimentComparison {
                key: ExperimentKey::ExperimentId,
                op: CompareOp::Eq,
                value: FilterValue::String("abc".into()),
            }],
        };
        let err = experiment_filter_sql(&bad, &mut 1, Backend::Sqlite).unwrap_err();
        assert!(err.to_string().contains("invalid experiment ID 'abc'"), "{err}");

        let order = |clauses: &[&str]| {
            let order: Vec<ExperimentOrderBy> =
                clauses.iter().map(|clause| parse_experiment_order_by(clause).unwrap()).collect();
            experiment_order_sql(&order, &mut 1).map(|fragment| fragment.sql)
        };
        assert_eq!(order(&[]).unwrap(), "e.creation_time DESC, e.experiment_id ASC");
        assert_eq!(
            order(&["name", "last_update_time DESC"]).unwrap(),
            "e.name ASC, e.last_update_time DESC, e.experiment_id DESC"
        );
        assert_eq!(order(&["experiment_id", "name DESC"]).unwrap(), "e.experiment_id ASC, e.name DESC");
        let err =
            experiment_order_sql(&[ExperimentOrderBy { key: ExperimentKey::Tag("t".into()), ascending: true }], &mut 1)
                .unwrap_err();
        assert!(err.to_string().contains("cannot be ordered by tag 't'"), "{err}");
    }

    #[test]
    fn integral_numbers_bind_as_integers() {
        assert_eq!(integer_bind(5.0), Bind::Int(5));
        assert_eq!(integer_bind(-1.0), Bind::Int(-1));
        assert_eq!(integer_bind(5.5), Bind::Float(5.5));
        assert_eq!(integer_bind(1e300), Bind::Float(1e300));
        assert!(matches!(integer_bind(f64::NAN), Bind::Float(_)));
    }
}
