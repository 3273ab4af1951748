//! Model packages: `keelson model export` writes a registered version's files with a manifest
//! (digests, signature, lineage summary); `keelson model import` checks the digests and
//! registers the package on another server, carrying its lineage into an import run. This is
//! how a model is promoted between environments (dev → staging → prod servers).

use crate::client::{segment, ApiClient};
use anyhow::{anyhow, bail, Context, Result};
use keelson_tracking::uris::{join_artifact_path, proxied_artifact_path, split_runs_uri};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

const FORMAT: &str = "keelson-model-package/1";
const MANIFEST: &str = "manifest.json";
const FILES_DIR: &str = "model";
const IMPORT_EXPERIMENT: &str = "keelson-imports";
const MLFLOW: &str = "/api/2.0/mlflow";
const PROXY: &str = "/api/2.0/mlflow-artifacts/artifacts";

/// `NAME@ALIAS` or `NAME/VERSION`.
fn parse_model_spec(spec: &str) -> Result<(String, Option<String>, Option<String>)> {
    if let Some((name, version)) = spec.rsplit_once('/') {
        if !name.is_empty() && !version.is_empty() {
            return Ok((name.to_string(), None, Some(version.to_string())));
        }
    }
    if let Some((name, alias)) = spec.rsplit_once('@') {
        if !name.is_empty() && !alias.is_empty() {
            return Ok((name.to_string(), Some(alias.to_string()), None));
        }
    }
    bail!("expected NAME@ALIAS or NAME/VERSION, got `{spec}`")
}

/// The artifact-proxy path behind a `mlflow-artifacts:` URI.
fn proxy_path(uri: &str) -> Result<String> {
    proxied_artifact_path(uri).map(str::to_string).ok_or_else(|| {
        anyhow!("only proxied artifacts (mlflow-artifacts:) can be exported, the version's files are at `{uri}`")
    })
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// One digest over the sorted file list, so a package is identified by its content.
fn package_digest(files: &[Value]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|f| format!("{}\0{}\n", f["path"].as_str().unwrap_or(""), f["sha256"].as_str().unwrap_or("")))
        .collect();
    lines.sort();
    sha256_hex(lines.concat().as_bytes())
}

/// A relative path from a manifest, refused if it could leave the package directory.
fn safe_relative(path: &str) -> Result<PathBuf> {
    let candidate = Path::new(path);
    if path.is_empty() || candidate.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!("manifest names an unsafe path `{path}`");
    }
    Ok(candidate.to_path_buf())
}

async fn list_files(client: &ApiClient, root: &str, relative: &str, out: &mut Vec<String>) -> Result<()> {
    let path = if relative.is_empty() { root.to_string() } else { format!("{root}/{relative}") };
    let answer = client.get(PROXY, &[("path", path)]).await?;
    for file in answer["files"].as_array().into_iter().flatten() {
        let name = file["path"].as_str().unwrap_or_default();
        let child = if relative.is_empty() { name.to_string() } else { format!("{relative}/{name}") };
        if file["is_dir"].as_bool().unwrap_or(false) {
            Box::pin(list_files(client, root, &child, out)).await?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

fn encode_path(path: &str) -> String {
    path.split('/').map(segment).collect::<Vec<_>>().join("/")
}

pub async fn export(client: &ApiClient, spec: &str, dir: &Path) -> Result<()> {
    let (name, alias, version) = parse_model_spec(spec)?;
    let answer = match (&alias, &version) {
        (Some(alias), _) => {
            client
                .get(&format!("{MLFLOW}/registered-models/alias"), &[("name", name.clone()), ("alias", alias.clone())])
                .await?
        }
        (None, Some(version)) => {
            client
                .get(&format!("{MLFLOW}/model-versions/get"), &[("name", name.clone()), ("version", version.clone())])
                .await?
        }
        _ => unreachable!("parse_model_spec returns an alias or a version"),
    };
    let model_version = answer["model_version"].clone();
    let version = model_version["version"].as_str().unwrap_or_default().to_string();
    let uri = client
        .get(
            &format!("{MLFLOW}/model-versions/get-download-uri"),
            &[("name", name.clone()), ("version", version.clone())],
        )
        .await?["artifact_uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let uri = resolve_runs_uri(client, &uri).await?;
    let root = proxy_path(&uri)?;
    let mut paths = Vec::new();
    list_files(client, &root, "", &mut paths).await?;
    if paths.is_empty() {
        bail!("version {version} of `{name}` has no files at {uri}");
    }
    std::fs::create_dir_all(dir.join(FILES_DIR)).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = Vec::new();
    for path in &paths {
        let data = client.download(&format!("{PROXY}/{}", encode_path(&format!("{root}/{path}")))).await?;
        let target = dir.join(FILES_DIR).join(safe_relative(path)?);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &data).with_context(|| format!("cannot write {}", target.display()))?;
        files.push(json!({ "path": path, "size": data.len(), "sha256": sha256_hex(&data) }));
    }
    let lineage =
        client.get(&format!("/api/v1/models/{}/versions/{}/lineage", segment(&name), segment(&version)), &[]).await?;
    let manifest = json!({
        "format": FORMAT,
        "model": {
            "name": name,
            "version": version,
            "alias": alias,
            "description": model_version["description"],
            "tags": model_version["tags"],
            "source": model_version["source"],
            "run_id": model_version["run_id"],
        },
        "package_digest": package_digest(&files),
        "files": files,
        "signature": lineage["signature"],
        "lineage": lineage["lineage"],
        "summary": lineage["summary"],
        "exported_at": keelson_core::time::format_rfc3339_ms(now_millis()),
    });
    std::fs::write(dir.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    println!(
        "exported {name} version {version} ({} files, package digest {}) to {}",
        paths.len(),
        manifest["package_digest"].as_str().unwrap_or(""),
        dir.display()
    );
    Ok(())
}

/// `runs:/<run_id>/<path>` → the run's proxied artifact location of that path.
async fn resolve_runs_uri(client: &ApiClient, uri: &str) -> Result<String> {
    let Some((run_id, path)) = split_runs_uri(uri) else {
        return Ok(uri.to_string());
    };
    let run = client.get(&format!("{MLFLOW}/runs/get"), &[("run_id", run_id.to_string())]).await?;
    Ok(join_artifact_path(run["run"]["info"]["artifact_uri"].as_str().unwrap_or_default(), path))
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Reads and verifies a package: every listed file present with its size and digest, and the
/// package digest over them.
/// A package's files: relative path and contents.
type PackageFiles = Vec<(String, Vec<u8>)>;

fn read_package(dir: &Path) -> Result<(Value, PackageFiles)> {
    let manifest_path = dir.join(MANIFEST);
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(&manifest_path).with_context(|| format!("cannot read {}", manifest_path.display()))?,
    )
    .context("manifest.json is not valid JSON")?;
    if manifest["format"] != FORMAT {
        bail!("{} is not a {FORMAT} package (format {})", dir.display(), manifest["format"]);
    }
    let listed = manifest["files"].as_array().cloned().unwrap_or_default();
    if listed.is_empty() {
        bail!("the package lists no files");
    }
    let mut files = Vec::new();
    for file in &listed {
        let path = file["path"].as_str().unwrap_or_default().to_string();
        let data = std::fs::read(dir.join(FILES_DIR).join(safe_relative(&path)?))
            .with_context(|| format!("package file `{path}` is missing"))?;
        if file["size"].as_u64() != Some(data.len() as u64) || file["sha256"].as_str() != Some(&sha256_hex(&data)) {
            bail!("package file `{path}` does not match its digest in the manifest: the package is damaged or altered");
        }
        files.push((path, data));
    }
    if manifest["package_digest"].as_str() != Some(&package_digest(&listed)) {
        bail!("the package digest does not match its file list");
    }
    Ok((manifest, files))
}

pub async fn import(client: &ApiClient, dir: &Path, name_override: Option<&str>) -> Result<()> {
    let (manifest, files) = read_package(dir)?;
    let model = &manifest["model"];
    let name =
        name_override.map(str::to_string).unwrap_or_else(|| model["name"].as_str().unwrap_or_default().to_string());
    let summary = &manifest["summary"];

    // The registered model, created when this server does not have it yet.
    if let Err(error) = client.get(&format!("{MLFLOW}/registered-models/get"), &[("name", name.clone())]).await {
        if !error.to_string().contains("RESOURCE_DOES_NOT_EXIST") {
            return Err(error);
        }
        client.post(&format!("{MLFLOW}/registered-models/create"), &json!({ "name": name })).await?;
    }
    let experiment_id = match client
        .get(&format!("{MLFLOW}/experiments/get-by-name"), &[("experiment_name", IMPORT_EXPERIMENT.to_string())])
        .await
    {
        Ok(answer) => answer["experiment"]["experiment_id"].as_str().unwrap_or_default().to_string(),
        Err(_) => client.post(&format!("{MLFLOW}/experiments/create"), &json!({ "name": IMPORT_EXPERIMENT })).await?
            ["experiment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };

    // An import run carries the lineage: the original run's params, metrics, code version and
    // datasets, and where the package came from.
    let digest = manifest["package_digest"].as_str().unwrap_or_default();
    let origin = format!("{}/{}", model["name"].as_str().unwrap_or(""), model["version"].as_str().unwrap_or(""));
    let mut tags = vec![
        json!({"key": "keelson.import.package_digest", "value": digest}),
        json!({"key": "keelson.import.origin", "value": origin}),
    ];
    for (key, value) in summary["run_tags"].as_object().into_iter().flatten() {
        if !key.starts_with("mlflow.runName") {
            tags.push(json!({"key": key, "value": value.as_str().unwrap_or_default()}));
        }
    }
    let run = client
        .post(
            &format!("{MLFLOW}/runs/create"),
            &json!({
                "experiment_id": experiment_id,
                "run_name": format!("import {origin}"),
                "start_time": now_millis(),
                "tags": tags,
            }),
        )
        .await?;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap_or_default().to_string();
    let artifact_uri = run["run"]["info"]["artifact_uri"].as_str().unwrap_or_default().to_string();
    let params: Vec<Value> = summary["params"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| json!({"key": k, "value": v.as_str().unwrap_or_default()}))
        .collect();
    let now = now_millis();
    let metrics: Vec<Value> = summary["metrics"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_f64().map(|value| json!({"key": k, "value": value, "timestamp": now, "step": 0})))
        .collect();
    for chunk in params.chunks(100) {
        client.post(&format!("{MLFLOW}/runs/log-batch"), &json!({"run_id": run_id, "params": chunk})).await?;
    }
    for chunk in metrics.chunks(1000) {
        client.post(&format!("{MLFLOW}/runs/log-batch"), &json!({"run_id": run_id, "metrics": chunk})).await?;
    }
    let datasets: Vec<Value> = summary["datasets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            json!({
                "dataset": {
                    "name": d["name"], "digest": d["digest"], "source_type": d["source_type"], "source": d["source"],
                    "schema": d["schema"],
                },
                "tags": d["context"].as_str().map(|c| vec![json!({"key": "mlflow.data.context", "value": c})]).unwrap_or_default(),
            })
        })
        .collect();
    if !datasets.is_empty() {
        client.post(&format!("{MLFLOW}/runs/log-inputs"), &json!({"run_id": run_id, "datasets": datasets})).await?;
    }

    let root = proxy_path(&artifact_uri)?;
    for (path, data) in files {
        client.upload(&format!("{PROXY}/{}", encode_path(&format!("{root}/{FILES_DIR}/{path}"))), data).await?;
    }
    client
        .post(
            &format!("{MLFLOW}/runs/update"),
            &json!({"run_id": run_id, "status": "FINISHED", "end_time": now_millis()}),
        )
        .await?;

    let mut version_tags: Vec<Value> = model["tags"].as_array().cloned().unwrap_or_default();
    version_tags.retain(|t| !t["key"].as_str().unwrap_or("").starts_with("keelson.import."));
    version_tags.push(json!({"key": "keelson.import.package_digest", "value": digest}));
    version_tags.push(json!({"key": "keelson.import.origin", "value": origin}));
    let created = client
        .post(
            &format!("{MLFLOW}/model-versions/create"),
            &json!({
                "name": name,
                "source": format!("runs:/{run_id}/{FILES_DIR}"),
                "run_id": run_id,
                "description": model["description"],
                "tags": version_tags,
            }),
        )
        .await?;
    let version = created["model_version"]["version"].as_str().unwrap_or("?");
    println!("imported {origin} as {name} version {version} (package digest {digest}, run {run_id})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_paths_and_digests() {
        assert_eq!(parse_model_spec("fraud@prod").unwrap(), ("fraud".into(), Some("prod".into()), None));
        assert_eq!(parse_model_spec("fraud/3").unwrap(), ("fraud".into(), None, Some("3".into())));
        assert!(parse_model_spec("fraud").is_err());
        assert_eq!(proxy_path("mlflow-artifacts:/1/abc/artifacts").unwrap(), "1/abc/artifacts");
        assert_eq!(proxy_path("mlflow-artifacts://host:5000/1/abc").unwrap(), "1/abc");
        assert!(proxy_path("s3://bucket/x").is_err());
        assert!(safe_relative("../etc/passwd").is_err());
        assert!(safe_relative("/etc/passwd").is_err());
        assert!(safe_relative("a/b/MLmodel").is_ok());
        let a = vec![json!({"path": "a", "sha256": "1"}), json!({"path": "b", "sha256": "2"})];
        let b = vec![json!({"path": "b", "sha256": "2"}), json!({"path": "a", "sha256": "1"})];
        assert_eq!(package_digest(&a), package_digest(&b), "order does not matter");
        let c = vec![json!({"path": "a", "sha256": "1"}), json!({"path": "b", "sha256": "3"})];
        assert_ne!(package_digest(&a), package_digest(&c));
    }
}
