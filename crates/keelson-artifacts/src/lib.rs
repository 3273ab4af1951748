//! Keelson's artifact store: validated keys and streaming reads and writes over object_store
//! (local directory, in-memory, S3, Azure Blob, GCS). This is the only crate that speaks
//! object_store; the rest of Keelson sees [`ArtifactStore`], [`ArtifactKey`] and plain structs.

mod error;
mod key;
mod open;
mod store;
mod upload;

pub use error::{ArtifactError, BoxError, Result};
pub use key::{ArtifactKey, MAX_KEY_BYTES, MAX_SEGMENT_BYTES};
pub use store::{
    ArtifactReader, ArtifactStore, Listing, ObjectInfo, DEFAULT_PART_SIZE, MARKER_KEY, MAX_PART_SIZE, MIN_PART_SIZE,
    RESERVED_PREFIX,
};
pub use upload::PutOutcome;
