//! Two-sample tests and distances on numeric samples, each matching a scipy 1.17 function with
//! default arguments (or Evidently's wrapper around it) on the same data.
//!
//! Every function refuses an empty side or one holding NaN or an infinity, and gives
//! [`NotComputable`] wherever scipy answers NaN or raises.

mod anderson;
mod cramer;
mod distance;
mod kolmogorov;
mod ks;
mod mann_whitney;
mod radix;
mod ranks;
mod t_test;

pub use anderson::anderson;
pub use cramer::cramer_von_mises;
pub use distance::{energy_distance, wasserstein, wasserstein_normed};
pub use ks::{ks, ks_asymptotic_p_value};
pub use mann_whitney::{mann_whitney, mann_whitney_less};
pub use radix::sort_floats;
pub use t_test::{student_t_test, t_test, welch_t_test, SampleMoments};

use super::{require_finite, NotComputable};

fn require_both_finite(reference: &[f64], current: &[f64]) -> Result<(), NotComputable> {
    require_finite(reference, "reference")?;
    require_finite(current, "current")
}

/// The values in ascending order: borrowed when they already are (callers that compare large
/// columns sort them once, in place), else a sorted copy. The inputs are finite, so the total
/// order is the numeric one.
pub(crate) fn sorted(values: &[f64]) -> std::borrow::Cow<'_, [f64]> {
    // Numeric order, checked without stopping early so the check vectorises (it runs on every
    // million-value column; a NaN fails it).
    if values.windows(2).fold(true, |ascending, pair| ascending & (pair[0] <= pair[1])) {
        return std::borrow::Cow::Borrowed(values);
    }
    let mut copy = values.to_vec();
    sort_floats(&mut copy);
    std::borrow::Cow::Owned(copy)
}

/// The mean and the population standard deviation (`np.mean`, `np.std` with ddof 0), two-pass
/// for accuracy, each sum in eight interleaved lanes: they vectorise, and round no worse than
/// one running sum (closer to numpy's pairwise sums).
pub(crate) fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = lane_sum(values, |v| v) / n;
    let variance = lane_sum(values, |v| (v - mean) * (v - mean)) / n;
    (mean, variance.sqrt())
}

fn lane_sum(values: &[f64], term: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0; 8];
    let chunks = values.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|v| term(*v)).sum();
    for chunk in chunks {
        for (lane, value) in lanes.iter_mut().zip(chunk) {
            *lane += term(*value);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// Turns a NaN that slipped through an edge case into NotComputable instead of a silent answer.
fn finite_or_not_computable(value: f64, what: &str) -> Result<f64, NotComputable> {
    if value.is_nan() {
        Err(NotComputable::new(format!("{what} is undefined for these samples")))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests;
