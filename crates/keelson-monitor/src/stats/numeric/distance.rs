//! Distances between the empirical distribution functions of two samples.

use super::{mean_and_std, require_both_finite, sorted};
use crate::stats::{require_finite, NotComputable, Outcome};
use std::borrow::Cow;

type SortedPair<'a> = (Cow<'a, [f64]>, Cow<'a, [f64]>);

/// Both samples in ascending order, refused (as `require_finite` would) when either is empty or
/// holds NaN or an infinity: in order, those sit at the ends, so only the ends are looked at.
fn sorted_finite<'a>(reference: &'a [f64], current: &'a [f64]) -> Result<SortedPair<'a>, NotComputable> {
    let (a, b) = (sorted(reference), sorted(current));
    for (values, side) in [(&a, "reference"), (&b, "current")] {
        if !(values.first().is_some_and(|v| v.is_finite()) && values.last().is_some_and(|v| v.is_finite())) {
            require_finite(values, side)?;
        }
    }
    Ok((a, b))
}

/// `scipy.stats.wasserstein_distance(reference, current)`: the area between the two empirical
/// CDFs. Statistic only.
pub fn wasserstein(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    let (a, b) = sorted_finite(reference, current)?;
    Ok(Outcome::distance(quantile_gap_integral(&a, &b)))
}

/// Evidently's `wasserstein` drift method: `wasserstein_distance(reference, current)` over
/// `max(np.std(reference), 0.001)`. The floor is Evidently's, so a constant reference gives a
/// large number rather than no answer. Statistic only.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    let (a, b) = sorted_finite(reference, current)?;
    let norm = mean_and_std(&a).1.max(0.001);
    Ok(Outcome::distance(quantile_gap_integral(&a, &b) / norm))
}

/// The Wasserstein-1 distance as the area between the two quantile functions (the same area as
/// between the CDFs): on each stretch of probability where both quantiles are constant, its
/// length times their gap. Which side steps next depends on the counts alone, never on the
/// values, so the walk does not wait on its loads as a merge of the values would.
/// `a` and `b` are sorted.
fn quantile_gap_integral(a: &[f64], b: &[f64]) -> f64 {
    // Probabilities in units of 1/(na·nb), integers: a's i-th value ends at (i+1)·nb.
    let (na, nb) = (a.len() as u128, b.len() as u128);
    let (mut i, mut j) = (0, 0);
    let (mut reached, mut total) = (0u128, 0.0);
    while i < a.len() && j < b.len() {
        let (a_end, b_end) = ((i as u128 + 1) * nb, (j as u128 + 1) * na);
        let end = a_end.min(b_end);
        // The stretch is at most max(na, nb) long: a u64, which converts in one instruction.
        total += (end - reached) as u64 as f64 * (a[i] - b[j]).abs();
        reached = end;
        i += usize::from(a_end <= b_end);
        j += usize::from(b_end <= a_end);
    }
    total / (na * nb) as f64
}

/// `scipy.stats.energy_distance(reference, current)`: sqrt(2) times the L2 distance between the
/// empirical CDFs, which equals the energy distance in one dimension and needs only a sort.
/// Statistic only.
pub fn energy_distance(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let squared = squared_cdf_gap_integral(reference, current);
    Ok(Outcome::distance(std::f64::consts::SQRT_2 * squared.sqrt()))
}

/// The integral over x of `(F_ref(x) - F_cur(x))²`, walking both sorted samples once.
fn squared_cdf_gap_integral(reference: &[f64], current: &[f64]) -> f64 {
    let cost = |gap: f64| gap * gap;
    let (a, b) = (sorted(reference), sorted(current));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (Some(&first_a), Some(&first_b)) = (a.first(), b.first()) else {
        return 0.0;
    };
    // A merge that takes the smaller head (both on a tie) without branching on it, which a
    // million-value column cannot predict. `i` and `j` count the values taken: all of them at or
    // below `previous`, so the CDFs' gap is constant on [previous, x). Repeated values add an
    // interval of zero width.
    let (mut i, mut j) = (0, 0);
    let mut total = 0.0;
    let mut previous = first_a.min(first_b);
    while i < a.len() && j < b.len() {
        let (u, v) = (a[i], b[j]);
        let x = if u <= v { u } else { v };
        total += cost(i as f64 / na - j as f64 / nb) * (x - previous);
        previous = x;
        i += usize::from(u <= v);
        j += usize::from(v <= u);
    }
    // One side is spent: its CDF is 1 from here on.
    for &x in &a[i..] {
        total += cost(i as f64 / na - 1.0) * (x - previous);
        previous = x;
        i += 1;
    }
    for &x in &b[j..] {
        total += cost(1.0 - j as f64 / nb) * (x - previous);
        previous = x;
        j += 1;
    }
    total
}
