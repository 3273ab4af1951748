//! MLflow's artifact URIs, as the registry, lineage and the export/import commands read them.

/// The path inside the artifact proxy of a `mlflow-artifacts:/path` or
/// `mlflow-artifacts://host/path` URI, without surrounding slashes; `None` for other schemes.
pub fn proxied_artifact_path(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, path)| path).unwrap_or(""),
        None => rest,
    };
    Some(path.trim_matches('/'))
}

/// `(run_id, path)` of a `runs:/<run_id>/<path>` URI; the path may be empty.
pub fn split_runs_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("runs:/")?.trim_start_matches('/');
    let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
    (!run_id.is_empty()).then_some((run_id, path.trim_matches('/')))
}

/// A run's artifact root joined with a path inside it.
pub fn join_artifact_path(root: &str, path: &str) -> String {
    let root = root.trim_end_matches('/');
    if path.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(proxied_artifact_path("mlflow-artifacts:/1/abc/artifacts/"), Some("1/abc/artifacts"));
        assert_eq!(proxied_artifact_path("mlflow-artifacts://host:5000/1/abc"), Some("1/abc"));
        assert_eq!(proxied_artifact_path("s3://bucket/x"), None);
        assert_eq!(split_runs_uri("runs:/r1/model/sub"), Some(("r1", "model/sub")));
        assert_eq!(split_runs_uri("runs:/r1"), Some(("r1", "")));
        assert_eq!(split_runs_uri("runs:/"), None);
        assert_eq!(
            join_artifact_path("mlflow-artifacts:/1/r/artifacts/", "model"),
            "mlflow-artifacts:/1/r/artifacts/model"
        );
    }
}
