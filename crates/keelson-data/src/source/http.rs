//! Streamed downloads to scratch files: HTTP(S) URLs and artifact-store objects.

use crate::error::DataError;
use futures::StreamExt;
use keelson_egress::{EgressClient, EgressError, EgressPolicy};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Streams `url` to `target`, through the egress policy (checked after resolution and on every
/// redirect). Errors name the URL and the kind of failure, never what the remote side answered.
pub async fn download(url: &str, target: &Path, egress: &EgressPolicy) -> Result<(), DataError> {
    let parsed = url::Url::parse(url).map_err(|e| DataError::invalid(format!("source url `{url}`: {e}")))?;
    let shown = keelson_core::config::mask_url_password(url);
    let refused = |e: EgressError| DataError::invalid(format!("could not fetch `{shown}`: {e}"));
    let client = egress.download_client().map_err(refused)?;
    let response =
        client.get(&parsed).map_err(refused)?.send().await.map_err(|e| refused(EgressClient::explain(&e)))?;
    if !response.status().is_success() {
        return Err(DataError::invalid(format!("fetching `{shown}` answered HTTP {}", response.status().as_u16())));
    }
    let mut file = tokio::fs::File::create(target).await?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            DataError::invalid(format!("reading `{shown}` failed midway: {}", EgressClient::explain(&e)))
        })?;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(())
}

pub async fn download_artifact(
    artifacts: &keelson_artifacts::ArtifactStore,
    key: &keelson_artifacts::ArtifactKey,
    target: &Path,
) -> Result<(), DataError> {
    let mut body = artifacts.get(key).await?.into_stream();
    let mut file = tokio::fs::File::create(target).await?;
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk?).await?;
    }
    file.flush().await?;
    Ok(())
}
