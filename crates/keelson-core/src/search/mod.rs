//! MLflow's search grammar as a typed AST. The parser turns filter and order-by strings into
//! these types; the store compiles them to parameterised SQL. Nothing here is ever spliced into
//! SQL as text except the fixed column names the compiler chooses.

mod parser;

pub use parser::registry::{
    parse_model_version_filter, parse_model_version_order_by, parse_registered_model_filter,
    parse_registered_model_order_by,
};
pub use parser::{
    parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by, SearchSyntaxError,
};

/// A conjunction of comparisons (MLflow supports `AND` only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunFilter {
    pub clauses: Vec<RunComparison>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunComparison {
    pub key: RunKey,
    pub op: CompareOp,
    pub value: FilterValue,
}

/// What a run filter or ordering refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunKey {
    /// `metrics.<key>`: the run's latest value of the metric.
    Metric(String),
    /// `params.<key>`
    Param(String),
    /// `tags.<key>`
    Tag(String),
    /// `attributes.<name>` (or a bare attribute name).
    Attribute(RunAttribute),
    /// `datasets.<field>`: any dataset input of the run.
    Dataset(DatasetField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunAttribute {
    RunId,
    RunName,
    Status,
    UserId,
    ArtifactUri,
    LifecycleStage,
    /// `start_time` or its alias `created`.
    StartTime,
    EndTime,
}

impl RunAttribute {
    /// Numeric attributes compare with `= != < <= > >=`; the others as strings.
    pub fn is_numeric(self) -> bool {
        matches!(self, RunAttribute::StartTime | RunAttribute::EndTime)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetField {
    Name,
    Digest,
    /// The `mlflow.data.context` input tag (`training`, `eval`…).
    Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl CompareOp {
    /// The comparator as MLflow spells it, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Like => "LIKE",
            CompareOp::ILike => "ILIKE",
            CompareOp::In => "IN",
            CompareOp::NotIn => "NOT IN",
            CompareOp::IsNull => "IS NULL",
            CompareOp::IsNotNull => "IS NOT NULL",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Number(f64),
    String(String),
    List(Vec<String>),
    /// For `IS NULL` / `IS NOT NULL`.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOrderBy {
    pub key: RunKey,
    pub ascending: bool,
}

/// Experiment search: `name`, `creation_time`, `last_update_time`, `tags.<key>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExperimentFilter {
    pub clauses: Vec<ExperimentComparison>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentComparison {
    pub key: ExperimentKey,
    pub op: CompareOp,
    pub value: FilterValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExperimentKey {
    Name,
    CreationTime,
    LastUpdateTime,
    ExperimentId,
    Tag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentOrderBy {
    pub key: ExperimentKey,
    pub ascending: bool,
}

/// Registry search (`search_registered_models`, `search_model_versions`): a conjunction of
/// comparisons on a few attributes and tags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegistryFilter {
    pub clauses: Vec<RegistryComparison>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegistryComparison {
    pub key: RegistryKey,
    pub op: CompareOp,
    pub value: FilterValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegistryKey {
    Name,
    /// Model versions only.
    RunId,
    /// Model versions only: the version's `source`.
    SourcePath,
    /// Model versions only.
    VersionNumber,
    Tag(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryOrderKey {
    Name,
    CreationTimestamp,
    LastUpdatedTimestamp,
    /// Model versions only.
    VersionNumber,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryOrderBy {
    pub key: RegistryOrderKey,
    pub ascending: bool,
}
