//! The two-sample Cramér–von Mises test.

use super::ranks::pooled_midranks;
use super::{finite_or_not_computable, require_both_finite, sorted};
use crate::stats::{NotComputable, Outcome};
use statrs::function::gamma::ln_gamma;
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// Up to this size on both sides scipy's 'auto' method counts the exact null distribution.
const MAX_EXACT_SIZE: usize = 20;

/// `scipy.stats.cramervonmises_2samp(reference, current)`, method 'auto': statistic T of
/// Anderson (1962) from midranks; the p-value exact when neither side has more than 20 values,
/// else from the limiting distribution after matching the mean and variance of T.
pub fn cramer_von_mises(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let (nx, ny) = (reference.len(), current.len());
    if nx < 2 || ny < 2 {
        return Err(NotComputable::new("Cramér–von Mises needs at least two values on each side"));
    }
    let (x, y) = (sorted(reference), sorted(current));
    let ranks = pooled_midranks(&x, &y).ranks;
    let squared_gaps =
        |ranks: &[f64]| -> f64 { ranks.iter().enumerate().map(|(i, r)| (r - (i + 1) as f64).powi(2)).sum() };
    let (nxf, nyf) = (nx as f64, ny as f64);
    let u = nxf * squared_gaps(&ranks[..nx]) + nyf * squared_gaps(&ranks[nx..]);
    let k = nxf * nyf;
    let n = nxf + nyf;
    let t = u / (k * n) - (4.0 * k - 1.0) / (6.0 * n);
    let p = if nx.max(ny) <= MAX_EXACT_SIZE {
        exact_p_value(u, nx as u64, ny as u64)
    } else {
        asymptotic_p_value(t, n, nxf, nyf, k)
    };
    let p = finite_or_not_computable(p, "the Cramér–von Mises p-value")?;
    Ok(Outcome::test(t, p))
}

/// P(U >= u) over all C(m + n, m) orderings (Xiao, Gordon & Yakovlev 2006): walking the lattice
/// path of the merged sample, U (rescaled to whole numbers) accumulates (a v - b w)^2 at every
/// point (w, v); each point keeps the distribution of U over the paths reaching it.
fn exact_p_value(u: f64, m: u64, n: u64) -> f64 {
    let lcm = m / gcd(m, n) * n;
    let (a, b) = ((lcm / m) as i64, (lcm / n) as i64);
    let mn = (m * n) as f64;
    let threshold = floor_div((lcm * lcm * (m + n)) as f64 * (6.0 * u - mn * (4.0 * mn - 1.0)), 6.0 * mn * mn);
    // row[v]: value -> number of paths reaching (w, v) for the current w.
    let mut row: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); m as usize + 1];
    row[0].insert(0, 1);
    for w in 0..=n as i64 {
        let mut next: Vec<BTreeMap<u64, u64>> = Vec::with_capacity(row.len());
        for (v, from_left) in row.iter().enumerate() {
            let mut merged = next.last().cloned().unwrap_or_default();
            for (&value, &count) in from_left {
                *merged.entry(value).or_insert(0) += count;
            }
            let step = (a * v as i64 - b * w).unsigned_abs().pow(2);
            next.push(merged.into_iter().map(|(value, count)| (value + step, count)).collect());
        }
        row = next;
    }
    let combinations = binomial(m + n, m);
    let at_least: u64 = row
        .last()
        .map(|d| d.iter().filter(|(&value, _)| value as f64 >= threshold).map(|(_, &c)| c).sum())
        .unwrap_or(0);
    at_least as f64 / combinations
}

/// Python's float floor division.
fn floor_div(a: f64, b: f64) -> f64 {
    let remainder = a % b;
    let mut quotient = (a - remainder) / b;
    if remainder != 0.0 && ((b < 0.0) != (remainder < 0.0)) {
        quotient -= 1.0;
    }
    let floor = quotient.floor();
    if quotient - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn binomial(n: u64, k: u64) -> f64 {
    (1..=k).fold(1.0, |acc, i| acc * (n - k + i) as f64 / i as f64)
}

/// scipy's asymptotic p-value: T shifted and scaled to the mean 1/6 and the variance of the
/// limiting distribution, then 1 - its CDF (taken as 1 for very small values).
fn asymptotic_p_value(t: f64, n: f64, nx: f64, ny: f64, k: f64) -> f64 {
    let mean = (1.0 + 1.0 / n) / 6.0;
    let variance = (n + 1.0) * (4.0 * k * n - 3.0 * (nx * nx + ny * ny) - 2.0 * k) / (45.0 * n * n * 4.0 * k);
    let tn = 1.0 / 6.0 + (t - mean) / (45.0 * variance).sqrt();
    if tn >= 0.003 {
        (1.0 - limiting_cdf(tn)).max(0.0)
    } else {
        1.0
    }
}

/// CDF of the limiting Cramér–von Mises distribution (Csörgő & Faraway 1996, eq. 1.2), adding
/// terms until one falls below 1e-7 as scipy does.
fn limiting_cdf(x: f64) -> f64 {
    let mut total = 0.0;
    let mut k = 0.0;
    loop {
        let u = (ln_gamma(k + 0.5) - ln_gamma(k + 1.0)).exp() / (PI.powf(1.5) * x.sqrt());
        let y = 4.0 * k + 1.0;
        let q = y * y / (16.0 * x);
        let term = u * y.sqrt() * (-q).exp() * bessel_k_quarter(q);
        total += term;
        if term.abs() < 1e-7 || !term.is_finite() {
            return total;
        }
        k += 1.0;
    }
}

/// K_{1/4}(x), the modified Bessel function of the second kind, from
/// K_nu(x) = integral_0^inf exp(-x cosh s) cosh(nu s) ds. The integrand is smooth and decays
/// doubly exponentially, so the trapezoid rule converges geometrically in the step.
fn bessel_k_quarter(x: f64) -> f64 {
    const STEP: f64 = 0.02;
    let mut total = 0.5 * (-x).exp();
    let mut s = STEP;
    loop {
        let term = (-x * s.cosh()).exp() * (0.25 * s).cosh();
        total += term;
        if term < 1e-300 || term < total * 1e-18 {
            return total * STEP;
        }
        s += STEP;
    }
}
