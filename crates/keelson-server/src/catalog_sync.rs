//! Reading catalog files for the catalog service (it sees only their text) and the scheduled
//! sync of every configured source.

use keelson_core::catalog::SyncReport;
use keelson_egress::{read_limited, EgressClient, EgressPolicy};
use keelson_genai::{CatalogError, CatalogService};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// Catalog files larger than this are refused: a catalog lists models, not weights.
const MAX_CATALOG_BYTES: u64 = 10 * 1024 * 1024;

/// Where a catalog location came from, which decides what it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written by the operator in `catalog.sources`: a path, `file://` URI or any URL.
    Configured,
    /// Named by an API caller: only an http(s) URL that the egress policy allows.
    Requested,
}

/// The text of a catalog file. Errors name the location and the kind of failure, never the
/// file's content.
pub async fn fetch(location: &str, origin: Origin, egress: &EgressPolicy) -> Result<String, CatalogError> {
    let invalid = |reason: String| CatalogError::Invalid(format!("cannot read catalog `{location}`: {reason}"));
    let limit = MAX_CATALOG_BYTES.min(egress.max_response_bytes());
    let is_url = location.starts_with("http://") || location.starts_with("https://");
    if is_url {
        let url = url::Url::parse(location).map_err(|e| invalid(e.to_string()))?;
        let client = match origin {
            Origin::Configured => egress.trusted_client(),
            Origin::Requested => egress.client(),
        }
        .map_err(|e| invalid(e.to_string()))?;
        let response = client
            .get(&url)
            .map_err(|e| invalid(e.to_string()))?
            .send()
            .await
            .map_err(|e| invalid(EgressClient::explain(&e).to_string()))?;
        if !response.status().is_success() {
            return Err(invalid(format!("HTTP {}", response.status().as_u16())));
        }
        let bytes = read_limited(response, limit).await.map_err(|e| invalid(e.to_string()))?;
        return String::from_utf8(bytes.to_vec()).map_err(|_| invalid("not UTF-8".into()));
    }
    if origin == Origin::Requested {
        return Err(CatalogError::Invalid(format!(
            "catalog location `{location}` must be an http(s) URL; files on the server are read only for \
             sources an operator configures in catalog.sources"
        )));
    }
    let path = location.strip_prefix("file://").unwrap_or(location);
    let metadata = tokio::fs::metadata(path).await.map_err(|e| invalid(e.to_string()))?;
    if metadata.len() > limit {
        return Err(invalid(format!("larger than {limit} bytes")));
    }
    tokio::fs::read_to_string(path).await.map_err(|e| invalid(e.to_string()))
}

pub async fn sync_source(
    catalog: &CatalogService,
    egress: &EgressPolicy,
    source: &str,
    location: &str,
    origin: Origin,
) -> Result<SyncReport, CatalogError> {
    keelson_genai::catalog::validate_source_name(source)?;
    let text = fetch(location, origin, egress).await?;
    catalog.sync(source, location, &text).await
}

/// Syncs every configured source at start and then every `interval`, until `stop`.
pub async fn run_schedule(
    catalog: CatalogService,
    egress: EgressPolicy,
    sources: BTreeMap<String, String>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for (source, location) in &sources {
            match sync_source(&catalog, &egress, source, location, Origin::Configured).await {
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
