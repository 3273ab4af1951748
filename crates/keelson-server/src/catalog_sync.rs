//! Reading catalog files for the catalog service (it sees only their text) and the scheduled
//! sync of every configured source.

use keelson_core::catalog::SyncReport;
use keelson_genai::{CatalogError, CatalogService};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// Catalog files larger than this are refused: a catalog lists models, not weights.
const MAX_CATALOG_BYTES: usize = 10 * 1024 * 1024;

/// The text of a catalog file at a path, `file://` URI or `http(s)://` URL.
pub async fn fetch(location: &str) -> Result<String, CatalogError> {
    let invalid = |reason: String| CatalogError::Invalid(format!("cannot read catalog `{location}`: {reason}"));
    if location.starts_with("http://") || location.starts_with("https://") {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| invalid(e.to_string()))?;
        let response = client.get(location).send().await.map_err(|e| invalid(e.to_string()))?;
        if !response.status().is_success() {
            return Err(invalid(format!("HTTP {}", response.status())));
        }
        if response.content_length().is_some_and(|len| len as usize > MAX_CATALOG_BYTES) {
            return Err(invalid(format!("larger than {MAX_CATALOG_BYTES} bytes")));
        }
        let bytes = response.bytes().await.map_err(|e| invalid(e.to_string()))?;
        if bytes.len() > MAX_CATALOG_BYTES {
            return Err(invalid(format!("larger than {MAX_CATALOG_BYTES} bytes")));
        }
        return String::from_utf8(bytes.to_vec()).map_err(|_| invalid("not UTF-8".into()));
    }
    let path = location.strip_prefix("file://").unwrap_or(location);
    let metadata = tokio::fs::metadata(path).await.map_err(|e| invalid(e.to_string()))?;
    if metadata.len() as usize > MAX_CATALOG_BYTES {
        return Err(invalid(format!("larger than {MAX_CATALOG_BYTES} bytes")));
    }
    tokio::fs::read_to_string(path).await.map_err(|e| invalid(e.to_string()))
}

pub async fn sync_source(catalog: &CatalogService, source: &str, location: &str) -> Result<SyncReport, CatalogError> {
    keelson_genai::catalog::validate_source_name(source)?;
    let text = fetch(location).await?;
    catalog.sync(source, location, &text).await
}

/// Syncs every configured source at start and then every `interval`, until `stop`.
pub async fn run_schedule(
    catalog: CatalogService,
    sources: BTreeMap<String, String>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for (source, location) in &sources {
            match sync_source(&catalog, source, location).await {
                Ok(report) => tracing::info!(
                    source,
                    added = report.added.len(),
                    changed = report.changed.len(),
                    removed = report.removed.len(),
                    "catalog synced"
                ),
                Err(error) => tracing::warn!(source, %error, "catalog sync failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}
