//! Per-deployment counters and a latency histogram, lock-free so recording costs a few atomic
//! adds on the request path. Rendered as Prometheus text by [`crate::metrics`].

use crate::deployment::InferError;
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: fine below a millisecond, where in-process
/// models answer.
pub const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How a request ended, as a metric label.
pub const OUTCOMES: [&str; 6] = ["ok", "bad_input", "overloaded", "timeout", "unavailable", "error"];

#[derive(Debug, Default)]
pub struct DeploymentStats {
    outcomes: [AtomicU64; OUTCOMES.len()],
    mirrored: AtomicU64,
    in_flight: AtomicI64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// A summary for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsSummary {
    /// Live requests answered (mirrored ones excluded).
    pub requests: u64,
    /// Mirrored copies this deployment computed.
    pub mirrored_requests: u64,
    /// Requests that got no prediction, for any reason.
    pub errors: u64,
    pub in_flight: i64,
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DeploymentStats {
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    pub fn record(&self, elapsed: Duration, error: Option<&InferError>, mirrored: bool) {
        let outcome = match error {
            None => 0,
            Some(InferError::Input(_) | InferError::NotFound(_)) => 1,
            Some(InferError::Overloaded(_)) => 2,
            Some(InferError::Timeout(_)) => 3,
            Some(InferError::Unavailable(_)) => 4,
            Some(InferError::Failed(_)) => 5,
        };
        if mirrored {
            self.mirrored.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.outcomes[outcome].fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn outcome_counts(&self) -> [u64; OUTCOMES.len()] {
        std::array::from_fn(|i| self.outcomes[i].load(Ordering::Relaxed))
    }

    /// Non-cumulative bucket counts (the last is +Inf) and the sum of latencies in seconds.
    pub fn latency(&self) -> ([u64; LATENCY_BUCKETS.len() + 1], f64) {
        let buckets = std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed));
        (buckets, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }

    pub fn mirrored(&self) -> u64 {
        self.mirrored.load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> StatsSummary {
        let outcomes = self.outcome_counts();
        StatsSummary {
            requests: outcomes.iter().sum(),
            mirrored_requests: self.mirrored(),
            errors: outcomes[1..].iter().sum(),
            in_flight: self.in_flight(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_latency_are_counted() {
        let stats = DeploymentStats::default();
        {
            let _guard = stats.enter();
            assert_eq!(stats.in_flight(), 1);
        }
        stats.record(Duration::from_micros(80), None, false);
        stats.record(Duration::from_millis(3), Some(&InferError::Timeout(1)), false);
        stats.record(Duration::from_millis(3), None, true);
        let summary = stats.summary();
        assert_eq!(summary, StatsSummary { requests: 2, mirrored_requests: 1, errors: 1, in_flight: 0 });
        let (buckets, sum) = stats.latency();
        assert_eq!(buckets[0], 1);
        assert_eq!(buckets[5], 1);
        assert!((sum - 0.00308).abs() < 1e-9);
    }
}
