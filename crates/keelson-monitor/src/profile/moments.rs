//! Count, mean and sum of squared deviations of a numeric column, merged by Chan's formula so
//! a profile of several windows has the moments of their concatenation.

use crate::stats::numeric::SampleMoments;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl Moments {
    /// Two passes, as the raw t-test summarises a sample, so an unmerged profile tests
    /// identically.
    pub fn of(values: &[f64]) -> Moments {
        if values.is_empty() {
            return Moments::default();
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
        Moments { count: values.len() as u64, mean, m2 }
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (a, b) = (self.count as f64, other.count as f64);
        let total = a + b;
        let delta = other.mean - self.mean;
        self.mean += delta * b / total;
        self.m2 += other.m2 + delta * delta * a * b / total;
        self.count += other.count;
    }

    /// `np.std` (ddof 0); None without values.
    pub fn population_std(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.m2 / self.count as f64).sqrt())
    }

    pub fn sample_moments(&self) -> SampleMoments {
        SampleMoments { n: self.count as f64, mean: self.mean, squares: self.m2 }
    }
}
