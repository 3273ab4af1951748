//! Drift statistics: two-sample tests and distances between a reference and a current sample,
//! each matching scipy (or Evidently where scipy has none) on the same data.
//!
//! Every function takes the values already stripped of nulls. Values that make a statistic
//! meaningless (an empty side, NaN or an infinity, a constant column where the statistic divides
//! by its spread) give [`NotComputable`] with the reason, never a panic or a silent 0.
//!
//! - [`numeric`]: tests on numeric samples (KS, Anderson–Darling, Cramér–von Mises, t-test,
//!   Mann–Whitney, energy and Wasserstein distances).
//! - [`binned`]: distances between two binned distributions (PSI, Jensen–Shannon, Hellinger,
//!   Kullback–Leibler) and Evidently's binning of numeric and categorical samples.
//! - [`categorical`]: tests on category counts (chi-square, Z-test for proportions, G-test,
//!   Fisher exact, total variation).
//! - [`text`]: the domain classifier for text columns and ROC-AUC.
//! - [`method`]: the named methods, their default thresholds, the default choice per column
//!   (Evidently's rules) and one entry point, [`method::compare`].

pub mod binned;
pub mod categorical;
pub mod method;
pub mod numeric;
pub mod text;

use serde::Serialize;

/// Why a statistic has no value for these samples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not computable: {reason}")]
pub struct NotComputable {
    pub reason: String,
}

impl NotComputable {
    pub fn new(reason: impl Into<String>) -> NotComputable {
        NotComputable { reason: reason.into() }
    }
}

/// The value of a test or distance; `p_value` only for hypothesis tests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outcome {
    pub statistic: f64,
    pub p_value: Option<f64>,
}

impl Outcome {
    pub fn distance(statistic: f64) -> Outcome {
        Outcome { statistic, p_value: None }
    }

    pub fn test(statistic: f64, p_value: f64) -> Outcome {
        Outcome { statistic, p_value: Some(p_value) }
    }
}

/// Refuses an empty sample or one holding NaN or an infinity; `side` names it in the reason.
pub fn require_finite(values: &[f64], side: &str) -> Result<(), NotComputable> {
    if values.is_empty() {
        return Err(NotComputable::new(format!("the {side} sample is empty")));
    }
    // One pass without stopping early, which vectorises; the search only when it fails.
    if !values.iter().fold(true, |finite, v| finite & v.is_finite()) {
        let bad = values.iter().find(|v| !v.is_finite()).copied().unwrap_or(f64::NAN);
        return Err(NotComputable::new(format!("the {side} sample holds {bad}")));
    }
    Ok(())
}
