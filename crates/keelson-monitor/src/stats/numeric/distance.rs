//! Distances between the empirical distribution functions of two samples.

use super::{require_both_finite, sorted};
use crate::stats::{NotComputable, Outcome};

/// `scipy.stats.wasserstein_distance(reference, current)`: the area between the two empirical
/// CDFs. Statistic only.
pub fn wasserstein(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    Ok(Outcome::distance(cdf_gap_integral(reference, current, |gap| gap.abs())))
}

/// Evidently's `wasserstein` drift method: `wasserstein_distance(reference, current)` over
/// `max(np.std(reference), 0.001)`. The floor is Evidently's, so a constant reference gives a
/// large number rather than no answer. Statistic only.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let norm = population_std(reference).max(0.001);
    Ok(Outcome::distance(cdf_gap_integral(reference, current, |gap| gap.abs()) / norm))
}

/// `scipy.stats.energy_distance(reference, current)`: sqrt(2) times the L2 distance between the
/// empirical CDFs, which equals the energy distance in one dimension and needs only a sort.
/// Statistic only.
pub fn energy_distance(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let squared = cdf_gap_integral(reference, current, |gap| gap * gap);
    Ok(Outcome::distance(std::f64::consts::SQRT_2 * squared.sqrt()))
}

/// The integral over x of `cost(F_ref(x) - F_cur(x))`, walking both sorted samples once.
fn cdf_gap_integral(reference: &[f64], current: &[f64], cost: impl Fn(f64) -> f64) -> f64 {
    let (a, b) = (sorted(reference), sorted(current));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut total = 0.0;
    let mut previous: Option<f64> = None;
    // Each step moves to the next pooled value; the CDFs are constant since the previous one.
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&u), Some(&v)) => u.min(v),
            (Some(&u), None) => u,
            (None, Some(&v)) => v,
            (None, None) => break,
        };
        if let Some(p) = previous {
            total += cost(i as f64 / na - j as f64 / nb) * (x - p);
        }
        while a.get(i).is_some_and(|&u| u <= x) {
            i += 1;
        }
        while b.get(j).is_some_and(|&v| v <= x) {
            j += 1;
        }
        previous = Some(x);
    }
    total
}

/// `np.std` (ddof 0), two-pass for accuracy.
fn population_std(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}
