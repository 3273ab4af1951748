//! Where collected traffic lives in the artifact store: the contract between the serving data
//! collector, which writes it, and monitoring, which reads it.
//!
//! - Requests: `serving/collected/{endpoint}/{deployment}/{YYYY-MM-DD}/{HH}/{first-ms}-{uuid}.jsonl`,
//!   one JSON object per request: `correlation_id`, `timestamp` (RFC 3339), `endpoint`,
//!   `deployment`, `model_version`, `latency_us`, `mirrored`, `inputs` and `outputs` (tensor name
//!   → `{datatype, shape, data}`, data flat in row-major order) or `error`.
//! - Ground truth: `serving/ground-truth/{endpoint}/{YYYY-MM-DD}/{HH}/{ms}-{uuid}.jsonl`, one
//!   `{correlation_id, label, timestamp, received}` per line.

pub const COLLECTED_PREFIX: &str = "serving/collected";
pub const GROUND_TRUTH_PREFIX: &str = "serving/ground-truth";
