//! Distances between two binned distributions, and Evidently's way of binning two samples.
//!
//! Evidently (`legacy/calculations/stattests/utils.py`, `get_binned_data`) bins a pair of
//! samples like this:
//!
//! - a numeric column whose *reference* sample has more than 20 distinct values: bin edges by
//!   numpy's Sturges rule over the reference and current values together
//!   ([`sturges_edges`]), then each side's share of its values per bin;
//! - anything else (a categorical column, or a numeric one with at most 20 distinct reference
//!   values): one bin per distinct value of either side, each side's share of its values;
//! - then, for PSI and Kullback–Leibler only, every empty bin of a side gets a small share: the
//!   side's smallest non-zero share / 10⁶ if that share is at most 0.0001, else 0.0001
//!   ([`fill_zeroes`]). Jensen–Shannon and Hellinger use the shares as they are.
//!
//! The distances then take the two share vectors: [`psi`], [`jensen_shannon`] (scipy's
//! `distance.jensenshannon`, natural logarithm as Evidently calls it), [`hellinger`] and
//! [`kl_div`] (scipy's `stats.entropy(reference, current)`, natural logarithm).
//! Evidently bins a numeric column for Hellinger differently (Sturges edges over the distinct
//! values, densities times the bin width): [`hellinger_numeric`] does that.
//!
//! [`binned_counts`] takes two count vectors over the same bins instead of samples, for a
//! reference histogram stored earlier.

use super::{require_finite, NotComputable, Outcome};
use std::collections::BTreeMap;

/// A numeric column is binned by value (not by Sturges edges) when its reference sample has at
/// most this many distinct values (Evidently's `n_vals > 20`).
pub const MAX_VALUES_BINNED_BY_VALUE: usize = 20;

/// The distances computed on two binned distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinnedDistance {
    /// Population stability index, Σ (r − c) ln(r / c).
    Psi,
    /// Jensen–Shannon distance (the square root of the divergence), natural logarithm.
    JensenShannon,
    /// Hellinger distance, √(1 − Σ √(r c)).
    Hellinger,
    /// Kullback–Leibler divergence of the reference from the current shares.
    KlDiv,
}

impl BinnedDistance {
    /// Whether Evidently fills empty bins before computing this distance.
    pub fn fills_zeroes(self) -> bool {
        matches!(self, BinnedDistance::Psi | BinnedDistance::KlDiv)
    }

    /// The distance between two share vectors of equal length.
    pub fn apply(self, reference: &[f64], current: &[f64]) -> f64 {
        match self {
            BinnedDistance::Psi => psi(reference, current),
            BinnedDistance::JensenShannon => jensen_shannon(reference, current),
            BinnedDistance::Hellinger => hellinger(reference, current),
            BinnedDistance::KlDiv => kl_div(reference, current),
        }
    }
}

/// Each side's share of its values per bin, over the same bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Shares {
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

/// numpy's `histogram_bin_edges(values, bins="sturges")`: ⌈ptp / width⌉ equal bins between the
/// minimum and the maximum, width = ptp / (log₂ n + 1); one bin of width 1 around a constant.
/// `values` must be non-empty and finite.
pub fn sturges_edges(values: &[f64]) -> Vec<f64> {
    let (mut first, mut last) =
        values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let width = (last - first) / ((values.len() as f64).log2() + 1.0);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let bins = if width > 0.0 { ((last - first) / width).ceil() as usize } else { 1 };
    linspace(first, last, bins + 1)
}

/// numpy's `linspace(start, stop, num)` with its endpoint: i · step + start, the last exactly
/// `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = (num - 1) as f64;
    let step = (stop - start) / div;
    let mut edges: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(end) = edges.last_mut() {
        *end = stop;
    }
    edges
}

/// numpy's `histogram(values, edges)[0]`: counts per bin, each bin half-open except the last,
/// which holds its right edge; values outside the edges are not counted.
pub fn histogram(values: &[f64], edges: &[f64]) -> Vec<u64> {
    let bins = edges.len().saturating_sub(1);
    let mut counts = vec![0u64; bins];
    let (Some(&low), Some(&high)) = (edges.first(), edges.last()) else {
        return counts;
    };
    if bins == 0 {
        return counts;
    }
    for &v in values {
        if !(low..=high).contains(&v) {
            continue;
        }
        // Number of edges ≤ v, minus one, is the bin; the right edge belongs to the last bin.
        let index = edges.partition_point(|&e| e <= v).saturating_sub(1).min(bins - 1);
        counts[index] += 1;
    }
    counts
}

/// Counts per distinct value over the union of both sides, in ascending value order.
fn counts_by_value(reference: &[f64], current: &[f64]) -> (Vec<u64>, Vec<u64>) {
    let mut table: BTreeMap<OrderedValue, (u64, u64)> = BTreeMap::new();
    for &v in reference {
        table.entry(OrderedValue::new(v)).or_default().0 += 1;
    }
    for &v in current {
        table.entry(OrderedValue::new(v)).or_default().1 += 1;
    }
    table.values().map(|&(r, c)| (r, c)).unzip()
}

/// A finite f64 ordered by value, −0 the same as 0 (as pandas counts them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderedValue(pub(crate) f64);

impl OrderedValue {
    pub(crate) fn new(v: f64) -> OrderedValue {
        OrderedValue(if v == 0.0 { 0.0 } else { v })
    }
}

impl PartialEq for OrderedValue {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for OrderedValue {}

impl PartialOrd for OrderedValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The number of distinct values of a sample.
pub(crate) fn distinct_values(values: &[f64]) -> usize {
    let mut sorted: Vec<OrderedValue> = values.iter().map(|&v| OrderedValue::new(v)).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len()
}

/// Evidently's `get_binned_data` for a numeric column: Sturges bins over both samples when the
/// reference has more than 20 distinct values, else one bin per distinct value; then, with
/// `fill`, [`fill_zeroes`] on each side.
pub fn bin_numeric(reference: &[f64], current: &[f64], fill: bool) -> Result<Shares, NotComputable> {
    require_finite(reference, "reference")?;
    require_finite(current, "current")?;
    let (ref_counts, cur_counts) = if distinct_values(reference) > MAX_VALUES_BINNED_BY_VALUE {
        let combined: Vec<f64> = reference.iter().chain(current).copied().collect();
        let edges = sturges_edges(&combined);
        (histogram(reference, &edges), histogram(current, &edges))
    } else {
        counts_by_value(reference, current)
    };
    binned_counts(&ref_counts, &cur_counts, fill)
}

/// Two count vectors over the same bins (a categorical column's counts per category, or a
/// stored reference histogram and the current counts in its bins) as shares of each side's
/// total, with `fill`, [`fill_zeroes`] on each side.
pub fn binned_counts(reference: &[u64], current: &[u64], fill: bool) -> Result<Shares, NotComputable> {
    if reference.len() != current.len() {
        return Err(NotComputable::new(format!(
            "the reference has {} bins and the current {}",
            reference.len(),
            current.len()
        )));
    }
    let mut shares = Shares { reference: shares_of(reference, "reference")?, current: shares_of(current, "current")? };
    if fill {
        fill_zeroes(&mut shares.reference);
        fill_zeroes(&mut shares.current);
    }
    Ok(shares)
}

fn shares_of(counts: &[u64], side: &str) -> Result<Vec<f64>, NotComputable> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Err(NotComputable::new(format!("the {side} sample is empty")));
    }
    Ok(counts.iter().map(|&c| c as f64 / total as f64).collect())
}

/// Evidently's zero filling: every 0 share becomes the smallest non-zero share / 10⁶ when that
/// share is at most 0.0001, else 0.0001. Shares that are all 0 stay so.
pub fn fill_zeroes(shares: &mut [f64]) {
    let smallest = shares.iter().copied().filter(|&s| s != 0.0).fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let fill = if smallest <= 0.0001 { smallest / 1e6 } else { 0.0001 };
    for share in shares.iter_mut().filter(|s| **s == 0.0) {
        *share = fill;
    }
}

/// Population stability index, Σ (r − c) ln(r / c), on shares as given (filled: see
/// [`fill_zeroes`]); infinite where one side has a 0 share and the other not.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference.iter().zip(current).map(|(&r, &c)| (r - c) * (r / c).ln()).filter(|t| !t.is_nan()).sum()
}

/// scipy's `rel_entr(x, y)`: x ln(x / y), 0 for x = 0, ∞ for y = 0 < x.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x == 0.0 && y >= 0.0 {
        0.0
    } else if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else {
        f64::INFINITY
    }
}

fn normalised(values: &[f64]) -> Vec<f64> {
    let total: f64 = values.iter().sum();
    values.iter().map(|v| v / total).collect()
}

/// scipy's `spatial.distance.jensenshannon(reference, current)` (natural logarithm): both
/// vectors scaled to sum 1, then √((KL(r‖m) + KL(c‖m)) / 2) with m their mean.
pub fn jensen_shannon(reference: &[f64], current: &[f64]) -> f64 {
    let p = normalised(reference);
    let q = normalised(current);
    let divergence: f64 = p
        .iter()
        .zip(&q)
        .map(|(&a, &b)| {
            let m = (a + b) / 2.0;
            rel_entr(a, m) + rel_entr(b, m)
        })
        .sum();
    (divergence / 2.0).sqrt()
}

/// Hellinger distance on shares, √(1 − clip(Σ √(r c), 0, 1)), as Evidently computes it for a
/// categorical column.
pub fn hellinger(reference: &[f64], current: &[f64]) -> f64 {
    let affinity: f64 = reference.iter().zip(current).map(|(&r, &c)| (r * c).sqrt()).sum();
    (1.0 - affinity.clamp(0.0, 1.0)).sqrt()
}

/// scipy's `stats.entropy(reference, current)`: both scaled to sum 1, then Σ r ln(r / c).
pub fn kl_div(reference: &[f64], current: &[f64]) -> f64 {
    let p = normalised(reference);
    let q = normalised(current);
    p.iter().zip(&q).map(|(&a, &b)| rel_entr(a, b)).sum()
}

/// Evidently's Hellinger distance for a numeric column: Sturges edges over the *distinct*
/// values of both samples, each side's histogram as a density, then
/// √(1 − clip(Σ √(d_r d_c) · w, 0, 1)) with w the mean bin width.
pub fn hellinger_numeric(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_finite(reference, "reference")?;
    require_finite(current, "current")?;
    let mut keys: Vec<OrderedValue> = reference.iter().chain(current).map(|&v| OrderedValue::new(v)).collect();
    keys.sort_unstable();
    keys.dedup();
    let keys: Vec<f64> = keys.into_iter().map(|k| k.0).collect();
    let edges = sturges_edges(&keys);
    let density = |values: &[f64]| -> Vec<f64> {
        let counts = histogram(values, &edges);
        let total: u64 = counts.iter().sum();
        counts.iter().zip(edges.windows(2)).map(|(&c, e)| c as f64 / (e[1] - e[0]) / total as f64).collect()
    };
    let (h1, h2) = (density(reference), density(current));
    let (Some(&low), Some(&high)) = (edges.first(), edges.last()) else {
        return Err(NotComputable::new("no bins"));
    };
    let width = (high - low) / (edges.len() - 1) as f64;
    let affinity: f64 = h1.iter().zip(&h2).map(|(&p, &q)| (p * q).sqrt() * width).sum();
    Ok(Outcome::distance((1.0 - affinity.clamp(0.0, 1.0)).sqrt()))
}

/// A distance between two numeric samples the way Evidently's stattest of that name computes
/// it (binning by [`bin_numeric`]; Hellinger by [`hellinger_numeric`]).
pub fn numeric_distance(
    distance: BinnedDistance,
    reference: &[f64],
    current: &[f64],
) -> Result<Outcome, NotComputable> {
    if distance == BinnedDistance::Hellinger {
        return hellinger_numeric(reference, current);
    }
    let shares = bin_numeric(reference, current, distance.fills_zeroes())?;
    Ok(Outcome::distance(distance.apply(&shares.reference, &shares.current)))
}

/// A distance between two count vectors over the same bins (categories, or a fixed histogram
/// layout), zero filling as Evidently does for that distance.
pub fn counts_distance(distance: BinnedDistance, reference: &[u64], current: &[u64]) -> Result<Outcome, NotComputable> {
    let shares = binned_counts(reference, current, distance.fills_zeroes())?;
    Ok(Outcome::distance(distance.apply(&shares.reference, &shares.current)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sturges_edges_match_numpy() {
        // numpy: histogram_bin_edges([0,1,2,3,4,5,6,7], "sturges") → 4 bins over [0, 7].
        let edges = sturges_edges(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(edges, vec![0.0, 1.75, 3.5, 5.25, 7.0]);
        assert_eq!(sturges_edges(&[2.0, 2.0]), vec![1.5, 2.5]);
    }

    #[test]
    fn histogram_keeps_the_right_edge_in_the_last_bin() {
        assert_eq!(histogram(&[0.0, 1.0, 1.75, 7.0, 8.0], &[0.0, 1.75, 3.5, 5.25, 7.0]), vec![2, 1, 0, 1]);
    }

    #[test]
    fn zero_filling_follows_evidently() {
        let mut shares = vec![0.5, 0.0, 0.5];
        fill_zeroes(&mut shares);
        assert_eq!(shares, vec![0.5, 0.0001, 0.5]);
        let mut tiny = vec![0.00005, 0.0, 0.99995];
        fill_zeroes(&mut tiny);
        assert!((tiny[1] - 0.00005 / 1e6).abs() < 1e-20);
    }

    #[test]
    fn identical_distributions_are_at_distance_zero() {
        let p = [0.2, 0.3, 0.5];
        for d in [BinnedDistance::Psi, BinnedDistance::JensenShannon, BinnedDistance::Hellinger, BinnedDistance::KlDiv]
        {
            assert!(d.apply(&p, &p).abs() < 1e-12, "{d:?}");
        }
    }

    #[test]
    fn empty_sides_are_not_computable() {
        assert!(bin_numeric(&[], &[1.0], true).is_err());
        assert!(binned_counts(&[0, 0], &[1, 2], false).is_err());
        assert!(binned_counts(&[1], &[1, 2], false).is_err());
        assert!(hellinger_numeric(&[1.0], &[]).is_err());
    }
}
