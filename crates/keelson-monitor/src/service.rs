//! The monitoring service: drift reports on any two dataset versions, monitors (created from a
//! spec, run on demand, by schedule or as `monitor.run` jobs), and what a run does with its
//! findings — a stored report, alerts de-duplicated per rule, notifications after the cool-down,
//! and the retraining trigger.

use crate::collected::{read_labels, read_traffic, row_label, TrafficTable, Window};
use crate::drift::{compare_sources, ColumnSource, DriftOptions, DriftResult, InMemory, Learn};
use crate::error::MonitorError;
use crate::notify::{send, Channel, Notification};
use crate::performance::{auc, class_of, classification, estimated_accuracy, regression};
use crate::profile::compare_frame_profiles;
use crate::reference::{apply_learned, profile_window, reference_key, summarise, StoredReference};
use crate::report::{render_html, Report, TestResult};
use crate::sample::{ColumnKind, ColumnSample, ParquetSource};
use crate::spec::{parse_duration, MonitorSpec, Task};
use bytes::Bytes;
use futures::StreamExt;
use keelson_artifacts::{ArtifactKey, ArtifactStore};
use keelson_core::datasets::DatasetVersion;
use keelson_core::jobs::{NewJob, RetryPolicy};
use keelson_core::time::format_rfc3339_ms;
use keelson_core::HasErrorKind;
use keelson_store::monitoring::{AlertRecord, FiredRule, MonitorRecord, ReportRecord};
use keelson_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The job kind of a scheduled monitor run.
pub const MONITOR_RUN_JOB: &str = "monitor.run";

pub struct MonitorSettings {
    /// Where versions from a remote object store are downloaded to be read.
    pub scratch_dir: PathBuf,
    /// Job kinds the deployment runs; a trigger must name one of them.
    pub job_kinds: Vec<String>,
    pub retry: RetryPolicy,
    /// Where webhook, Slack and email channels may deliver.
    pub egress: keelson_egress::EgressPolicy,
    /// Where the secrets channels name (signing keys, SMTP passwords) are found.
    pub secrets: Arc<dyn keelson_core::secrets::SecretLookup>,
}

#[derive(Clone)]
pub struct MonitorService {
    store: Store,
    artifacts: ArtifactStore,
    settings: Arc<MonitorSettings>,
    http: keelson_egress::EgressClient,
}

/// A dataset version named by a request; `version` absent means the newest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    pub dataset: String,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    pub reference: DatasetRef,
    pub current: DatasetRef,
    #[serde(default)]
    pub options: DriftOptions,
}

/// What one monitor run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    pub report: ReportRecord,
    pub tests: Vec<TestResult>,
    /// Alerts fired (new or repeated) by this run.
    pub alerts: Vec<AlertRecord>,
    pub resolved: Vec<AlertRecord>,
    /// One entry per channel notified: `{"channel": …, "ok": …, "detail": …}`.
    pub notifications: Vec<Value>,
    /// The id of the job the trigger enqueued.
    pub triggered_job: Option<String>,
}

/// A Parquet file on local disk, deleted after use when it was downloaded.
struct LocalParquet {
    path: PathBuf,
    _scratch: Option<tempfile::TempPath>,
}

fn blocking_error(error: tokio::task::JoinError) -> MonitorError {
    MonitorError::Internal(format!("a drift computation stopped: {error}"))
}

impl MonitorService {
    pub fn new(
        store: Store,
        artifacts: ArtifactStore,
        settings: MonitorSettings,
    ) -> Result<MonitorService, MonitorError> {
        std::fs::create_dir_all(&settings.scratch_dir)?;
        let http = settings.egress.client().map_err(|e| MonitorError::Internal(format!("HTTP client: {e}")))?;
        Ok(MonitorService { store, artifacts, settings: Arc::new(settings), http })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn version(&self, reference: &DatasetRef) -> Result<DatasetVersion, MonitorError> {
        Ok(match reference.version {
            Some(v) => self.store.get_dataset_version(&reference.dataset, v).await?,
            None => self.store.latest_dataset_version(&reference.dataset, None).await?,
        })
    }

    async fn local_parquet(&self, version: &DatasetVersion) -> Result<LocalParquet, MonitorError> {
        let key = ArtifactKey::parse(&version.artifact_key).map_err(|e| MonitorError::Internal(e.to_string()))?;
        if let Some(path) = self.artifacts.local_path(&key) {
            return Ok(LocalParquet { path, _scratch: None });
        }
        let target = tempfile::Builder::new()
            .prefix("keelson-monitor-")
            .suffix(".parquet")
            .tempfile_in(&self.settings.scratch_dir)?
            .into_temp_path();
        let mut body = self.artifacts.get(&key).await?.into_stream();
        let mut file = tokio::fs::File::create(&target).await?;
        while let Some(chunk) = body.next().await {
            file.write_all(&chunk.map_err(|e| MonitorError::Internal(format!("reading {key}: {e}")))?).await?;
        }
        file.flush().await?;
        Ok(LocalParquet { path: target.to_path_buf(), _scratch: Some(target) })
    }

    /// A drift report between two dataset versions, stored and returned.
    pub async fn compare_datasets(&self, request: CompareRequest) -> Result<(Report, ReportRecord), MonitorError> {
        request.options.check()?;
        let reference = self.version(&request.reference).await?;
        let current = self.version(&request.current).await?;
        let reference_file = self.local_parquet(&reference).await?;
        let current_file = self.local_parquet(&current).await?;
        let options = request.options.clone();
        let drift = tokio::task::spawn_blocking(move || -> Result<DriftResult, MonitorError> {
            let reference = ParquetSource::open(reference_file.path.clone(), &options.text_columns)?;
            let current = ParquetSource::open(current_file.path.clone(), &options.text_columns)?;
            compare_sources(&reference, &current, &options, None)
        })
        .await
        .map_err(blocking_error)??;
        let report = Report {
            id: uuid::Uuid::now_v7().simple().to_string(),
            created: format_rfc3339_ms(self.store.now()),
            monitor: None,
            reference: json!({"dataset": reference.dataset, "version": reference.version}),
            current: json!({"dataset": current.dataset, "version": current.version}),
            drift: Some(drift),
            tests: Vec::new(),
            metrics: serde_json::Map::new(),
        };
        let record = self.save_report(&report, None).await?;
        Ok((report, record))
    }

    /// Writes the report's JSON and HTML, then its row (so a listed report is always readable).
    async fn save_report(&self, report: &Report, window: Option<Window>) -> Result<ReportRecord, MonitorError> {
        let json = serde_json::to_vec_pretty(report).map_err(|e| MonitorError::Internal(e.to_string()))?;
        let html = render_html(report);
        for (key, body) in [(report.json_key(), Bytes::from(json)), (report.html_key(), Bytes::from(html))] {
            let key = ArtifactKey::parse(&key).map_err(|e| MonitorError::Internal(e.to_string()))?;
            self.artifacts.put_bytes(&key, body).await?;
        }
        let record = ReportRecord {
            id: report.id.clone(),
            monitor: report.monitor.clone(),
            created: self.store.now(),
            window_start: window.map(|w| w.start),
            window_end: window.map(|w| w.end),
            summary: report.summary(),
            json_key: report.json_key(),
            html_key: report.html_key(),
        };
        self.store.insert_report(&record).await?;
        Ok(record)
    }

    /// A stored report's JSON or HTML document.
    pub async fn report_document(&self, id: &str, html: bool) -> Result<Bytes, MonitorError> {
        let record = self.store.get_report(id).await?;
        let key = ArtifactKey::parse(if html { &record.html_key } else { &record.json_key })
            .map_err(|e| MonitorError::Internal(e.to_string()))?;
        Ok(self.artifacts.get_bytes(&key).await?)
    }

    /// The monitor's stored reference summary, built (and stored) when it is not there yet.
    pub async fn reference_for(&self, spec: &MonitorSpec) -> Result<StoredReference, MonitorError> {
        let version = self
            .version(&DatasetRef { dataset: spec.reference.dataset.clone(), version: spec.reference.version })
            .await?;
        let options = spec.drift.as_ref().map(|d| d.options.clone()).unwrap_or_default();
        let learn =
            spec.drift.as_ref().and_then(|d| d.learned_thresholds.as_ref()).map(|l| Learn { chunks: l.chunks, k: l.k });
        let key = reference_key(&version.dataset, version.version, &options, learn);
        let artifact = ArtifactKey::parse(&key).map_err(|e| MonitorError::Internal(e.to_string()))?;
        match self.artifacts.get_bytes(&artifact).await {
            Ok(bytes) => {
                return serde_json::from_slice(&bytes)
                    .map_err(|e| MonitorError::Internal(format!("stored reference {key}: {e}")));
            }
            Err(error) if error.kind() == keelson_core::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        let file = self.local_parquet(&version).await?;
        let (dataset, number) = (version.dataset.clone(), version.version);
        let stored = tokio::task::spawn_blocking(move || -> Result<StoredReference, MonitorError> {
            let source = ParquetSource::open(file.path.clone(), &options.text_columns)?;
            summarise(&dataset, number, &source, &options, learn)
        })
        .await
        .map_err(blocking_error)??;
        let body = serde_json::to_vec(&stored).map_err(|e| MonitorError::Internal(e.to_string()))?;
        self.artifacts.put_bytes(&artifact, Bytes::from(body)).await?;
        Ok(stored)
    }

    /// Checks a spec against what exists: the reference version (pinned to the newest when not
    /// given), the trigger's job kind.
    async fn resolve_spec(&self, mut spec: MonitorSpec) -> Result<MonitorSpec, MonitorError> {
        spec.check()?;
        let reference = self
            .version(&DatasetRef { dataset: spec.reference.dataset.clone(), version: spec.reference.version })
            .await?;
        spec.reference.version = Some(reference.version);
        if let Some(trigger) = &spec.alerts.trigger {
            if !self.settings.job_kinds.contains(&trigger.job) {
                return Err(MonitorError::invalid(format!(
                    "`alerts.trigger.job`: no worker runs job kind `{}`; known kinds: {}",
                    trigger.job,
                    self.settings.job_kinds.join(", ")
                )));
            }
        }
        Ok(spec)
    }

    fn spec_json(spec: &MonitorSpec) -> Result<Value, MonitorError> {
        serde_json::to_value(spec).map_err(|e| MonitorError::Internal(e.to_string()))
    }

    pub async fn create_monitor(&self, spec: MonitorSpec) -> Result<MonitorRecord, MonitorError> {
        let spec = self.resolve_spec(spec).await?;
        self.reference_for(&spec).await?;
        let next_run = spec.schedule_ms().map(|every| self.store.now() + every);
        Ok(self.store.create_monitor(&spec.name, &Self::spec_json(&spec)?, next_run).await?)
    }

    pub async fn replace_monitor(
        &self,
        name: &str,
        spec: MonitorSpec,
        enabled: bool,
    ) -> Result<MonitorRecord, MonitorError> {
        if spec.name != name {
            return Err(MonitorError::invalid(format!("the spec names monitor `{}`, not `{name}`", spec.name)));
        }
        let spec = self.resolve_spec(spec).await?;
        self.reference_for(&spec).await?;
        let next_run = spec.schedule_ms().map(|every| self.store.now() + every);
        Ok(self.store.update_monitor(name, &Self::spec_json(&spec)?, enabled, next_run).await?)
    }

    fn stored_spec(record: &MonitorRecord) -> Result<MonitorSpec, MonitorError> {
        serde_json::from_value(record.spec.clone())
            .map_err(|e| MonitorError::Internal(format!("stored spec of monitor `{}`: {e}", record.name)))
    }

    /// Enqueues a `monitor.run` job for each monitor whose schedule is due; each due run once,
    /// however many schedulers share the store.
    pub async fn enqueue_due(&self) -> Result<Vec<String>, MonitorError> {
        let now = self.store.now();
        let mut enqueued = Vec::new();
        for record in self.store.due_monitors(now).await? {
            let (Some(due), Ok(spec)) = (record.next_run, Self::stored_spec(&record)) else { continue };
            let Some(every) = spec.schedule_ms() else { continue };
            // Skip missed runs rather than replaying them all after a pause.
            let mut next = due + every;
            if next <= now {
                next = now + every;
            }
            if self.store.advance_monitor(&record.name, due, next).await? {
                let job = NewJob {
                    kind: MONITOR_RUN_JOB.into(),
                    payload: json!({"monitor": record.name, "at": due}),
                    priority: 0,
                    max_attempts: None,
                    delay_ms: None,
                };
                self.store.enqueue_job(&job, &self.settings.retry).await?;
                enqueued.push(record.name);
            }
        }
        Ok(enqueued)
    }

    /// Runs a monitor over the window ending at `at` (default now).
    pub async fn run_monitor(&self, name: &str, at: Option<i64>) -> Result<RunOutcome, MonitorError> {
        let record = self.store.get_monitor(name).await?;
        let spec = Self::stored_spec(&record)?;
        let now = self.store.now();
        let end = at.unwrap_or(now);
        let window = Window { start: end - spec.window_ms(), end };
        let result = self.evaluate(&spec, window, now).await;
        match result {
            Ok(report) => {
                let record = self.save_report(&report, Some(window)).await?;
                let outcome = self.act_on(&spec, &report, record).await?;
                self.store.record_monitor_run(name, now, Some(&outcome.report.id), None).await?;
                Ok(outcome)
            }
            Err(error) => {
                self.store.record_monitor_run(name, now, None, Some(&error.to_string())).await?;
                Err(error)
            }
        }
    }

    async fn evaluate(&self, spec: &MonitorSpec, window: Window, now: i64) -> Result<Report, MonitorError> {
        let drift_options = spec.drift.as_ref().map(|d| d.options.clone()).unwrap_or_default();
        let reference = self
            .version(&DatasetRef { dataset: spec.reference.dataset.clone(), version: spec.reference.version })
            .await?;
        let stored = self.reference_for(spec).await?;
        let reference_kinds: std::collections::HashMap<String, ColumnKind> =
            stored.profile.columns.iter().map(|c| (c.name.clone(), c.kind)).collect();
        let mut metrics = serde_json::Map::new();
        let mut tests = Vec::new();
        let (current_description, traffic, current_samples, current_file) =
            match (&spec.source.endpoint, &spec.source.dataset) {
                (Some(endpoint), _) => {
                    let traffic = read_traffic(
                        &self.artifacts,
                        endpoint,
                        spec.source.deployment.as_deref(),
                        window,
                        &spec.features,
                    )
                    .await?;
                    let samples = traffic.samples(&drift_options.text_columns, &reference_kinds);
                    metrics.insert("requests".into(), traffic.records.into());
                    metrics.insert("rows".into(), traffic.rows.into());
                    metrics.insert("failed_requests".into(), traffic.failed_requests.into());
                    let description = json!({
                        "endpoint": endpoint, "deployment": spec.source.deployment,
                        "window": {"start": format_rfc3339_ms(window.start), "end": format_rfc3339_ms(window.end)},
                    });
                    (description, Some(traffic), Some(samples), None)
                }
                (None, Some(dataset)) => {
                    let version = self.version(&DatasetRef { dataset: dataset.clone(), version: None }).await?;
                    let file = self.local_parquet(&version).await?;
                    (json!({"dataset": version.dataset, "version": version.version}), None, None, Some(file))
                }
                (None, None) => return Err(MonitorError::invalid("`source` names an endpoint or a dataset")),
            };
        let options = drift_options.clone();
        let current_path = current_file.as_ref().map(|f| f.path.clone());
        let score_columns: Vec<String> = spec.scores.keys().cloned().collect();
        let (drift, scored) =
            tokio::task::spawn_blocking(move || -> Result<(DriftResult, Vec<ColumnSample>), MonitorError> {
                let current: Box<dyn ColumnSource> = match (current_samples, current_path) {
                    (Some(samples), _) => Box::new(InMemory(samples)),
                    (None, Some(path)) => Box::new(ParquetSource::open(path, &options.text_columns)?),
                    (None, None) => return Err(MonitorError::Internal("no current data".into())),
                };
                let (window, scored) = profile_window(current.as_ref(), &stored.profile, &score_columns)?;
                let mut drift = compare_frame_profiles(&stored.profile, &window, &options)?;
                apply_learned(&mut drift, &stored.learned);
                Ok((drift, scored))
            })
            .await
            .map_err(blocking_error)??;
        score_tests(&spec.scores, &scored, &mut tests, &mut metrics);
        drop(current_file);
        let outputs: Vec<String> = traffic.as_ref().map(|t| t.outputs.clone()).unwrap_or_default();
        if let Some(signal) = &spec.drift {
            for column in drift.columns.iter().filter(|c| c.score.is_some()) {
                if !signal.alert_per_column {
                    break;
                }
                let prediction = outputs.contains(&column.column);
                let signal_name = if prediction { "prediction_drift" } else { "data_drift" };
                let comparison = match column.method.score_kind() {
                    crate::stats::method::ScoreKind::PValue => "p-value at or above",
                    crate::stats::method::ScoreKind::Distance => "distance below",
                };
                tests.push(TestResult {
                    rule: format!("{signal_name}:{}", column.column),
                    signal: signal_name.into(),
                    column: Some(column.column.clone()),
                    passed: !column.drifted,
                    value: column.score,
                    condition: format!("{} {comparison} {}", column.method.name(), column.threshold),
                    description: format!("{} of `{}`", signal_name.replace('_', " "), column.column),
                    estimated: false,
                });
            }
            if signal.alert_dataset && drift.compared > 0 {
                tests.push(TestResult {
                    rule: "dataset_drift".into(),
                    signal: "dataset_drift".into(),
                    column: None,
                    passed: !drift.dataset_drift,
                    value: Some(drift.share),
                    condition: format!("share of drifted columns below {}", drift.drift_share),
                    description: format!("{} of {} columns drifted", drift.drifted, drift.compared),
                    estimated: false,
                });
            }
        }
        if let Some(quality) = &spec.quality {
            quality_tests(quality, &drift, traffic.as_ref(), &mut tests);
        }
        if let (Some(performance), Some(traffic), Some(endpoint)) = (&spec.performance, &traffic, &spec.source.endpoint)
        {
            let delay = performance
                .label_delay
                .as_deref()
                .map(|d| parse_duration(d, "label_delay"))
                .transpose()?
                .unwrap_or(86_400_000);
            let labels =
                read_labels(&self.artifacts, endpoint, window.start, (window.end + delay).min(now + 1)).await?;
            performance_tests(performance, traffic, &labels, &mut tests, &mut metrics);
        }
        Ok(Report {
            id: uuid::Uuid::now_v7().simple().to_string(),
            created: format_rfc3339_ms(now),
            monitor: Some(spec.name.clone()),
            reference: json!({"dataset": reference.dataset, "version": reference.version}),
            current: current_description,
            drift: Some(drift),
            tests,
            metrics,
        })
    }

    /// Alerts for failed tests, notifications past the cool-down, the trigger on new alerts, and
    /// resolution of rules that pass again.
    async fn act_on(
        &self,
        spec: &MonitorSpec,
        report: &Report,
        record: ReportRecord,
    ) -> Result<RunOutcome, MonitorError> {
        let failed: Vec<&TestResult> = report.tests.iter().filter(|t| !t.passed).collect();
        let mut alerts = Vec::new();
        let mut due = Vec::new();
        let mut any_new = false;
        for test in &failed {
            let fired = FiredRule {
                rule: test.rule.clone(),
                severity: spec.alerts.severity.as_str().into(),
                title: format!("{}: {} failed", spec.name, test.description),
                details: serde_json::to_value(test).map_err(|e| MonitorError::Internal(e.to_string()))?,
            };
            let outcome = self.store.fire_alert(&spec.name, &fired, &record.id, spec.cooldown_ms()).await?;
            any_new |= outcome.new;
            if outcome.notify {
                due.push(outcome.alert.clone());
            }
            alerts.push(outcome.alert);
        }
        let still_failing: Vec<String> = failed.iter().map(|t| t.rule.clone()).collect();
        let resolved = self.store.resolve_alerts(&spec.name, &still_failing).await?;
        let mut notifications = Vec::new();
        if !due.is_empty() {
            let notification = Notification {
                alert_id: due.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(","),
                monitor: spec.name.clone(),
                severity: spec.alerts.severity,
                title: format!("{}: {} check(s) failed", spec.name, due.len()),
                summary: due.iter().map(|a| format!("- {}", a.title)).collect::<Vec<_>>().join("\n"),
                fired_at: report.created.clone(),
                report: Some(format!("/api/v1/monitoring/reports/{}", record.id)),
                details: json!({"report_id": record.id, "alerts": due}),
            };
            for channel in &spec.alerts.channels {
                notifications.push(self.notify(channel, &notification).await);
            }
        }
        let mut triggered_job = None;
        if let (true, Some(trigger)) = (any_new, &spec.alerts.trigger) {
            let mut payload = trigger.payload.clone();
            payload.insert(
                "alert".into(),
                json!({"monitor": spec.name, "report_id": record.id, "rules": still_failing, "alerts": alerts.iter().map(|a| &a.id).collect::<Vec<_>>()}),
            );
            let job = NewJob {
                kind: trigger.job.clone(),
                payload: Value::Object(payload),
                priority: 0,
                max_attempts: None,
                delay_ms: None,
            };
            triggered_job = Some(self.store.enqueue_job(&job, &self.settings.retry).await?.id);
        }
        Ok(RunOutcome { report: record, tests: report.tests.clone(), alerts, resolved, notifications, triggered_job })
    }

    async fn notify(&self, channel: &Channel, notification: &Notification) -> Value {
        match send(channel, notification, &self.http, &self.settings.egress, self.settings.secrets.as_ref()).await {
            Ok(delivery) => {
                let status = match &delivery.status {
                    crate::notify::DeliveryStatus::Http(code) => json!({"http": code}),
                    crate::notify::DeliveryStatus::Smtp { code, reply } => json!({"smtp": code, "reply": reply}),
                };
                json!({
                    "ok": true, "channel": delivery.channel, "target": delivery.target, "status": status,
                    "duration_ms": delivery.duration.as_secs_f64() * 1000.0,
                })
            }
            Err(error) => {
                tracing::warn!(monitor = %notification.monitor, %error, "alert notification failed");
                json!({"ok": false, "channel": channel.kind(), "error": error.to_string()})
            }
        }
    }

    /// The latest drift scores and firing alerts of every monitor, in Prometheus text format.
    pub async fn render_metrics(&self, out: &mut String) -> Result<(), MonitorError> {
        use std::fmt::Write;
        let monitors = self.store.list_monitors().await?;
        let firing_counts: BTreeMap<String, i64> = self.store.firing_alert_counts().await?.into_iter().collect();
        let reports = self.store.latest_monitor_reports().await?;
        let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let mut scores = String::new();
        let mut shares = String::new();
        let mut firing = String::new();
        for monitor in &monitors {
            let open = firing_counts.get(&monitor.name).copied().unwrap_or(0);
            let _ = writeln!(firing, "keelson_monitor_alerts_firing{{monitor=\"{}\"}} {open}", escape(&monitor.name));
        }
        for report in &reports {
            let Some(name) = report.monitor.as_deref().map(escape) else { continue };
            if let Some(share) = report.summary.get("drift_share").and_then(Value::as_f64) {
                let _ = writeln!(shares, "keelson_monitor_drifted_column_share{{monitor=\"{name}\"}} {share}");
            }
            for (column, score) in report.summary.get("scores").and_then(Value::as_object).into_iter().flatten() {
                let (Some(value), Some(method)) =
                    (score.get("score").and_then(Value::as_f64), score.get("method").and_then(Value::as_str))
                else {
                    continue;
                };
                let _ = writeln!(
                    scores,
                    "keelson_monitor_drift_score{{monitor=\"{name}\",column=\"{}\",method=\"{}\"}} {value}",
                    escape(column),
                    escape(method)
                );
            }
        }
        for (family, help, body) in [
            (
                "keelson_monitor_drift_score",
                "Latest drift score per monitored column (p-value or distance, per its method).",
                scores,
            ),
            ("keelson_monitor_drifted_column_share", "Latest share of drifted columns per monitor.", shares),
            ("keelson_monitor_alerts_firing", "Alerts firing per monitor.", firing),
        ] {
            let _ = writeln!(out, "# HELP {family} {help}");
            let _ = writeln!(out, "# TYPE {family} gauge");
            out.push_str(&body);
        }
        Ok(())
    }
}

/// Whether a value counts as flagged: true, a non-zero number, or "true"/"yes"/"1".
fn flagged(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "1.0")
}

fn bound_condition(bound: &crate::spec::Bound) -> String {
    match (bound.min, bound.max) {
        (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
        (Some(lo), None) => format!("at least {lo}"),
        (None, Some(hi)) => format!("at most {hi}"),
        (None, None) => String::new(),
    }
}

fn within(value: Option<f64>, bound: &crate::spec::Bound) -> bool {
    value.is_none_or(|v| bound.min.is_none_or(|m| v >= m) && bound.max.is_none_or(|m| v <= m))
}

fn score_tests(
    scores: &BTreeMap<String, crate::spec::ScoreBounds>,
    samples: &[ColumnSample],
    tests: &mut Vec<TestResult>,
    metrics: &mut serde_json::Map<String, Value>,
) {
    use crate::sample::Values;
    for (column, bounds) in scores {
        let sample = samples.iter().find(|s| &s.name == column);
        let (mean, rate) = match sample.map(|s| &s.values) {
            Some(Values::Numeric(values)) if !values.is_empty() => {
                let n = values.len() as f64;
                (Some(values.iter().sum::<f64>() / n), Some(values.iter().filter(|v| **v != 0.0).count() as f64 / n))
            }
            Some(Values::Strings(values)) if !values.is_empty() => {
                (None, Some(values.iter().filter(|v| flagged(v)).count() as f64 / values.len() as f64))
            }
            _ => (None, None),
        };
        for (statistic, value, bound) in [("mean", mean, &bounds.mean), ("rate", rate, &bounds.rate)] {
            let Some(bound) = bound else { continue };
            if let Some(value) = value {
                metrics.insert(format!("{column}.{statistic}"), json!(value));
            }
            let description = match (value, sample) {
                (Some(_), _) => format!("{statistic} of `{column}`"),
                (None, None) => format!("`{column}` is not in the data"),
                (None, Some(_)) => format!("`{column}` has no values in this window"),
            };
            tests.push(TestResult {
                rule: format!("scores:{column}:{statistic}"),
                signal: "scores".into(),
                column: Some(column.clone()),
                passed: within(value, bound),
                value,
                condition: bound_condition(bound),
                description,
                estimated: false,
            });
        }
    }
}

fn quality_tests(
    quality: &crate::spec::QualitySignal,
    drift: &DriftResult,
    traffic: Option<&TrafficTable>,
    tests: &mut Vec<TestResult>,
) {
    let mut push = |rule: String, column: Option<&str>, value: Option<f64>, max: f64, description: String| {
        tests.push(TestResult {
            rule,
            signal: "data_quality".into(),
            column: column.map(str::to_string),
            passed: value.is_none_or(|v| v <= max),
            value,
            condition: format!("at most {max}"),
            description,
            estimated: false,
        });
    };
    for column in &drift.columns {
        let name = column.column.as_str();
        if let (Some(max), Some(value)) = (quality.max_missing_share, column.quality.missing_share) {
            push(
                format!("quality:missing:{name}"),
                Some(name),
                Some(value),
                max,
                format!("share of missing values in `{name}`"),
            );
        }
        if let (Some(max), Some(value)) = (quality.max_type_error_share, column.quality.type_error_share) {
            push(
                format!("quality:type_errors:{name}"),
                Some(name),
                Some(value),
                max,
                format!("share of `{name}` values that are not numbers"),
            );
        }
        if let (Some(max), Some(value)) = (quality.max_out_of_range_share, column.quality.out_of_range_share) {
            push(
                format!("quality:out_of_range:{name}"),
                Some(name),
                Some(value),
                max,
                format!("share of `{name}` outside the reference range"),
            );
        }
        if let (Some(max), Some(value)) = (quality.max_new_category_share, column.quality.new_category_share) {
            push(
                format!("quality:new_categories:{name}"),
                Some(name),
                Some(value),
                max,
                format!("share of new categories in `{name}`"),
            );
        }
    }
    if let (Some(max), Some(traffic)) = (quality.max_error_rate, traffic) {
        let rate = (traffic.records > 0).then(|| traffic.failed_requests as f64 / traffic.records as f64);
        push("quality:error_rate".into(), None, rate, max, "share of failed requests".into());
    }
}

/// Per-row class probabilities and the classes they belong to: a single column is the
/// probability of class `1` of a binary classifier; `name[i]` columns are one per class.
fn class_probabilities(
    performance: &crate::spec::PerformanceSignal,
    traffic: &TrafficTable,
) -> (Option<Vec<Vec<f64>>>, Vec<String>) {
    let Some(name) = &performance.probability else { return (None, Vec::new()) };
    let number = |v: &Option<Value>| v.as_ref().and_then(Value::as_f64).unwrap_or(f64::NAN);
    let (rows, count): (Vec<Vec<f64>>, usize) = match traffic.columns.get(name) {
        Some(column) => (column.iter().map(|v| vec![1.0 - number(v), number(v)]).collect(), 2),
        None => {
            let columns: Vec<&Vec<Option<Value>>> =
                (0..).map_while(|i| traffic.columns.get(&format!("{name}[{i}]"))).collect();
            if columns.is_empty() {
                return (None, Vec::new());
            }
            ((0..traffic.rows).map(|row| columns.iter().map(|c| number(&c[row])).collect()).collect(), columns.len())
        }
    };
    let classes = match &performance.classes {
        Some(classes) => classes.iter().filter_map(class_of).collect(),
        None => (0..count).map(|i| i.to_string()).collect(),
    };
    (Some(rows), classes)
}

fn performance_tests(
    performance: &crate::spec::PerformanceSignal,
    traffic: &TrafficTable,
    labels: &std::collections::HashMap<String, Value>,
    tests: &mut Vec<TestResult>,
    metrics: &mut serde_json::Map<String, Value>,
) {
    let predictions = traffic.columns.get(&performance.prediction);
    let mut values = BTreeMap::new();
    let labelled;
    match performance.task {
        Task::Classification => {
            let (probabilities, classes) = class_probabilities(performance, traffic);
            let mut pairs = Vec::new();
            let mut labelled_probabilities = Vec::new();
            for (row, (id, index)) in traffic.row_ids.iter().enumerate() {
                let Some(prediction) = predictions.and_then(|p| p[row].as_ref()).and_then(class_of) else { continue };
                let Some(truth) = labels.get(id).and_then(|l| row_label(l, *index)).and_then(class_of) else {
                    continue;
                };
                pairs.push((truth, prediction));
                if let Some(probabilities) = &probabilities {
                    labelled_probabilities.push(probabilities[row].clone());
                }
            }
            labelled = pairs.len();
            values.extend(classification(&pairs));
            if let Some(probabilities) = &probabilities {
                let truths: Vec<String> = pairs.iter().map(|(t, _)| t.clone()).collect();
                if let Some(auc) = auc(&truths, &labelled_probabilities, &classes) {
                    values.insert("auc".into(), auc);
                }
                if let Some(estimate) = estimated_accuracy(probabilities) {
                    values.insert("estimated_accuracy".into(), estimate);
                }
            }
        }
        Task::Regression => {
            let mut pairs = Vec::new();
            for (row, (id, index)) in traffic.row_ids.iter().enumerate() {
                let Some(prediction) = predictions.and_then(|p| p[row].as_ref()).and_then(Value::as_f64) else {
                    continue;
                };
                let Some(truth) = labels.get(id).and_then(|l| row_label(l, *index)).and_then(Value::as_f64) else {
                    continue;
                };
                pairs.push((truth, prediction));
            }
            labelled = pairs.len();
            values.extend(regression(&pairs));
        }
    }
    metrics.insert("labelled_rows".into(), labelled.into());
    for (name, value) in &values {
        metrics.insert(name.clone(), json!(value));
    }
    for (name, bound) in &performance.metrics {
        let value = values.get(name).copied();
        let passed = within(value, bound);
        let condition = bound_condition(bound);
        tests.push(TestResult {
            rule: format!("performance:{name}"),
            signal: "performance".into(),
            column: None,
            passed,
            value,
            condition,
            description: if value.is_some() {
                format!("{name} over {labelled} labelled rows")
            } else {
                format!("{name}: no labelled rows yet")
            },
            estimated: name.starts_with("estimated_"),
        });
    }
}
