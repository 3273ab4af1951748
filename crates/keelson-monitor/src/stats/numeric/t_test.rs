//! Two-sample t-tests on the means.

use super::{finite_or_not_computable, require_both_finite};
use crate::stats::{NotComputable, Outcome};
use statrs::function::beta::checked_beta_reg;

/// `scipy.stats.ttest_ind(reference, current)`: Student's test with pooled variance, two-sided.
/// This is what Evidently's `t_test` calls (it leaves `equal_var` at its default, True).
pub fn t_test(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let (a, b) = (Summary::of(reference), Summary::of(current));
    student_t_test(
        SampleMoments { n: a.n, mean: a.mean, squares: a.squares },
        SampleMoments { n: b.n, mean: b.mean, squares: b.squares },
    )
}

/// A sample summarised by its size, mean and sum of squared deviations from the mean: all
/// Student's test needs, so a stored profile can be tested without its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleMoments {
    pub n: f64,
    pub mean: f64,
    pub squares: f64,
}

/// [`t_test`] on two samples' moments.
pub fn student_t_test(reference: SampleMoments, current: SampleMoments) -> Result<Outcome, NotComputable> {
    let (a, b) = (reference, current);
    let df = a.n + b.n - 2.0;
    // From sums of squares, so one value on a side (no variance of its own) still pools.
    let pooled = (a.squares + b.squares) / df;
    let t = (a.mean - b.mean) / (pooled * (1.0 / a.n + 1.0 / b.n)).sqrt();
    two_sided(t, df)
}

/// `scipy.stats.ttest_ind(reference, current, equal_var=False)`: Welch's test, two-sided.
pub fn welch_t_test(reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    require_both_finite(reference, current)?;
    let (a, b) = (Summary::of(reference), Summary::of(current));
    let (va, vb) = (a.var / a.n, b.var / b.n);
    let df = (va + vb) * (va + vb) / (va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0));
    let t = (a.mean - b.mean) / (va + vb).sqrt();
    two_sided(t, df)
}

/// Student t two-sided p-value. An infinite t (both sides constant, different values) is
/// certain evidence, as scipy says with p = 0; 0/0 cases arrive here as NaN and are refused.
fn two_sided(t: f64, df: f64) -> Result<Outcome, NotComputable> {
    let t = finite_or_not_computable(t, "the t statistic")?;
    // Welch's degrees of freedom are 0/0 there too; scipy still answers p = 0.
    if t.is_infinite() {
        return Ok(Outcome::test(t, 0.0));
    }
    if df.is_nan() || df <= 0.0 {
        return Err(NotComputable::new("the t-test has no degrees of freedom for these samples"));
    }
    // P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2).
    let p = checked_beta_reg(df / 2.0, 0.5, df / (df + t * t))
        .map_err(|e| NotComputable::new(format!("t distribution: {e}")))?;
    Ok(Outcome::test(t, p.clamp(0.0, 1.0)))
}

struct Summary {
    n: f64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    squares: f64,
    /// Sample variance (ddof 1); NaN for one value, as numpy gives.
    var: f64,
}

impl Summary {
    fn of(values: &[f64]) -> Summary {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let squares = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
        let var = if n > 1.0 { squares / (n - 1.0) } else { f64::NAN };
        Summary { n, mean, squares, var }
    }
}
