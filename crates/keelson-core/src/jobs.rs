//! Jobs: long work (pipeline steps, monitor runs, index builds) runs from a queue, never inside a
//! request. These are the queue's domain types and rules; the store persists them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Largest accepted payload, serialised. Bigger inputs belong in the artifact store.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Longest accepted kind name.
pub const MAX_KIND_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker, possibly until `run_at` (retry backoff).
    Queued,
    /// Claimed by a worker holding an unexpired lease.
    Running,
    Succeeded,
    /// Failed on every allowed attempt; kept for inspection and manual retry.
    Dead,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] =
        [JobStatus::Queued, JobStatus::Running, JobStatus::Succeeded, JobStatus::Dead, JobStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Dead | JobStatus::Cancelled)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status `{0}`; expected one of queued, running, succeeded, dead, cancelled")]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownJobStatus(s.to_string()))
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: JobStatus,
    pub priority: i32,
    /// Attempts started so far (a claim starts one).
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not claimable before this instant (milliseconds since the epoch).
    pub run_at: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// A request to enqueue a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub kind: String,
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(default)]
    pub priority: i32,
    /// Overrides the queue's default attempt budget.
    #[serde(default)]
    pub max_attempts: Option<i32>,
    /// Delay before the first attempt, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<i64>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self { kind: kind.into(), payload, priority: 0, max_attempts: None, delay_ms: None }
    }

    /// Checks everything that does not need the store.
    pub fn validate(&self) -> Result<(), JobValidationError> {
        validate_kind(&self.kind)?;
        if let Some(max_attempts) = self.max_attempts {
            if !(1..=100).contains(&max_attempts) {
                return Err(JobValidationError::MaxAttempts(max_attempts));
            }
        }
        if let Some(delay) = self.delay_ms {
            if !(0..=MAX_DELAY_MS).contains(&delay) {
                return Err(JobValidationError::Delay(delay));
            }
        }
        if !(-1000..=1000).contains(&self.priority) {
            return Err(JobValidationError::Priority(self.priority));
        }
        let size = serde_json::to_vec(&self.payload).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_PAYLOAD_BYTES {
            return Err(JobValidationError::PayloadTooLarge(size));
        }
        Ok(())
    }
}

/// A week: a longer delay is a schedule, which belongs to the pipelines scheduler.
pub const MAX_DELAY_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobValidationError {
    #[error("job kind `{0}` is invalid: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter")]
    Kind(String),
    #[error("max_attempts {0} is out of range; expected 1..=100")]
    MaxAttempts(i32),
    #[error("delay_ms {0} is out of range; expected 0..=604800000 (one week)")]
    Delay(i64),
    #[error("priority {0} is out of range; expected -1000..=1000")]
    Priority(i32),
    #[error("payload is {0} bytes; the limit is 1048576 bytes (store large inputs as artifacts)")]
    PayloadTooLarge(usize),
}

pub fn validate_kind(kind: &str) -> Result<(), JobValidationError> {
    let mut chars = kind.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if starts_with_letter && rest_ok && kind.len() <= MAX_KIND_LEN {
        Ok(())
    } else {
        Err(JobValidationError::Kind(kind.to_string()))
    }
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub default_max_attempts: i32,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { default_max_attempts: 5, backoff_base_ms: 1_000, backoff_max_ms: 300_000 }
    }
}

impl RetryPolicy {
    /// Delay before the next attempt after `attempts_made` failures: exponential, capped.
    /// The store adds jitter so that a burst of failures does not retry in lockstep.
    pub fn backoff_ms(&self, attempts_made: i32) -> i64 {
        let exponent = attempts_made.saturating_sub(1).clamp(0, 30) as u32;
        self.backoff_base_ms.saturating_mul(1_i64 << exponent).min(self.backoff_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_validated() {
        for good in ["system.noop", "pipeline.step", "a", "monitor-run_2"] {
            assert_eq!(validate_kind(good), Ok(()), "{good}");
        }
        let long = "a".repeat(65);
        for bad in ["", "Upper", "1abc", "has space", "semi;colon", "ü", long.as_str()] {
            assert!(validate_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_job_limits() {
        let mut job = NewJob::new("system.noop", json!({}));
        assert_eq!(job.validate(), Ok(()));
        job.max_attempts = Some(0);
        assert_eq!(job.validate(), Err(JobValidationError::MaxAttempts(0)));
        job.max_attempts = None;
        job.delay_ms = Some(-1);
        assert_eq!(job.validate(), Err(JobValidationError::Delay(-1)));
        job.delay_ms = None;
        job.payload = json!({"blob": "x".repeat(MAX_PAYLOAD_BYTES)});
        assert!(matches!(job.validate(), Err(JobValidationError::PayloadTooLarge(_))));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy { default_max_attempts: 3, backoff_base_ms: 100, backoff_max_ms: 1_000 };
        assert_eq!(policy.backoff_ms(1), 100);
        assert_eq!(policy.backoff_ms(2), 200);
        assert_eq!(policy.backoff_ms(3), 400);
        assert_eq!(policy.backoff_ms(5), 1_000);
        assert_eq!(policy.backoff_ms(1_000), 1_000);
    }

    #[test]
    fn status_round_trips() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        assert!("done".parse::<JobStatus>().is_err());
    }
}
