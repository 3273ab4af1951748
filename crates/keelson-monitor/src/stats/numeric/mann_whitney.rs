//! The Mann–Whitney U test.

use super::ranks::pooled_midranks;
use super::{finite_or_not_computable, require_both_finite};
use crate::stats::{NotComputable, Outcome};
use statrs::function::erf::erfc;

/// `scipy.stats.mannwhitneyu(reference, current)`: two-sided, continuity correction, method
/// 'auto' (the exact null distribution when either side has at most 8 values and there are no
/// ties, else the normal approximation with tie correction). The statistic is U of the reference.
pub fn mann_whitney(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    mann_whitney_with(reference, current, Alternative::TwoSided)
}

/// `scipy.stats.mannwhitneyu(reference, current, alternative="less")`, which is what Evidently's
/// `mannw` method calls: small p when the reference tends to lie below the current sample.
pub fn mann_whitney_less(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    mann_whitney_with(reference, current, Alternative::Less)
}

#[derive(Clone, Copy)]
enum Alternative {
    TwoSided,
    Less,
}

fn mann_whitney_with(reference: &[f64], current: &[f64], alternative: Alternative) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let (n1, n2) = (reference.len(), current.len());
    let pooled = pooled_midranks(reference, current);
    let rank_sum: f64 = pooled.ranks[..n1].iter().sum();
    let u1 = rank_sum - (n1 * (n1 + 1)) as f64 / 2.0;
    let u2 = (n1 * n2) as f64 - u1;
    // The p-value is an upper tail: of U2 for "less" (by symmetry), of the larger U, doubled,
    // for two-sided.
    let (u, factor) = match alternative {
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let ties = pooled.tie_sizes.iter().any(|&t| t > 1);
    let tail = if (n1 <= 8 || n2 <= 8) && !ties {
        // Without ties U is a whole number.
        exact_upper_tail(u as usize, n1, n2)
    } else {
        let (n1f, n2f) = (n1 as f64, n2 as f64);
        let n = n1f + n2f;
        let tie_term: f64 = pooled.tie_sizes.iter().map(|&t| (t * t * t - t) as f64).sum();
        let sd = (n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
        let z = finite_or_not_computable((u - n1f * n2f / 2.0 - 0.5) / sd, "the U z-score")?;
        0.5 * erfc(z / std::f64::consts::SQRT_2)
    };
    let p = finite_or_not_computable(factor * tail, "the U p-value")?;
    Ok(Outcome::test(u1, p.clamp(0.0, 1.0)))
}

/// P(U >= u) under the null with no ties, from the exact distribution of U.
fn exact_upper_tail(u: usize, n1: usize, n2: usize) -> f64 {
    let max = n1 * n2;
    let below = max - u.min(max);
    if u < below {
        // Lower half: 1 - P(U <= u) + P(U = u).
        let pmf = u_frequencies(u, n1, n2);
        let cdf: f64 = pmf.iter().sum();
        1.0 - cdf + pmf.last().copied().unwrap_or(0.0)
    } else {
        // U is symmetric about n1 n2 / 2: P(U >= u) = P(U <= n1 n2 - u).
        u_frequencies(below, n1, n2).iter().sum()
    }
}

/// P(U = k) for k = 0..=up_to. The counts are the coefficients of the Gaussian binomial
/// [n1 + n2 choose n1]_q = prod_{i=1..s} (1 - q^(l+i)) / (1 - q^i) with s the smaller size and
/// l the larger; truncating at `up_to` keeps this O(s * up_to).
fn u_frequencies(up_to: usize, n1: usize, n2: usize) -> Vec<f64> {
    let (small, large) = (n1.min(n2), n1.max(n2));
    let mut counts = vec![0.0; up_to + 1];
    counts[0] = 1.0;
    let mut total = 1.0;
    for i in 1..=small {
        let grow = large + i;
        for k in (grow..=up_to).rev() {
            counts[k] -= counts[k - grow];
        }
        for k in i..=up_to {
            counts[k] += counts[k - i];
        }
        total = total * (large + i) as f64 / i as f64;
    }
    counts.iter().map(|c| c / total).collect()
}
