//! Tests on the counts of categories in a reference and a current sample, as Evidently's
//! stattests of the same names compute them (`legacy/calculations/stattests/`):
//!
//! - [`chi_square`] (`chisquare`): scipy's `chisquare(current counts, reference counts ×
//!   current total / reference total)`, k − 1 degrees of freedom;
//! - [`g_test`] (`g_test`): scipy's `power_divergence(..., lambda_="log-likelihood")`, the
//!   expected counts scaled like the chi-square's (Evidently passes the raw reference counts,
//!   which scipy refuses unless both samples have the same size; for equal sizes the two agree);
//! - [`z_test`] (`z`): the two-proportion Z-test of "not the first category" (categories in
//!   sorted order), two-sided p = 2 (1 − Φ(|z|)); p = 1 when both sides hold one and the same
//!   value;
//! - [`fisher_exact`] (`fisher_exact`): scipy's two-sided `fisher_exact` on the 2×2 table
//!   [[current second, current first], [reference second, reference first]] of a column with at
//!   most two categories;
//! - [`total_variation`] (`TVD`): a *test*, not a distance, in Evidently: the statistic is the
//!   total variation distance ½ Σ |r/R − c/C| and the p-value that of a permutation test with
//!   1000 permutations drawn exactly as numpy's `np.random.seed(0)` + `np.random.choice(...,
//!   replace=False)` draws them (MT19937), the share of permuted distances at least the observed
//!   one.
//!
//! A category seen in only one side counts 0 on the other, as Evidently's union of keys does: a
//! category unseen in the reference makes the chi-square and G statistics infinite (p = 0).
//! Categories are kept in a fixed order: strings by their bytes, numbers by value.

use super::binned::{counts_distance, BinnedDistance, OrderedValue};
use super::{require_finite, NotComputable, Outcome};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::factorial::ln_binomial;
use std::collections::BTreeMap;

/// The number of permutations of Evidently's TVD test.
pub const TVD_PERMUTATIONS: usize = 1000;

/// The counts of each category in both samples, over the union of their categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryCounts {
    pub categories: Vec<String>,
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
}

/// Both samples as indices into `counts.categories`, in their original order (what the TVD
/// permutation test draws from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategorySamples {
    pub counts: CategoryCounts,
    pub reference: Vec<usize>,
    pub current: Vec<usize>,
}

impl CategorySamples {
    /// Categories as strings, sorted by their bytes.
    pub fn from_values<S: AsRef<str>>(reference: &[S], current: &[S]) -> CategorySamples {
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for v in reference.iter().chain(current) {
            index.insert(v.as_ref(), 0);
        }
        for (i, slot) in index.values_mut().enumerate() {
            *slot = i;
        }
        let code = |v: &S| index.get(v.as_ref()).copied().unwrap_or(0);
        let reference: Vec<usize> = reference.iter().map(code).collect();
        let current: Vec<usize> = current.iter().map(code).collect();
        let categories = index.keys().map(|k| k.to_string()).collect();
        CategorySamples::new(categories, reference, current)
    }

    /// Numbers counted by value (as Evidently counts a numeric column in a categorical test),
    /// sorted by value; a category's name is the number as Rust prints it.
    pub fn from_numeric(reference: &[f64], current: &[f64]) -> Result<CategorySamples, NotComputable> {
        require_finite(reference, "reference")?;
        require_finite(current, "current")?;
        let mut index: BTreeMap<OrderedValue, usize> = BTreeMap::new();
        for &v in reference.iter().chain(current) {
            index.insert(OrderedValue::new(v), 0);
        }
        for (i, slot) in index.values_mut().enumerate() {
            *slot = i;
        }
        let code = |v: &f64| index.get(&OrderedValue::new(*v)).copied().unwrap_or(0);
        let reference: Vec<usize> = reference.iter().map(code).collect();
        let current: Vec<usize> = current.iter().map(code).collect();
        let categories = index.keys().map(|k| format!("{}", k.0)).collect();
        Ok(CategorySamples::new(categories, reference, current))
    }

    fn new(categories: Vec<String>, reference: Vec<usize>, current: Vec<usize>) -> CategorySamples {
        let k = categories.len();
        let count = |codes: &[usize]| {
            let mut counts = vec![0u64; k];
            for &c in codes {
                counts[c] += 1;
            }
            counts
        };
        let counts = CategoryCounts { reference: count(&reference), current: count(&current), categories };
        CategorySamples { counts, reference, current }
    }
}

impl CategoryCounts {
    /// Counts of string values, categories sorted by their bytes.
    pub fn from_values<S: AsRef<str>>(reference: &[S], current: &[S]) -> CategoryCounts {
        CategorySamples::from_values(reference, current).counts
    }

    /// Counts of numbers by value, sorted by value.
    pub fn from_numeric(reference: &[f64], current: &[f64]) -> Result<CategoryCounts, NotComputable> {
        Ok(CategorySamples::from_numeric(reference, current)?.counts)
    }

    /// Counts already taken (a stored reference profile): the union of both sides' categories,
    /// sorted by their bytes; a category listed twice on a side has its counts added.
    pub fn from_counts<S: AsRef<str>>(reference: &[(S, u64)], current: &[(S, u64)]) -> CategoryCounts {
        let mut table: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (k, n) in reference {
            table.entry(k.as_ref()).or_default().0 += n;
        }
        for (k, n) in current {
            table.entry(k.as_ref()).or_default().1 += n;
        }
        CategoryCounts {
            categories: table.keys().map(|k| k.to_string()).collect(),
            reference: table.values().map(|v| v.0).collect(),
            current: table.values().map(|v| v.1).collect(),
        }
    }

    pub fn reference_total(&self) -> u64 {
        self.reference.iter().sum()
    }

    pub fn current_total(&self) -> u64 {
        self.current.iter().sum()
    }

    /// Refuses an empty side.
    fn require_both(&self) -> Result<(u64, u64), NotComputable> {
        let (r, c) = (self.reference_total(), self.current_total());
        if r == 0 {
            return Err(NotComputable::new("the reference sample is empty"));
        }
        if c == 0 {
            return Err(NotComputable::new("the current sample is empty"));
        }
        Ok((r, c))
    }
}

/// The upper tail of the chi-square distribution with `dof` degrees of freedom.
fn chi2_sf(statistic: f64, dof: usize) -> Result<f64, NotComputable> {
    if statistic == f64::INFINITY {
        return Ok(0.0);
    }
    let dist = ChiSquared::new(dof as f64).map_err(|e| NotComputable::new(format!("chi-square distribution: {e}")))?;
    Ok(dist.sf(statistic))
}

fn require_two_categories(counts: &CategoryCounts, test: &str) -> Result<(), NotComputable> {
    if counts.categories.len() < 2 {
        return Err(NotComputable::new(format!(
            "the {test} needs at least two categories; both samples hold only one (no degrees of freedom)"
        )));
    }
    Ok(())
}

/// The current counts against the reference counts scaled to the current total.
fn expected_counts(counts: &CategoryCounts, r: u64, c: u64) -> Vec<f64> {
    let k_norm = c as f64 / r as f64;
    counts.reference.iter().map(|&n| n as f64 * k_norm).collect()
}

/// Evidently's `chisquare`: Pearson's chi-square of the current counts against the reference
/// proportions × current total; k − 1 degrees of freedom.
pub fn chi_square(counts: &CategoryCounts) -> Result<Outcome, NotComputable> {
    let (r, c) = counts.require_both()?;
    require_two_categories(counts, "chi-square test")?;
    let expected = expected_counts(counts, r, c);
    let statistic: f64 = counts
        .current
        .iter()
        .zip(&expected)
        .map(|(&o, &e)| {
            let d = o as f64 - e;
            if e == 0.0 {
                f64::INFINITY
            } else {
                d * d / e
            }
        })
        .sum();
    Ok(Outcome::test(statistic, chi2_sf(statistic, counts.categories.len() - 1)?))
}

/// Evidently's `g_test`: the log-likelihood ratio 2 Σ o ln(o / e) of the current counts against
/// the reference proportions × current total; k − 1 degrees of freedom.
pub fn g_test(counts: &CategoryCounts) -> Result<Outcome, NotComputable> {
    let (r, c) = counts.require_both()?;
    require_two_categories(counts, "G-test")?;
    let expected = expected_counts(counts, r, c);
    let half: f64 = counts
        .current
        .iter()
        .zip(&expected)
        .map(|(&o, &e)| {
            if o == 0 {
                0.0
            } else if e == 0.0 {
                f64::INFINITY
            } else {
                o as f64 * (o as f64 / e).ln()
            }
        })
        .sum();
    let statistic = 2.0 * half;
    Ok(Outcome::test(statistic, chi2_sf(statistic, counts.categories.len() - 1)?))
}

/// Evidently's `z`: the Z-test for the difference of the proportions of values other than the
/// first category (sorted order) in the two samples, two-sided. When both samples hold one and
/// the same value the p-value is 1 (statistic 0).
pub fn z_test(counts: &CategoryCounts) -> Result<Outcome, NotComputable> {
    let (r, c) = counts.require_both()?;
    // The one category a side holds, if it holds only one.
    let only = |side: &[u64]| -> Option<usize> {
        let mut held = side.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, _)| i);
        match (held.next(), held.next()) {
            (Some(i), None) => Some(i),
            _ => None,
        }
    };
    if only(&counts.reference).is_some() && only(&counts.reference) == only(&counts.current) {
        return Ok(Outcome::test(0.0, 1.0));
    }
    let (n1, n2) = (r as f64, c as f64);
    let p1 = (r - counts.reference[0]) as f64 / n1;
    let p2 = (c - counts.current[0]) as f64 / n2;
    let pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let normal = Normal::new(0.0, 1.0).map_err(|e| NotComputable::new(format!("normal distribution: {e}")))?;
    Ok(Outcome::test(z, 2.0 * normal.sf(z.abs())))
}

/// Evidently's `fisher_exact`: scipy's two-sided Fisher exact test on the 2×2 table
/// [[current second, current first], [reference second, reference first]] (categories sorted).
/// The statistic is scipy's sample odds ratio (NaN when a category is absent from both samples,
/// then p = 1; ∞ when an off-diagonal cell is 0). More than two categories → not computable.
/// Unlike Evidently, samples of different sizes are accepted.
pub fn fisher_exact(counts: &CategoryCounts) -> Result<Outcome, NotComputable> {
    counts.require_both()?;
    let k = counts.categories.len();
    if k > 2 {
        return Err(NotComputable::new(format!(
            "Fisher's exact test needs a binary column; the samples hold {k} categories"
        )));
    }
    let second = |side: &[u64]| if k == 2 { side[1] } else { 0 };
    let first = |side: &[u64]| side[0];
    let table =
        [[second(&counts.current), first(&counts.current)], [second(&counts.reference), first(&counts.reference)]];
    Ok(fisher_exact_table(table))
}

/// scipy's `fisher_exact(table)` (two-sided) for a 2×2 table of counts: the sample odds ratio and
/// the sum of the hypergeometric probabilities of all tables with the observed margins that are
/// at most as likely as the observed one (relative tolerance 1e-14 as scipy), summed in log
/// space.
pub fn fisher_exact_table(table: [[u64; 2]; 2]) -> Outcome {
    let [[a, b], [c, d]] = table;
    if a + b == 0 || c + d == 0 || a + c == 0 || b + d == 0 {
        return Outcome::test(f64::NAN, 1.0);
    }
    let odds = if c > 0 && b > 0 { (a as f64 * d as f64) / (c as f64 * b as f64) } else { f64::INFINITY };
    let n1 = a + b;
    let n2 = c + d;
    let n = a + c;
    // log pmf(x) up to the constant −ln C(n1 + n2, n).
    let ln_pmf = |x: u64| ln_binomial(n1, x) + ln_binomial(n2, n - x);
    let low = n.saturating_sub(n2);
    let high = n.min(n1);
    let observed = ln_pmf(a);
    let ln_all: Vec<f64> = (low..=high).map(ln_pmf).collect();
    let max = ln_all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // scipy's relative tolerance (1e-14) plus room for the rounding of ln Γ at large counts.
    let tolerance = (1e-14f64).ln_1p() + 1e-12 * max.abs().max(1.0);
    let (mut total, mut tail) = (0.0, 0.0);
    for &l in &ln_all {
        let p = (l - max).exp();
        total += p;
        if l <= observed + tolerance {
            tail += p;
        }
    }
    Outcome::test(odds, (tail / total).min(1.0))
}

/// Evidently's TVD on counts alone: the samples are laid out category by category (the order of
/// values changes which permutations are drawn, so this matches Evidently only for samples in
/// that order; [`total_variation_samples`] takes the samples as they are).
pub fn total_variation(counts: &CategoryCounts) -> Result<Outcome, NotComputable> {
    counts.require_both()?;
    let expand = |side: &[u64]| -> Vec<usize> {
        side.iter().enumerate().flat_map(|(i, &n)| std::iter::repeat_n(i, n as usize)).collect()
    };
    let samples = CategorySamples {
        reference: expand(&counts.reference),
        current: expand(&counts.current),
        counts: counts.clone(),
    };
    total_variation_samples(&samples)
}

/// Evidently's `TVD` test: statistic ½ Σ |r/R − c/C|, p-value the share of
/// [`TVD_PERMUTATIONS`] permutations of the pooled samples (numpy's legacy MT19937 seeded with 0,
/// `choice(pooled, R, replace=False)` as the new reference) whose distance is at least the
/// observed one. Distances are compared exactly (in integers), where Evidently compares floats.
pub fn total_variation_samples(samples: &CategorySamples) -> Result<Outcome, NotComputable> {
    let counts = &samples.counts;
    let (r, c) = counts.require_both()?;
    let statistic = 0.5
        * counts
            .reference
            .iter()
            .zip(&counts.current)
            .map(|(&x, &y)| (x as f64 / r as f64 - y as f64 / c as f64).abs())
            .sum::<f64>();
    // 2 R C · TVD as an integer: Σ |r_i C − c_i R|.
    let scaled = |reference: &[u64], totals: &[u64]| -> u128 {
        reference
            .iter()
            .zip(totals)
            .map(|(&x, &t)| (x as i128 * c as i128 - (t - x) as i128 * r as i128).unsigned_abs())
            .sum()
    };
    let totals: Vec<u64> = counts.reference.iter().zip(&counts.current).map(|(&x, &y)| x + y).collect();
    let observed = scaled(&counts.reference, &totals);
    let pooled: Vec<usize> = samples.reference.iter().chain(&samples.current).copied().collect();
    let mut rng = Mt19937::new(0);
    let mut shuffled = pooled.clone();
    let mut new_reference = vec![0u64; counts.categories.len()];
    let mut at_least = 0usize;
    for _ in 0..TVD_PERMUTATIONS {
        shuffled.copy_from_slice(&pooled);
        rng.shuffle(&mut shuffled);
        new_reference.iter_mut().for_each(|n| *n = 0);
        for &code in &shuffled[..r as usize] {
            new_reference[code] += 1;
        }
        if observed <= scaled(&new_reference, &totals) {
            at_least += 1;
        }
    }
    Ok(Outcome::test(statistic, at_least as f64 / TVD_PERMUTATIONS as f64))
}

/// A binned distance (PSI, Jensen–Shannon, Hellinger, Kullback–Leibler) on category counts, as
/// Evidently's stattests of those names compute it for a categorical column.
pub fn distance(distance: BinnedDistance, counts: &CategoryCounts) -> Result<Outcome, NotComputable> {
    counts.require_both()?;
    counts_distance(distance, &counts.reference, &counts.current)
}

/// The Mersenne Twister MT19937 as numpy's legacy `RandomState` uses it: `seed(s)` for an
/// integer, bounded integers by masked rejection, `shuffle` from the last element down.
#[derive(Clone)]
pub(crate) struct Mt19937 {
    state: Box<[u32; 624]>,
    index: usize,
}

impl Mt19937 {
    pub(crate) fn new(seed: u32) -> Mt19937 {
        let mut state = Box::new([0u32; 624]);
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % 624] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.state[k] = self.state[(k + 397) % 624] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform double in [0, 1) with 53 random bits (numpy's `random_sample`).
    pub(crate) fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// A uniform integer in 0..=max (numpy's `random_interval`).
    pub(crate) fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        loop {
            let value = if max <= u64::from(u32::MAX) {
                u64::from(self.next_u32()) & mask
            } else {
                ((u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())) & mask
            };
            if value <= max {
                return value;
            }
        }
    }

    /// numpy's legacy `shuffle` of a 1-d array.
    pub(crate) fn shuffle<T>(&mut self, values: &mut [T]) {
        for i in (1..values.len()).rev() {
            let j = self.interval(i as u64) as usize;
            values.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_sequence() {
        // First outputs of MT19937 seeded with 5489 (the reference implementation's default).
        let mut rng = Mt19937::new(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
        assert_eq!(rng.next_u32(), 581_869_302);
        // numpy: np.random.seed(0); np.random.permutation(10)
        let mut rng = Mt19937::new(0);
        let mut values: Vec<usize> = (0..10).collect();
        rng.shuffle(&mut values);
        assert_eq!(values, vec![2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
    }

    #[test]
    fn counts_union_the_categories_in_sorted_order() {
        let counts = CategoryCounts::from_values(&["b", "a", "b"], &["c", "a"]);
        assert_eq!(counts.categories, vec!["a", "b", "c"]);
        assert_eq!(counts.reference, vec![1, 2, 0]);
        assert_eq!(counts.current, vec![1, 0, 1]);
        let numeric = CategoryCounts::from_numeric(&[10.0, 2.0, -0.0], &[0.0, 2.0]).unwrap();
        assert_eq!(numeric.categories, vec!["0", "2", "10"]);
        assert_eq!(numeric.reference, vec![1, 1, 1]);
        assert_eq!(numeric.current, vec![1, 1, 0]);
        let stored = CategoryCounts::from_counts(&[("x", 3), ("y", 1), ("x", 1)], &[("z", 2)]);
        assert_eq!(stored.reference, vec![4, 1, 0]);
        assert_eq!(stored.current, vec![0, 0, 2]);
    }

    #[test]
    fn empty_sides_are_not_computable() {
        let empty: [&str; 0] = [];
        let counts = CategoryCounts::from_values(&empty, &["a", "b"]);
        assert!(chi_square(&counts).is_err());
        assert!(g_test(&counts).is_err());
        assert!(z_test(&counts).is_err());
        assert!(fisher_exact(&counts).is_err());
        assert!(total_variation(&counts).is_err());
        assert!(distance(BinnedDistance::Psi, &counts).is_err());
        let counts = CategoryCounts::from_values(&["a"], &empty);
        assert!(chi_square(&counts).is_err());
    }

    #[test]
    fn unseen_category_makes_chi_square_infinite() {
        let counts = CategoryCounts::from_values(&["a", "a", "b"], &["a", "c"]);
        let outcome = chi_square(&counts).unwrap();
        assert_eq!(outcome.statistic, f64::INFINITY);
        assert_eq!(outcome.p_value, Some(0.0));
    }

    #[test]
    fn constant_equal_samples_give_z_p_one() {
        let counts = CategoryCounts::from_values(&["a", "a"], &["a"]);
        assert_eq!(z_test(&counts).unwrap().p_value, Some(1.0));
        let counts = CategoryCounts::from_values(&["a", "a"], &["b"]);
        assert!(z_test(&counts).unwrap().p_value.unwrap() < 0.1);
    }

    #[test]
    fn fisher_exact_matches_scipy_on_a_textbook_table() {
        // scipy.stats.fisher_exact([[8, 2], [1, 5]]) → (20.0, 0.03496503496503495)
        let outcome = fisher_exact_table([[8, 2], [1, 5]]);
        assert!((outcome.statistic - 20.0).abs() < 1e-12);
        assert!((outcome.p_value.unwrap() - 0.034_965_034_965_034_95).abs() < 1e-12);
        assert!(fisher_exact(&CategoryCounts::from_values(&["a", "b"], &["c"])).is_err());
    }
}
