//! Frequent values: exact counts while a column has few distinct values, and a bounded
//! Misra–Gries-style summary beyond that (the heaviest values survive, counts are lower bounds).

use crate::error::DataError;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Distinct values kept before the summary prunes to the heaviest ones.
const CAPACITY: usize = 1_024;
/// Values taken from each batch's own counts.
const PER_BATCH: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrequentItems {
    counts: HashMap<String, u64>,
    /// Whether pruning ever dropped values (then counts are estimates).
    pub approximate: bool,
}

impl FrequentItems {
    pub fn update(&mut self, column: &Series) -> Result<(), DataError> {
        if column.len() == column.null_count() {
            return Ok(());
        }
        let values = column.drop_nulls();
        let counted = values.value_counts(true, false, PlSmallStr::from_static("__keelson_count"), false)?;
        let keys = counted.select_at_idx(0).map(|c| c.as_materialized_series().cast(&DataType::String));
        let counts = counted.select_at_idx(1).map(|c| c.as_materialized_series().cast(&DataType::UInt64));
        let (Some(keys), Some(counts)) = (keys, counts) else { return Ok(()) };
        let (keys, counts) = (keys?, counts?);
        if counted.height() > PER_BATCH {
            self.approximate = true;
        }
        for (key, count) in keys.str()?.iter().zip(counts.u64()?.iter()).take(PER_BATCH) {
            if let (Some(key), Some(count)) = (key, count) {
                *self.counts.entry(key.to_string()).or_default() += count;
            }
        }
        self.prune();
        Ok(())
    }

    pub fn merge(&mut self, other: &FrequentItems) {
        for (key, count) in &other.counts {
            *self.counts.entry(key.clone()).or_default() += count;
        }
        self.approximate |= other.approximate;
        self.prune();
    }

    fn prune(&mut self) {
        if self.counts.len() <= CAPACITY * 2 {
            return;
        }
        let mut entries: Vec<(String, u64)> = self.counts.drain().collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries.truncate(CAPACITY);
        self.counts = entries.into_iter().collect();
        self.approximate = true;
    }

    /// The `n` heaviest values, ties broken by value so the answer is stable.
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut entries: Vec<(String, u64)> = self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries.truncate(n);
        entries
    }
}
