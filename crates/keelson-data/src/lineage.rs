//! OpenLineage RunEvents for what keelson-data does: START when an ingest, recipe or validation
//! begins, COMPLETE or FAIL when it ends. Built with keelson-core's OpenLineage builders and
//! recorded through the same store path as events other tools POST to `/api/v1/lineage`.

use crate::error::DataError;
use keelson_core::datasets::{DatasetVersion, VersionRef};
use keelson_core::lineage::{
    data_quality_assertions_facet, data_quality_metrics_facet, Assertion, ColumnMetrics, DataQualityMetrics, Dataset,
    EventType, InputDataset, InputField, RunEvent, SchemaField, KEELSON_PRODUCER,
};
use keelson_store::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The namespace of Keelson's jobs and datasets.
pub const NAMESPACE: &str = "keelson";

/// How a run ended, with what the COMPLETE event reports about its output.
pub enum RunOutcome {
    Completed { output: Box<DatasetVersion>, validation: Option<Value> },
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

/// A version a run reads, with its columns (the candidates of column lineage).
pub struct RunInput {
    pub version: VersionRef,
    pub columns: BTreeSet<String>,
}

impl RunInput {
    pub fn of(version: &DatasetVersion) -> RunInput {
        let columns = version
            .schema
            .as_array()
            .map(|fields| fields.iter().filter_map(|f| f.get("name")?.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        RunInput { version: version.version_ref(), columns }
    }
}

/// One run of one job, between its START and its end event.
pub struct LineageRun {
    run_id: uuid::Uuid,
    job: String,
    inputs: Vec<RunInput>,
    output: Option<String>,
    /// Output column → the input column it was renamed from.
    renames: BTreeMap<String, String>,
}

fn quality_metrics(profile: &Value) -> DataQualityMetrics {
    let mut metrics =
        DataQualityMetrics { row_count: profile.get("row_count").and_then(Value::as_i64), ..Default::default() };
    for (name, column) in profile.get("columns").and_then(Value::as_object).into_iter().flatten() {
        let number = |key: &str| column.get(key).and_then(Value::as_f64);
        let quantiles = column
            .get("quantiles")
            .and_then(Value::as_object)
            .map(|q| q.iter().filter_map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect())
            .unwrap_or_default();
        metrics.column_metrics.insert(
            name.clone(),
            ColumnMetrics {
                null_count: column.get("null_count").and_then(Value::as_i64),
                distinct_count: column.get("distinct_estimate").and_then(Value::as_i64),
                count: number("count"),
                min: number("min"),
                max: number("max"),
                quantiles,
                ..Default::default()
            },
        );
    }
    metrics
}

fn assertions(validation: &Value) -> Vec<Assertion> {
    validation
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| Assertion {
            assertion: r.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
            success: r.get("success").and_then(Value::as_bool).unwrap_or(false),
            column: r.get("column").and_then(Value::as_str).map(str::to_string),
        })
        .collect()
}

impl LineageRun {
    /// Records the START event (a failure to record lineage is logged, never fails the work).
    pub async fn start(
        store: &Store,
        job: &str,
        inputs: Vec<RunInput>,
        output: Option<&str>,
        renames: BTreeMap<String, String>,
    ) -> LineageRun {
        let run = LineageRun {
            run_id: uuid::Uuid::now_v7(),
            job: job.to_string(),
            inputs,
            output: output.map(str::to_string),
            renames,
        };
        let mut event = run.event(EventType::Start);
        if let Some(output) = &run.output {
            event = event.with_output(Dataset::new(NAMESPACE, output));
        }
        record(store, event).await;
        run
    }

    /// An event of this run with its inputs named.
    fn event(&self, event_type: EventType) -> RunEvent {
        self.inputs
            .iter()
            .fold(RunEvent::new(event_type, self.run_id, NAMESPACE, &self.job, KEELSON_PRODUCER), |event, input| {
                event.with_input(Dataset::new(NAMESPACE, &input.version.dataset))
            })
    }

    /// The output with `schema`, `version` and `columnLineage` facets (an output column comes
    /// from the same-named, or renamed, column of every input that has it), and the quality of
    /// the output when expectations ran on it.
    fn output_dataset(&self, version: &DatasetVersion, validation: Option<&Value>) -> Dataset {
        let columns: Vec<(String, String)> = version
            .schema
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c.get("dtype")?.as_str()?.to_string())))
            .collect();
        let fields: Vec<SchemaField> = columns.iter().map(|(name, dtype)| SchemaField::new(name, dtype)).collect();
        let mut lineage = BTreeMap::new();
        for (name, _) in &columns {
            let source = self.renames.get(name).unwrap_or(name);
            let from: Vec<InputField> = self
                .inputs
                .iter()
                .filter(|input| input.columns.contains(source))
                .map(|input| InputField {
                    namespace: NAMESPACE.into(),
                    name: input.version.dataset.clone(),
                    field: source.clone(),
                    transformations: Vec::new(),
                })
                .collect();
            if !from.is_empty() {
                lineage.insert(name.clone(), from);
            }
        }
        let mut dataset = Dataset::new(NAMESPACE, &version.dataset)
            .with_schema(KEELSON_PRODUCER, &fields)
            .with_column_lineage(KEELSON_PRODUCER, &lineage)
            .with_facet(
                "version",
                json!({"_producer": KEELSON_PRODUCER, "datasetVersion": version.version.to_string()}),
            );
        if let Some(validation) = validation {
            // OpenLineage puts quality on inputs; expectations here ran on the output, so it
            // carries them as dataset facets.
            dataset = dataset
                .with_facet(
                    "dataQualityMetrics",
                    data_quality_metrics_facet(KEELSON_PRODUCER, &quality_metrics(&version.profile)),
                )
                .with_facet(
                    "dataQualityAssertions",
                    data_quality_assertions_facet(KEELSON_PRODUCER, &assertions(validation)),
                );
        }
        dataset
    }

    pub async fn finish(&self, store: &Store, outcome: RunOutcome) {
        let event = match outcome {
            RunOutcome::Completed { output, validation } => {
                self.event(EventType::Complete).with_output(self.output_dataset(&output, validation.as_ref()))
            }
            RunOutcome::Failed(message) => self.failed(&message),
        };
        record(store, event).await;
    }

    /// The end of a validation run: the validated version is the input, with quality facets.
    pub async fn finish_validation(
        &self,
        store: &Store,
        validated: &DatasetVersion,
        result: &Result<Value, DataError>,
    ) {
        let event = match result {
            Ok(validation) => {
                let input = InputDataset::from(Dataset::new(NAMESPACE, &validated.dataset))
                    .with_data_quality_metrics(KEELSON_PRODUCER, &quality_metrics(&validated.profile))
                    .with_data_quality_assertions(KEELSON_PRODUCER, &assertions(validation));
                RunEvent::new(EventType::Complete, self.run_id, NAMESPACE, &self.job, KEELSON_PRODUCER)
                    .with_input(input)
            }
            Err(error) => self.failed(&error.to_string()),
        };
        record(store, event).await;
    }

    fn failed(&self, message: &str) -> RunEvent {
        self.event(EventType::Fail).with_run_facet(
            "errorMessage",
            json!({"_producer": KEELSON_PRODUCER, "message": message, "programmingLanguage": "rust"}),
        )
    }
}

/// Lineage is an audit record, not part of the work: a failure to record it is logged loudly but
/// never fails (or undoes) the work it describes.
async fn record(store: &Store, event: RunEvent) {
    if let Err(error) = store.record_lineage_event(&event.into()).await {
        tracing::error!(%error, "could not record a lineage event");
    }
}
