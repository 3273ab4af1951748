//! Drift from two profiles. Where both still hold their values this is the raw comparison;
//! otherwise each statistic is computed from the summaries — exactly where they suffice
//! (category counts, counts per value, moments for the t-test), else estimated from the
//! histograms and marked `approximate`. Methods that need the values are not computable.

use super::histogram::Cdf;
use super::{ColumnProfile, FrameProfile, NumericProfile, MAX_EXACT_VALUES};
use crate::drift::{
    self, Chart, ColumnDrift, ColumnQuality, ColumnSource, DriftOptions, DriftResult, SideFacts, SideSummary,
    DEFAULT_DRIFT_SHARE,
};
use crate::error::MonitorError;
use crate::sample::{ColumnKind, ColumnSample};
use crate::stats::binned::{counts_distance, sturges_edges, BinnedDistance, OrderedValue};
use crate::stats::categorical::{self, CategoryCounts};
use crate::stats::method::{default_method, Method};
use crate::stats::numeric::{ks_asymptotic_p_value, student_t_test};
use crate::stats::{NotComputable, Outcome};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// As the raw path's chart and default choice of method.
const CHART_BINS: usize = 20;
const CHART_CATEGORIES: usize = 20;
const DISTINCT_CAP: usize = 6;
const NEW_CATEGORY_EXAMPLES: usize = 10;

/// An outcome, and whether it was estimated rather than computed exactly.
struct Estimate {
    outcome: Outcome,
    approximate: bool,
}

impl Estimate {
    fn exact(outcome: Outcome) -> Estimate {
        Estimate { outcome, approximate: false }
    }

    fn approximate(outcome: Outcome) -> Estimate {
        Estimate { outcome, approximate: true }
    }
}

/// Compares a column's reference profile with a current one (built with
/// [`ColumnProfile::with_layout`] of the reference).
pub fn compare_profiles(reference: &ColumnProfile, current: &ColumnProfile, options: &DriftOptions) -> ColumnDrift {
    if let (Some(reference), Some(current)) = (reference.exact_sample(), current.exact_sample()) {
        return drift::compare_column(&reference, &current, options);
    }
    let kind = reference.kind;
    let method = options.method_for(&reference.name, kind).unwrap_or_else(|| {
        default_method(
            kind,
            usize::try_from(reference.present()).unwrap_or(usize::MAX),
            distinct_union(reference, current),
        )
    });
    let threshold = options.threshold_for(&reference.name).unwrap_or_else(|| method.default_threshold());
    let estimated = empty_side(reference, current)
        .and_then(|()| estimate(method, reference, current))
        .map(|e| (e.outcome, e.approximate));
    let sides = SideFacts {
        reference: summarise(reference),
        current: summarise(current),
        quality: quality(reference, current),
        chart: chart(reference, current),
    };
    ColumnDrift::judge(&reference.name, kind, method, threshold, estimated, sides)
}

/// Compares every selected column, planned, skipped and judged as [`drift::compare_sources`]
/// does.
pub fn compare_frame_profiles(
    reference: &FrameProfile,
    current: &FrameProfile,
    options: &DriftOptions,
) -> Result<DriftResult, MonitorError> {
    options.check()?;
    let (plan, skipped) = drift::plan_columns(&Profiles(reference), &Profiles(current), options)?;
    let columns = plan
        .par_iter()
        .map(|(name, kind)| {
            let reference = as_kind(Profiles(reference).profile(name)?, *kind);
            let current = as_kind(Profiles(current).profile(name)?, *kind);
            Ok(compare_profiles(&reference, &current, options))
        })
        .collect::<Result<Vec<_>, MonitorError>>()?;
    Ok(DriftResult::new(columns, options.drift_share.unwrap_or(DEFAULT_DRIFT_SHARE), skipped))
}

/// A frame profile as a column source, so columns are planned exactly as for raw data.
struct Profiles<'a>(&'a FrameProfile);

impl<'a> Profiles<'a> {
    fn profile(&self, name: &str) -> Result<&'a ColumnProfile, MonitorError> {
        self.0.column(name).ok_or_else(|| MonitorError::invalid(format!("column `{name}` is not in the profile")))
    }
}

impl ColumnSource for Profiles<'_> {
    fn columns(&self) -> Vec<(String, Option<ColumnKind>)> {
        self.0.columns.iter().map(|c| (c.name.clone(), Some(c.kind))).collect()
    }

    fn read(&self, name: &str, kind: ColumnKind) -> Result<ColumnSample, MonitorError> {
        let sample = self.profile(name)?.exact_sample().ok_or_else(|| {
            MonitorError::invalid(format!("the profile of column `{name}` no longer holds its values"))
        })?;
        Ok(ColumnSample { kind, ..sample })
    }
}

/// A categorical column declared text on one side is compared as the plan says.
fn as_kind(profile: &ColumnProfile, kind: ColumnKind) -> Cow<'_, ColumnProfile> {
    if profile.kind == kind {
        Cow::Borrowed(profile)
    } else {
        Cow::Owned(ColumnProfile { kind, ..profile.clone() })
    }
}

fn empty_side(reference: &ColumnProfile, current: &ColumnProfile) -> Result<(), NotComputable> {
    for (side, profile) in [("reference", reference), ("current", current)] {
        if profile.present() == 0 {
            let why = if profile.rows == 0 { "has no rows" } else { "has no values (all missing)" };
            return Err(NotComputable::new(format!("the {side} sample {why}")));
        }
    }
    Ok(())
}

/// Distinct values of both sides together, up to [`DISTINCT_CAP`]: a numeric profile without
/// counts per value has more than 20.
fn distinct_union(reference: &ColumnProfile, current: &ColumnProfile) -> usize {
    let distinct = match (&reference.numeric, &current.numeric, &reference.categories, &current.categories) {
        (Some(r), Some(c), _, _) => match (&r.value_counts, &c.value_counts) {
            (Some(a), Some(b)) => by_value(a, b).0.len(),
            _ => DISTINCT_CAP,
        },
        (_, _, Some(r), Some(c)) => {
            r.counts.keys().chain(c.counts.keys()).collect::<std::collections::BTreeSet<_>>().len()
        }
        _ => 0,
    };
    distinct.min(DISTINCT_CAP)
}

fn estimate(method: Method, reference: &ColumnProfile, current: &ColumnProfile) -> Result<Estimate, NotComputable> {
    let kind = reference.kind;
    if !method.accepts(kind) {
        let kinds: Vec<String> = method.column_kinds().iter().map(ToString::to_string).collect();
        return Err(NotComputable::new(format!(
            "{method} does not apply to a {kind} column; it applies to {}",
            kinds.join(" and ")
        )));
    }
    match (kind, &reference.numeric, &current.numeric, &reference.categories, &current.categories) {
        (ColumnKind::Text, ..) => Err(NotComputable::new(format!(
            "{method} needs the raw texts, and a profile keeps them only for columns of at most {MAX_EXACT_VALUES} \
             values"
        ))),
        (ColumnKind::Numeric, Some(r), Some(c), _, _) => numeric_estimate(method, r, c),
        (ColumnKind::Categorical, _, _, Some(r), Some(c)) => {
            let counts = CategoryCounts::from_counts(&r.entries(), &c.entries());
            counts_estimate(method, &counts, r.truncated || c.truncated)
        }
        _ => Err(NotComputable::new(
            "the reference and current profiles summarise the column differently (numbers on one side, strings on \
             the other)",
        )),
    }
}

/// The categorical methods on counts; `truncated` counts leave out the rarest categories.
fn counts_estimate(method: Method, counts: &CategoryCounts, truncated: bool) -> Result<Estimate, NotComputable> {
    if let Some(distance) = method.binned_distance() {
        return Ok(Estimate { outcome: categorical::distance(distance, counts)?, approximate: truncated });
    }
    let outcome = match method {
        Method::ChiSquare => categorical::chi_square(counts)?,
        Method::Z => categorical::z_test(counts)?,
        Method::GTest => categorical::g_test(counts)?,
        Method::FisherExact => categorical::fisher_exact(counts)?,
        // The permutations depend on the order of the values, which counts do not keep.
        Method::Tvd => return Ok(Estimate::approximate(categorical::total_variation(counts)?)),
        other => return Err(NotComputable::new(format!("{other} does not apply to category counts"))),
    };
    Ok(Estimate { outcome, approximate: truncated })
}

fn numeric_estimate(method: Method, r: &NumericProfile, c: &NumericProfile) -> Result<Estimate, NotComputable> {
    let points = match (&r.value_counts, &c.value_counts) {
        (Some(a), Some(b)) => Some((a.as_slice(), b.as_slice())),
        _ => None,
    };
    if let Some(distance) = method.binned_distance() {
        return match points {
            Some((a, b)) if distance == BinnedDistance::Hellinger => Ok(Estimate::exact(hellinger_by_value(a, b))),
            Some((a, b)) => {
                // Evidently bins a reference of at most 20 distinct values by value.
                let (_, reference, current) = by_value(a, b);
                Ok(Estimate::exact(counts_distance(distance, &reference, &current)?))
            }
            None => {
                same_layout(r, c)?;
                let groups = sturges_bins(r.moments.count + c.moments.count);
                let starts = r.histogram.group_starts(groups);
                let (reference, current) = (r.histogram.grouped(&starts), c.histogram.grouped(&starts));
                Ok(Estimate::approximate(counts_distance(distance, &reference, &current)?))
            }
        };
    }
    match method {
        Method::TTest => Ok(Estimate::exact(student_t_test(r.moments.sample_moments(), c.moments.sample_moments())?)),
        Method::Ks | Method::Wasserstein => {
            let (reference, current, approximate) = match points {
                Some((a, b)) => (Cdf::of_points(a), Cdf::of_points(b), false),
                None => {
                    same_layout(r, c)?;
                    (Cdf::of_histogram(&r.histogram), Cdf::of_histogram(&c.histogram), true)
                }
            };
            let (Some(reference), Some(current)) = (reference, current) else {
                return Err(NotComputable::new("a profile's histogram holds no values"));
            };
            let outcome = if method == Method::Ks {
                let d = reference.largest_gap(&current);
                let (n1, n2) = (r.moments.count as usize, c.moments.count as usize);
                Outcome::test(d, ks_asymptotic_p_value(n1, n2, d))
            } else {
                let norm = r.moments.population_std().unwrap_or(0.0).max(0.001);
                Outcome::distance(reference.wasserstein(&current) / norm)
            };
            Ok(Estimate { outcome, approximate })
        }
        Method::ChiSquare | Method::Z | Method::Tvd | Method::GTest | Method::FisherExact => match points {
            Some((a, b)) => {
                let (values, reference, current) = by_value(a, b);
                let categories = values.iter().map(|v| format!("{v}")).collect();
                counts_estimate(method, &CategoryCounts { categories, reference, current }, false)
            }
            None => Err(NotComputable::new(format!(
                "{method} counts a numeric column by value, and a profile keeps counts per value only for columns \
                 of at most 20 distinct values; use wasserstein, ks, psi or t_test"
            ))),
        },
        _ => Err(NotComputable::new(format!(
            "{method} needs the raw values, and the reference is summarised by its profile (which keeps them only \
             up to {MAX_EXACT_VALUES} values); wasserstein, ks, psi, jensenshannon or t_test work from a profile"
        ))),
    }
}

fn same_layout(r: &NumericProfile, c: &NumericProfile) -> Result<(), NotComputable> {
    if r.histogram.layout != c.histogram.layout || !r.histogram.is_consistent() || !c.histogram.is_consistent() {
        return Err(NotComputable::new(
            "the current profile is not binned in the reference's layout; build it with ColumnProfile::with_layout",
        ));
    }
    Ok(())
}

/// numpy's Sturges bin count for `n` values: ⌈log₂ n + 1⌉.
fn sturges_bins(n: u64) -> usize {
    ((n.max(1) as f64).log2() + 1.0).ceil() as usize
}

/// The union of two sides' values, sorted, with each side's count per value.
fn by_value(a: &[(f64, u64)], b: &[(f64, u64)]) -> (Vec<f64>, Vec<u64>, Vec<u64>) {
    let mut table: BTreeMap<OrderedValue, (u64, u64)> = BTreeMap::new();
    for &(v, n) in a {
        table.entry(OrderedValue::new(v)).or_default().0 += n;
    }
    for &(v, n) in b {
        table.entry(OrderedValue::new(v)).or_default().1 += n;
    }
    let values = table.keys().map(|k| k.0).collect();
    let (reference, current) = table.values().copied().unzip();
    (values, reference, current)
}

/// Evidently's numeric Hellinger distance (see [`crate::stats::binned::hellinger_numeric`]) on
/// counts per value: Sturges edges over the distinct values, densities per bin.
fn hellinger_by_value(a: &[(f64, u64)], b: &[(f64, u64)]) -> Outcome {
    let (values, _, _) = by_value(a, b);
    let edges = sturges_edges(&values);
    let bins = edges.len() - 1;
    let density = |side: &[(f64, u64)]| -> Vec<f64> {
        let mut counts = vec![0u64; bins];
        for &(v, n) in side {
            counts[edges.partition_point(|&e| e <= v).saturating_sub(1).min(bins - 1)] += n;
        }
        let total: u64 = counts.iter().sum();
        counts.iter().zip(edges.windows(2)).map(|(&c, e)| c as f64 / (e[1] - e[0]) / total as f64).collect()
    };
    let (p, q) = (density(a), density(b));
    let width = (edges[bins] - edges[0]) / bins as f64;
    let affinity: f64 = p.iter().zip(&q).map(|(&p, &q)| (p * q).sqrt() * width).sum();
    Outcome::distance((1.0 - affinity.clamp(0.0, 1.0)).sqrt())
}

fn summarise(profile: &ColumnProfile) -> SideSummary {
    let numeric = profile.numeric.as_ref().filter(|n| n.moments.count > 0);
    SideSummary {
        rows: profile.rows,
        missing: profile.missing(),
        nulls: profile.nulls,
        nans: profile.nans,
        infinities: profile.infinities,
        type_errors: profile.type_errors,
        mean: numeric.map(|n| n.moments.mean),
        std: numeric.and_then(|n| n.moments.population_std()),
        min: numeric.and_then(|n| n.min),
        max: numeric.and_then(|n| n.max),
        distinct: profile.categories.as_ref().map(|c| c.counts.len() as u64),
    }
}

fn quality(reference: &ColumnProfile, current: &ColumnProfile) -> ColumnQuality {
    let mut quality = ColumnQuality {
        missing_share: (current.rows > 0).then(|| current.missing() as f64 / current.rows as f64),
        type_error_share: (current.rows > 0 && current.kind == ColumnKind::Numeric)
            .then(|| current.type_errors as f64 / current.rows as f64),
        ..ColumnQuality::default()
    };
    match (&reference.numeric, &current.numeric, &reference.categories, &current.categories) {
        (Some(r), Some(c), _, _) => {
            let total = c.histogram.total();
            // The layout is the reference's [min, max], so the tallies are what lies outside it.
            if r.moments.count > 0 && total > 0 && r.histogram.layout == c.histogram.layout {
                quality.out_of_range_share = Some(c.histogram.outside() as f64 / total as f64);
            }
        }
        (_, _, Some(r), Some(c)) if reference.kind == ColumnKind::Categorical && c.total() > 0 => {
            let mut unseen: Vec<(&String, u64)> =
                c.counts.iter().filter(|(k, _)| !r.counts.contains_key(*k)).map(|(k, n)| (k, *n)).collect();
            quality.new_category_share = Some(unseen.iter().map(|u| u.1).sum::<u64>() as f64 / c.total() as f64);
            unseen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            quality.new_categories = unseen.into_iter().take(NEW_CATEGORY_EXAMPLES).map(|u| u.0.clone()).collect();
        }
        _ => {}
    }
    quality
}

/// The reference layout in 20 bars, plus a bar each side of it for values outside, reaching to
/// the furthest such value.
fn chart(reference: &ColumnProfile, current: &ColumnProfile) -> Option<Chart> {
    match (&reference.numeric, &current.numeric, &reference.categories, &current.categories) {
        (Some(r), Some(c), _, _) => {
            if same_layout(r, c).is_err() || r.histogram.total() + c.histogram.total() == 0 {
                return None;
            }
            let layout = r.histogram.layout;
            let starts = r.histogram.group_starts(CHART_BINS);
            let mut edges: Vec<f64> = starts.iter().map(|&i| layout.edge(i)).collect();
            let (mut ref_counts, mut cur_counts) = (r.histogram.group_sums(&starts), c.histogram.group_sums(&starts));
            if r.histogram.below.count + c.histogram.below.count > 0 {
                let lowest = [r.min, c.min].into_iter().flatten().fold(layout.lo, f64::min);
                edges.insert(0, lowest);
                ref_counts.insert(0, r.histogram.below.count);
                cur_counts.insert(0, c.histogram.below.count);
            }
            if r.histogram.above.count + c.histogram.above.count > 0 {
                edges.push([r.max, c.max].into_iter().flatten().fold(layout.hi, f64::max));
                ref_counts.push(r.histogram.above.count);
                cur_counts.push(c.histogram.above.count);
            }
            Some(Chart::Histogram { edges, reference: ref_counts, current: cur_counts })
        }
        (_, _, Some(r), Some(c)) => {
            let mut table: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            for (k, n) in &r.counts {
                table.entry(k).or_default().0 += n;
            }
            for (k, n) in &c.counts {
                table.entry(k).or_default().1 += n;
            }
            let mut ranked: Vec<(&str, (u64, u64))> = table.into_iter().collect();
            ranked.sort_by(|a, b| (b.1 .0 + b.1 .1).cmp(&(a.1 .0 + a.1 .1)).then(a.0.cmp(b.0)));
            ranked.truncate(CHART_CATEGORIES);
            Some(Chart::Categories {
                categories: ranked.iter().map(|(k, _)| k.to_string()).collect(),
                reference: ranked.iter().map(|(_, (r, _))| *r).collect(),
                current: ranked.iter().map(|(_, (_, c))| *c).collect(),
            })
        }
        _ => None,
    }
}
