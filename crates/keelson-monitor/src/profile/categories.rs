//! Frequent items: counts per category (capped, the rest folded into `other`), and counts per
//! value of a numeric column while it has few distinct values (what Evidently's rules bin by
//! value and its categorical tests count).

use crate::stats::binned::{OrderedValue, MAX_VALUES_BINNED_BY_VALUE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Categories kept per column; the least frequent beyond this are counted in `other`.
pub const MAX_CATEGORIES: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoryTally {
    pub counts: BTreeMap<String, u64>,
    /// Values of the categories dropped by the cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other: u64,
    /// Whether categories were dropped (counts of the rest are still exact).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CategoryTally {
    pub fn of(values: &[String]) -> CategoryTally {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for value in values {
            *counts.entry(value.as_str()).or_default() += 1;
        }
        let mut tally = CategoryTally {
            counts: counts.into_iter().map(|(k, n)| (k.to_string(), n)).collect(),
            ..CategoryTally::default()
        };
        tally.cap();
        tally
    }

    pub(crate) fn merge(&mut self, other: &CategoryTally) {
        for (category, n) in &other.counts {
            *self.counts.entry(category.clone()).or_default() += n;
        }
        self.other += other.other;
        self.truncated |= other.truncated;
        self.cap();
    }

    /// Keeps the most frequent categories (ties by name).
    fn cap(&mut self) {
        if self.counts.len() <= MAX_CATEGORIES {
            return;
        }
        let mut ranked: Vec<(String, u64)> = std::mem::take(&mut self.counts).into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.other += ranked[MAX_CATEGORIES..].iter().map(|(_, n)| n).sum::<u64>();
        ranked.truncate(MAX_CATEGORIES);
        self.counts = ranked.into_iter().collect();
        self.truncated = true;
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum::<u64>() + self.other
    }

    pub(crate) fn entries(&self) -> Vec<(&str, u64)> {
        self.counts.iter().map(|(k, n)| (k.as_str(), *n)).collect()
    }
}

/// Counts per distinct value, sorted by value (−0 as 0), while there are at most
/// [`MAX_VALUES_BINNED_BY_VALUE`] of them.
pub(crate) fn value_counts(values: &[f64]) -> Option<Vec<(f64, u64)>> {
    let mut counts: BTreeMap<OrderedValue, u64> = BTreeMap::new();
    for &value in values {
        *counts.entry(OrderedValue::new(value)).or_default() += 1;
        if counts.len() > MAX_VALUES_BINNED_BY_VALUE {
            return None;
        }
    }
    Some(counts.into_iter().map(|(k, n)| (k.0, n)).collect())
}

/// The union of two value counts, None past the cap.
pub(crate) fn merge_value_counts(a: &[(f64, u64)], b: &[(f64, u64)]) -> Option<Vec<(f64, u64)>> {
    let mut counts: BTreeMap<OrderedValue, u64> = BTreeMap::new();
    for &(value, n) in a.iter().chain(b) {
        *counts.entry(OrderedValue::new(value)).or_default() += n;
    }
    (counts.len() <= MAX_VALUES_BINNED_BY_VALUE).then(|| counts.into_iter().map(|(k, n)| (k.0, n)).collect())
}
