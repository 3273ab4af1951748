//! Turning a store URL and its options into an object_store backend rooted at the URL's prefix.

use std::path::{Path as FsPath, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use url::Url;

use crate::error::{ArtifactError, Result};
use crate::key::ArtifactKey;

const ACCEPTED_URLS: &str = "file:///abs/path, memory://, s3://bucket/prefix, \
     az://container/prefix (or azure://, abfs://) or gs://bucket/prefix";

/// A backend with its root prefix already applied.
pub(crate) struct Backend {
    pub store: Arc<dyn ObjectStore>,
    /// The URL without credentials, query or fragment.
    pub description: String,
    /// Bytes of the root prefix inside the bucket (0 for local and unprefixed stores); counts
    /// against the bucket's key-length limit.
    pub prefix_len: usize,
    /// The local directory store, when it is one (files there can be read and moved in place).
    pub local: Option<Arc<LocalFileSystem>>,
}

/// What a store URL names: a local directory (opened with blocking calls, so by the caller on the
/// blocking pool) or a ready backend.
pub(crate) enum Target {
    Local(PathBuf),
    Remote(Backend),
}

pub(crate) fn parse_store_url(url: &str, options: &[(String, String)]) -> Result<Target> {
    let parsed = Url::parse(url).map_err(|error| ArtifactError::InvalidStoreUrl {
        url: redact_unparsed(url),
        reason: format!("not a url ({error}); use {ACCEPTED_URLS}"),
    })?;
    let description = describe_url(&parsed);
    let invalid = |reason: String| ArtifactError::InvalidStoreUrl { url: description.clone(), reason };
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("query strings and fragments are not accepted; pass settings as options".to_owned()));
    }
    // The url crate resolves `a/../b` to `b`; a root written that way is more likely a mistake
    // than a wish, so it is refused rather than silently moved.
    if url.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(invalid("dot segments (. or ..) are not accepted; write the root path out in full".to_owned()));
    }
    let has_host = parsed.host_str().is_some_and(|host| !host.is_empty());
    match parsed.scheme() {
        "file" => {
            if has_host {
                return Err(invalid("file urls must not name a host; use file:///absolute/path".to_owned()));
            }
            refuse_options(options, "file").map_err(invalid)?;
            let root = parsed
                .to_file_path()
                .map_err(|()| invalid("not an absolute file path; use file:///absolute/path".to_owned()))?;
            Ok(Target::Local(root))
        }
        "memory" => {
            if has_host {
                return Err(invalid("memory urls take no host; use memory:// or memory:///prefix".to_owned()));
            }
            refuse_options(options, "memory").map_err(invalid)?;
            let (store, prefix_len) = with_prefix(Box::new(InMemory::new()), &parsed)?;
            Ok(Target::Remote(Backend { store, description, prefix_len, local: None }))
        }
        "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" => {
            check_option_keys(parsed.scheme(), options).map_err(invalid)?;
            let options = options.iter().map(|(key, value)| (key.as_str(), value.clone()));
            let (store, _) =
                object_store::parse_url_opts(&parsed, options).map_err(|error| invalid(error.to_string()))?;
            // object_store 0.12 drops the first path segment of az:// URLs although the container
            // is the host, so the prefix is taken from the URL path for every scheme.
            let (store, prefix_len) = with_prefix(store, &parsed)?;
            Ok(Target::Remote(Backend { store, description, prefix_len, local: None }))
        }
        other => Err(invalid(format!("scheme {other:?} is not supported; use {ACCEPTED_URLS}"))),
    }
}

/// Builds the local backend rooted at `root`, creating the directory if needed. Blocking.
pub(crate) fn local_backend(root: &FsPath) -> Result<Backend> {
    let root_error = |source: std::io::Error| ArtifactError::LocalRoot { path: root.display().to_string(), source };
    std::fs::create_dir_all(root).map_err(root_error)?;
    let canonical = std::fs::canonicalize(root).map_err(root_error)?;
    if !canonical.is_dir() {
        return Err(root_error(std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory")));
    }
    let store = Arc::new(
        LocalFileSystem::new_with_prefix(&canonical)
            .map_err(|error| root_error(std::io::Error::other(error)))?
            // Deleting the last object in a directory removes the directory, as on object stores.
            .with_automatic_cleanup(true),
    );
    let description =
        Url::from_file_path(&canonical).map(String::from).unwrap_or_else(|()| canonical.display().to_string());
    Ok(Backend { store: store.clone(), description, prefix_len: 0, local: Some(store) })
}

fn with_prefix(store: Box<dyn ObjectStore>, url: &Url) -> Result<(Arc<dyn ObjectStore>, usize)> {
    let prefix = url.path().trim_matches('/');
    if prefix.is_empty() {
        return Ok((Arc::from(store), 0));
    }
    let prefix = ArtifactKey::parse(prefix).map_err(|error| ArtifactError::InvalidStoreUrl {
        url: describe_url(url),
        reason: format!("the path prefix is not usable: {error}"),
    })?;
    let path = Path::parse(prefix.as_str()).map_err(|error| ArtifactError::InvalidStoreUrl {
        url: describe_url(url),
        reason: format!("the path prefix is not usable: {error}"),
    })?;
    Ok((Arc::new(PrefixStore::new(store, path)), prefix.as_str().len()))
}

fn refuse_options(options: &[(String, String)], scheme: &str) -> std::result::Result<(), String> {
    match options.first() {
        None => Ok(()),
        Some((key, _)) => Err(format!("{scheme} stores take no options, but {key:?} was given")),
    }
}

/// object_store silently ignores keys it does not know; a typo in a credential option would
/// then fall back to anonymous access, so unknown keys are refused here.
fn check_option_keys(scheme: &str, options: &[(String, String)]) -> std::result::Result<(), String> {
    for (key, _) in options {
        let (known, example) = match scheme {
            "s3" | "s3a" => (
                object_store::aws::AmazonS3ConfigKey::from_str(key).is_ok(),
                "aws_endpoint, aws_region, aws_access_key_id, aws_allow_http",
            ),
            "gs" => (
                object_store::gcp::GoogleConfigKey::from_str(key).is_ok(),
                "google_service_account, google_application_credentials",
            ),
            _ => (
                object_store::azure::AzureConfigKey::from_str(key).is_ok(),
                "azure_storage_account_name, azure_storage_account_key, azure_storage_use_emulator",
            ),
        };
        if !known {
            return Err(format!(
                "option {key:?} is not known to {scheme} stores; use object_store's keys \
                 such as {example}"
            ));
        }
    }
    Ok(())
}

/// The URL with any password, query and fragment removed, for logs and errors.
pub(crate) fn describe_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Only fails for URLs that cannot have credentials, which then have none to remove.
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    let path = shown.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/').to_owned();
        shown.set_path(&trimmed);
    }
    shown.into()
}

/// A URL that did not parse: show only its scheme, as the rest may hold credentials.
fn redact_unparsed(url: &str) -> String {
    if !url.contains('@') && !url.contains('?') {
        return url.to_owned();
    }
    match url.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://…"),
        None => "…".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn describe_removes_secrets() {
        let url = Url::parse("s3://user:secret@bucket/prefix/?token=abc#frag").unwrap_or_else(|e| {
            panic!("{e}");
        });
        let shown = describe_url(&url);
        assert_eq!(shown, "s3://user@bucket/prefix");
        assert!(!shown.contains("secret") && !shown.contains("abc"));
    }

    #[test]
    fn describe_keeps_bare_roots() {
        for url in ["memory://", "s3://bucket", "s3://bucket/", "file:///"] {
            assert_eq!(describe_url(&Url::parse(url).unwrap()), url);
        }
        let url = Url::parse("gs://bucket/a/b//").unwrap();
        assert_eq!(describe_url(&url), "gs://bucket/a/b");
    }

    fn remote(url: &str, options: &[(&str, &str)]) -> Backend {
        let options: Vec<(String, String)> =
            options.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        match parse_store_url(url, &options).unwrap() {
            Target::Remote(backend) => backend,
            Target::Local(path) => panic!("{url} opened locally at {path:?}"),
        }
    }

    #[test]
    fn cloud_urls_keep_their_prefix() {
        let s3 = [
            ("aws_region", "us-east-1"),
            ("aws_endpoint", "http://127.0.0.1:9"),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "id"),
            ("aws_secret_access_key", "secret"),
        ];
        let backend = remote("s3://bucket/team/artifacts", &s3);
        assert_eq!(backend.prefix_len, "team/artifacts".len());
        assert_eq!(backend.description, "s3://bucket/team/artifacts");
        assert_eq!(remote("s3://bucket", &s3).prefix_len, 0);

        let azure = [("azure_storage_use_emulator", "true")];
        // object_store 0.12 would drop `one` here; the prefix is ours.
        for url in ["az://container/one/two", "azure://container/one/two"] {
            assert_eq!(remote(url, &azure).prefix_len, "one/two".len(), "{url}");
        }
        assert_eq!(remote("az://container/one", &azure).prefix_len, 3);
    }

    #[test]
    fn unparsable_urls_with_credentials_are_redacted() {
        assert_eq!(redact_unparsed("s3://user:pw@[bad/x"), "s3://…");
        assert_eq!(redact_unparsed("no scheme here"), "no scheme here");
    }
}
