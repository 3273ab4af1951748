//! DDSketch quantile sketch (Masson, Rim and Lee, VLDB 2019): values fall into logarithmic
//! buckets, so any quantile is answered within a fixed *relative* error, and two sketches merge by
//! adding bucket counts — exactly, whatever the order of the batches.

use serde::{Deserialize, Serialize};

/// Relative accuracy of every quantile answered (0.5 %).
pub const RELATIVE_ACCURACY: f64 = 0.005;
/// Magnitudes below this count as zero (they would need unbounded buckets).
const MIN_MAGNITUDE: f64 = 1e-12;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DenseStore {
    offset: i32,
    counts: Vec<u64>,
}

impl DenseStore {
    fn add(&mut self, key: i32, count: u64) {
        if self.counts.is_empty() {
            self.offset = key;
            self.counts.push(0);
        }
        if key < self.offset {
            let grow = (self.offset - key) as usize;
            let mut counts = vec![0; grow];
            counts.append(&mut self.counts);
            self.counts = counts;
            self.offset = key;
        }
        let index = (key - self.offset) as usize;
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        if let Some(slot) = self.counts.get_mut(index) {
            *slot += count;
        }
    }

    fn merge(&mut self, other: &DenseStore) {
        for (i, &count) in other.counts.iter().enumerate() {
            if count > 0 {
                self.add(other.offset + i as i32, count);
            }
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (key, count) for non-empty buckets, ascending key.
    fn buckets(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (self.offset + i as i32, *c))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DdSketch {
    gamma: f64,
    zero_count: u64,
    positive: DenseStore,
    negative: DenseStore,
}

impl Default for DdSketch {
    fn default() -> Self {
        Self {
            gamma: (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY),
            zero_count: 0,
            positive: DenseStore::default(),
            negative: DenseStore::default(),
        }
    }
}

/// Per-batch accumulation without the store's bounds checks on every value.
pub struct SketchBuilder<'a> {
    sketch: &'a mut DdSketch,
    inverse_ln_gamma: f64,
}

impl SketchBuilder<'_> {
    pub fn add(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let magnitude = value.abs();
        if magnitude < MIN_MAGNITUDE {
            self.sketch.zero_count += 1;
            return;
        }
        let key = (magnitude.ln() * self.inverse_ln_gamma).ceil() as i32;
        if value > 0.0 {
            self.sketch.positive.add(key, 1);
        } else {
            self.sketch.negative.add(key, 1);
        }
    }
}

impl DdSketch {
    pub fn builder(&mut self) -> SketchBuilder<'_> {
        let inverse_ln_gamma = 1.0 / self.gamma.ln();
        SketchBuilder { sketch: self, inverse_ln_gamma }
    }

    pub fn count(&self) -> u64 {
        self.zero_count + self.positive.total() + self.negative.total()
    }

    pub fn merge(&mut self, other: &DdSketch) {
        self.zero_count += other.zero_count;
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
    }

    fn bucket_value(&self, key: i32) -> f64 {
        2.0 * self.gamma.powi(key) / (self.gamma + 1.0)
    }

    /// Buckets in ascending value order as (representative value, count).
    pub fn ascending(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> =
            self.negative.buckets().rev().map(|(key, count)| (-self.bucket_value(key), count)).collect();
        if self.zero_count > 0 {
            out.push((0.0, self.zero_count));
        }
        out.extend(self.positive.buckets().map(|(key, count)| (self.bucket_value(key), count)));
        out
    }

    /// The value at quantile `q` (0..=1) within the relative accuracy; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * (total - 1) as f64;
        let mut seen = 0u64;
        for (value, count) in self.ascending() {
            seen += count;
            if seen as f64 > rank {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let position = q * (sorted.len() - 1) as f64;
        let low = position.floor() as usize;
        let high = position.ceil() as usize;
        sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
    }

    #[test]
    fn quantiles_within_relative_accuracy_and_merge_is_order_free() {
        let values: Vec<f64> = (0..20_000).map(|i| ((i * 7919) % 20_000) as f64 * 0.37 - 1_500.0).collect();
        let mut whole = DdSketch::default();
        let mut parts = [DdSketch::default(), DdSketch::default()];
        for (i, v) in values.iter().enumerate() {
            whole.builder().add(*v);
            parts[i % 2].builder().add(*v);
        }
        let [mut a, b] = parts;
        a.merge(&b);
        assert_eq!(a.ascending(), whole.ascending());
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99] {
            let exact = exact_quantile(&sorted, q);
            let estimate = whole.quantile(q).unwrap();
            assert!((estimate - exact).abs() <= 0.011 * exact.abs() + 0.5, "q={q} {estimate} vs {exact}");
        }
        assert_eq!(DdSketch::default().quantile(0.5), None);
    }

    #[test]
    fn skips_non_finite_and_counts_zeros() {
        let mut sketch = DdSketch::default();
        for v in [f64::NAN, f64::INFINITY, 0.0, 0.0, 5.0] {
            sketch.builder().add(v);
        }
        assert_eq!(sketch.count(), 3);
        assert_eq!(sketch.quantile(0.0), Some(0.0));
        let top = sketch.quantile(1.0).unwrap();
        assert!((top - 5.0).abs() / 5.0 <= RELATIVE_ACCURACY + 1e-12);
    }
}
