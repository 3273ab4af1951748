//! The k-sample Anderson–Darling test, for two samples.

use super::{finite_or_not_computable, require_both_finite, sorted};
use crate::stats::{NotComputable, Outcome};

/// Significance levels of Scholz & Stephens' Table 2, and the interpolation coefficients of the
/// critical values at those levels.
const LEVELS: [f64; 7] = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
const B0: [f64; 7] = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
const B1: [f64; 7] = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
const B2: [f64; 7] = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];

/// `scipy.stats.anderson_ksamp([reference, current])` with default arguments (midrank variant;
/// the p-value interpolated from the table of critical values, capped to [0.001, 0.25]). The
/// statistic is the standardised A²; Evidently's `anderson` method reads the p-value.
pub fn anderson(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let samples = [sorted(reference).into_owned(), sorted(current).into_owned()];
    let pooled = sorted(&[reference, current].concat()).into_owned();
    let n_total = pooled.len();
    if pooled.first() == pooled.last() {
        return Err(NotComputable::new("Anderson–Darling needs more than one distinct value"));
    }
    if n_total < 3 {
        return Err(NotComputable::new("Anderson–Darling needs at least three values"));
    }
    let a2kn = midrank_statistic(&samples, &pooled);
    let statistic = finite_or_not_computable(standardise(a2kn, &samples, n_total), "A²")?;
    Ok(Outcome::test(statistic, p_value(statistic)))
}

/// A²akN, equation 7 of Scholz & Stephens (1987): ties get half weight on each side.
fn midrank_statistic(samples: &[Vec<f64>; 2], pooled: &[f64]) -> f64 {
    let n = pooled.len() as f64;
    let mut total = 0.0;
    for sample in samples {
        let size = sample.len() as f64;
        let mut sum = 0.0;
        // Walk the distinct pooled values; `below` counts pooled values under the current one,
        // `at_most` the sample's values up to it.
        let (mut below, mut at_most_before) = (0usize, 0usize);
        while below < pooled.len() {
            let z = pooled[below];
            let ties = pooled[below..].iter().take_while(|&&v| v == z).count();
            let mut at_most = at_most_before;
            while sample.get(at_most).is_some_and(|&v| v <= z) {
                at_most += 1;
            }
            let in_sample = (at_most - at_most_before) as f64;
            let lj = ties as f64;
            let bj = below as f64 + lj / 2.0;
            let mij = at_most as f64 - in_sample / 2.0;
            let gap = n * mij - bj * size;
            sum += lj / n * gap * gap / (bj * (n - bj) - n * lj / 4.0);
            below += ties;
            at_most_before = at_most;
        }
        total += sum / size;
    }
    total * (n - 1.0) / n
}

/// (A²kN - (k - 1)) / sigma_N, with the exact variance of Scholz & Stephens for k = 2.
fn standardise(a2kn: f64, samples: &[Vec<f64>; 2], n_total: usize) -> f64 {
    let k = 2.0;
    let n = n_total as f64;
    let h_sizes: f64 = samples.iter().map(|s| 1.0 / s.len() as f64).sum();
    // Partial sums of 1/i from the top: 1/(N-1), 1/(N-1) + 1/(N-2), ..., down to 1/2.
    let mut partial = 0.0;
    let mut g = 0.0;
    for (index, i) in (2..n_total).rev().enumerate() {
        partial += 1.0 / i as f64;
        g += partial / (index + 2) as f64;
    }
    let h = partial + 1.0;
    let a = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * h_sizes;
    let b = (2.0 * g - 4.0) * k * k + 8.0 * h * k + (2.0 * g - 14.0 * h - 4.0) * h_sizes - 8.0 * h + 4.0 * g - 6.0;
    let c = (6.0 * h + 2.0 * g - 2.0) * k * k + (4.0 * h - 4.0 * g + 6.0) * k + (2.0 * h - 6.0) * h_sizes + 4.0 * h;
    let d = (2.0 * h + 6.0) * k * k - 4.0 * h * k;
    let variance = (a * n.powi(3) + b * n * n + c * n + d) / ((n - 1.0) * (n - 2.0) * (n - 3.0));
    (a2kn - (k - 1.0)) / variance.sqrt()
}

/// scipy's p-value: a quadratic least-squares fit of ln(level) on the critical values, read at
/// the statistic; outside the table it is capped at 0.25 or floored at 0.001.
fn p_value(statistic: f64) -> f64 {
    let m = 1.0_f64; // k - 1
    let critical: Vec<f64> = (0..7).map(|i| B0[i] + B1[i] / m.sqrt() + B2[i] / m).collect();
    let lowest = critical.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = critical.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if statistic < lowest {
        return 0.25;
    }
    if statistic > highest {
        return 0.001;
    }
    let log_levels: Vec<f64> = LEVELS.iter().map(|l| l.ln()).collect();
    quadratic_fit_at(&critical, &log_levels, statistic).exp()
}

/// The least-squares quadratic through (xs, ys), evaluated at `at`. Centred on the mean of xs
/// so the normal equations stay well conditioned; the fitted curve does not depend on that.
fn quadratic_fit_at(xs: &[f64], ys: &[f64], at: f64) -> f64 {
    let centre = xs.iter().sum::<f64>() / xs.len() as f64;
    let mut s = [0.0; 5];
    let mut t = [0.0; 3];
    for (&x, &y) in xs.iter().zip(ys) {
        let u = x - centre;
        let mut power = 1.0;
        for (i, si) in s.iter_mut().enumerate() {
            *si += power;
            if i < 3 {
                t[i] += power * y;
            }
            power *= u;
        }
    }
    // Solve [[s0 s1 s2] [s1 s2 s3] [s2 s3 s4]] c = t by Cramer's rule (3x3).
    let det3 = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let system = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]];
    let det = det3(system);
    let coefficient = |col: usize| {
        let mut replaced = system;
        for (row, r) in replaced.iter_mut().enumerate() {
            r[col] = t[row];
        }
        det3(replaced) / det
    };
    let u = at - centre;
    coefficient(0) + coefficient(1) * u + coefficient(2) * u * u
}
