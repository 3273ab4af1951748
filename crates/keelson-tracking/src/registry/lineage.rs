//! A version's lineage: what produced it and from what — source run, logged model, datasets the
//! run consumed, code version (git commit tags), environment (requirements captured with the
//! model), signature, and the metrics known when it was registered. Returned as a tree for
//! people and a flat summary for tools (export packages carry the summary).

use super::RegistryService;
use crate::uris::{join_artifact_path, split_runs_uri};
use crate::TrackingError;
use keelson_artifacts::ArtifactKey;
use keelson_core::registry::ModelVersion;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// One node of the lineage tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageNode {
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<LineageNode>,
}

impl LineageNode {
    fn new(label: impl Into<String>, detail: Option<String>) -> Self {
        Self { label: label.into(), detail, children: Vec::new() }
    }

    fn leaf(label: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(label, Some(detail.into()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lineage {
    pub lineage: LineageNode,
    pub summary: Value,
    pub signature: Value,
}

const GIT_COMMIT_TAG: &str = "mlflow.source.git.commit";

impl RegistryService {
    pub async fn lineage(&self, name: &str, version: &str) -> Result<Lineage, TrackingError> {
        let version = self.get_model_version(name, version).await?;
        let mut root = LineageNode::new(
            format!("{} v{}", version.name, version.version),
            Some(format!("source {}", version.source)),
        );
        let mut summary = Map::new();
        summary.insert("name".into(), json!(version.name));
        summary.insert("version".into(), json!(version.version));
        summary.insert("source".into(), json!(version.source));
        if !version.aliases.is_empty() {
            root.children.push(LineageNode::leaf("aliases", version.aliases.join(", ")));
        }

        if let Some(run_id) = version.run_id.as_deref() {
            match self.store().get_run(run_id).await {
                Ok(run) => {
                    let mut node = LineageNode::new(
                        format!("run {run_id}"),
                        Some(format!(
                            "'{}' in experiment {}, {}",
                            run.info.run_name,
                            run.info.experiment_id,
                            run.info.status.as_str()
                        )),
                    );
                    let tags: Map<String, Value> =
                        run.data.tags.iter().map(|t| (t.key.clone(), json!(t.value))).collect();
                    if let Some(commit) = tags.get(GIT_COMMIT_TAG).and_then(Value::as_str) {
                        let mut code = LineageNode::leaf("code", format!("git commit {commit}"));
                        for key in ["mlflow.source.name", "mlflow.source.git.repoURL", "mlflow.source.git.branch"] {
                            if let Some(value) = tags.get(key).and_then(Value::as_str) {
                                code.children.push(LineageNode::leaf(key, value));
                            }
                        }
                        node.children.push(code);
                        summary.insert("git_commit".into(), json!(commit));
                    }
                    if !run.data.params.is_empty() {
                        let mut params = LineageNode::new("params", None);
                        for param in &run.data.params {
                            params.children.push(LineageNode::leaf(&param.key, &param.value));
                        }
                        node.children.push(params);
                    }
                    let datasets: Vec<Value> = run
                        .inputs
                        .dataset_inputs
                        .iter()
                        .map(|input| {
                            let context =
                                input.tags.iter().find(|t| t.key == "mlflow.data.context").map(|t| t.value.clone());
                            json!({
                                "name": input.dataset.name,
                                "digest": input.dataset.digest,
                                "source_type": input.dataset.source_type,
                                "source": input.dataset.source,
                                "schema": input.dataset.schema,
                                "context": context,
                            })
                        })
                        .collect();
                    if !datasets.is_empty() {
                        let mut data = LineageNode::new("datasets", None);
                        for dataset in &datasets {
                            data.children.push(LineageNode::leaf(
                                dataset["name"].as_str().unwrap_or("?"),
                                format!(
                                    "digest {}{}",
                                    dataset["digest"].as_str().unwrap_or("?"),
                                    dataset["context"].as_str().map(|c| format!(", {c}")).unwrap_or_default()
                                ),
                            ));
                        }
                        node.children.push(data);
                    }
                    summary.insert("run_id".into(), json!(run_id));
                    summary.insert(
                        "params".into(),
                        Value::Object(run.data.params.iter().map(|p| (p.key.clone(), json!(p.value))).collect()),
                    );
                    summary.insert(
                        "run_tags".into(),
                        Value::Object(
                            tags.into_iter()
                                .filter(|(k, _)| !k.starts_with("mlflow.") || k.starts_with("mlflow.source."))
                                .collect(),
                        ),
                    );
                    summary.insert("datasets".into(), Value::Array(datasets));
                    root.children.push(node);
                }
                Err(_) => root.children.push(LineageNode::leaf(format!("run {run_id}"), "no longer exists")),
            }
        }
        if let Some(model_id) = version.model_id.as_deref() {
            match self.store().get_logged_model(model_id).await {
                Ok(model) => {
                    root.children.push(LineageNode::leaf(
                        format!("logged model {model_id}"),
                        format!("'{}' at {}", model.name, model.artifact_uri),
                    ));
                    summary.insert("logged_model_id".into(), json!(model_id));
                }
                Err(_) => root.children.push(LineageNode::leaf(format!("logged model {model_id}"), "no longer exists")),
            }
        }

        let metrics: Value = version
            .registration_metrics
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_else(|| json!({}));
        if let Some(map) = metrics.as_object().filter(|m| !m.is_empty()) {
            let mut node = LineageNode::new("metrics at registration", None);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                node.children.push(LineageNode::leaf(key, map[key].to_string()));
            }
            root.children.push(node);
        }
        summary.insert("metrics".into(), metrics);

        let files = self.model_files(&version).await;
        let requirements: Vec<String> = files
            .requirements
            .as_deref()
            .map(|text| {
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if !requirements.is_empty() {
            let mut node = LineageNode::new("environment", Some("requirements.txt".into()));
            for requirement in &requirements {
                node.children.push(LineageNode::new(requirement.clone(), None));
            }
            root.children.push(node);
        }
        summary.insert("requirements".into(), json!(requirements));
        let signature = files.mlmodel.as_deref().map(parse_signature).unwrap_or(Value::Null);
        if let Some(object) = signature.as_object() {
            let mut node = LineageNode::new("signature", None);
            for part in ["inputs", "outputs", "params"] {
                if let Some(value) = object.get(part).filter(|v| !v.is_null()) {
                    node.children.push(LineageNode::leaf(part, value.to_string()));
                }
            }
            root.children.push(node);
        }
        Ok(Lineage { lineage: root, summary: Value::Object(summary), signature })
    }

    /// The MLmodel file and requirements.txt of a version, when its files are in this server's
    /// artifact store (`mlflow-artifacts:` or a `runs:/` path under a proxied run).
    async fn model_files(&self, version: &ModelVersion) -> ModelFiles {
        let mut files = ModelFiles::default();
        let Some(prefix) = self.artifact_prefix(version).await else {
            return files;
        };
        for (name, slot) in [("MLmodel", &mut files.mlmodel), ("requirements.txt", &mut files.requirements)] {
            let Ok(key) = ArtifactKey::parse(&format!("{prefix}/{name}")) else { continue };
            if let Ok(bytes) = self.artifacts.get_bytes(&key).await {
                *slot = String::from_utf8(bytes.to_vec()).ok();
            }
        }
        files
    }

    /// The artifact-store key under which a version's files lie, when this server holds them
    /// (proxied artifacts, directly or through the run's artifact root).
    pub async fn artifact_prefix(&self, version: &ModelVersion) -> Option<String> {
        let uri = version.download_uri();
        let uri = match split_runs_uri(uri) {
            Some((run_id, path)) => {
                join_artifact_path(&self.store().get_run_info(run_id).await.ok()?.artifact_uri, path)
            }
            None => uri.to_string(),
        };
        crate::uris::proxied_store_key(&uri)
    }
}

#[derive(Default)]
struct ModelFiles {
    mlmodel: Option<String>,
    requirements: Option<String>,
}

/// The `signature:` block of an MLmodel file: `inputs`, `outputs` and `params` are JSON texts
/// in YAML scalars. Read line by line; the block's layout is fixed by MLflow's writer.
fn parse_signature(mlmodel: &str) -> Value {
    let mut in_block = false;
    let mut out = Map::new();
    for line in mlmodel.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_block = line.trim_end() == "signature:";
            continue;
        }
        if !in_block {
            continue;
        }
        let Some((key, raw)) = line.trim().split_once(':') else { continue };
        let raw = raw.trim();
        let text = if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
            raw[1..raw.len() - 1].replace("''", "'")
        } else if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
            serde_json::from_str::<String>(raw).unwrap_or_default()
        } else {
            raw.to_string()
        };
        let value = if text == "null" || text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        out.insert(key.trim().to_string(), value);
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_block_is_read_from_mlmodel() {
        let mlmodel = "artifact_path: model\nflavors:\n  sklearn:\n    pickled_model: model.pkl\nmlflow_version: 3.17.2\n\
signature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\", \"required\": true}, {\"type\": \"string\", \"name\": \"it''s\"}]'\n  outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"int64\", \"shape\": [-1]}}]'\n  params: null\nutc_time_created: '2026-11-25'\n";
        let signature = parse_signature(mlmodel);
        assert_eq!(signature["inputs"][0]["name"], "x");
        assert_eq!(signature["inputs"][1]["name"], "it's");
        assert_eq!(signature["outputs"][0]["tensor-spec"]["dtype"], "int64");
        assert!(signature["params"].is_null());
        assert!(parse_signature("flavors:\n  x: 1\n").is_null());
    }
}
