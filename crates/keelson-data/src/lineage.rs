//! OpenLineage RunEvents for what keelson-data does (OpenLineage spec 2-0-2): START when an
//! ingest, recipe or validation begins, COMPLETE or FAIL when it ends. They are recorded through
//! the same store path as events other tools POST to `/api/v1/lineage`.

use crate::error::DataError;
use keelson_core::datasets::VersionRef;
use keelson_store::Store;
use serde_json::{json, Value};

pub const PRODUCER: &str = "https://github.com/keelson/keelson";
pub const NAMESPACE: &str = "keelson";
const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// How a run ended, with what the COMPLETE event reports about its output.
pub enum RunOutcome {
    Completed { output: Box<keelson_core::datasets::DatasetVersion>, validation: Option<Value> },
    Failed(String),
}

impl From<&Result<crate::Registered, DataError>> for RunOutcome {
    fn from(result: &Result<crate::Registered, DataError>) -> Self {
        match result {
            Ok(registered) => RunOutcome::Completed {
                output: Box::new(registered.version.clone()),
                validation: registered.validation.clone(),
            },
            Err(error) => RunOutcome::Failed(error.to_string()),
        }
    }
}

/// One run of one job, between its START and its end event.
pub struct LineageRun {
    run_id: String,
    job: String,
    inputs: Vec<VersionRef>,
    output: String,
}

fn dataset_node(name: &str, facets: Value) -> Value {
    json!({"namespace": NAMESPACE, "name": name, "facets": facets})
}

fn facet(name: &str, body: Value) -> Value {
    let mut body = body;
    if let Value::Object(map) = &mut body {
        map.insert("_producer".into(), json!(PRODUCER));
        map.insert(
            "_schemaURL".into(),
            json!(format!("https://openlineage.io/spec/facets/1-0-1/{name}.json#/$defs/{name}")),
        );
    }
    body
}

/// The `schema` and `columnLineage` facets of a version, and its version facet.
pub fn output_facets(version: &keelson_core::datasets::DatasetVersion, inputs: &[VersionRef]) -> Value {
    let fields: Vec<Value> = version
        .schema
        .as_array()
        .map(|columns| columns.iter().map(|c| json!({"name": c.get("name"), "type": c.get("dtype")})).collect())
        .unwrap_or_default();
    let mut column_lineage = serde_json::Map::new();
    for field in &fields {
        let Some(name) = field.get("name").and_then(Value::as_str) else { continue };
        let sources: Vec<Value> =
            inputs.iter().map(|input| json!({"namespace": NAMESPACE, "name": input.dataset, "field": name})).collect();
        if !sources.is_empty() {
            column_lineage.insert(name.to_string(), json!({"inputFields": sources}));
        }
    }
    json!({
        "schema": facet("SchemaDatasetFacet", json!({"fields": fields})),
        "version": facet("DatasetVersionDatasetFacet", json!({"datasetVersion": version.version.to_string()})),
        "columnLineage": facet("ColumnLineageDatasetFacet", json!({"fields": column_lineage})),
    })
}

/// `dataQualityMetrics` and `dataQualityAssertions` input facets from a validation result.
pub fn quality_facets(profile: &Value, validation: Option<&Value>) -> Value {
    let mut metrics = serde_json::Map::new();
    if let Some(columns) = profile.get("columns").and_then(Value::as_object) {
        for (name, column) in columns {
            metrics.insert(
                name.clone(),
                json!({
                    "nullCount": column.get("null_count"), "distinctCount": column.get("distinct_estimate"),
                    "min": column.get("min").filter(|v| v.is_number()), "max": column.get("max").filter(|v| v.is_number()),
                }),
            );
        }
    }
    let mut facets = serde_json::Map::new();
    facets.insert(
        "dataQualityMetrics".into(),
        facet(
            "DataQualityMetricsInputDatasetFacet",
            json!({"rowCount": profile.get("row_count"), "columnMetrics": metrics}),
        ),
    );
    if let Some(results) = validation.and_then(|v| v.get("results")).and_then(Value::as_array) {
        let assertions: Vec<Value> = results
            .iter()
            .map(|r| json!({"assertion": r.get("type"), "success": r.get("success"), "column": r.get("column")}))
            .collect();
        facets.insert(
            "dataQualityAssertions".into(),
            facet("DataQualityAssertionsDatasetFacet", json!({"assertions": assertions})),
        );
    }
    Value::Object(facets)
}

impl LineageRun {
    /// Records the START event (a failure to record lineage is logged, never fails the work).
    pub async fn start(store: &Store, job: &str, inputs: &[VersionRef], output: &str) -> LineageRun {
        let run = LineageRun {
            run_id: uuid::Uuid::now_v7().to_string(),
            job: job.to_string(),
            inputs: inputs.to_vec(),
            output: output.to_string(),
        };
        let inputs: Vec<Value> = run.inputs.iter().map(|i| dataset_node(&i.dataset, json!({}))).collect();
        let outputs: Vec<Value> =
            if run.output.is_empty() { Vec::new() } else { vec![dataset_node(&run.output, json!({}))] };
        record(store, run.event(store, "START", inputs, outputs, json!({}))).await;
        run
    }

    fn event(
        &self,
        _store: &Store,
        event_type: &str,
        inputs: Vec<Value>,
        outputs: Vec<Value>,
        run_facets: Value,
    ) -> Value {
        json!({
            "eventType": event_type,
            "eventTime": keelson_core::time::format_rfc3339_ms(crate::service::now_ms()),
            "run": {"runId": self.run_id, "facets": run_facets},
            "job": {"namespace": NAMESPACE, "name": self.job, "facets": {}},
            "inputs": inputs,
            "outputs": outputs,
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
        })
    }

    pub async fn finish(&self, store: &Store, outcome: RunOutcome) {
        let inputs: Vec<Value> = self.inputs.iter().map(|i| dataset_node(&i.dataset, json!({}))).collect();
        let event = match outcome {
            RunOutcome::Completed { output, validation } => {
                let mut facets = output_facets(&output, &self.inputs);
                if let (Value::Object(map), Value::Object(quality)) =
                    (&mut facets, quality_facets(&output.profile, validation.as_ref()))
                {
                    // Expectations ran on the output; OpenLineage keeps quality on inputs, so
                    // the output carries them as dataset facets too.
                    map.extend(quality);
                }
                self.event(store, "COMPLETE", inputs, vec![dataset_node(&self.output, facets)], json!({}))
            }
            RunOutcome::Failed(message) => self.event(store, "FAIL", inputs, Vec::new(), error_facet(&message)),
        };
        record(store, event).await;
    }

    /// The end of a validation run: the validated version is the input, with quality facets.
    pub async fn finish_validation(&self, store: &Store, result: &Result<Value, DataError>) {
        let event = match result {
            Ok(validation) => {
                let inputs: Vec<Value> = self
                    .inputs
                    .iter()
                    .map(|i| {
                        let mut node = dataset_node(&i.dataset, json!({}));
                        if let Value::Object(map) = &mut node {
                            map.insert("inputFacets".into(), quality_facets(&json!({}), Some(validation)));
                        }
                        node
                    })
                    .collect();
                self.event(store, "COMPLETE", inputs, Vec::new(), json!({}))
            }
            Err(error) => self.event(store, "FAIL", Vec::new(), Vec::new(), error_facet(&error.to_string())),
        };
        record(store, event).await;
    }
}

fn error_facet(message: &str) -> Value {
    json!({"errorMessage": facet("ErrorMessageRunFacet", json!({"message": message, "programmingLanguage": "rust"}))})
}

/// Lineage is an audit record, not part of the work: a failure to record it is logged loudly but
/// never fails (or undoes) the ingest it describes.
async fn record(store: &Store, event: Value) {
    let parsed = match keelson_core::lineage::parse_lineage_event(&event) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::error!(%error, "keelson-data built an invalid lineage event");
            return;
        }
    };
    if let Err(error) = store.record_lineage_event(&parsed).await {
        tracing::error!(%error, "could not record a lineage event");
    }
}
