//! SQL for lineage: OpenLineage events as received, run states, the graph they describe, and
//! Keelson's own links joined into it when read (a dataset an MLflow run logged as input → the
//! run → the model versions registered from it → the deployments serving them; an OpenLineage
//! job → the MLflow run whose id its runId is).

use crate::backend::Store;
use crate::error::StoreError;
use crate::registry::DELETED_STAGE;
use keelson_core::lineage::{
    job_node_id, validate_depth, Dataset, EventType, Facets, InputDataset, Job, LineageDirection, LineageEdge,
    LineageEvent, LineageNode, OutputDataset, RunEvent,
};
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeSet, HashSet, VecDeque};

/// A graph walk stops adding nodes past this many, whatever the depth asked.
pub const MAX_LINEAGE_GRAPH_NODES: usize = 5_000;

/// What one event says about one node.
struct NodeUpdate<'a> {
    id: String,
    node_type: &'static str,
    namespace: &'a str,
    name: &'a str,
    facets: &'a Facets,
    input_facets: Option<&'a Facets>,
    output_facets: Option<&'a Facets>,
    latest_run_id: Option<String>,
    event_time: i64,
}

fn parse_facets(text: &str, what: &str) -> Result<Facets, StoreError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(facets)) => Ok(facets),
        Ok(_) => Err(StoreError::Corrupt(format!("{what} is not a JSON object"))),
        Err(e) => Err(StoreError::Corrupt(format!("{what}: {e}"))),
    }
}

/// Facets are additive: the incoming ones replace those of the same name when the event is the
/// newest seen for the node; an older event only fills in names the node does not have yet.
fn merge_facets(stored: &str, incoming: Option<&Facets>, newer: bool, what: &str) -> Result<String, StoreError> {
    let mut merged = parse_facets(stored, what)?;
    for (name, facet) in incoming.into_iter().flatten() {
        if newer || !merged.contains_key(name) {
            merged.insert(name.clone(), facet.clone());
        }
    }
    Ok(Value::Object(merged).to_string())
}

async fn upsert_node(conn: &mut AnyConnection, update: NodeUpdate<'_>) -> Result<(), StoreError> {
    let existing = sqlx::query(
        "SELECT facets, input_facets, output_facets, latest_run_id, updated_at FROM lineage_nodes WHERE id = $1",
    )
    .bind(&update.id)
    .fetch_optional(&mut *conn)
    .await?;
    let empty = "{}".to_string();
    let (stored_facets, stored_inputs, stored_outputs, stored_run, stored_time) = match &existing {
        Some(row) => (
            row.try_get::<String, _>("facets")?,
            row.try_get::<String, _>("input_facets")?,
            row.try_get::<String, _>("output_facets")?,
            row.try_get::<Option<String>, _>("latest_run_id")?,
            row.try_get::<i64, _>("updated_at")?,
        ),
        None => (empty.clone(), empty.clone(), empty, None, i64::MIN),
    };
    let newer = update.event_time >= stored_time;
    let what = format!("facets of lineage node `{}`", update.id);
    let facets = merge_facets(&stored_facets, Some(update.facets), newer, &what)?;
    let input_facets = merge_facets(&stored_inputs, update.input_facets, newer, &what)?;
    let output_facets = merge_facets(&stored_outputs, update.output_facets, newer, &what)?;
    let latest_run_id = match (&update.latest_run_id, newer) {
        (Some(run_id), true) => Some(run_id.clone()),
        _ => stored_run.or(update.latest_run_id),
    };
    // Two PostgreSQL transactions creating one node at once: the later one's merge wins; both
    // events stay in lineage_events.
    sqlx::query(
        "INSERT INTO lineage_nodes (id, node_type, namespace, name, facets, input_facets, output_facets, latest_run_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET facets = excluded.facets, input_facets = excluded.input_facets, \
           output_facets = excluded.output_facets, latest_run_id = excluded.latest_run_id, updated_at = excluded.updated_at",
    )
    .bind(&update.id)
    .bind(update.node_type)
    .bind(update.namespace)
    .bind(update.name)
    .bind(facets)
    .bind(input_facets)
    .bind(output_facets)
    .bind(latest_run_id)
    .bind(update.event_time.max(stored_time))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_edge(conn: &mut AnyConnection, origin: &str, destination: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO lineage_edges (origin, destination, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (origin, destination) DO NOTHING",
    )
    .bind(origin)
    .bind(destination)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn dataset_update<'a>(
    dataset: &'a Dataset,
    input_facets: Option<&'a Facets>,
    output_facets: Option<&'a Facets>,
    event_time: i64,
) -> NodeUpdate<'a> {
    NodeUpdate {
        id: dataset.node_id(),
        node_type: "dataset",
        namespace: &dataset.namespace,
        name: &dataset.name,
        facets: &dataset.facets,
        input_facets,
        output_facets,
        latest_run_id: None,
        event_time,
    }
}

/// The job, its datasets and the edges input → job → output.
async fn apply_job(
    conn: &mut AnyConnection,
    job: &Job,
    run_id: Option<String>,
    inputs: &[InputDataset],
    outputs: &[OutputDataset],
    event_time: i64,
    now: i64,
) -> Result<(), StoreError> {
    let job_id = job_node_id(&job.namespace, &job.name);
    upsert_node(
        conn,
        NodeUpdate {
            id: job_id.clone(),
            node_type: "job",
            namespace: &job.namespace,
            name: &job.name,
            facets: &job.facets,
            input_facets: None,
            output_facets: None,
            latest_run_id: run_id,
            event_time,
        },
    )
    .await?;
    for input in inputs {
        upsert_node(conn, dataset_update(&input.dataset, Some(&input.input_facets), None, event_time)).await?;
        insert_edge(conn, &input.dataset.node_id(), &job_id, now).await?;
    }
    for output in outputs {
        upsert_node(conn, dataset_update(&output.dataset, None, Some(&output.output_facets), event_time)).await?;
        insert_edge(conn, &job_id, &output.dataset.node_id(), now).await?;
    }
    Ok(())
}

/// Marquez's run states.
fn run_state(event_type: EventType) -> &'static str {
    match event_type {
        EventType::Start | EventType::Running => "RUNNING",
        EventType::Complete => "COMPLETED",
        EventType::Abort => "ABORTED",
        EventType::Fail => "FAILED",
        EventType::Other => "NEW",
    }
}

fn is_terminal_state(state: &str) -> bool {
    matches!(state, "COMPLETED" | "ABORTED" | "FAILED")
}

/// Moves the run's state: a terminal event always ends a run still going; otherwise the newer
/// event wins. OTHER events (and events without a type) carry facets only.
async fn apply_run_state(conn: &mut AnyConnection, event: &RunEvent) -> Result<(), StoreError> {
    let run_id = event.run.run_id.to_string();
    let time = event.event_time_ms;
    let row = sqlx::query("SELECT state, started_at, ended_at, updated_at FROM lineage_runs WHERE run_id = $1")
        .bind(&run_id)
        .fetch_optional(&mut *conn)
        .await?;
    let (mut state, mut started_at, mut ended_at, updated_at) = match &row {
        Some(row) => (
            row.try_get::<String, _>("state")?,
            row.try_get::<Option<i64>, _>("started_at")?,
            row.try_get::<Option<i64>, _>("ended_at")?,
            row.try_get::<i64, _>("updated_at")?,
        ),
        None => ("NEW".to_string(), None, None, time),
    };
    let event_type = event.event_type.unwrap_or(EventType::Other);
    if event_type == EventType::Start {
        started_at = Some(started_at.map_or(time, |started| started.min(time)));
    }
    if event_type != EventType::Other {
        let incoming = run_state(event_type);
        let takes = if event_type.is_terminal() {
            !is_terminal_state(&state) || time >= updated_at
        } else {
            !is_terminal_state(&state) && time >= updated_at
        };
        if takes {
            state = incoming.to_string();
            if event_type.is_terminal() {
                ended_at = Some(time);
            }
        }
    }
    sqlx::query(
        "INSERT INTO lineage_runs (run_id, job_namespace, job_name, state, started_at, ended_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, started_at = excluded.started_at, \
           ended_at = excluded.ended_at, updated_at = excluded.updated_at",
    )
    .bind(&run_id)
    .bind(&event.job.namespace)
    .bind(&event.job.name)
    .bind(state)
    .bind(started_at)
    .bind(ended_at)
    .bind(updated_at.max(time))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The node id an MLflow dataset input gets: its source's `uri` when it has one, else its name.
fn mlflow_dataset_node_id(name: &str, source: &str) -> String {
    let uri = serde_json::from_str::<Value>(source)
        .ok()
        .and_then(|value| value.get("uri").and_then(Value::as_str).map(str::to_string));
    format!("dataset:{}", uri.unwrap_or_else(|| name.to_string()))
}

fn edge(origin: impl Into<String>, destination: impl Into<String>) -> LineageEdge {
    LineageEdge { origin: origin.into(), destination: destination.into() }
}

fn facets_value(row: &AnyRow, column: &str) -> Result<Value, StoreError> {
    let text: String = row.try_get(column)?;
    Ok(Value::Object(parse_facets(&text, "lineage node facets")?))
}

/// A node with every edge it has (the walk trims them to the nodes it returns).
struct FoundNode {
    data: Option<Value>,
    in_edges: BTreeSet<LineageEdge>,
    out_edges: BTreeSet<LineageEdge>,
}

impl Store {
    /// Records one event in one transaction: the event as received, the run's state, the nodes
    /// with their merged facets, and the edges.
    pub async fn record_lineage_event(&self, event: &LineageEvent) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
        let (event_type, run_id, job) = match event {
            LineageEvent::Run(e) => (e.event_type.map(EventType::as_str), Some(e.run.run_id.to_string()), Some(&e.job)),
            LineageEvent::Job(e) => (None, None, Some(&e.job)),
            LineageEvent::Dataset(_) => (None, None, None),
        };
        sqlx::query(
            "INSERT INTO lineage_events (event_kind, event_type, event_time, run_id, job_namespace, job_name, payload, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.kind())
        .bind(event_type)
        .bind(event.event_time_ms())
        .bind(run_id.clone())
        .bind(job.map(|j| j.namespace.clone()))
        .bind(job.map(|j| j.name.clone()))
        .bind(event.to_json().to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        match event {
            LineageEvent::Run(e) => {
                apply_job(&mut tx, &e.job, run_id, &e.inputs, &e.outputs, e.event_time_ms, now).await?;
                apply_run_state(&mut tx, e).await?;
            }
            LineageEvent::Job(e) => {
                apply_job(&mut tx, &e.job, None, &e.inputs, &e.outputs, e.event_time_ms, now).await?;
            }
            LineageEvent::Dataset(e) => {
                upsert_node(&mut tx, dataset_update(&e.dataset, None, None, e.event_time_ms)).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many events are stored, for tests and diagnostics.
    pub async fn lineage_event_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM lineage_events").fetch_one(&self.reader).await?;
        Ok(row.try_get("n")?)
    }

    /// The graph around `node_id`: a breadth-first walk of at most `depth` edges in `direction`,
    /// each node with its data and its edges among the nodes returned, the start node first.
    pub async fn lineage_graph(
        &self,
        node_id: &str,
        depth: u32,
        direction: LineageDirection,
    ) -> Result<Vec<LineageNode>, StoreError> {
        let depth = validate_depth(depth).map_err(|e| StoreError::InvalidArgument(e.to_string()))?;
        let mut found: Vec<(String, FoundNode)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::from([node_id.to_string()]);
        let mut queue: VecDeque<(String, u32)> = VecDeque::from([(node_id.to_string(), 0)]);
        while let Some((id, distance)) = queue.pop_front() {
            let node = self.lineage_node(&id).await?;
            if node.data.is_none() {
                if found.is_empty() {
                    return Err(StoreError::NotFound(format!("lineage node `{id}` does not exist")));
                }
                continue;
            }
            if distance < depth {
                let mut next: Vec<&String> = Vec::new();
                if direction != LineageDirection::Downstream {
                    next.extend(node.in_edges.iter().map(|e| &e.origin));
                }
                if direction != LineageDirection::Upstream {
                    next.extend(node.out_edges.iter().map(|e| &e.destination));
                }
                for neighbour in next {
                    if seen.len() < MAX_LINEAGE_GRAPH_NODES && seen.insert(neighbour.clone()) {
                        queue.push_back((neighbour.clone(), distance + 1));
                    }
                }
            }
            found.push((id, node));
        }
        let included: HashSet<String> = found.iter().map(|(id, _)| id.clone()).collect();
        Ok(found
            .into_iter()
            .map(|(id, node)| LineageNode {
                node_type: id.split_once(':').map(|(kind, _)| kind).unwrap_or(&id).to_uppercase(),
                data: node.data.unwrap_or(Value::Null),
                in_edges: node.in_edges.into_iter().filter(|e| included.contains(&e.origin)).collect(),
                out_edges: node.out_edges.into_iter().filter(|e| included.contains(&e.destination)).collect(),
                id,
            })
            .collect())
    }

    /// One node from the OpenLineage tables and Keelson's own; `data` is `None` when neither
    /// knows it.
    async fn lineage_node(&self, id: &str) -> Result<FoundNode, StoreError> {
        let mut node = FoundNode { data: None, in_edges: BTreeSet::new(), out_edges: BTreeSet::new() };
        let Some((kind, rest)) = id.split_once(':') else { return Ok(node) };
        if matches!(kind, "dataset" | "job") {
            self.openlineage_node(id, &mut node).await?;
        }
        match kind {
            "dataset" => self.mlflow_dataset_node(id, &mut node).await?,
            "run" => self.run_node(rest, &mut node).await?,
            "model" => {
                if let Some((name, version)) = rest.rsplit_once(':') {
                    if let Ok(version) = version.parse::<i64>() {
                        self.model_version_node(name, version, &mut node).await?;
                    }
                }
            }
            "deployment" => {
                if let Some((endpoint, deployment)) = rest.split_once(':') {
                    self.deployment_node(endpoint, deployment, &mut node).await?;
                }
            }
            _ => {}
        }
        Ok(node)
    }

    async fn openlineage_node(&self, id: &str, node: &mut FoundNode) -> Result<(), StoreError> {
        let Some(row) =
            sqlx::query("SELECT * FROM lineage_nodes WHERE id = $1").bind(id).fetch_optional(&self.reader).await?
        else {
            return Ok(());
        };
        let node_type: String = row.try_get("node_type")?;
        let mut data = json!({
            "namespace": row.try_get::<String, _>("namespace")?,
            "name": row.try_get::<String, _>("name")?,
            "facets": facets_value(&row, "facets")?,
            "updatedAt": row.try_get::<i64, _>("updated_at")?,
        });
        if node_type == "dataset" {
            data["inputFacets"] = facets_value(&row, "input_facets")?;
            data["outputFacets"] = facets_value(&row, "output_facets")?;
        } else {
            if let Some(run_id) = row.try_get::<Option<String>, _>("latest_run_id")? {
                data["latestRun"] = self.lineage_run(&run_id).await?;
            }
            // A run of the job whose runId is an MLflow run's id (a training step that reports
            // to both) is that run: the job is upstream of it.
            let runs = sqlx::query(
                "SELECT r.run_uuid FROM lineage_runs l JOIN runs r ON r.run_uuid = REPLACE(l.run_id, '-', '') \
                 WHERE l.job_namespace = $1 AND l.job_name = $2 AND r.lifecycle_stage = 'active'",
            )
            .bind(row.try_get::<String, _>("namespace")?)
            .bind(row.try_get::<String, _>("name")?)
            .fetch_all(&self.reader)
            .await?;
            for run in runs {
                node.out_edges.insert(edge(id, format!("run:{}", run.try_get::<String, _>("run_uuid")?)));
            }
        }
        node.data = Some(data);
        let rows = sqlx::query("SELECT origin, destination FROM lineage_edges WHERE origin = $1 OR destination = $1")
            .bind(id)
            .fetch_all(&self.reader)
            .await?;
        for row in rows {
            let found = edge(row.try_get::<String, _>("origin")?, row.try_get::<String, _>("destination")?);
            if found.origin == id {
                node.out_edges.insert(found);
            } else {
                node.in_edges.insert(found);
            }
        }
        Ok(())
    }

    async fn lineage_run(&self, run_id: &str) -> Result<Value, StoreError> {
        let row = sqlx::query("SELECT state, started_at, ended_at, updated_at FROM lineage_runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(json!({ "runId": run_id })) };
        Ok(json!({
            "runId": run_id,
            "state": row.try_get::<String, _>("state")?,
            "startedAt": row.try_get::<Option<i64>, _>("started_at")?,
            "endedAt": row.try_get::<Option<i64>, _>("ended_at")?,
            "updatedAt": row.try_get::<i64, _>("updated_at")?,
        }))
    }

    /// MLflow datasets logged as run inputs: the dataset is upstream of each active run.
    async fn mlflow_dataset_node(&self, id: &str, node: &mut FoundNode) -> Result<(), StoreError> {
        let key = &id["dataset:".len()..];
        // LIKE narrows to candidates (its wildcards only widen); the exact id is checked below.
        let rows = sqlx::query(
            "SELECT d.name, d.source, d.source_type, d.digest, i.run_uuid FROM datasets d \
             JOIN run_dataset_inputs i ON i.dataset_uuid = d.dataset_uuid \
             JOIN runs r ON r.run_uuid = i.run_uuid AND r.lifecycle_stage = 'active' \
             WHERE d.name = $1 OR d.source LIKE $2 ORDER BY i.run_uuid",
        )
        .bind(key)
        .bind(format!("%{key}%"))
        .fetch_all(&self.reader)
        .await?;
        for row in rows {
            let name: String = row.try_get("name")?;
            let source: String = row.try_get("source")?;
            if mlflow_dataset_node_id(&name, &source) != id {
                continue;
            }
            node.out_edges.insert(edge(id, format!("run:{}", row.try_get::<String, _>("run_uuid")?)));
            if node.data.is_none() {
                node.data = Some(json!({
                    "name": name,
                    "source": serde_json::from_str::<Value>(&source).unwrap_or(Value::String(source.clone())),
                    "sourceType": row.try_get::<String, _>("source_type")?,
                    "digest": row.try_get::<String, _>("digest")?,
                }));
            }
        }
        Ok(())
    }

    /// An MLflow run: its dataset inputs upstream, the model versions registered from it
    /// downstream.
    async fn run_node(&self, run_id: &str, node: &mut FoundNode) -> Result<(), StoreError> {
        let Some(row) = sqlx::query(
            "SELECT run_uuid, experiment_id, name, status, start_time, end_time FROM runs \
             WHERE run_uuid = $1 AND lifecycle_stage = 'active'",
        )
        .bind(run_id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(());
        };
        let id = format!("run:{run_id}");
        node.data = Some(json!({
            "runId": run_id,
            "experimentId": row.try_get::<i64, _>("experiment_id")?.to_string(),
            "name": row.try_get::<String, _>("name")?,
            "status": row.try_get::<String, _>("status")?,
            "startTime": row.try_get::<i64, _>("start_time")?,
            "endTime": row.try_get::<Option<i64>, _>("end_time")?,
        }));
        if let Ok(uuid) = uuid::Uuid::parse_str(run_id) {
            let jobs = sqlx::query("SELECT job_namespace, job_name FROM lineage_runs WHERE run_id = $1")
                .bind(uuid.hyphenated().to_string())
                .fetch_all(&self.reader)
                .await?;
            for job in jobs {
                let job =
                    job_node_id(&job.try_get::<String, _>("job_namespace")?, &job.try_get::<String, _>("job_name")?);
                node.in_edges.insert(edge(job, &id));
            }
        }
        let inputs = sqlx::query(
            "SELECT d.name, d.source FROM datasets d JOIN run_dataset_inputs i ON i.dataset_uuid = d.dataset_uuid \
             WHERE i.run_uuid = $1",
        )
        .bind(run_id)
        .fetch_all(&self.reader)
        .await?;
        for input in inputs {
            let dataset =
                mlflow_dataset_node_id(&input.try_get::<String, _>("name")?, &input.try_get::<String, _>("source")?);
            node.in_edges.insert(edge(dataset, &id));
        }
        let versions =
            sqlx::query("SELECT name, version FROM model_versions WHERE run_id = $1 AND current_stage <> $2")
                .bind(run_id)
                .bind(DELETED_STAGE)
                .fetch_all(&self.reader)
                .await?;
        for version in versions {
            let name: String = version.try_get("name")?;
            let number: i64 = version.try_get("version")?;
            node.out_edges.insert(edge(&id, format!("model:{name}:{number}")));
        }
        Ok(())
    }

    /// A registered model version: its run upstream, the deployments serving it downstream.
    async fn model_version_node(&self, name: &str, version: i64, node: &mut FoundNode) -> Result<(), StoreError> {
        let Some(row) = sqlx::query(
            "SELECT name, version, run_id, current_stage, status, source, creation_time FROM model_versions \
             WHERE name = $1 AND version = $2 AND current_stage <> $3",
        )
        .bind(name)
        .bind(version)
        .bind(DELETED_STAGE)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(());
        };
        let id = format!("model:{name}:{version}");
        let run_id: Option<String> = row.try_get("run_id")?;
        node.data = Some(json!({
            "name": name,
            "version": version.to_string(),
            "runId": run_id,
            "currentStage": row.try_get::<String, _>("current_stage")?,
            "status": row.try_get::<String, _>("status")?,
            "source": row.try_get::<String, _>("source")?,
            "creationTime": row.try_get::<i64, _>("creation_time")?,
        }));
        if let Some(run_id) = run_id.filter(|r| !r.is_empty()) {
            node.in_edges.insert(edge(format!("run:{run_id}"), &id));
        }
        let deployments =
            sqlx::query("SELECT endpoint, name FROM serving_deployments WHERE model_name = $1 AND model_version = $2")
                .bind(name)
                .bind(version.to_string())
                .fetch_all(&self.reader)
                .await?;
        for deployment in deployments {
            let endpoint: String = deployment.try_get("endpoint")?;
            let deployment: String = deployment.try_get("name")?;
            node.out_edges.insert(edge(&id, format!("deployment:{endpoint}:{deployment}")));
        }
        Ok(())
    }

    /// A deployment on an endpoint: the model version it serves upstream.
    async fn deployment_node(&self, endpoint: &str, deployment: &str, node: &mut FoundNode) -> Result<(), StoreError> {
        let Some(row) = sqlx::query(
            "SELECT endpoint, name, model_name, model_version, created, updated FROM serving_deployments \
             WHERE endpoint = $1 AND name = $2",
        )
        .bind(endpoint)
        .bind(deployment)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(());
        };
        let model_name: String = row.try_get("model_name")?;
        let model_version: String = row.try_get("model_version")?;
        node.in_edges
            .insert(edge(format!("model:{model_name}:{model_version}"), format!("deployment:{endpoint}:{deployment}")));
        node.data = Some(json!({
            "endpoint": endpoint,
            "name": deployment,
            "modelName": model_name,
            "modelVersion": model_version,
            "created": row.try_get::<i64, _>("created")?,
            "updated": row.try_get::<i64, _>("updated")?,
        }));
        Ok(())
    }
}
