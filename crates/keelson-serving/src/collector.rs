//! The data collector: sampled requests and responses of a deployment, with the correlation id
//! the client got back, written in batches as JSON lines to the artifact store, partitioned by
//! endpoint, deployment and hour:
//! `serving/collected/{endpoint}/{deployment}/{YYYY-MM-DD}/{HH}/{first-ms}-{uuid}.jsonl`.
//!
//! Collection never blocks or fails a request: records go through a bounded buffer, a full
//! buffer drops the record and counts it, and a failed write is counted and logged. Records
//! still in memory when the process dies are lost (at most one flush interval's worth);
//! ground-truth labels, by contrast, are written before their call is acknowledged.

use crate::protocol::json_tensor::elements_to_json;
use crate::signature::NamedTensor;
use bytes::Bytes;
use keelson_artifacts::{ArtifactKey, ArtifactStore};
use keelson_core::time::format_rfc3339_ms;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Store prefixes of collected request records and ground-truth labels (the format is
/// documented in keelson-core, which monitoring reads it through).
pub use keelson_core::collected::{COLLECTED_PREFIX, GROUND_TRUTH_PREFIX};

fn default_sample_rate() -> f64 {
    1.0
}

/// Per-deployment collection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectSpec {
    /// Share of requests recorded, 0 to 1.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
}

impl CollectSpec {
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err(format!("`collect.sample_rate` must be between 0 and 1, not {}", self.sample_rate));
        }
        Ok(())
    }

    pub fn sampled(&self) -> bool {
        self.sample_rate >= 1.0 || fastrand::f64() < self.sample_rate
    }
}

/// One collected request.
#[derive(Debug, Clone)]
pub struct Record {
    pub endpoint: String,
    pub deployment: String,
    pub model_version: String,
    pub correlation_id: String,
    pub timestamp_ms: i64,
    pub latency_us: u64,
    /// True for a mirrored copy, whose answer the client never saw.
    pub mirrored: bool,
    pub inputs: Vec<NamedTensor>,
    /// The outputs, or the error the request got.
    pub outcome: Result<Vec<NamedTensor>, String>,
}

fn tensors_json(tensors: &[NamedTensor]) -> Value {
    let mut object = Map::new();
    for tensor in tensors {
        object.insert(
            tensor.name.clone(),
            json!({
                "datatype": tensor.tensor.datatype(),
                "shape": tensor.tensor.shape,
                "data": elements_to_json(&tensor.tensor.data),
            }),
        );
    }
    Value::Object(object)
}

impl Record {
    fn to_json(&self) -> Value {
        let mut value = json!({
            "correlation_id": self.correlation_id,
            "timestamp": format_rfc3339_ms(self.timestamp_ms),
            "endpoint": self.endpoint,
            "deployment": self.deployment,
            "model_version": self.model_version,
            "latency_us": self.latency_us,
            "mirrored": self.mirrored,
            "inputs": tensors_json(&self.inputs),
        });
        match &self.outcome {
            Ok(outputs) => value["outputs"] = tensors_json(outputs),
            Err(error) => value["error"] = json!(error),
        }
        value
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CollectorOptions {
    pub buffer_records: usize,
    pub batch_records: usize,
    pub flush_interval: Duration,
}

#[derive(Debug, Default)]
pub struct CollectorCounters {
    pub offered: AtomicU64,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub files: AtomicU64,
    pub write_failures: AtomicU64,
}

#[derive(Debug)]
pub struct DataCollector {
    sender: mpsc::Sender<Record>,
    pub counters: Arc<CollectorCounters>,
}

impl DataCollector {
    /// Starts the writer task on the current runtime.
    pub fn start(artifacts: ArtifactStore, options: CollectorOptions) -> DataCollector {
        let (sender, receiver) = mpsc::channel(options.buffer_records.max(1));
        let counters = Arc::new(CollectorCounters::default());
        tokio::spawn(write_batches(receiver, artifacts, options, counters.clone()));
        DataCollector { sender, counters }
    }

    /// Hands a record to the writer; a full buffer drops it (counted), never waits.
    pub fn offer(&self, record: Record) {
        self.counters.offered.fetch_add(1, Ordering::Relaxed);
        if self.sender.try_send(record).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The partition (`endpoint/deployment/date/hour`) a record belongs to.
fn partition(record: &Record) -> String {
    let stamp = format_rfc3339_ms(record.timestamp_ms);
    let (date, hour) = (stamp.get(..10).unwrap_or("0000-00-00"), stamp.get(11..13).unwrap_or("00"));
    format!("{}/{}/{date}/{hour}", record.endpoint, record.deployment)
}

struct Batch {
    first_ms: i64,
    lines: Vec<u8>,
    records: u64,
}

async fn write_batches(
    mut receiver: mpsc::Receiver<Record>,
    artifacts: ArtifactStore,
    options: CollectorOptions,
    counters: Arc<CollectorCounters>,
) {
    let mut batches: HashMap<String, Batch> = HashMap::new();
    let mut tick = tokio::time::interval(options.flush_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = receiver.recv() => {
                let Some(record) = received else { break };
                let key = partition(&record);
                let batch = batches.entry(key.clone()).or_insert_with(|| Batch { first_ms: record.timestamp_ms, lines: Vec::new(), records: 0 });
                if serde_json::to_writer(&mut batch.lines, &record.to_json()).is_ok() {
                    batch.lines.push(b'\n');
                    batch.records += 1;
                }
                if batch.records as usize >= options.batch_records.max(1) {
                    if let Some(full) = batches.remove(&key) {
                        write_batch(&artifacts, &key, full, &counters).await;
                    }
                }
            }
            _ = tick.tick() => {
                for (key, batch) in batches.drain() {
                    write_batch(&artifacts, &key, batch, &counters).await;
                }
            }
        }
    }
    for (key, batch) in batches.drain() {
        write_batch(&artifacts, &key, batch, &counters).await;
    }
}

async fn write_batch(artifacts: &ArtifactStore, partition: &str, batch: Batch, counters: &CollectorCounters) {
    let name = format!("{COLLECTED_PREFIX}/{partition}/{}-{}.jsonl", batch.first_ms, uuid::Uuid::now_v7().simple());
    let result = match ArtifactKey::parse(&name) {
        Ok(key) => artifacts.put_bytes(&key, Bytes::from(batch.lines)).await.map(|_| ()).map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match result {
        Ok(()) => {
            counters.written.fetch_add(batch.records, Ordering::Relaxed);
            counters.files.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            counters.write_failures.fetch_add(1, Ordering::Relaxed);
            counters.dropped.fetch_add(batch.records, Ordering::Relaxed);
            tracing::error!(%error, file = %name, records = batch.records, "collected records could not be written");
        }
    }
}

/// A label for an earlier prediction, joined by its correlation id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruth {
    pub correlation_id: String,
    pub label: Value,
    /// When the outcome was observed (RFC 3339); defaults to when Keelson received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// Checks labels: 1 to 10,000 per call, correlation ids of 1 to 128 visible characters.
pub fn check_ground_truth(labels: &[GroundTruth]) -> Result<(), String> {
    if labels.is_empty() || labels.len() > 10_000 {
        return Err(format!("send 1 to 10000 labels per call, not {}", labels.len()));
    }
    for (index, label) in labels.iter().enumerate() {
        if !is_correlation_id(&label.correlation_id) {
            return Err(format!(
                "label {index}: correlation_id must be 1 to 128 visible ASCII characters, not `{}`",
                label.correlation_id
            ));
        }
        if let Some(timestamp) = &label.timestamp {
            if keelson_core::time::parse_rfc3339_ms(timestamp).is_none() {
                return Err(format!("label {index}: timestamp `{timestamp}` is not RFC 3339"));
            }
        }
    }
    Ok(())
}

/// Whether a client-chosen correlation id is acceptable.
pub fn is_correlation_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Writes labels as one JSON-lines file before answering, so acknowledged labels are durable.
pub async fn write_ground_truth(
    artifacts: &ArtifactStore,
    endpoint: &str,
    labels: &[GroundTruth],
    now_ms: i64,
) -> Result<String, String> {
    check_ground_truth(labels)?;
    let received = format_rfc3339_ms(now_ms);
    let mut lines = Vec::new();
    for label in labels {
        let line = json!({
            "correlation_id": label.correlation_id,
            "label": label.label,
            "timestamp": label.timestamp.clone().unwrap_or_else(|| received.clone()),
            "received": received,
        });
        serde_json::to_writer(&mut lines, &line).map_err(|e| e.to_string())?;
        lines.push(b'\n');
    }
    let (date, hour) = (received.get(..10).unwrap_or("0000-00-00"), received.get(11..13).unwrap_or("00"));
    let name =
        format!("{GROUND_TRUTH_PREFIX}/{endpoint}/{date}/{hour}/{now_ms}-{}.jsonl", uuid::Uuid::now_v7().simple());
    let key = ArtifactKey::parse(&name).map_err(|e| e.to_string())?;
    artifacts.put_bytes(&key, Bytes::from(lines)).await.map_err(|e| e.to_string())?;
    Ok(name)
}

/// Reads back the newest collected records (or labels) of an endpoint, newest file first.
pub async fn read_back(
    artifacts: &ArtifactStore,
    prefix: &str,
    endpoint: &str,
    limit: usize,
) -> Result<(Vec<String>, Vec<Value>), String> {
    let root = ArtifactKey::parse(&format!("{prefix}/{endpoint}")).map_err(|e| e.to_string())?;
    let mut files = artifacts.list_recursive(Some(&root)).await.map_err(|e| e.to_string())?;
    // File names start with the first record's time; newest first across partitions.
    files.sort_by(|a, b| file_name(&b.key).cmp(file_name(&a.key)));
    let mut records = Vec::new();
    let mut keys = Vec::new();
    // The files the records came from; older ones are not listed, so the answer stays bounded
    // however long an endpoint has been collecting.
    for file in files {
        if records.len() >= limit {
            break;
        }
        keys.push(file.key.clone());
        let key = ArtifactKey::parse(&file.key).map_err(|e| e.to_string())?;
        let bytes = artifacts.get_bytes(&key).await.map_err(|e| e.to_string())?;
        for line in bytes.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
            if records.len() < limit {
                records.push(serde_json::from_slice(line).map_err(|e| format!("{}: {e}", file.key))?);
            }
        }
    }
    Ok((keys, records))
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn record(endpoint: &str, ms: i64, id: &str) -> Record {
        let x = NamedTensor { name: "x".into(), tensor: Tensor::f32(vec![1, 2], vec![1.0, 2.0]).unwrap() };
        let y = NamedTensor { name: "y".into(), tensor: Tensor::i64(vec![1], vec![3]).unwrap() };
        Record {
            endpoint: endpoint.into(),
            deployment: "blue".into(),
            model_version: "1".into(),
            correlation_id: id.into(),
            timestamp_ms: ms,
            latency_us: 42,
            mirrored: false,
            inputs: vec![x],
            outcome: Ok(vec![y]),
        }
    }

    #[tokio::test]
    async fn records_are_batched_into_hourly_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactStore::local(dir.path()).await.unwrap();
        let options =
            CollectorOptions { buffer_records: 100, batch_records: 2, flush_interval: Duration::from_millis(50) };
        let collector = DataCollector::start(artifacts.clone(), options);
        // 2026-11-25T14:00:00Z and an hour later.
        let t = 1_795_615_200_000;
        collector.offer(record("iris", t, "a"));
        collector.offer(record("iris", t + 1, "b"));
        collector.offer(record("iris", t + 3_600_000, "c"));
        for _ in 0..100 {
            if collector.counters.written.load(Ordering::Relaxed) == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(collector.counters.written.load(Ordering::Relaxed), 3);
        assert_eq!(collector.counters.files.load(Ordering::Relaxed), 2);
        let (only_newest, newest_record) = read_back(&artifacts, COLLECTED_PREFIX, "iris", 1).await.unwrap();
        assert_eq!((only_newest.len(), newest_record.len()), (1, 1), "{only_newest:?}");
        let (files, records) = read_back(&artifacts, COLLECTED_PREFIX, "iris", 10).await.unwrap();
        assert!(files[0].starts_with("serving/collected/iris/blue/2026-11-25/15/"), "{files:?}");
        assert!(files[1].starts_with("serving/collected/iris/blue/2026-11-25/14/"), "{files:?}");
        assert_eq!(records[0]["correlation_id"], "c");
        assert_eq!(records[1]["inputs"]["x"]["data"], json!([1.0, 2.0]));
        assert_eq!(records[1]["outputs"]["y"]["data"], json!([3]));
    }

    #[tokio::test]
    async fn a_full_buffer_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = ArtifactStore::local(dir.path()).await.unwrap();
        let options =
            CollectorOptions { buffer_records: 1, batch_records: 1000, flush_interval: Duration::from_secs(3600) };
        let collector = DataCollector::start(artifacts, options);
        // The writer task has not run yet (this test holds the only thread): the second and
        // third records find the buffer full.
        for id in ["a", "b", "c"] {
            collector.offer(record("iris", 0, id));
        }
        assert_eq!(collector.counters.offered.load(Ordering::Relaxed), 3);
        assert_eq!(collector.counters.dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn labels_are_checked() {
        let label = |id: &str| GroundTruth { correlation_id: id.into(), label: json!(1), timestamp: None };
        assert_eq!(check_ground_truth(&[label("abc-1")]), Ok(()));
        assert!(check_ground_truth(&[]).is_err());
        assert!(check_ground_truth(&[label("has space")]).unwrap_err().contains("label 0"));
        let mut bad_time = label("x");
        bad_time.timestamp = Some("yesterday".into());
        assert!(check_ground_truth(&[bad_time]).unwrap_err().contains("RFC 3339"));
    }
}
