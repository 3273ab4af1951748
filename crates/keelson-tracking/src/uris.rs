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

/// The artifact-store key behind a `mlflow-artifacts:` URI (the proxy keeps its files under
/// one prefix of the store); `None` for other schemes.
pub fn proxied_store_key(uri: &str) -> Option<String> {
    let prefix = crate::service::MLFLOW_ARTIFACTS_PREFIX;
    proxied_artifact_path(uri).map(|path| if path.is_empty() { prefix.to_string() } else { format!("{prefix}/{path}") })
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

/// `scheme`, `authority` and path segments of a URI, without percent-decoding surprises: a
/// percent sign anywhere is refused by the relative-path check first.
pub(crate) fn split_uri(uri: &str) -> (Option<&str>, Option<&str>, Vec<&str>) {
    let (scheme, rest) = match uri.split_once(':') {
        Some((scheme, rest))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (Some(scheme), rest)
        }
        _ => (None, uri),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.split_once('/') {
            Some((authority, path)) => (Some(authority), path),
            None => (Some(after), ""),
        },
        None => (None, rest),
    };
    let segments = path.split('/').filter(|s| !s.is_empty()).collect();
    (scheme, authority.filter(|a| !a.is_empty()), segments)
}

/// Whether a source could climb out of where it points, at any depth of percent-encoding:
/// `..` segments, encoded separators or dots (`%2e`, `%2f`, `%5c`, in any case, also double
/// encoded as `%252e`), and NUL bytes, which cut a path short in the layers below.
pub(crate) fn has_relative_parts(source: &str) -> bool {
    let mut current = source.to_string();
    // Each round removes one layer of encoding; a source encoded deeper than this is refused.
    for _ in 0..4 {
        let lowered = current.to_ascii_lowercase();
        if current.contains('\0')
            || ["%2e", "%2f", "%5c", "%00"].iter().any(|encoded| lowered.contains(encoded))
            || current.split(['/', '\\']).any(|segment| segment == "..")
        {
            return true;
        }
        let decoded = percent_encoding::percent_decode_str(&current).decode_utf8_lossy().into_owned();
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    true
}

/// The scheme of a URI in lower case: schemes are case-insensitive (RFC 3986 §3.1), so `FILE:`
/// and `Runs:` must meet the same checks as `file:` and `runs:`.
pub(crate) fn scheme_lowercase(source: &str) -> Option<String> {
    split_uri(source).0.map(str::to_ascii_lowercase)
}

/// A file on the server: no scheme, `file:`, a Windows drive (`C:\\…`) or a UNC path.
pub(crate) fn is_local(source: &str) -> bool {
    if source.starts_with("\\\\") {
        return true;
    }
    match scheme_lowercase(source).as_deref() {
        None | Some("file") => true,
        Some(scheme) => scheme.len() == 1,
    }
}

pub(crate) fn is_proxied_artifact(scheme: Option<&str>, segments: &[&str]) -> bool {
    match scheme {
        Some("mlflow-artifacts") => true,
        Some("http" | "https") => segments.windows(4).any(|w| w == ["api", "2.0", "mlflow-artifacts", "artifacts"]),
        _ => false,
    }
}

/// Whether `source` lies under `root`, comparing path segments of proxied-artifact URIs.
pub(crate) fn within_root(source: &str, root: &str) -> bool {
    let (_, _, source_segments) = split_uri(source);
    let (_, _, root_segments) = split_uri(root);
    let tail = |segments: Vec<&str>| -> Vec<String> {
        // http(s) forms carry the proxy route before the artifact path.
        match segments.windows(4).position(|w| w == ["api", "2.0", "mlflow-artifacts", "artifacts"]) {
            Some(i) => segments[i + 4..].iter().map(|s| s.to_string()).collect(),
            None => segments.iter().map(|s| s.to_string()).collect(),
        }
    };
    let source = tail(source_segments);
    let root = tail(root_segments);
    source.len() >= root.len() && source[..root.len()] == root[..]
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

    #[test]
    fn traversal_is_found_in_every_encoding() {
        for source in [
            "s3://b/../x",
            "s3://b/..\\x",
            "mlflow-artifacts:/1/%2E%2E/%2e%2E/etc",
            "mlflow-artifacts:/1/%252e%252e/etc",
            "mlflow-artifacts:/1/%25252e%25252e/etc",
            "s3://b/a%2Fb",
            "s3://b/a%5Cb",
            "s3://b/model\0.onnx",
            "s3://b/model%00.onnx",
            "s3://b/model%2500.onnx",
        ] {
            assert!(has_relative_parts(source), "{source}");
        }
        for source in ["s3://b/models/m1", "mlflow-artifacts:/1/abc/artifacts/model", "s3://b/a%20b", "s3://b/v1.2"] {
            assert!(!has_relative_parts(source), "{source}");
        }
    }

    #[test]
    fn uri_parts_and_roots() {
        assert_eq!(split_uri("runs:/abc/model"), (Some("runs"), None, vec!["abc", "model"]));
        assert_eq!(split_uri("models:/m-123"), (Some("models"), None, vec!["m-123"]));
        assert_eq!(split_uri("s3://bucket/a/b"), (Some("s3"), Some("bucket"), vec!["a", "b"]));
        assert!(is_local("/tmp/model") && is_local("file:///tmp/model") && !is_local("s3://b/k"));
        assert!(has_relative_parts("mlflow-artifacts:/0/../../etc") && has_relative_parts("x/%2e%2e/y"));
        assert!(is_local("FILE:///etc/passwd") && is_local("File:/etc") && is_local("C:\\models"));
        assert!(is_local("\\\\host\\share\\model"));
        assert!(within_root("mlflow-artifacts:/1/abc/artifacts/model", "mlflow-artifacts:/1/abc/artifacts"));
        assert!(!within_root("mlflow-artifacts:/1/other/artifacts", "mlflow-artifacts:/1/abc/artifacts"));
        assert!(within_root(
            "http://h:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/m",
            "mlflow-artifacts:/1/abc/artifacts"
        ));
    }
}
