//! Recursive-descent parser for MLflow's search filters and order-by clauses.
//!
//! What is accepted, and how each entity may be compared, follows MLflow 3's
//! `mlflow/utils/search_utils.py` (`SearchUtils`, `SearchExperimentsUtils`) together with the
//! checks its SQL store adds (`_get_sqlalchemy_filter_clauses`,
//! `_get_search_experiments_filter_clauses`), so every filter MLflow rejects is rejected here,
//! at parse time, with a message that names the offending token.
//!
//! Grammar (keywords are case-insensitive):
//!
//! ```text
//! filter     := AND* (comparison AND*)*          -- empty or whitespace: no clauses
//! comparison := identifier predicate
//! predicate  := ( = | != | < | <= | > | >= | LIKE | ILIKE ) value
//!             | IS [NOT] NULL
//!             | [NOT] IN '(' string (',' string)* [','] ')'
//! identifier := name | entity '.' key             -- name/key: bare, `backticked` or "quoted"
//! value      := number | 'string' | "string"
//! order_by   := identifier [ASC | DESC]
//! ```
//!
//! MLflow (through sqlparse) also tolerates a leading or trailing `AND`, repeated `AND`s and two
//! comparisons with no `AND` between them; so does this parser, so that filter strings that work
//! against `mlflow server` keep working here.

mod lexer;
pub(super) mod registry;

use super::*;
use lexer::{Segment, Token, TokenKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SearchSyntaxError(pub String);

fn error(message: impl Into<String>) -> SearchSyntaxError {
    SearchSyntaxError(message.into())
}

const METRIC_OPS: &[CompareOp] =
    &[CompareOp::Eq, CompareOp::Ne, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge];
const KEY_VALUE_OPS: &[CompareOp] =
    &[CompareOp::Eq, CompareOp::Ne, CompareOp::Like, CompareOp::ILike, CompareOp::IsNull, CompareOp::IsNotNull];
const STRING_ATTRIBUTE_OPS: &[CompareOp] =
    &[CompareOp::Eq, CompareOp::Ne, CompareOp::Like, CompareOp::ILike, CompareOp::In, CompareOp::NotIn];
const STRING_OPS: &[CompareOp] = &[CompareOp::Eq, CompareOp::Ne, CompareOp::Like, CompareOp::ILike];
const EXPERIMENT_ID_OPS: &[CompareOp] = &[CompareOp::Eq, CompareOp::Ne, CompareOp::In, CompareOp::NotIn];

const RUN_ENTITY_TYPES: &str = "metric, parameter, tag, attribute, dataset \
     (also metrics, param, params, parameters, tags, attributes, attr, run, datasets)";
const RUN_ATTRIBUTES: &str = "run_id, run_name, status, user_id, artifact_uri, start_time, end_time, created";
const EXPERIMENT_ENTITY_TYPES: &str = "attribute, tag, tags";
const EXPERIMENT_ATTRIBUTES: &str = "name, experiment_id, creation_time, last_update_time";

fn op_list(ops: &[CompareOp]) -> String {
    ops.iter().map(|op| op.as_str()).collect::<Vec<_>>().join(", ")
}

/// Parses a `search_runs` filter string. An empty or blank string is the empty filter.
pub fn parse_run_filter(filter: &str) -> Result<RunFilter, SearchSyntaxError> {
    let clauses = Parser::new(filter)?.conjunction(|parser| parser.run_comparison())?;
    Ok(RunFilter { clauses })
}

/// Parses one `search_runs` order-by clause such as `metrics.acc DESC`.
pub fn parse_run_order_by(order_by: &str) -> Result<RunOrderBy, SearchSyntaxError> {
    let mut parser = Parser::new(order_by)?;
    let identifier = parser.order_by_identifier(order_by)?;
    let ascending = parser.order_direction(order_by)?;
    let key = run_key(&identifier, AttributeUse::OrderBy)?;
    if let RunKey::Dataset(_) = key {
        return Err(error(format!(
            "invalid order_by clause '{order_by}': runs cannot be ordered by dataset fields; \
             order by a metric, parameter, tag or attribute"
        )));
    }
    Ok(RunOrderBy { key, ascending })
}

/// Parses a `search_experiments` filter string. An empty or blank string is the empty filter.
pub fn parse_experiment_filter(filter: &str) -> Result<ExperimentFilter, SearchSyntaxError> {
    let clauses = Parser::new(filter)?.conjunction(|parser| parser.experiment_comparison())?;
    Ok(ExperimentFilter { clauses })
}

/// Parses one `search_experiments` order-by clause such as `creation_time DESC`.
pub fn parse_experiment_order_by(order_by: &str) -> Result<ExperimentOrderBy, SearchSyntaxError> {
    let mut parser = Parser::new(order_by)?;
    let identifier = parser.order_by_identifier(order_by)?;
    let ascending = parser.order_direction(order_by)?;
    let key = experiment_key(&identifier)?;
    if let ExperimentKey::Tag(_) = key {
        return Err(error(format!(
            "invalid order_by clause '{order_by}': experiments cannot be ordered by tags; \
             order by one of {EXPERIMENT_ATTRIBUTES}"
        )));
    }
    Ok(ExperimentOrderBy { key, ascending })
}

/// An identifier as written: its segments and source text (for messages).
struct Identifier {
    segments: Vec<Segment>,
    text: String,
}

impl Identifier {
    /// ` in '<identifier>'` when the identifier says more than `part` alone.
    fn context(&self, part: &str) -> String {
        if self.text == part {
            String::new()
        } else {
            format!(" in '{}'", self.text)
        }
    }

    /// `(entity, key)` for dotted identifiers, `(None, name)` for bare ones. A key written as
    /// several segments (`tags.mlflow.runName`) is rejoined with dots, as MLflow splits only
    /// at the first dot.
    fn split(&self) -> (Option<&Segment>, String) {
        match self.segments.as_slice() {
            [name] => (None, name.text.clone()),
            [entity, key] => (Some(entity), key.text.clone()),
            [entity, rest @ ..] => {
                (Some(entity), rest.iter().map(|segment| segment.raw.as_str()).collect::<Vec<_>>().join("."))
            }
            [] => (None, String::new()),
        }
    }
}

/// What the parsed right-hand side of a comparison was.
enum Operand {
    Number {
        value: f64,
        integer: bool,
        text: String,
    },
    String(String),
    List(Vec<String>),
    None,
    /// A token that is not a valid value (an unquoted word, a backticked name); kept so the
    /// entity-specific check can say what it expected.
    Invalid(String),
}

impl Operand {
    fn describe(&self) -> String {
        match self {
            Operand::Number { text, .. } => text.clone(),
            Operand::String(value) => format!("'{value}'"),
            Operand::List(values) => {
                format!("({})", values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", "))
            }
            Operand::None => "NULL".into(),
            Operand::Invalid(text) => text.clone(),
        }
    }
}

/// Which attribute names are allowed: MLflow accepts the `run name` spellings in filters only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AttributeUse {
    Filter,
    OrderBy,
}

struct Parser {
    tokens: Vec<Token>,
    index: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Self, SearchSyntaxError> {
        Ok(Self { tokens: lexer::tokenize(input)?, index: 0 })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.index)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.index).cloned();
        self.index += 1;
        token
    }

    fn next_is_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|token| token.is_keyword(keyword))
    }

    /// `AND`-joined comparisons; see the module comment for the tolerated `AND` placement.
    fn conjunction<T>(
        mut self,
        mut comparison: impl FnMut(&mut Self) -> Result<T, SearchSyntaxError>,
    ) -> Result<Vec<T>, SearchSyntaxError> {
        let mut clauses = Vec::new();
        loop {
            while self.next_is_keyword("AND") {
                self.index += 1;
            }
            let Some(token) = self.peek() else {
                return Ok(clauses);
            };
            match token.keyword().as_deref() {
                Some("OR") => {
                    return Err(error(format!(
                        "'{}' at position {} is not supported: search filters combine \
                         comparisons with AND only",
                        token.text, token.position
                    )))
                }
                Some("NOT") => {
                    return Err(error(format!(
                        "'{}' at position {} is not supported: negate a comparison with != or \
                         NOT IN instead",
                        token.text, token.position
                    )))
                }
                _ => {}
            }
            if token.kind == TokenKind::LeftParen {
                return Err(error(format!(
                    "unexpected '(' at position {}: parentheses are only allowed around the list \
                     of an IN or NOT IN comparison",
                    token.position
                )));
            }
            clauses.push(comparison(&mut self)?);
        }
    }

    /// The left-hand side of a comparison: a path, or a bare double-quoted name (`"run name"`).
    fn identifier(&mut self) -> Result<Identifier, SearchSyntaxError> {
        let token = self.next();
        match token {
            Some(Token { kind: TokenKind::Path(segments), text, .. }) => Ok(Identifier { segments, text }),
            Some(Token { kind: TokenKind::Str { value, quote: quote @ '"' }, text, .. }) => {
                Ok(Identifier { segments: vec![Segment { text: value, quote: Some(quote), raw: text.clone() }], text })
            }
            Some(token) => Err(error(format!(
                "expected an identifier such as metrics.<key>, params.<key>, tags.<key> or an \
                 attribute name at position {}, found {}",
                token.position,
                token.quoted()
            ))),
            None => Err(error(
                "expected an identifier such as metrics.<key>, params.<key>, tags.<key> or an \
                 attribute name, found the end of the filter",
            )),
        }
    }

    /// The comparator and operand after an identifier.
    fn predicate(&mut self, identifier: &str) -> Result<(CompareOp, Operand), SearchSyntaxError> {
        let Some(token) = self.next() else {
            return Err(error(format!("expected a comparator after '{identifier}', found the end of the filter")));
        };
        if let TokenKind::Operator(operator) = token.kind {
            let op = match operator {
                "=" => CompareOp::Eq,
                "!=" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                ">=" => CompareOp::Ge,
                other => {
                    let instead = if other == "==" { "=" } else { "!=" };
                    return Err(error(format!("invalid comparator '{other}' after '{identifier}'; use '{instead}'")));
                }
            };
            return Ok((op, self.value(identifier, &op)?));
        }
        match token.keyword().as_deref() {
            Some("LIKE") => Ok((CompareOp::Like, self.value(identifier, &CompareOp::Like)?)),
            Some("ILIKE") => Ok((CompareOp::ILike, self.value(identifier, &CompareOp::ILike)?)),
            Some("IN") => Ok((CompareOp::In, self.list(identifier, CompareOp::In)?)),
            Some("IS") => {
                let negated = self.next_is_keyword("NOT");
                if negated {
                    self.index += 1;
                }
                if !self.next_is_keyword("NULL") {
                    let found = self.peek().map_or("the end of the filter".to_string(), Token::quoted);
                    return Err(error(format!(
                        "expected NULL after '{identifier} {}', found {found}; IS is only used \
                         as IS NULL or IS NOT NULL",
                        if negated { "IS NOT" } else { "IS" }
                    )));
                }
                self.index += 1;
                let op = if negated { CompareOp::IsNotNull } else { CompareOp::IsNull };
                Ok((op, Operand::None))
            }
            Some("NOT") => {
                if self.next_is_keyword("IN") {
                    self.index += 1;
                    return Ok((CompareOp::NotIn, self.list(identifier, CompareOp::NotIn)?));
                }
                let found = self.peek().map_or(String::new(), |t| format!(" {}", t.text));
                Err(error(format!(
                    "invalid comparator 'NOT{found}' after '{identifier}'; NOT is only supported \
                     as NOT IN and IS NOT NULL"
                )))
            }
            _ => Err(error(format!(
                "expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, \
                 IS NOT NULL) after '{identifier}' at position {}, found {}",
                token.position,
                token.quoted()
            ))),
        }
    }

    fn value(&mut self, identifier: &str, op: &CompareOp) -> Result<Operand, SearchSyntaxError> {
        match self.next() {
            None => Err(error(format!(
                "expected a value after '{identifier} {}', found the end of the filter",
                op.as_str()
            ))),
            Some(token) => Ok(match token.kind {
                TokenKind::Number { value, integer } => Operand::Number { value, integer, text: token.text },
                TokenKind::Str { value, .. } => Operand::String(value),
                TokenKind::LeftParen => {
                    return Err(error(format!(
                        "unexpected '(' at position {} after '{identifier} {}': a list of \
                         values needs IN or NOT IN",
                        token.position,
                        op.as_str()
                    )))
                }
                _ => Operand::Invalid(token.text),
            }),
        }
    }

    /// `( 'a', 'b' )` after IN / NOT IN; a trailing comma is allowed, as in MLflow.
    fn list(&mut self, identifier: &str, op: CompareOp) -> Result<Operand, SearchSyntaxError> {
        let opening = self.next();
        if !matches!(opening, Some(Token { kind: TokenKind::LeftParen, .. })) {
            let found = opening.as_ref().map_or("the end of the filter".to_string(), Token::quoted);
            return Err(error(format!(
                "expected a parenthesised list of quoted strings after '{identifier} {}', found \
                 {found}",
                op.as_str()
            )));
        }
        let mut values = Vec::new();
        loop {
            let Some(token) = self.next() else {
                return Err(error(format!("unterminated list after '{identifier} {}': expected ')'", op.as_str())));
            };
            match token.kind {
                TokenKind::RightParen if values.is_empty() => {
                    return Err(error(format!(
                        "while parsing the list after '{identifier} {}', expected a non-empty \
                         list of quoted strings, but got an empty list",
                        op.as_str()
                    )))
                }
                TokenKind::RightParen => return Ok(Operand::List(values)),
                TokenKind::Str { value, .. } => values.push(value),
                _ => {
                    return Err(error(format!(
                        "while parsing the list after '{identifier} {}', expected a quoted \
                         string, found {} at position {}",
                        op.as_str(),
                        token.quoted(),
                        token.position
                    )))
                }
            }
            match self.next() {
                Some(Token { kind: TokenKind::Comma, .. }) => {
                    if let Some(Token { kind: TokenKind::RightParen, .. }) = self.peek() {
                        self.index += 1;
                        return Ok(Operand::List(values));
                    }
                }
                Some(Token { kind: TokenKind::RightParen, .. }) => return Ok(Operand::List(values)),
                Some(token) => {
                    return Err(error(format!(
                        "while parsing the list after '{identifier} {}', expected ',' or ')', \
                         found {} at position {}",
                        op.as_str(),
                        token.quoted(),
                        token.position
                    )))
                }
                None => {
                    return Err(error(format!("unterminated list after '{identifier} {}': expected ')'", op.as_str())))
                }
            }
        }
    }

    fn order_by_identifier(&mut self, order_by: &str) -> Result<Identifier, SearchSyntaxError> {
        if self.tokens.is_empty() {
            return Err(error(format!(
                "invalid order_by clause '{order_by}': it is empty; expected a key such as \
                 metrics.acc DESC"
            )));
        }
        self.identifier().map_err(|e| error(format!("invalid order_by clause '{order_by}': {}", e.0)))
    }

    /// Optional ASC / DESC, then the end of the clause.
    fn order_direction(&mut self, order_by: &str) -> Result<bool, SearchSyntaxError> {
        let ascending = match self.next() {
            None => return Ok(true),
            Some(token) => match token.keyword().as_deref() {
                Some("ASC") => true,
                Some("DESC") => false,
                _ if token.kind == TokenKind::Comma => {
                    return Err(error(format!(
                        "invalid order_by clause '{order_by}': unexpected ',' at position {}; \
                         pass each key as its own order_by entry",
                        token.position
                    )))
                }
                _ => {
                    return Err(error(format!(
                        "invalid ordering key {} in order_by clause '{order_by}'; use ASC or \
                         DESC",
                        token.quoted()
                    )))
                }
            },
        };
        if let Some(extra) = self.peek() {
            return Err(error(format!(
                "invalid order_by clause '{order_by}': unexpected {} at position {}; an \
                 order_by clause is one key and an optional ASC or DESC",
                extra.quoted(),
                extra.position
            )));
        }
        Ok(ascending)
    }

    fn run_comparison(&mut self) -> Result<RunComparison, SearchSyntaxError> {
        let identifier = self.identifier()?;
        let key = run_key(&identifier, AttributeUse::Filter)?;
        let (op, operand) = self.predicate(&identifier.text)?;
        let value = run_value(&key, &identifier.text, op, operand)?;
        Ok(RunComparison { key, op, value })
    }

    fn experiment_comparison(&mut self) -> Result<ExperimentComparison, SearchSyntaxError> {
        let identifier = self.identifier()?;
        let key = experiment_key(&identifier)?;
        let (op, operand) = self.predicate(&identifier.text)?;
        let value = experiment_value(&key, &identifier.text, op, operand)?;
        Ok(ExperimentComparison { key, op, value })
    }
}

fn run_attribute(name: &str, usage: AttributeUse) -> Option<RunAttribute> {
    Some(match name {
        "run_id" => RunAttribute::RunId,
        "run_name" => RunAttribute::RunName,
        "run name" | "Run name" | "Run Name" if usage == AttributeUse::Filter => RunAttribute::RunName,
        "status" => RunAttribute::Status,
        "user_id" => RunAttribute::UserId,
        "artifact_uri" => RunAttribute::ArtifactUri,
        "start_time" | "created" | "Created" => RunAttribute::StartTime,
        "end_time" => RunAttribute::EndTime,
        _ => return None,
    })
}

/// Resolves an identifier to what a run filter or ordering refers to. Entity names and attribute
/// names are case-sensitive, as in MLflow.
fn run_key(identifier: &Identifier, usage: AttributeUse) -> Result<RunKey, SearchSyntaxError> {
    let (entity, key) = identifier.split();
    let attribute = |name: &str| {
        run_attribute(name, usage).map(RunKey::Attribute).ok_or_else(|| {
            error(format!(
                "invalid attribute key '{name}'{}; valid keys are {RUN_ATTRIBUTES}",
                identifier.context(name)
            ))
        })
    };
    let Some(entity) = entity else {
        return attribute(&key);
    };
    match entity.text.as_str() {
        "metric" | "metrics" => Ok(RunKey::Metric(key)),
        "param" | "params" | "parameter" | "parameters" => Ok(RunKey::Param(key)),
        "tag" | "tags" => Ok(RunKey::Tag(key)),
        "attribute" | "attributes" | "attr" | "run" => attribute(&key),
        "dataset" | "datasets" => match key.as_str() {
            "name" => Ok(RunKey::Dataset(DatasetField::Name)),
            "digest" => Ok(RunKey::Dataset(DatasetField::Digest)),
            "context" => Ok(RunKey::Dataset(DatasetField::Context)),
            other => Err(error(format!(
                "invalid dataset key '{other}' in '{}'; valid keys are name, digest, context",
                identifier.text
            ))),
        },
        other => Err(error(format!(
            "invalid entity type '{other}' in '{}'; valid entity types are {RUN_ENTITY_TYPES}",
            identifier.text
        ))),
    }
}

fn experiment_key(identifier: &Identifier) -> Result<ExperimentKey, SearchSyntaxError> {
    let (entity, key) = identifier.split();
    match entity.map(|segment| segment.text.as_str()) {
        None | Some("attribute") => match key.as_str() {
            "name" => Ok(ExperimentKey::Name),
            "experiment_id" => Ok(ExperimentKey::ExperimentId),
            "creation_time" => Ok(ExperimentKey::CreationTime),
            "last_update_time" => Ok(ExperimentKey::LastUpdateTime),
            other => Err(error(format!(
                "invalid attribute key '{other}'{}; valid keys are {EXPERIMENT_ATTRIBUTES}",
                identifier.context(other)
            ))),
        },
        Some("tag" | "tags") => Ok(ExperimentKey::Tag(key)),
        Some(other) => Err(error(format!(
            "invalid entity type '{other}' in '{}'; valid entity types are \
             {EXPERIMENT_ENTITY_TYPES}",
            identifier.text
        ))),
    }
}

/// Where IS NULL / IS NOT NULL may be used, for the message when it is used elsewhere.
const RUN_NULL_CHECKS: &str = "tags and params";
const EXPERIMENT_NULL_CHECKS: &str = "tags";

fn check_op(
    op: CompareOp,
    allowed: &[CompareOp],
    what: &str,
    identifier: &str,
    null_checks: &str,
) -> Result<(), SearchSyntaxError> {
    if allowed.contains(&op) {
        return Ok(());
    }
    if matches!(op, CompareOp::IsNull | CompareOp::IsNotNull) {
        return Err(error(format!(
            "'{identifier} {}': IS NULL / IS NOT NULL is only supported for {null_checks}, not \
             for {what} '{identifier}'",
            op.as_str()
        )));
    }
    Err(error(format!(
        "invalid comparator '{}' for {what} '{identifier}'; expected one of {}",
        op.as_str(),
        op_list(allowed)
    )))
}

fn number(operand: Operand, what: &str, identifier: &str) -> Result<FilterValue, SearchSyntaxError> {
    match operand {
        Operand::Number { value, .. } => Ok(FilterValue::Number(value)),
        other => Err(error(format!("expected a numeric value for {what} '{identifier}', found {}", other.describe()))),
    }
}

/// A string, or a list for IN / NOT IN (the predicate parser only yields lists for those).
fn string(operand: Operand, what: &str, identifier: &str) -> Result<FilterValue, SearchSyntaxError> {
    match operand {
        Operand::String(value) => Ok(FilterValue::String(value)),
        Operand::List(values) => Ok(FilterValue::List(values)),
        Operand::None => Ok(FilterValue::None),
        Operand::Invalid(text) if text.starts_with('`') => Err(error(format!(
            "expected a quoted string value for {what} '{identifier}', found {text}; \
             backticks quote keys, values take single or double quotes"
        ))),
        other => Err(error(format!(
            "expected a quoted string value for {what} '{identifier}' (e.g. 'my-value'), found {}",
            other.describe()
        ))),
    }
}

fn run_value(
    key: &RunKey,
    identifier: &str,
    op: CompareOp,
    operand: Operand,
) -> Result<FilterValue, SearchSyntaxError> {
    match key {
        RunKey::Metric(_) => {
            check_op(op, METRIC_OPS, "metric", identifier, RUN_NULL_CHECKS)?;
            number(operand, "metric", identifier)
        }
        RunKey::Param(_) => {
            check_op(op, KEY_VALUE_OPS, "parameter", identifier, RUN_NULL_CHECKS)?;
            string(operand, "parameter", identifier)
        }
        RunKey::Tag(_) => {
            check_op(op, KEY_VALUE_OPS, "tag", identifier, RUN_NULL_CHECKS)?;
            string(operand, "tag", identifier)
        }
        RunKey::Attribute(attribute) if attribute.is_numeric() => {
            check_op(op, METRIC_OPS, "numeric attribute", identifier, RUN_NULL_CHECKS)?;
            number(operand, "numeric attribute", identifier)
        }
        RunKey::Attribute(RunAttribute::RunId) => {
            check_op(op, STRING_ATTRIBUTE_OPS, "attribute", identifier, RUN_NULL_CHECKS)?;
            string(operand, "attribute", identifier)
        }
        RunKey::Attribute(_) => {
            // MLflow's `LIST_SUPPORTED_KEYS` for runs is `run_id` only.
            if matches!(op, CompareOp::In | CompareOp::NotIn) {
                return Err(error(format!(
                    "'{identifier} {}': only run_id supports comparison with a list of quoted \
                     string values",
                    op.as_str()
                )));
            }
            check_op(op, STRING_OPS, "attribute", identifier, RUN_NULL_CHECKS)?;
            string(operand, "attribute", identifier)
        }
        RunKey::Dataset(_) => {
            check_op(op, STRING_ATTRIBUTE_OPS, "dataset attribute", identifier, RUN_NULL_CHECKS)?;
            string(operand, "dataset attribute", identifier)
        }
    }
}

fn experiment_value(
    key: &ExperimentKey,
    identifier: &str,
    op: CompareOp,
    operand: Operand,
) -> Result<FilterValue, SearchSyntaxError> {
    match key {
        ExperimentKey::Name => {
            if matches!(op, CompareOp::In | CompareOp::NotIn) {
                return Err(error(format!(
                    "'{identifier} {}': only experiment_id supports comparison with a list of \
                     quoted string values",
                    op.as_str()
                )));
            }
            check_op(op, STRING_OPS, "attribute", identifier, EXPERIMENT_NULL_CHECKS)?;
            string(operand, "attribute", identifier)
        }
        ExperimentKey::ExperimentId => {
            check_op(op, EXPERIMENT_ID_OPS, "attribute", identifier, EXPERIMENT_NULL_CHECKS)?;
            let value = string(operand, "attribute", identifier)?;
            let ids: &[String] = match &value {
                FilterValue::String(id) => std::slice::from_ref(id),
                FilterValue::List(ids) => ids,
                _ => &[],
            };
            for id in ids {
                if id.trim().parse::<i64>().is_err() {
                    return Err(error(format!(
                        "invalid experiment ID '{id}' in '{identifier}'; an experiment ID must \
                         be a valid integer"
                    )));
                }
            }
            Ok(value)
        }
        ExperimentKey::CreationTime | ExperimentKey::LastUpdateTime => {
            check_op(op, METRIC_OPS, "numeric attribute", identifier, EXPERIMENT_NULL_CHECKS)?;
            match operand {
                Operand::Number { integer: false, text, .. } => Err(error(format!(
                    "invalid value {text} for numeric attribute '{identifier}'; expected an \
                     integer number of milliseconds"
                ))),
                other => number(other, "numeric attribute", identifier),
            }
        }
        ExperimentKey::Tag(_) => {
            check_op(op, KEY_VALUE_OPS, "tag", identifier, EXPERIMENT_NULL_CHECKS)?;
            string(operand, "tag", identifier)
        }
    }
}

#[cfg(test)]
mod tests;
