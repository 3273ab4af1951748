//! OpenLineage events (spec 2-0-2, <https://openlineage.io/spec/2-0-2/OpenLineage.json>) and the
//! lineage graph Keelson answers in Marquez's shape.
//!
//! Events are parsed from JSON with messages that name the offending field; facets stay raw JSON
//! (the spec makes them additive: any producer may add its own). Builders let Keelson's own
//! services emit events with the standard facets.

use crate::clock::{Clock, SystemClock};
use crate::error::{ErrorKind, HasErrorKind};
use crate::time::{format_rfc3339_ms, parse_rfc3339_ms};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The spec version events are checked against and emitted with.
pub const OPENLINEAGE_SPEC_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json";
/// Producer URI of the events Keelson emits itself.
pub const KEELSON_PRODUCER: &str = "https://github.com/keelson/keelson";
/// The deepest graph walk `GET /api/v1/lineage` answers.
pub const MAX_LINEAGE_DEPTH: u32 = 100;

const SCHEMA_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const COLUMN_LINEAGE_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
const DATA_QUALITY_METRICS_FACET_URL: &str = "https://openlineage.io/spec/facets/1-0-2/DataQualityMetricsInputDatasetFacet.json#/$defs/DataQualityMetricsInputDatasetFacet";
const DATA_QUALITY_ASSERTIONS_FACET_URL: &str = "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet";

/// Facets by name, each a JSON object as its producer wrote it.
pub type Facets = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageError {
    /// An event that does not follow the spec; `field` is its JSON path (`inputs[0].name`).
    #[error("invalid OpenLineage event: `{field}` {problem}")]
    InvalidEvent { field: String, problem: String },
    #[error("invalid OpenLineage event: {0}")]
    UnknownEventKind(String),
    #[error("{0}")]
    InvalidQuery(String),
}

impl HasErrorKind for LineageError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> LineageError {
    LineageError::InvalidEvent { field: field.into(), problem: problem.into() }
}

/// RunEvent `eventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Start,
        EventType::Running,
        EventType::Complete,
        EventType::Abort,
        EventType::Fail,
        EventType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "START",
            EventType::Running => "RUNNING",
            EventType::Complete => "COMPLETE",
            EventType::Abort => "ABORT",
            EventType::Fail => "FAIL",
            EventType::Other => "OTHER",
        }
    }

    /// Whether the run is over after this event.
    pub fn is_terminal(self) -> bool {
        matches!(self, EventType::Complete | EventType::Abort | EventType::Fail)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| format!("must be one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER, got `{text}`"))
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

fn serialize_time<S: Serializer>(millis: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_rfc3339_ms(*millis))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    #[serde(rename = "runId")]
    pub run_id: Uuid,
    pub facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub namespace: String,
    pub name: String,
    pub facets: Facets,
}

/// A dataset as named by its namespace and name, with its dataset facets (`schema`,
/// `dataSource`, `columnLineage`, …). Also the `dataset` of a DatasetEvent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    pub facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputDataset {
    #[serde(flatten)]
    pub dataset: Dataset,
    #[serde(rename = "inputFacets")]
    pub input_facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputDataset {
    #[serde(flatten)]
    pub dataset: Dataset,
    #[serde(rename = "outputFacets")]
    pub output_facets: Facets,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvent {
    #[serde(rename = "eventType", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    #[serde(rename = "eventTime", serialize_with = "serialize_time")]
    pub event_time_ms: i64,
    pub run: Run,
    pub job: Job,
    pub inputs: Vec<InputDataset>,
    pub outputs: Vec<OutputDataset>,
    pub producer: String,
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    #[serde(rename = "eventTime", serialize_with = "serialize_time")]
    pub event_time_ms: i64,
    pub job: Job,
    pub inputs: Vec<InputDataset>,
    pub outputs: Vec<OutputDataset>,
    pub producer: String,
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetEvent {
    #[serde(rename = "eventTime", serialize_with = "serialize_time")]
    pub event_time_ms: i64,
    pub dataset: Dataset,
    pub producer: String,
    #[serde(rename = "schemaURL")]
    pub schema_url: String,
}

/// Any of the three event kinds the spec defines.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum LineageEvent {
    Run(RunEvent),
    Job(JobEvent),
    Dataset(DatasetEvent),
}

impl LineageEvent {
    /// `run`, `job` or `dataset`.
    pub fn kind(&self) -> &'static str {
        match self {
            LineageEvent::Run(_) => "run",
            LineageEvent::Job(_) => "job",
            LineageEvent::Dataset(_) => "dataset",
        }
    }

    pub fn event_time_ms(&self) -> i64 {
        match self {
            LineageEvent::Run(e) => e.event_time_ms,
            LineageEvent::Job(e) => e.event_time_ms,
            LineageEvent::Dataset(e) => e.event_time_ms,
        }
    }

    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

impl From<RunEvent> for LineageEvent {
    fn from(event: RunEvent) -> Self {
        LineageEvent::Run(event)
    }
}

/// Node id of a dataset in the lineage graph: `dataset:<namespace>:<name>`.
pub fn dataset_node_id(namespace: &str, name: &str) -> String {
    format!("dataset:{namespace}:{name}")
}

/// Node id of a job in the lineage graph: `job:<namespace>:<name>`.
pub fn job_node_id(namespace: &str, name: &str) -> String {
    format!("job:{namespace}:{name}")
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses and validates one event of any kind. The kind follows the spec's required fields: a
/// `run` makes a RunEvent, else a `dataset` a DatasetEvent, else a `job` a JobEvent.
pub fn parse_lineage_event(value: &Value) -> Result<LineageEvent, LineageError> {
    let object = value.as_object().ok_or_else(|| {
        LineageError::UnknownEventKind(format!("the body must be a JSON object, got {}", type_name(value)))
    })?;
    let event_time_ms = parse_event_time(object)?;
    let producer = required_uri(object, "producer")?;
    let schema_url = required_uri(object, "schemaURL")?;
    if object.contains_key("run") {
        let event_type = match object.get("eventType") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.parse::<EventType>().map_err(|p| invalid("eventType", p))?),
            Some(other) => return Err(invalid("eventType", format!("must be a string, got {}", type_name(other)))),
        };
        let job = parse_job(object.get("job"), "job")?;
        return Ok(LineageEvent::Run(RunEvent {
            event_type,
            event_time_ms,
            run: parse_run(object.get("run"))?,
            job,
            inputs: parse_inputs(object.get("inputs"))?,
            outputs: parse_outputs(object.get("outputs"))?,
            producer,
            schema_url,
        }));
    }
    if object.contains_key("dataset") {
        return Ok(LineageEvent::Dataset(DatasetEvent {
            event_time_ms,
            dataset: parse_dataset(object.get("dataset"), "dataset")?,
            producer,
            schema_url,
        }));
    }
    if object.contains_key("job") {
        return Ok(LineageEvent::Job(JobEvent {
            event_time_ms,
            job: parse_job(object.get("job"), "job")?,
            inputs: parse_inputs(object.get("inputs"))?,
            outputs: parse_outputs(object.get("outputs"))?,
            producer,
            schema_url,
        }));
    }
    Err(LineageError::UnknownEventKind(
        "expected `run` and `job` (a RunEvent), `job` (a JobEvent) or `dataset` (a DatasetEvent)".into(),
    ))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_str<'a>(object: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, LineageError> {
    match object.get(key) {
        None | Some(Value::Null) => Err(invalid(path, "is required")),
        Some(Value::String(text)) if text.trim().is_empty() => Err(invalid(path, "must not be empty")),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(invalid(path, format!("must be a string, got {}", type_name(other)))),
    }
}

fn required_uri(object: &Map<String, Value>, key: &str) -> Result<String, LineageError> {
    let text = required_str(object, key, key)?;
    url::Url::parse(text).map_err(|e| invalid(key, format!("must be an absolute URI, got `{text}` ({e})")))?;
    Ok(text.to_string())
}

fn parse_event_time(object: &Map<String, Value>) -> Result<i64, LineageError> {
    let text = required_str(object, "eventTime", "eventTime")?;
    parse_rfc3339_ms(text).ok_or_else(|| {
        invalid("eventTime", format!("must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z, got `{text}`"))
    })
}

fn parse_object<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a Map<String, Value>, LineageError> {
    match value {
        None | Some(Value::Null) => Err(invalid(path, "is required")),
        Some(Value::Object(object)) => Ok(object),
        Some(other) => Err(invalid(path, format!("must be an object, got {}", type_name(other)))),
    }
}

/// A facets map: optional, and each facet an object.
fn parse_facets(object: &Map<String, Value>, key: &str, path: &str) -> Result<Facets, LineageError> {
    let path = format!("{path}.{key}");
    let facets = match object.get(key) {
        None | Some(Value::Null) => return Ok(Facets::new()),
        Some(Value::Object(facets)) => facets,
        Some(other) => return Err(invalid(path, format!("must be an object, got {}", type_name(other)))),
    };
    for (name, facet) in facets {
        if !facet.is_object() {
            return Err(invalid(format!("{path}.{name}"), format!("must be an object, got {}", type_name(facet))));
        }
    }
    Ok(facets.clone())
}

fn parse_run(value: Option<&Value>) -> Result<Run, LineageError> {
    let run = parse_object(value, "run")?;
    let text = required_str(run, "runId", "run.runId")?;
    let run_id = Uuid::parse_str(text).map_err(|_| invalid("run.runId", format!("must be a UUID, got `{text}`")))?;
    Ok(Run { run_id, facets: parse_facets(run, "facets", "run")? })
}

fn parse_job(value: Option<&Value>, path: &str) -> Result<Job, LineageError> {
    let job = parse_object(value, path)?;
    Ok(Job {
        namespace: required_str(job, "namespace", &format!("{path}.namespace"))?.to_string(),
        name: required_str(job, "name", &format!("{path}.name"))?.to_string(),
        facets: parse_facets(job, "facets", path)?,
    })
}

fn parse_dataset(value: Option<&Value>, path: &str) -> Result<Dataset, LineageError> {
    let dataset = parse_object(value, path)?;
    Ok(Dataset {
        namespace: required_str(dataset, "namespace", &format!("{path}.namespace"))?.to_string(),
        name: required_str(dataset, "name", &format!("{path}.name"))?.to_string(),
        facets: parse_facets(dataset, "facets", path)?,
    })
}

fn parse_list(value: Option<&Value>, path: &str) -> Result<Vec<Value>, LineageError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(other) => Err(invalid(path, format!("must be an array, got {}", type_name(other)))),
    }
}

/// `inputs` or `outputs`: datasets, each with its extra facets under `facets_key`.
fn parse_dataset_list<T>(
    value: Option<&Value>,
    list: &str,
    facets_key: &str,
    make: impl Fn(Dataset, Facets) -> T,
) -> Result<Vec<T>, LineageError> {
    parse_list(value, list)?
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let path = format!("{list}[{index}]");
            let dataset = parse_dataset(Some(item), &path)?;
            let facets = parse_facets(parse_object(Some(item), &path)?, facets_key, &path)?;
            Ok(make(dataset, facets))
        })
        .collect()
}

fn parse_inputs(value: Option<&Value>) -> Result<Vec<InputDataset>, LineageError> {
    parse_dataset_list(value, "inputs", "inputFacets", |dataset, input_facets| InputDataset { dataset, input_facets })
}

fn parse_outputs(value: Option<&Value>) -> Result<Vec<OutputDataset>, LineageError> {
    parse_dataset_list(value, "outputs", "outputFacets", |dataset, output_facets| OutputDataset {
        dataset,
        output_facets,
    })
}

// ---------------------------------------------------------------------------------------------
// Builders for the events Keelson emits

fn facet(producer: &str, schema_url: &str, body: Value) -> Value {
    let mut facet = Map::new();
    facet.insert("_producer".into(), Value::String(producer.to_string()));
    facet.insert("_schemaURL".into(), Value::String(schema_url.to_string()));
    if let Value::Object(fields) = body {
        facet.extend(fields);
    }
    Value::Object(facet)
}

impl RunEvent {
    /// An event stamped with the current time; `at` sets another.
    pub fn new(
        event_type: EventType,
        run_id: Uuid,
        job_namespace: impl Into<String>,
        job_name: impl Into<String>,
        producer: impl Into<String>,
    ) -> Self {
        RunEvent {
            event_type: Some(event_type),
            event_time_ms: SystemClock.now_millis(),
            run: Run { run_id, facets: Facets::new() },
            job: Job { namespace: job_namespace.into(), name: job_name.into(), facets: Facets::new() },
            inputs: Vec::new(),
            outputs: Vec::new(),
            producer: producer.into(),
            schema_url: format!("{OPENLINEAGE_SPEC_URL}#/$defs/RunEvent"),
        }
    }

    pub fn at(mut self, event_time_ms: i64) -> Self {
        self.event_time_ms = event_time_ms;
        self
    }

    pub fn with_input(mut self, input: impl Into<InputDataset>) -> Self {
        self.inputs.push(input.into());
        self
    }

    pub fn with_output(mut self, output: impl Into<OutputDataset>) -> Self {
        self.outputs.push(output.into());
        self
    }

    pub fn with_run_facet(mut self, name: impl Into<String>, facet: Value) -> Self {
        self.run.facets.insert(name.into(), facet);
        self
    }

    pub fn with_job_facet(mut self, name: impl Into<String>, facet: Value) -> Self {
        self.job.facets.insert(name.into(), facet);
        self
    }

    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

/// One column of a `schema` facet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaField {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl SchemaField {
    pub fn new(name: impl Into<String>, field_type: impl Into<String>) -> Self {
        SchemaField { name: name.into(), field_type: field_type.into(), description: None }
    }
}

/// An input field an output column was derived from (`columnLineage` facet).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputField {
    pub namespace: String,
    pub name: String,
    pub field: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transformations: Vec<Transformation>,
}

/// How an input field became the output column: `type` DIRECT or INDIRECT, `subtype` such as
/// IDENTITY, TRANSFORMATION, AGGREGATION, FILTER.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transformation {
    #[serde(rename = "type")]
    pub transformation_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masking: Option<bool>,
}

/// Per-column metrics of a `dataQualityMetrics` input facet.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ColumnMetrics {
    #[serde(rename = "nullCount", skip_serializing_if = "Option::is_none")]
    pub null_count: Option<i64>,
    #[serde(rename = "distinctCount", skip_serializing_if = "Option::is_none")]
    pub distinct_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Quantile (as text, e.g. "0.5") to value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub quantiles: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DataQualityMetrics {
    #[serde(rename = "rowCount", skip_serializing_if = "Option::is_none")]
    pub row_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    #[serde(rename = "fileCount", skip_serializing_if = "Option::is_none")]
    pub file_count: Option<i64>,
    #[serde(rename = "columnMetrics")]
    pub column_metrics: BTreeMap<String, ColumnMetrics>,
}

/// One check of a `dataQualityAssertions` facet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    pub assertion: String,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// `schema` dataset facet (SchemaDatasetFacet 1-2-0, as openlineage-python 1.54 writes it).
pub fn schema_facet(producer: &str, fields: &[SchemaField]) -> Value {
    facet(producer, SCHEMA_FACET_URL, json!({ "fields": fields }))
}

/// `columnLineage` dataset facet (ColumnLineageDatasetFacet 1-2-0): output column to the input
/// fields it came from.
pub fn column_lineage_facet(producer: &str, columns: &BTreeMap<String, Vec<InputField>>) -> Value {
    let fields: Map<String, Value> =
        columns.iter().map(|(column, inputs)| (column.clone(), json!({ "inputFields": inputs }))).collect();
    facet(producer, COLUMN_LINEAGE_FACET_URL, json!({ "fields": fields }))
}

/// `dataQualityMetrics` input facet (DataQualityMetricsInputDatasetFacet 1-0-2).
pub fn data_quality_metrics_facet(producer: &str, metrics: &DataQualityMetrics) -> Value {
    facet(producer, DATA_QUALITY_METRICS_FACET_URL, json!(metrics))
}

/// `dataQualityAssertions` input facet (DataQualityAssertionsDatasetFacet 1-0-1).
pub fn data_quality_assertions_facet(producer: &str, assertions: &[Assertion]) -> Value {
    facet(producer, DATA_QUALITY_ASSERTIONS_FACET_URL, json!({ "assertions": assertions }))
}

impl Dataset {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Dataset { namespace: namespace.into(), name: name.into(), facets: Facets::new() }
    }

    pub fn with_facet(mut self, name: impl Into<String>, facet: Value) -> Self {
        self.facets.insert(name.into(), facet);
        self
    }

    pub fn with_schema(self, producer: &str, fields: &[SchemaField]) -> Self {
        self.with_facet("schema", schema_facet(producer, fields))
    }

    pub fn with_column_lineage(self, producer: &str, columns: &BTreeMap<String, Vec<InputField>>) -> Self {
        self.with_facet("columnLineage", column_lineage_facet(producer, columns))
    }

    pub fn node_id(&self) -> String {
        dataset_node_id(&self.namespace, &self.name)
    }

    pub fn as_input(self) -> InputDataset {
        InputDataset { dataset: self, input_facets: Facets::new() }
    }

    pub fn as_output(self) -> OutputDataset {
        OutputDataset { dataset: self, output_facets: Facets::new() }
    }
}

impl From<Dataset> for InputDataset {
    fn from(dataset: Dataset) -> Self {
        dataset.as_input()
    }
}

impl From<Dataset> for OutputDataset {
    fn from(dataset: Dataset) -> Self {
        dataset.as_output()
    }
}

impl InputDataset {
    pub fn with_input_facet(mut self, name: impl Into<String>, facet: Value) -> Self {
        self.input_facets.insert(name.into(), facet);
        self
    }

    pub fn with_data_quality_metrics(self, producer: &str, metrics: &DataQualityMetrics) -> Self {
        self.with_input_facet("dataQualityMetrics", data_quality_metrics_facet(producer, metrics))
    }

    pub fn with_data_quality_assertions(self, producer: &str, assertions: &[Assertion]) -> Self {
        self.with_input_facet("dataQualityAssertions", data_quality_assertions_facet(producer, assertions))
    }
}

impl OutputDataset {
    pub fn with_output_facet(mut self, name: impl Into<String>, facet: Value) -> Self {
        self.output_facets.insert(name.into(), facet);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The graph

/// Which way a graph walk follows edges from its start node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineageDirection {
    Upstream,
    Downstream,
    #[default]
    Both,
}

impl FromStr for LineageDirection {
    type Err = LineageError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "upstream" => Ok(LineageDirection::Upstream),
            "downstream" => Ok(LineageDirection::Downstream),
            "both" => Ok(LineageDirection::Both),
            other => Err(LineageError::InvalidQuery(format!(
                "direction must be upstream, downstream or both, got `{other}`"
            ))),
        }
    }
}

/// Checks a requested walk depth against [`MAX_LINEAGE_DEPTH`].
pub fn validate_depth(depth: u32) -> Result<u32, LineageError> {
    if depth > MAX_LINEAGE_DEPTH {
        return Err(LineageError::InvalidQuery(format!("depth must be at most {MAX_LINEAGE_DEPTH}, got {depth}")));
    }
    Ok(depth)
}

/// An edge from `origin` (upstream) to `destination` (downstream).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LineageEdge {
    pub origin: String,
    pub destination: String,
}

/// A node of the graph in Marquez's shape: `type` is DATASET, JOB, RUN, MODEL or DEPLOYMENT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageNode {
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub data: Value,
    #[serde(rename = "inEdges")]
    pub in_edges: Vec<LineageEdge>,
    #[serde(rename = "outEdges")]
    pub out_edges: Vec<LineageEdge>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_event() -> Value {
        json!({
            "eventType": "START",
            "eventTime": "2024-05-01T12:00:00.123456+00:00",
            "run": {"runId": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "facets": {"nominalTime": {"nominalStartTime": "x"}}},
            "job": {"namespace": "etl", "name": "clean_orders"},
            "inputs": [{"namespace": "keelson", "name": "raw_orders", "inputFacets": {"dataQualityMetrics": {"rowCount": 3, "columnMetrics": {}}}}],
            "outputs": [{"namespace": "keelson", "name": "orders", "facets": {"schema": {"fields": [{"name": "id", "type": "Int64"}]}}}],
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client/python",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "someProducerExtension": true
        })
    }

    fn error_of(value: Value) -> String {
        parse_lineage_event(&value).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_run_event_and_keeps_facets_raw() {
        let LineageEvent::Run(event) = parse_lineage_event(&run_event()).unwrap() else { panic!("not a run event") };
        assert_eq!(event.event_type, Some(EventType::Start));
        assert_eq!(event.event_time_ms, 1_714_564_800_123);
        assert_eq!(event.job.name, "clean_orders");
        assert_eq!(event.inputs[0].dataset.node_id(), "dataset:keelson:raw_orders");
        assert_eq!(event.inputs[0].input_facets["dataQualityMetrics"]["rowCount"], 3);
        assert_eq!(event.outputs[0].dataset.facets["schema"]["fields"][0]["type"], "Int64");
        assert_eq!(event.run.facets["nominalTime"]["nominalStartTime"], "x");
        let round_trip = parse_lineage_event(&json!(LineageEvent::Run(event.clone()))).unwrap();
        assert_eq!(round_trip, LineageEvent::Run(event));
    }

    #[test]
    fn tells_the_event_kinds_apart() {
        let mut job_event = run_event();
        job_event.as_object_mut().unwrap().remove("run");
        assert_eq!(parse_lineage_event(&job_event).unwrap().kind(), "job");
        let dataset_event = json!({
            "eventTime": "2024-05-01T12:00:00Z",
            "dataset": {"namespace": "keelson", "name": "orders", "facets": {"schema": {"fields": []}}},
            "producer": "https://example.com/p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"
        });
        assert_eq!(parse_lineage_event(&dataset_event).unwrap().kind(), "dataset");
        assert!(error_of(
            json!({"eventTime": "2024-05-01T12:00:00Z", "producer": "https://p", "schemaURL": "https://s"})
        )
        .contains("expected `run` and `job`"));
        assert!(error_of(json!([1])).contains("must be a JSON object"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/run/runId", json!("not-a-uuid"), "`run.runId` must be a UUID, got `not-a-uuid`"),
            ("/eventType", json!("DONE"), "`eventType` must be one of START"),
            ("/eventTime", json!("yesterday"), "`eventTime` must be an RFC 3339 date-time"),
            ("/producer", json!("not a uri"), "`producer` must be an absolute URI"),
            ("/job/name", json!(""), "`job.name` must not be empty"),
            ("/job/namespace", json!(7), "`job.namespace` must be a string, got a number"),
            ("/inputs/0/name", Value::Null, "`inputs[0].name` is required"),
            ("/outputs/0/facets/schema", json!([1]), "`outputs[0].facets.schema` must be an object"),
            ("/inputs/0/inputFacets", json!("x"), "`inputs[0].inputFacets` must be an object"),
            ("/run", json!("x"), "`run` must be an object"),
            ("/outputs", json!({}), "`outputs` must be an array"),
        ];
        for (pointer, replacement, expected) in cases {
            let mut event = run_event();
            *event.pointer_mut(pointer).unwrap() = replacement;
            let message = error_of(event);
            assert!(message.contains(expected), "{pointer}: {message}");
        }
        let mut event = run_event();
        event.as_object_mut().unwrap().remove("schemaURL");
        assert!(error_of(event).contains("`schemaURL` is required"));
        let mut event = run_event();
        event.as_object_mut().unwrap().remove("job");
        assert!(error_of(event).contains("`job` is required"));
    }

    #[test]
    fn builds_events_with_standard_facets() {
        let run_id = Uuid::new_v4();
        let mut lineage = BTreeMap::new();
        lineage.insert(
            "id".to_string(),
            vec![InputField {
                namespace: "keelson".into(),
                name: "raw".into(),
                field: "id".into(),
                transformations: vec![],
            }],
        );
        let mut metrics = DataQualityMetrics { row_count: Some(10), ..Default::default() };
        metrics.column_metrics.insert(
            "id".into(),
            ColumnMetrics {
                null_count: Some(0),
                distinct_count: Some(10),
                min: Some(1.0),
                max: Some(10.0),
                quantiles: BTreeMap::from([("0.5".to_string(), 5.0)]),
                ..Default::default()
            },
        );
        let event = RunEvent::new(EventType::Complete, run_id, "keelson", "ingest", KEELSON_PRODUCER)
            .at(1_714_564_800_000)
            .with_input(
                Dataset::new("keelson", "raw")
                    .as_input()
                    .with_data_quality_metrics(KEELSON_PRODUCER, &metrics)
                    .with_data_quality_assertions(
                        KEELSON_PRODUCER,
                        &[Assertion { assertion: "not_null".into(), success: true, column: Some("id".into()) }],
                    ),
            )
            .with_output(
                Dataset::new("keelson", "orders")
                    .with_schema(KEELSON_PRODUCER, &[SchemaField::new("id", "Int64")])
                    .with_column_lineage(KEELSON_PRODUCER, &lineage),
            );
        let value = event.to_json();
        assert_eq!(value["eventType"], "COMPLETE");
        assert_eq!(value["eventTime"], "2024-05-01T12:00:00.000Z");
        assert_eq!(value["run"]["runId"], run_id.to_string());
        assert_eq!(value["schemaURL"], "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent");
        let schema = &value["outputs"][0]["facets"]["schema"];
        assert_eq!(schema["_producer"], KEELSON_PRODUCER);
        assert!(schema["_schemaURL"].as_str().unwrap().contains("SchemaDatasetFacet"));
        assert_eq!(schema["fields"], json!([{"name": "id", "type": "Int64"}]));
        assert_eq!(
            value["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"],
            json!([{"namespace": "keelson", "name": "raw", "field": "id"}])
        );
        let quality = &value["inputs"][0]["inputFacets"]["dataQualityMetrics"];
        assert_eq!(quality["rowCount"], 10);
        assert_eq!(
            quality["columnMetrics"]["id"],
            json!({"nullCount": 0, "distinctCount": 10, "min": 1.0, "max": 10.0, "quantiles": {"0.5": 5.0}})
        );
        assert_eq!(
            value["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"],
            json!([{"assertion": "not_null", "success": true, "column": "id"}])
        );
        // What Keelson emits, it accepts.
        assert_eq!(parse_lineage_event(&value).unwrap(), LineageEvent::Run(event));
    }

    #[test]
    fn directions_and_depth() {
        assert_eq!("upstream".parse::<LineageDirection>().unwrap(), LineageDirection::Upstream);
        assert!("sideways".parse::<LineageDirection>().unwrap_err().to_string().contains("`sideways`"));
        assert_eq!(validate_depth(100).unwrap(), 100);
        assert!(validate_depth(101).is_err());
    }
}
