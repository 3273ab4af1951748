//! Streamed downloads to scratch files: HTTP(S) URLs and artifact-store objects.

use crate::error::DataError;
use futures::StreamExt;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// How long an HTTP source may take to answer its headers.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn download(url: &str, target: &Path) -> Result<(), DataError> {
    let parsed = url::Url::parse(url).map_err(|e| DataError::invalid(format!("source url `{url}`: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DataError::invalid(format!("source url `{url}` must be http or https")));
    }
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| DataError::Internal(format!("http client: {e}")))?;
    let response =
        client.get(parsed).send().await.map_err(|e| DataError::invalid(format!("could not fetch `{url}`: {e}")))?;
    if !response.status().is_success() {
        return Err(DataError::invalid(format!("fetching `{url}` answered HTTP {}", response.status().as_u16())));
    }
    let mut file = tokio::fs::File::create(target).await?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| DataError::invalid(format!("reading `{url}` failed midway: {e}")))?;
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
