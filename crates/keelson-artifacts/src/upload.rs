//! Streaming uploads: hash while reading, cut the body into parts of exactly `part_size` bytes,
//! and either do one `put` (small bodies) or a multipart upload that is completed only when the
//! whole body arrived. On any failure the multipart upload is aborted, so no partial object ever
//! becomes visible.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, PutPayload};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::error::{ArtifactError, Result};

/// Parts uploaded concurrently by one `put_stream`; bounds its memory to about
/// `(MAX_PARTS_IN_FLIGHT + 1) × part_size`.
const MAX_PARTS_IN_FLIGHT: usize = 4;

/// Chunks up to this size are hashed on the async thread (well under a millisecond); larger ones
/// go to the blocking pool.
const INLINE_HASH_BYTES: usize = 64 * 1024;

/// What a completed upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub size: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// Upload requests that carried data: 1 for a single `put`, else the multipart part count.
    pub parts: usize,
}

pub(crate) async fn put_stream<S, E>(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
    key: &str,
    part_size: usize,
    mut body: S,
) -> Result<PutOutcome>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut hasher = StreamHasher::default();
    let mut pending = PartBuffer::default();
    let mut upload: Option<PartWriter> = None;

    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(source) => {
                abort(upload, key).await;
                return Err(ArtifactError::UploadBody { key: key.to_owned(), source: Box::new(source) });
            }
        };
        if let Err(source) = hasher.update(chunk.clone()).await {
            abort(upload, key).await;
            return Err(ArtifactError::Backend { operation: "hash", key: key.to_owned(), source: Box::new(source) });
        }
        pending.push(chunk);
        // Strictly greater: a body of exactly one part stays a single `put`.
        while pending.len > part_size {
            let part = pending.take(part_size);
            let writer = match upload.as_mut() {
                Some(writer) => writer,
                None => {
                    let started = store
                        .put_multipart(location)
                        .await
                        .map_err(|error| ArtifactError::from_backend("upload", key, error))?;
                    upload.insert(PartWriter::new(started))
                }
            };
            if let Err(error) = writer.put_part(part).await {
                abort(upload, key).await;
                return Err(ArtifactError::from_backend("upload", key, error));
            }
        }
    }

    let size = hasher.size;
    let sha256 = hasher.finish();
    let parts = match upload {
        None => {
            store
                .put(location, pending.take_all())
                .await
                .map_err(|error| ArtifactError::from_backend("upload", key, error))?;
            1
        }
        Some(mut writer) => {
            let finished = async {
                if pending.len > 0 {
                    writer.put_part(pending.take_all()).await?;
                }
                writer.finish().await
            }
            .await;
            if let Err(error) = finished {
                abort(Some(writer), key).await;
                return Err(ArtifactError::from_backend("upload", key, error));
            }
            writer.parts
        }
    };
    Ok(PutOutcome { size, sha256, parts })
}

async fn abort(upload: Option<PartWriter>, key: &str) {
    if let Some(writer) = upload {
        writer.abort(key).await;
    }
}

/// Chunks waiting to fill a part; kept as `Bytes` so cutting parts never copies.
#[derive(Default)]
struct PartBuffer {
    chunks: Vec<Bytes>,
    len: usize,
}

impl PartBuffer {
    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// The first `size` bytes (`size <= self.len`).
    fn take(&mut self, size: usize) -> PutPayload {
        let mut taken = Vec::new();
        let mut missing = size;
        let mut rest = std::mem::take(&mut self.chunks).into_iter();
        for mut chunk in rest.by_ref() {
            if chunk.len() > missing {
                let head = chunk.split_to(missing);
                taken.push(head);
                self.chunks.push(chunk);
                missing = 0;
                break;
            }
            missing -= chunk.len();
            taken.push(chunk);
            if missing == 0 {
                break;
            }
        }
        self.chunks.extend(rest);
        self.len -= size - missing;
        taken.into_iter().collect()
    }

    fn take_all(&mut self) -> PutPayload {
        self.len = 0;
        std::mem::take(&mut self.chunks).into_iter().collect()
    }
}

/// SHA-256 and byte count of everything seen so far.
#[derive(Default)]
struct StreamHasher {
    digest: Option<Sha256>,
    size: u64,
}

impl StreamHasher {
    async fn update(&mut self, chunk: Bytes) -> Result<(), tokio::task::JoinError> {
        self.size += chunk.len() as u64;
        let mut digest = self.digest.take().unwrap_or_default();
        if chunk.len() <= INLINE_HASH_BYTES {
            digest.update(&chunk);
        } else {
            digest = tokio::task::spawn_blocking(move || {
                digest.update(&chunk);
                digest
            })
            .await?;
        }
        self.digest = Some(digest);
        Ok(())
    }

    fn finish(self) -> String {
        hex::encode(self.digest.unwrap_or_default().finalize())
    }
}

/// A multipart upload with up to [`MAX_PARTS_IN_FLIGHT`] parts uploading in background tasks,
/// so parts make progress while the next one is read from the body.
struct PartWriter {
    upload: Option<Box<dyn MultipartUpload>>,
    in_flight: JoinSet<object_store::Result<()>>,
    parts: usize,
}

impl PartWriter {
    fn new(upload: Box<dyn MultipartUpload>) -> PartWriter {
        PartWriter { upload: Some(upload), in_flight: JoinSet::new(), parts: 0 }
    }

    fn upload(&mut self) -> object_store::Result<&mut Box<dyn MultipartUpload>> {
        self.upload.as_mut().ok_or_else(|| object_store::Error::Generic {
            store: "keelson-artifacts",
            source: "multipart upload used after it ended".into(),
        })
    }

    async fn put_part(&mut self, part: PutPayload) -> object_store::Result<()> {
        while self.in_flight.len() >= MAX_PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        let uploading = self.upload()?.put_part(part);
        self.in_flight.spawn(uploading);
        self.parts += 1;
        Ok(())
    }

    async fn join_one(&mut self) -> object_store::Result<()> {
        match self.in_flight.join_next().await {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(source)) => Err(object_store::Error::JoinError { source }),
        }
    }

    async fn finish(&mut self) -> object_store::Result<()> {
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        self.upload()?.complete().await?;
        self.upload = None;
        Ok(())
    }

    async fn abort(mut self, key: &str) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(mut upload) = self.upload.take() {
            if let Err(error) = upload.abort().await {
                tracing::warn!(key, %error, "aborting a failed multipart upload failed");
            }
        }
    }
}

impl Drop for PartWriter {
    /// The caller dropped `put_stream` mid-upload (say, the client went away): abort in the
    /// background so the backend does not keep the parts.
    fn drop(&mut self) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        self.in_flight.abort_all();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = upload.abort().await {
                    tracing::warn!(%error, "aborting an abandoned multipart upload failed");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_buffer_cuts_exact_parts_across_chunks() {
        let mut buffer = PartBuffer::default();
        buffer.push(Bytes::from_static(b"abc"));
        buffer.push(Bytes::from_static(b""));
        buffer.push(Bytes::from_static(b"defgh"));
        assert_eq!(buffer.len, 8);
        let part = Bytes::from(buffer.take(4));
        assert_eq!(&part[..], b"abcd");
        assert_eq!(buffer.len, 4);
        let part = Bytes::from(buffer.take(3));
        assert_eq!(&part[..], b"efg");
        let rest = Bytes::from(buffer.take_all());
        assert_eq!(&rest[..], b"h");
        assert_eq!(buffer.len, 0);
    }
}
