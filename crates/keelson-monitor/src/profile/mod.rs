//! Reference profiles: mergeable per-column summaries stored once (as JSON), so comparing a
//! window of production data never re-reads the training set, and profiles of time windows
//! merge into the profile of the longer window.
//!
//! A column's profile keeps its row and missing counts; for numbers the moments, range, a
//! [`FixedHistogram`] over the reference's range and the counts per value while there are few;
//! for strings the category counts; and the raw values while there are at most
//! [`MAX_EXACT_VALUES`], so small references compare exactly as the raw path does.
//! [`compare_profiles`] turns two profiles into a [`ColumnDrift`](crate::drift::ColumnDrift).

mod categories;
mod compare;
mod histogram;
mod moments;
#[cfg(test)]
mod tests;

pub use categories::{CategoryTally, MAX_CATEGORIES};
pub use compare::{compare_frame_profiles, compare_profiles};
pub use histogram::{FixedHistogram, Layout, Tally, LAYOUT_BINS};
pub use moments::Moments;

use crate::error::MonitorError;
use crate::sample::{ColumnKind, ColumnSample, Values};
use serde::{Deserialize, Serialize};

/// Columns with at most this many non-missing values keep them: Evidently picks p-value tests
/// on raw data for small references, and those have no summary form.
pub const MAX_EXACT_VALUES: usize = 10_000;

/// The summary of a numeric column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericProfile {
    pub moments: Moments,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    pub histogram: FixedHistogram,
    /// Counts per value, sorted by value, while the column has at most 20 distinct values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_counts: Option<Vec<(f64, u64)>>,
}

impl NumericProfile {
    fn new(values: &[f64], layout: Layout) -> NumericProfile {
        NumericProfile {
            moments: Moments::of(values),
            min: values.iter().copied().reduce(f64::min),
            max: values.iter().copied().reduce(f64::max),
            histogram: FixedHistogram::new(layout, values),
            value_counts: categories::value_counts(values),
        }
    }

    fn merge(&mut self, other: &NumericProfile) {
        self.moments.merge(&other.moments);
        self.min = [self.min, other.min].into_iter().flatten().reduce(f64::min);
        self.max = [self.max, other.max].into_iter().flatten().reduce(f64::max);
        self.histogram.merge(&other.histogram);
        self.value_counts = match (&self.value_counts, &other.value_counts) {
            (Some(a), Some(b)) => categories::merge_value_counts(a, b),
            _ => None,
        };
    }
}

/// One column of one side, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: ColumnKind,
    pub rows: u64,
    pub nulls: u64,
    pub nans: u64,
    pub infinities: u64,
    #[serde(default)]
    pub type_errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<CategoryTally>,
    /// The non-missing values while there are at most [`MAX_EXACT_VALUES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Values>,
}

impl ColumnProfile {
    /// A reference profile: the histogram layout spans the sample's own range.
    pub fn reference(sample: &ColumnSample) -> ColumnProfile {
        let layout = match &sample.values {
            Values::Numeric(values) => Layout::of(values),
            Values::Strings(_) => Layout::of(&[]),
        };
        ColumnProfile::build(sample, layout)
    }

    /// A profile binned in `layout_of`'s layout (a current window against its reference); a
    /// reference without a numeric layout lends none, and the sample's own range is used.
    pub fn with_layout(sample: &ColumnSample, layout_of: &ColumnProfile) -> ColumnProfile {
        match layout_of.numeric.as_ref().map(|n| n.histogram.layout).filter(Layout::is_valid) {
            Some(layout) => ColumnProfile::build(sample, layout),
            None => ColumnProfile::reference(sample),
        }
    }

    fn build(sample: &ColumnSample, layout: Layout) -> ColumnProfile {
        let (numeric, categories) = match &sample.values {
            Values::Numeric(values) => (Some(NumericProfile::new(values, layout)), None),
            Values::Strings(values) => (None, Some(CategoryTally::of(values))),
        };
        ColumnProfile {
            name: sample.name.clone(),
            kind: sample.kind,
            rows: sample.rows,
            nulls: sample.nulls,
            nans: sample.nans,
            infinities: sample.infinities,
            type_errors: sample.type_errors,
            numeric,
            categories,
            values: (sample.values.len() <= MAX_EXACT_VALUES).then(|| sample.values.clone()),
        }
    }

    /// Adds `other` (the same column over other rows, binned in the same layout).
    pub fn merge(&mut self, other: &ColumnProfile) -> Result<(), MonitorError> {
        if self.name != other.name || self.kind != other.kind {
            return Err(MonitorError::invalid(format!(
                "cannot merge the profile of {} column `{}` with that of {} column `{}`",
                self.kind, self.name, other.kind, other.name
            )));
        }
        match (&mut self.numeric, &other.numeric, &mut self.categories, &other.categories) {
            (Some(mine), Some(theirs), None, None) => {
                if mine.histogram.layout != theirs.histogram.layout
                    || !mine.histogram.is_consistent()
                    || !theirs.histogram.is_consistent()
                {
                    return Err(MonitorError::invalid(format!(
                        "cannot merge profiles of column `{}` binned in different layouts ({:?} and {:?})",
                        self.name, mine.histogram.layout, theirs.histogram.layout
                    )));
                }
                mine.merge(theirs);
            }
            (None, None, Some(mine), Some(theirs)) => mine.merge(theirs),
            _ => {
                return Err(MonitorError::invalid(format!(
                    "cannot merge profiles of column `{}`: one holds numbers and the other strings",
                    self.name
                )))
            }
        }
        self.values = match (self.values.take(), &other.values) {
            (Some(Values::Numeric(mut a)), Some(Values::Numeric(b))) if a.len() + b.len() <= MAX_EXACT_VALUES => {
                a.extend_from_slice(b);
                Some(Values::Numeric(a))
            }
            (Some(Values::Strings(mut a)), Some(Values::Strings(b))) if a.len() + b.len() <= MAX_EXACT_VALUES => {
                a.extend_from_slice(b);
                Some(Values::Strings(a))
            }
            _ => None,
        };
        self.rows += other.rows;
        self.nulls += other.nulls;
        self.nans += other.nans;
        self.type_errors += other.type_errors;
        self.infinities += other.infinities;
        Ok(())
    }

    /// Rows with a usable value.
    pub fn present(&self) -> u64 {
        self.rows.saturating_sub(self.nulls + self.nans + self.infinities + self.type_errors)
    }

    pub fn missing(&self) -> u64 {
        self.nulls + self.nans + self.infinities
    }

    /// The sample again, when the profile still holds every value.
    pub fn exact_sample(&self) -> Option<ColumnSample> {
        let values = self.values.clone()?;
        let fits = match &values {
            Values::Numeric(_) => self.kind == ColumnKind::Numeric,
            Values::Strings(_) => self.kind != ColumnKind::Numeric,
        };
        (fits && values.len() as u64 == self.present()).then(|| ColumnSample {
            name: self.name.clone(),
            kind: self.kind,
            values,
            rows: self.rows,
            nulls: self.nulls,
            nans: self.nans,
            infinities: self.infinities,
            type_errors: self.type_errors,
        })
    }
}

/// The profiles of every column of a data set (or window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameProfile {
    pub columns: Vec<ColumnProfile>,
    pub rows: u64,
}

impl FrameProfile {
    /// A reference profile of `samples` (one per column, all over the same rows).
    pub fn reference(samples: &[ColumnSample]) -> FrameProfile {
        FrameProfile::of(samples.iter().map(ColumnProfile::reference).collect(), samples)
    }

    /// A window's profile, each column binned in the layout of the reference's column of that
    /// name (its own range for a column the reference lacks).
    pub fn with_layout(samples: &[ColumnSample], layout_of: &FrameProfile) -> FrameProfile {
        let columns = samples
            .iter()
            .map(|s| match layout_of.column(&s.name) {
                Some(reference) => ColumnProfile::with_layout(s, reference),
                None => ColumnProfile::reference(s),
            })
            .collect();
        FrameProfile::of(columns, samples)
    }

    fn of(columns: Vec<ColumnProfile>, samples: &[ColumnSample]) -> FrameProfile {
        FrameProfile { columns, rows: samples.iter().map(|s| s.rows).max().unwrap_or(0) }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Adds `other`, a profile of the same columns over other rows.
    pub fn merge(&mut self, other: &FrameProfile) -> Result<(), MonitorError> {
        let names = |p: &FrameProfile| {
            let mut names: Vec<String> = p.columns.iter().map(|c| c.name.clone()).collect();
            names.sort();
            names
        };
        if names(self) != names(other) {
            return Err(MonitorError::invalid(format!(
                "cannot merge frame profiles of different columns ({} and {})",
                names(self).join(", "),
                names(other).join(", ")
            )));
        }
        // Into a copy, so a column that fails to merge leaves `self` as it was.
        let mut merged = self.clone();
        for column in &mut merged.columns {
            if let Some(theirs) = other.column(&column.name) {
                column.merge(theirs)?;
            }
        }
        merged.rows += other.rows;
        *self = merged;
        Ok(())
    }
}
