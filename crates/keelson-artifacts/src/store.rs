//! [`ArtifactStore`]: every artifact operation Keelson needs, over one object_store backend.

use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetResult, ObjectMeta, ObjectStore};

use crate::error::{ArtifactError, Result};
use crate::key::{invalid_key, ArtifactKey, MAX_KEY_BYTES};
use crate::open::{local_backend, parse_store_url, Backend, Target};
use crate::upload::{self, PutOutcome};

/// Default multipart part size.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// Smallest part size S3 accepts for every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// Largest part size S3 accepts.
pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;

/// Top-level segment reserved for the store's own objects; hidden from root listings and closed
/// to writes and deletes through this API.
pub const RESERVED_PREFIX: &str = ".keelson";
/// Written at open, read by [`ArtifactStore::check`].
pub const MARKER_KEY: &str = ".keelson/store-marker";

/// An artifact store rooted at a URL's prefix. Cheap to clone.
#[derive(Clone)]
pub struct ArtifactStore {
    shared: Arc<Shared>,
    part_size: usize,
}

struct Shared {
    store: Arc<dyn ObjectStore>,
    description: String,
    prefix_len: usize,
    local: Option<Arc<LocalFileSystem>>,
}

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative to the store root.
    pub key: String,
    pub size: u64,
    pub last_modified_ms: Option<i64>,
}

/// One level of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Objects directly at this level, sorted by key.
    pub files: Vec<ObjectInfo>,
    /// Keys of the "directories" at this level, relative to the store root, without a trailing
    /// `/`, sorted.
    pub dirs: Vec<String>,
}

/// An object being read. The body arrives through [`ArtifactReader::into_stream`].
pub struct ArtifactReader {
    key: String,
    result: GetResult,
}

impl ArtifactReader {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn size(&self) -> u64 {
        self.result.meta.size
    }

    pub fn last_modified_ms(&self) -> Option<i64> {
        Some(self.result.meta.last_modified.timestamp_millis())
    }

    /// The body in chunks as the backend delivers them; never buffered whole.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        let key = self.key;
        self.result.into_stream().map_err(move |error| ArtifactError::from_backend("read", &key, error)).boxed()
    }
}

impl fmt::Debug for ArtifactReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactReader").field("key", &self.key).field("size", &self.size()).finish_non_exhaustive()
    }
}

impl fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("url", &self.shared.description)
            .field("part_size", &self.part_size)
            .finish()
    }
}

impl ArtifactStore {
    /// Opens the store a URL names and writes its readiness marker:
    /// - `file:///abs/path`: a local directory, created if missing; takes no options;
    /// - `memory://` or `memory:///prefix`: a fresh in-process store, for tests;
    /// - `s3://bucket/prefix`, `az://container/prefix` (also `azure://`, `abfs://`),
    ///   `gs://bucket/prefix`: cloud stores configured by `options`, object_store's config keys
    ///   such as `aws_endpoint`, `aws_allow_http`, `aws_access_key_id`. Unknown keys are refused.
    ///
    /// A path in the URL becomes the store's root prefix; every key lives below it. Percent
    /// escapes are refused in that prefix like in keys. Fails when the URL or an option is
    /// invalid, or the marker cannot be written (bucket missing, unreachable, no permission).
    pub async fn open(url: &str, options: &[(String, String)]) -> Result<ArtifactStore> {
        match parse_store_url(url, options)? {
            Target::Local(root) => ArtifactStore::local(&root).await,
            Target::Remote(backend) => ArtifactStore::from_backend(backend).await,
        }
    }

    /// Opens a local directory as a store, creating it if missing.
    pub async fn local(root: &FsPath) -> Result<ArtifactStore> {
        let owned_root = root.to_path_buf();
        let backend = tokio::task::spawn_blocking(move || local_backend(&owned_root)).await.map_err(|error| {
            ArtifactError::Backend { operation: "open", key: root.display().to_string(), source: Box::new(error) }
        })??;
        ArtifactStore::from_backend(backend).await
    }

    async fn from_backend(backend: Backend) -> Result<ArtifactStore> {
        let store = ArtifactStore {
            shared: Arc::new(Shared {
                store: backend.store,
                description: backend.description,
                prefix_len: backend.prefix_len,
                local: backend.local,
            }),
            part_size: DEFAULT_PART_SIZE,
        };
        let marker = Path::from(MARKER_KEY);
        let contents = "keelson artifact store; read by readiness checks, do not delete\n";
        store.shared.store.put(&marker, contents.into()).await.map_err(|error| store.not_ready(error))?;
        Ok(store)
    }

    /// Sets the multipart part size (between [`MIN_PART_SIZE`] and [`MAX_PART_SIZE`]).
    pub fn with_part_size(self, part_size: usize) -> Result<ArtifactStore> {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(ArtifactError::InvalidStoreUrl {
                url: self.shared.description.clone(),
                reason: format!(
                    "part size {part_size} is out of range; use {MIN_PART_SIZE} to \
                     {MAX_PART_SIZE} bytes"
                ),
            });
        }
        Ok(self.with_any_part_size(part_size))
    }

    /// Any part size of at least one byte, so tests can exercise multipart uploads with small
    /// bodies. Parts under 5 MiB are refused by S3.
    #[doc(hidden)]
    pub fn with_any_part_size(mut self, part_size: usize) -> ArtifactStore {
        self.part_size = part_size.max(1);
        self
    }

    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// The store URL without credentials, query or fragment.
    pub fn describe(&self) -> &str {
        &self.shared.description
    }

    /// Readiness: the marker written at open is still readable, so the root still exists and
    /// the backend answers.
    pub async fn check(&self) -> Result<()> {
        self.shared.store.head(&Path::from(MARKER_KEY)).await.map(drop).map_err(|error| self.not_ready(error))
    }

    /// Where `key`'s object lives on disk when this store is a local directory, so a reader can
    /// open it in place instead of copying it; `None` on object stores.
    pub fn local_path(&self, key: &ArtifactKey) -> Option<std::path::PathBuf> {
        let local = self.shared.local.as_ref()?;
        local.path_to_filesystem(&self.location(key).ok()?).ok()
    }

    /// Stores the file at `source` under `key`, consuming the file. On a local store it is
    /// synced and renamed into place (no second copy of a large file); elsewhere, or across file
    /// systems, it is streamed like [`ArtifactStore::put_stream`].
    pub async fn put_file(&self, key: &ArtifactKey, source: &FsPath) -> Result<()> {
        let location = self.writable_location(key)?;
        if let Some(target) = self.shared.local.as_ref().and_then(|l| l.path_to_filesystem(&location).ok()) {
            let from = source.to_path_buf();
            let moved = tokio::task::spawn_blocking(move || move_durably(&from, &target)).await;
            if let Ok(Ok(())) = moved {
                return Ok(());
            }
        }
        let file = tokio::fs::File::open(source).await.map_err(|e| ArtifactError::Backend {
            operation: "read",
            key: key.as_str().to_owned(),
            source: Box::new(e),
        })?;
        let body = futures::stream::unfold(file, |mut file| async move {
            use tokio::io::AsyncReadExt;
            let mut buffer = vec![0u8; 4 * 1024 * 1024];
            match file.read(&mut buffer).await {
                Ok(0) => None,
                Ok(n) => {
                    buffer.truncate(n);
                    Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), file))
                }
                Err(error) => Some((Err(error), file)),
            }
        });
        self.put_stream(key, Box::pin(body)).await.map(drop)
    }

    pub async fn put_bytes(&self, key: &ArtifactKey, body: Bytes) -> Result<PutOutcome> {
        self.put_stream(key, stream::iter([Ok::<_, std::convert::Infallible>(body)])).await
    }

    /// Stores `body` under `key`, replacing any object there. Holds at most a few parts in
    /// memory: a body shorter than one part is stored with one `put`, a longer one with a
    /// multipart upload that is aborted on any error, so a failed upload leaves nothing behind
    /// (an existing object under `key` stays as it was).
    pub async fn put_stream<S, E>(&self, key: &ArtifactKey, body: S) -> Result<PutOutcome>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let location = self.writable_location(key)?;
        upload::put_stream(&self.shared.store, &location, key.as_str(), self.part_size, body).await
    }

    /// Opens `key` for reading; [`ArtifactError::NotFound`] when absent.
    pub async fn get(&self, key: &ArtifactKey) -> Result<ArtifactReader> {
        let location = self.location(key)?;
        let result = self
            .shared
            .store
            .get(&location)
            .await
            .map_err(|error| ArtifactError::from_backend("read", key.as_str(), error))?;
        Ok(ArtifactReader { key: key.as_str().to_owned(), result })
    }

    /// The whole object in memory; for small objects only (use [`ArtifactStore::get`] else).
    pub async fn get_bytes(&self, key: &ArtifactKey) -> Result<Bytes> {
        let location = self.location(key)?;
        let read = async { self.shared.store.get(&location).await?.bytes().await };
        read.await.map_err(|error| ArtifactError::from_backend("read", key.as_str(), error))
    }

    /// Bytes `range.start..range.end` of the object; an end past the object is cut to its size,
    /// a start at or past its end is [`ArtifactError::InvalidRange`].
    pub async fn get_range(&self, key: &ArtifactKey, range: Range<u64>) -> Result<Bytes> {
        let invalid_range = |reason: String| ArtifactError::InvalidRange {
            key: key.as_str().to_owned(),
            start: range.start,
            end: range.end,
            reason,
        };
        if range.start >= range.end {
            return Err(invalid_range("the range is empty; end must be greater than start".to_owned()));
        }
        let location = self.location(key)?;
        match self.shared.store.get_range(&location, range.clone()).await {
            Ok(bytes) => Ok(bytes),
            Err(error) => {
                // Backends word out-of-range errors differently; the size tells for sure.
                let size = self.head(key).await?.size;
                if range.start >= size {
                    return Err(invalid_range(format!("the object is {size} bytes long; start must be below that")));
                }
                Err(ArtifactError::from_backend("read", key.as_str(), error))
            }
        }
    }

    /// Metadata of `key`; [`ArtifactError::NotFound`] when absent.
    pub async fn head(&self, key: &ArtifactKey) -> Result<ObjectInfo> {
        let location = self.location(key)?;
        let meta = self
            .shared
            .store
            .head(&location)
            .await
            .map_err(|error| ArtifactError::from_backend("read", key.as_str(), error))?;
        Ok(object_info(meta))
    }

    /// One level below `prefix` (the root when `None`). A missing prefix lists as empty.
    pub async fn list(&self, prefix: Option<&ArtifactKey>) -> Result<Listing> {
        let location = prefix.map(|key| self.location(key)).transpose()?;
        let listed = self
            .shared
            .store
            .list_with_delimiter(location.as_ref())
            .await
            .map_err(|error| ArtifactError::from_backend("list", prefix_text(prefix), error))?;
        let at_root = prefix.is_none();
        let mut files: Vec<ObjectInfo> =
            listed.objects.into_iter().map(object_info).filter(|info| is_listed(&info.key, prefix)).collect();
        let mut dirs: Vec<String> = listed
            .common_prefixes
            .into_iter()
            .map(String::from)
            .filter(|dir| !(at_root && dir == RESERVED_PREFIX))
            .collect();
        files.sort_by(|a, b| a.key.cmp(&b.key));
        dirs.sort();
        Ok(Listing { files, dirs })
    }

    /// Every object below `prefix` (everything when `None`), sorted by key.
    pub async fn list_recursive(&self, prefix: Option<&ArtifactKey>) -> Result<Vec<ObjectInfo>> {
        let location = prefix.map(|key| self.location(key)).transpose()?;
        let mut objects: Vec<ObjectInfo> = self
            .shared
            .store
            .list(location.as_ref())
            .map_ok(object_info)
            .try_filter(|info| std::future::ready(is_listed(&info.key, prefix)))
            .try_collect()
            .await
            .map_err(|error| ArtifactError::from_backend("list", prefix_text(prefix), error))?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes `key`. An absent key is [`ArtifactError::NotFound`] on every backend (S3 and
    /// Azure would report success), so callers can tell a typo from a deletion.
    pub async fn delete(&self, key: &ArtifactKey) -> Result<()> {
        let location = self.writable_location(key)?;
        self.head(key).await?;
        self.shared
            .store
            .delete(&location)
            .await
            .map_err(|error| ArtifactError::from_backend("delete", key.as_str(), error))
    }

    /// Deletes every object below `prefix` and answers how many went. An object named exactly
    /// `prefix` is not below it and stays.
    pub async fn delete_prefix(&self, prefix: &ArtifactKey) -> Result<usize> {
        let location = self.writable_location(prefix)?;
        self.delete_below(&location, prefix.as_str(), |path| is_listed(path, Some(prefix))).await
    }

    /// The store of workspace `name`: the same backend below `.keelson/workspaces/<name>`, a
    /// prefix no key of this store can reach (writes under `.keelson/` are refused), so one
    /// workspace's keys never name another's objects.
    pub async fn for_workspace(&self, name: &str) -> Result<ArtifactStore> {
        let prefix = workspace_prefix(name)?;
        if let Some(local) = &self.shared.local {
            let root = local
                .path_to_filesystem(&prefix)
                .map_err(|error| ArtifactError::from_backend("open", prefix.as_ref(), error))?;
            return ArtifactStore::local(&root).await.map(|store| store.with_any_part_size(self.part_size));
        }
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::prefix::PrefixStore::new(self.shared.store.clone(), prefix.clone()));
        let backend = Backend {
            store,
            description: format!("{}/{}", self.shared.description.trim_end_matches('/'), prefix.as_ref()),
            prefix_len: self.shared.prefix_len + usize::from(self.shared.prefix_len > 0) + prefix.as_ref().len(),
            local: None,
        };
        ArtifactStore::from_backend(backend).await.map(|store| store.with_any_part_size(self.part_size))
    }

    /// Deletes every object of workspace `name` (see [`ArtifactStore::for_workspace`]) and answers
    /// how many went.
    pub async fn delete_workspace(&self, name: &str) -> Result<usize> {
        let prefix = workspace_prefix(name)?;
        self.delete_below(&prefix, prefix.as_ref(), |_| true).await
    }

    /// Deletes every object listed below `location` that `keep` accepts; answers how many went.
    async fn delete_below(&self, location: &Path, label: &str, keep: impl Fn(&str) -> bool) -> Result<usize> {
        // Listed in full first: deleting while a local directory walk runs disturbs the walk.
        let doomed: Vec<Path> = self
            .shared
            .store
            .list(Some(location))
            .try_filter(|meta| std::future::ready(keep(meta.location.as_ref())))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|error| ArtifactError::from_backend("list", label, error))?;
        let mut results = self.shared.store.delete_stream(stream::iter(doomed.into_iter().map(Ok)).boxed());
        let mut deleted = 0;
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => deleted += 1,
                // Someone else deleted it meanwhile; it is gone either way.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(ArtifactError::from_backend("delete", label, error)),
            }
        }
        Ok(deleted)
    }

    /// The backend path of `key`, checking the whole name against the backend's length limit.
    fn location(&self, key: &ArtifactKey) -> Result<Path> {
        let full_len = self.shared.prefix_len + usize::from(self.shared.prefix_len > 0) + key.as_str().len();
        if full_len > MAX_KEY_BYTES {
            return Err(invalid_key(
                key.as_str(),
                format!(
                    "with the store prefix the key is {full_len} bytes long; object names may \
                     be at most {MAX_KEY_BYTES} bytes"
                ),
            ));
        }
        Path::parse(key.as_str()).map_err(|error| invalid_key(key.as_str(), error.to_string()))
    }

    fn writable_location(&self, key: &ArtifactKey) -> Result<Path> {
        if key.segments().next() == Some(RESERVED_PREFIX) {
            return Err(invalid_key(
                key.as_str(),
                format!(
                    "keys below {RESERVED_PREFIX}/ are reserved for the store's own objects; \
                     choose another first segment"
                ),
            ));
        }
        self.location(key)
    }

    fn not_ready(&self, error: object_store::Error) -> ArtifactError {
        ArtifactError::NotReady { store: self.shared.description.clone(), source: Box::new(error) }
    }
}

fn object_info(meta: ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: String::from(meta.location),
        size: meta.size,
        last_modified_ms: Some(meta.last_modified.timestamp_millis()),
    }
}

/// Whether a listed key belongs in a listing of `prefix`: strictly below it (backends differ on
/// returning an object named exactly `prefix`), and not the store's own objects at the root.
fn is_listed(key: &str, prefix: Option<&ArtifactKey>) -> bool {
    match prefix {
        Some(prefix) => key.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/')),
        None => !key.strip_prefix(RESERVED_PREFIX).is_some_and(|rest| rest.starts_with('/')),
    }
}

fn prefix_text(prefix: Option<&ArtifactKey>) -> &str {
    prefix.map_or("", ArtifactKey::as_str)
}

/// Syncs `from`, renames it to `to` and syncs the directory, so the object survives a crash
/// once this returns. Fails across file systems (the caller then copies).
fn move_durably(from: &FsPath, to: &FsPath) -> std::io::Result<()> {
    std::fs::File::open(from)?.sync_all()?;
    let parent = to.parent().ok_or_else(|| std::io::Error::other("object path has no directory"))?;
    std::fs::create_dir_all(parent)?;
    std::fs::rename(from, to)?;
    std::fs::File::open(parent)?.sync_all()
}

/// Where workspace `name`'s objects live, below the reserved prefix. The name must be one key
/// segment (workspace names are DNS labels, which always are).
fn workspace_prefix(name: &str) -> Result<Path> {
    let segment = ArtifactKey::parse(name)?;
    if segment.segments().count() != 1 {
        return Err(invalid_key(name, "a workspace name is one path segment".to_string()));
    }
    Path::parse(format!("{RESERVED_PREFIX}/workspaces/{name}")).map_err(|error| invalid_key(name, error.to_string()))
}
