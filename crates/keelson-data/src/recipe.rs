//! Recipes: `version: 1` YAML that turns input versions into a new version through declarative
//! steps. Every step checks the columns it names against the frame it receives, so a typo is a
//! clear error naming the step, not an engine trace.

use crate::dtype::parse_dtype;
use crate::error::DataError;
use keelson_core::datasets::Layer;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// An input: a dataset's latest version, or a pinned one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputRef {
    Latest(String),
    Pinned {
        dataset: String,
        #[serde(default)]
        version: Option<i64>,
    },
}

impl InputRef {
    pub fn dataset(&self) -> &str {
        match self {
            InputRef::Latest(name) | InputRef::Pinned { dataset: name, .. } => name,
        }
    }

    pub fn version(&self) -> Option<i64> {
        match self {
            InputRef::Latest(_) => None,
            InputRef::Pinned { version, .. } => *version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub dataset: String,
    #[serde(default = "default_layer")]
    pub layer: Layer,
    #[serde(default)]
    pub description: Option<String>,
}

fn default_layer() -> Layer {
    Layer::Silver
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub version: u32,
    pub name: String,
    pub inputs: BTreeMap<String, InputRef>,
    #[serde(default)]
    pub input: Option<String>,
    pub output: OutputSpec,
    pub steps: Vec<Value>,
    #[serde(default)]
    pub expectations: Option<Value>,
}

/// The step kinds, in the order error messages list them.
pub const STEP_KINDS: &[&str] = &[
    "select",
    "rename",
    "cast",
    "filter",
    "drop_missing",
    "fill_missing",
    "deduplicate",
    "trim",
    "normalize",
    "clip",
    "scale",
    "one_hot",
    "ordinal",
    "join",
    "sql",
    "mask",
];

impl Recipe {
    /// Parses YAML text or an already-parsed JSON value.
    pub fn parse(value: &Value) -> Result<Recipe, DataError> {
        let value = match value {
            Value::String(text) => serde_yaml::from_str::<Value>(text)
                .map_err(|e| DataError::invalid(format!("recipe is not valid YAML: {e}")))?,
            other => other.clone(),
        };
        match value.get("version").and_then(Value::as_u64) {
            Some(1) => {}
            Some(other) => {
                return Err(DataError::invalid(format!("recipe version {other} is not supported; use version: 1")))
            }
            None => return Err(DataError::invalid("a recipe needs `version: 1`")),
        }
        let recipe: Recipe = serde_json::from_value(value).map_err(|e| DataError::invalid(format!("recipe: {e}")))?;
        if recipe.name.trim().is_empty() {
            return Err(DataError::invalid("recipe: `name` may not be empty"));
        }
        if recipe.inputs.is_empty() {
            return Err(DataError::invalid("recipe: `inputs` needs at least one dataset"));
        }
        if let Some(start) = &recipe.input {
            if !recipe.inputs.contains_key(start) {
                return Err(DataError::invalid(format!(
                    "recipe: `input` names `{start}`, which is not among the inputs"
                )));
            }
        }
        for (index, step) in recipe.steps.iter().enumerate() {
            step_kind(index, step)?;
            // Refused before any input is read (and checked again where the step runs).
            if let Some(Value::String(query)) = step.get("sql") {
                crate::recipe_sql::check(query)
                    .map_err(|e| DataError::invalid(format!("recipe step {}: {e}", index + 1)))?;
            }
        }
        Ok(recipe)
    }

    /// The alias the steps start from.
    pub fn start(&self) -> &str {
        self.input.as_deref().or_else(|| self.inputs.keys().next().map(String::as_str)).unwrap_or_default()
    }

    /// Output column → the column it was renamed from, over all `rename` steps in order (for
    /// column lineage; other columns keep their names).
    pub fn renames(&self) -> BTreeMap<String, String> {
        let mut renames: BTreeMap<String, String> = BTreeMap::new();
        for step in &self.steps {
            let Some(Value::Object(map)) = step.get("rename") else { continue };
            for (old, new) in map {
                let Some(new) = new.as_str() else { continue };
                let origin = renames.remove(old).unwrap_or_else(|| old.clone());
                renames.insert(new.to_string(), origin);
            }
        }
        renames
    }

    /// `sha256:` of the canonical JSON (keys sorted), so reformatting YAML keeps the digest.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_value(self).map(|v| v.to_string()).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())))
    }
}

fn step_kind(index: usize, step: &Value) -> Result<(&str, &Value), DataError> {
    let Some(map) = step.as_object().filter(|m| m.len() == 1) else {
        return Err(DataError::invalid(format!(
            "recipe step {index}: a step is one key (its kind) with its arguments"
        )));
    };
    let Some((kind, args)) = map.iter().next() else {
        return Err(DataError::invalid(format!("recipe step {index}: empty step")));
    };
    if !STEP_KINDS.contains(&kind.as_str()) {
        return Err(DataError::invalid(format!(
            "recipe step {index}: unknown step `{kind}`; expected one of {}",
            STEP_KINDS.join(", ")
        )));
    }
    Ok((kind.as_str(), args))
}

/// Applies the steps; `inputs` holds every input's frame by alias (for joins and SQL).
pub fn apply(recipe: &Recipe, inputs: &BTreeMap<String, LazyFrame>) -> Result<LazyFrame, DataError> {
    let start = recipe.start();
    let mut frame = inputs
        .get(start)
        .cloned()
        .ok_or_else(|| DataError::invalid(format!("recipe input `{start}` was not loaded")))?;
    for (index, step) in recipe.steps.iter().enumerate() {
        let (kind, args) = step_kind(index, step)?;
        let mut schema = frame
            .collect_schema()
            .map_err(|e| DataError::engine(format!("recipe step {index} ({kind})"), e))?
            .as_ref()
            .clone();
        let step = Step { index, kind, args, schema: &mut schema };
        frame = step.apply(frame, inputs)?;
        // Plan now, so an error names the step that caused it.
        frame.collect_schema().map_err(|e| DataError::engine(format!("recipe step {index} ({kind})"), e))?;
    }
    Ok(frame)
}

struct Step<'a> {
    index: usize,
    kind: &'a str,
    args: &'a Value,
    schema: &'a mut Schema,
}

impl Step<'_> {
    fn error(&self, message: impl std::fmt::Display) -> DataError {
        DataError::invalid(format!("recipe step {} ({}): {message}", self.index, self.kind))
    }

    fn need(&self, column: &str) -> Result<DataType, DataError> {
        self.schema.get(column).cloned().ok_or_else(|| {
            let names: Vec<&str> = self.schema.iter_names().map(|n| n.as_str()).collect();
            self.error(format!("column `{column}` does not exist; columns are {}", names.join(", ")))
        })
    }

    fn strings(&self, value: &Value) -> Result<Vec<String>, DataError> {
        match value {
            Value::String(one) => Ok(vec![one.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(|| self.error("expected a list of column names")))
                .collect(),
            _ => Err(self.error("expected a column name or a list of them")),
        }
    }

    fn columns_arg(&self, key: &str) -> Result<Vec<String>, DataError> {
        let value = match self.args {
            Value::Object(map) => map.get(key).cloned().unwrap_or(Value::Array(Vec::new())),
            other => other.clone(),
        };
        let columns = self.strings(&value)?;
        for column in &columns {
            self.need(column)?;
        }
        Ok(columns)
    }

    fn object(&self) -> Result<&serde_json::Map<String, Value>, DataError> {
        self.args.as_object().ok_or_else(|| self.error("expected a mapping"))
    }

    /// NaN counts as missing, as in pandas.
    fn missing(&self, column: &str) -> Expr {
        let is_float = self.schema.get(column).is_some_and(|d| d.is_float());
        if is_float {
            col(column).is_null().or(col(column).is_nan())
        } else {
            col(column).is_null()
        }
    }

    fn apply(self, frame: LazyFrame, inputs: &BTreeMap<String, LazyFrame>) -> Result<LazyFrame, DataError> {
        match self.kind {
            "select" => {
                let columns = self.columns_arg("columns")?;
                Ok(frame.select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>()))
            }
            "rename" => {
                let mut old = Vec::new();
                let mut new = Vec::new();
                for (from, to) in self.object()? {
                    self.need(from)?;
                    let to = to.as_str().ok_or_else(|| self.error(format!("new name of `{from}` must be a string")))?;
                    old.push(from.clone());
                    new.push(to.to_string());
                }
                Ok(frame.rename(old, new, true))
            }
            "cast" => {
                let mut casts = Vec::new();
                for (column, dtype) in self.object()? {
                    self.need(column)?;
                    let dtype = parse_dtype(dtype.as_str().unwrap_or_default()).map_err(|e| self.error(e))?;
                    casts.push(col(column.as_str()).strict_cast(dtype));
                }
                Ok(frame.with_columns(casts))
            }
            "filter" => {
                let text = self.args.as_str().ok_or_else(|| self.error("expected an SQL expression"))?;
                let predicate =
                    polars::sql::sql_expr(text).map_err(|e| self.error(format!("expression `{text}`: {e}")))?;
                for name in predicate.clone().meta().root_names() {
                    self.need(name.as_str())?;
                }
                Ok(frame.filter(predicate))
            }
            "drop_missing" => {
                let mut columns = self.columns_arg("columns")?;
                if columns.is_empty() {
                    columns = self.schema.iter_names().map(|n| n.to_string()).collect();
                }
                let keep = columns.iter().fold(lit(true), |acc, c| acc.and(self.missing(c).not()));
                Ok(frame.filter(keep))
            }
            "fill_missing" => {
                let mut fills = Vec::new();
                for (column, how) in self.object()? {
                    let dtype = self.need(column)?;
                    fills.push(self.fill(column, &dtype, how)?);
                }
                Ok(frame.with_columns(fills))
            }
            "deduplicate" => {
                let columns = self.columns_arg("columns")?;
                let keep = match self.args.get("keep").and_then(Value::as_str).unwrap_or("first") {
                    "first" => UniqueKeepStrategy::First,
                    "last" => UniqueKeepStrategy::Last,
                    other => return Err(self.error(format!("keep `{other}` is not first or last"))),
                };
                let subset = (!columns.is_empty()).then(|| columns.iter().map(|c| col(c.as_str())).collect());
                Ok(frame.unique_stable_generic(subset, keep))
            }
            "trim" => {
                let columns = self.string_columns(self.columns_arg("columns")?)?;
                Ok(frame.with_columns(
                    columns.iter().map(|c| col(c.as_str()).str().strip_chars(lit(NULL))).collect::<Vec<_>>(),
                ))
            }
            "normalize" => {
                let columns = self.string_columns(self.columns_arg("columns")?)?;
                let case = self.args.get("case").and_then(Value::as_str).map(str::to_string);
                let mut exprs = Vec::new();
                for column in &columns {
                    let mut value = col(column.as_str()).str().strip_chars(lit(NULL)).str().replace_all(
                        lit(r"\s+"),
                        lit(" "),
                        false,
                    );
                    value = match case.as_deref() {
                        None => value,
                        Some("lower") => value.str().to_lowercase(),
                        Some("upper") => value.str().to_uppercase(),
                        Some(other) => return Err(self.error(format!("case `{other}` is not lower or upper"))),
                    };
                    exprs.push(value.alias(column.as_str()));
                }
                Ok(frame.with_columns(exprs))
            }
            "clip" => {
                let mut exprs = Vec::new();
                for (column, bounds) in self.object()? {
                    let dtype = self.need(column)?;
                    if !dtype.is_primitive_numeric() {
                        return Err(self.error(format!("column `{column}` is not numeric")));
                    }
                    let value = col(column.as_str());
                    let (low, high) = if let Some(quantiles) = bounds.get("quantiles").and_then(Value::as_array) {
                        let q = |i: usize| quantiles.get(i).and_then(Value::as_f64);
                        let (Some(a), Some(b)) = (q(0), q(1)) else {
                            return Err(self.error("quantiles must be two numbers, e.g. [0.01, 0.99]"));
                        };
                        (
                            Some(value.clone().quantile(lit(a), QuantileMethod::Linear)),
                            Some(value.clone().quantile(lit(b), QuantileMethod::Linear)),
                        )
                    } else {
                        let bound = |key: &str| bounds.get(key).and_then(Value::as_f64).map(lit);
                        (bound("min"), bound("max"))
                    };
                    let clipped = match (low, high) {
                        (Some(l), Some(h)) => value.clip(l, h),
                        (Some(l), None) => value.clip_min(l),
                        (None, Some(h)) => value.clip_max(h),
                        (None, None) => return Err(self.error(format!("`{column}` needs min, max or quantiles"))),
                    };
                    exprs.push(clipped.alias(column.as_str()));
                }
                Ok(frame.with_columns(exprs))
            }
            "scale" => {
                let columns = self.columns_arg("columns")?;
                let method = self.args.get("method").and_then(Value::as_str).unwrap_or("standard");
                let mut exprs = Vec::new();
                for column in &columns {
                    let value = col(column.as_str()).cast(DataType::Float64);
                    let scaled = match method {
                        "standard" => (value.clone() - value.clone().mean()) / value.std(1),
                        "minmax" => (value.clone() - value.clone().min()) / (value.clone().max() - value.min()),
                        other => return Err(self.error(format!("method `{other}` is not standard or minmax"))),
                    };
                    exprs.push(scaled.alias(column.as_str()));
                }
                Ok(frame.with_columns(exprs))
            }
            "one_hot" => {
                let columns = self.columns_arg("columns")?;
                let mut frame = frame;
                for column in &columns {
                    let values = distinct_values(&frame, column).map_err(|e| self.error(e))?;
                    let dummies: Vec<Expr> = values
                        .iter()
                        .map(|v| {
                            col(column.as_str())
                                .cast(DataType::String)
                                .eq(lit(v.as_str()))
                                .fill_null(lit(false))
                                .cast(DataType::UInt8)
                                .alias(format!("{column}_{v}"))
                        })
                        .collect();
                    frame = frame.with_columns(dummies).drop(by_name([column.as_str()], true, false));
                }
                Ok(frame)
            }
            "ordinal" => {
                let mut exprs = Vec::new();
                let spec = self.args.get("columns").ok_or_else(|| self.error("needs `columns`"))?;
                let mappings: Vec<(String, Vec<String>)> = match spec {
                    Value::Object(map) => map
                        .iter()
                        .map(|(c, order)| Ok((c.clone(), self.strings(order)?)))
                        .collect::<Result<_, DataError>>()?,
                    other => self
                        .strings(other)?
                        .into_iter()
                        .map(|c| distinct_values(&frame, &c).map(|v| (c, v)).map_err(|e| self.error(e)))
                        .collect::<Result<_, DataError>>()?,
                };
                for (column, order) in mappings {
                    self.need(&column)?;
                    let value = col(column.as_str()).cast(DataType::String);
                    let mut expr: Option<Expr> = None;
                    for (position, label) in order.iter().enumerate().rev() {
                        let then = lit(position as i64);
                        expr = Some(match expr {
                            None => when(value.clone().eq(lit(label.as_str())))
                                .then(then)
                                .otherwise(lit(NULL).cast(DataType::Int64)),
                            Some(rest) => when(value.clone().eq(lit(label.as_str()))).then(then).otherwise(rest),
                        });
                    }
                    let expr = expr.unwrap_or_else(|| lit(NULL).cast(DataType::Int64));
                    exprs.push(expr.alias(column.as_str()));
                }
                Ok(frame.with_columns(exprs))
            }
            "join" => self.join(frame, inputs),
            "sql" => {
                let query = self.args.as_str().ok_or_else(|| self.error("expected an SQL query"))?;
                crate::recipe_sql::check(query).map_err(|e| self.error(e))?;
                let mut context = polars::sql::SQLContext::new();
                context.register("input", frame);
                for (alias, other) in inputs {
                    context.register(alias, other.clone());
                }
                context.execute(query).map_err(|e| self.error(e))
            }
            "mask" => {
                let columns = self.columns_arg("columns")?;
                let method = self.args.get("method").and_then(Value::as_str).unwrap_or("hash").to_string();
                let salt = self.args.get("salt").and_then(Value::as_str).unwrap_or_default().to_string();
                let mut exprs = Vec::new();
                for column in &columns {
                    let value = col(column.as_str()).cast(DataType::String);
                    let masked = match method.as_str() {
                        "hash" => {
                            let salt = salt.clone();
                            value.map(
                                move |c| hash_column(&c, &salt),
                                |_, field| Ok(Field::new(field.name().clone(), DataType::String)),
                            )
                        }
                        "redact" => when(value.is_null()).then(lit(NULL).cast(DataType::String)).otherwise(lit("***")),
                        other => return Err(self.error(format!("method `{other}` is not hash or redact"))),
                    };
                    exprs.push(masked.alias(column.as_str()));
                }
                Ok(frame.with_columns(exprs))
            }
            other => Err(self.error(format!("unknown step `{other}`"))),
        }
    }

    fn string_columns(&self, columns: Vec<String>) -> Result<Vec<String>, DataError> {
        for column in &columns {
            if !matches!(self.need(column)?, DataType::String) {
                return Err(self.error(format!("column `{column}` is not a string column")));
            }
        }
        Ok(columns)
    }

    fn fill(&self, column: &str, dtype: &DataType, how: &Value) -> Result<Expr, DataError> {
        let base = if dtype.is_float() { col(column).fill_nan(lit(NULL)) } else { col(column) };
        let strategy = how.get("strategy").and_then(Value::as_str).unwrap_or(if how.get("value").is_some() {
            "value"
        } else {
            ""
        });
        let filled = match strategy {
            "value" => {
                let value =
                    how.get("value").ok_or_else(|| self.error(format!("`{column}`: strategy value needs `value`")))?;
                let literal = match value {
                    Value::String(s) => lit(s.as_str()),
                    Value::Bool(b) => lit(*b),
                    Value::Number(n) if n.is_i64() => lit(n.as_i64().unwrap_or_default()),
                    Value::Number(n) => lit(n.as_f64().unwrap_or_default()),
                    _ => return Err(self.error(format!("`{column}`: fill value must be a string, number or bool"))),
                };
                base.fill_null(literal.strict_cast(dtype.clone()))
            }
            "mean" => base.clone().fill_null(base.mean().cast(dtype.clone())),
            "median" => base.clone().fill_null(base.median().cast(dtype.clone())),
            "mode" => base.clone().fill_null(base.mode(true).sort(SortOptions::default()).first()),
            "forward" => base.fill_null_with_strategy(FillNullStrategy::Forward(None)),
            other => {
                return Err(self
                    .error(format!("`{column}`: strategy `{other}` is not one of value, mean, median, mode, forward")))
            }
        };
        Ok(filled.alias(column))
    }

    fn join(&self, frame: LazyFrame, inputs: &BTreeMap<String, LazyFrame>) -> Result<LazyFrame, DataError> {
        let with =
            self.args.get("with").and_then(Value::as_str).ok_or_else(|| self.error("needs `with` (an input alias)"))?;
        let mut other =
            inputs.get(with).cloned().ok_or_else(|| self.error(format!("`{with}` is not among the inputs")))?;
        let other_schema = other.collect_schema().map_err(|e| self.error(e))?;
        let (left, right) = match self.args.get("on") {
            Some(on) => {
                let on = self.strings(on)?;
                (on.clone(), on)
            }
            None => (
                self.strings(self.args.get("left_on").unwrap_or(&Value::Null))?,
                self.strings(self.args.get("right_on").unwrap_or(&Value::Null))?,
            ),
        };
        if left.is_empty() || left.len() != right.len() {
            return Err(self.error("give `on`, or `left_on` and `right_on` of equal length"));
        }
        for column in &left {
            self.need(column)?;
        }
        for column in &right {
            if other_schema.get(column).is_none() {
                return Err(self.error(format!("column `{column}` does not exist in `{with}`")));
            }
        }
        let how = match self.args.get("how").and_then(Value::as_str).unwrap_or("inner") {
            "inner" => JoinType::Inner,
            "left" => JoinType::Left,
            "full" | "outer" => JoinType::Full,
            other => return Err(self.error(format!("how `{other}` is not inner, left or full"))),
        };
        let suffix = self.args.get("suffix").and_then(Value::as_str).unwrap_or("_right");
        let mut args = JoinArgs::new(how);
        args.suffix = Some(suffix.into());
        args.maintain_order = MaintainOrderJoin::Left;
        if matches!(args.how, JoinType::Full) {
            args.coalesce = JoinCoalesce::CoalesceColumns;
        }
        let left: Vec<Expr> = left.iter().map(|c| col(c.as_str())).collect();
        let right: Vec<Expr> = right.iter().map(|c| col(c.as_str())).collect();
        Ok(frame.join(other, left, right, args))
    }
}

fn distinct_values(frame: &LazyFrame, column: &str) -> Result<Vec<String>, PolarsError> {
    let values = frame
        .clone()
        .select([col(column).cast(DataType::String).drop_nulls().unique().sort(SortOptions::default())])
        .collect()?;
    let series = values.select_at_idx(0).map(|c| c.as_materialized_series().clone()).unwrap_or_default();
    Ok(series.str()?.iter().flatten().map(str::to_string).collect())
}

fn hash_column(column: &Column, salt: &str) -> PolarsResult<Column> {
    let strings = column.as_materialized_series().str()?.clone();
    let hashed: StringChunked = strings
        .iter()
        .map(|value| {
            value.map(|v| {
                let mut hasher = Sha256::new();
                hasher.update(salt.as_bytes());
                hasher.update(v.as_bytes());
                hex::encode(hasher.finalize())
            })
        })
        .collect();
    Ok(hashed.with_name(column.name().clone()).into_series().into_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_chain_and_unknown_steps_are_refused() {
        let recipe = Recipe::parse(&Value::String(
            "version: 1\nname: r\ninputs: {a: raw}\noutput: {dataset: out}\n\
             steps:\n  - rename: {x: y}\n  - rename: {y: z, k: m}\n"
                .into(),
        ))
        .unwrap();
        let renames = recipe.renames();
        assert_eq!(renames.get("z").map(String::as_str), Some("x"));
        assert_eq!(renames.get("m").map(String::as_str), Some("k"));
        assert!(!renames.contains_key("y"));
        let unknown = serde_json::json!({"version": 1, "name": "r", "inputs": {"a": "raw"},
            "output": {"dataset": "out"}, "steps": [{"explode": ["x"]}]});
        let error = Recipe::parse(&unknown).unwrap_err().to_string();
        assert!(error.contains("step 0") && error.contains("explode"), "{error}");
        let version_two = serde_json::json!({"version": 2});
        assert!(Recipe::parse(&version_two).unwrap_err().to_string().contains("version 2"));
    }
}
