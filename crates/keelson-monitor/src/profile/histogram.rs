//! Equal-width bins over a layout fixed by the reference, with the values that fall outside it
//! kept as two tallies (count and sum), so windows binned alike merge by adding counts and
//! values outside the reference range are neither lost nor smeared into the edge bins.

use serde::{Deserialize, Serialize};

/// Bins of a reference layout: fine enough that coarsening to Sturges' or a chart's bin count
/// moves each edge by at most 1/1000 of the range.
pub const LAYOUT_BINS: usize = 1000;

/// `bins` equal bins over `[lo, hi]`; a constant (or empty) reference has `lo == hi` and one
/// bin holding exactly that value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub lo: f64,
    pub hi: f64,
    pub bins: usize,
}

/// Where a value falls in a layout.
enum Place {
    Below,
    Bin(usize),
    Above,
}

impl Layout {
    /// The reference's own range; finite values only.
    pub fn of(values: &[f64]) -> Layout {
        let lo = values.iter().copied().reduce(f64::min).unwrap_or(0.0);
        let hi = values.iter().copied().reduce(f64::max).unwrap_or(0.0);
        let bins = if hi > lo { LAYOUT_BINS } else { 1 };
        Layout { lo, hi, bins }
    }

    pub fn is_valid(&self) -> bool {
        self.lo.is_finite() && self.hi.is_finite() && self.lo <= self.hi && self.bins >= 1
    }

    fn width(&self) -> f64 {
        (self.hi - self.lo) / self.bins as f64
    }

    /// The left edge of bin `i`; `i == bins` gives `hi` exactly.
    pub fn edge(&self, i: usize) -> f64 {
        if i >= self.bins {
            self.hi
        } else {
            self.lo + self.width() * i as f64
        }
    }

    fn place(&self, value: f64) -> Place {
        if value < self.lo {
            Place::Below
        } else if value > self.hi {
            Place::Above
        } else if self.hi > self.lo {
            Place::Bin((((value - self.lo) / self.width()) as usize).min(self.bins - 1))
        } else {
            Place::Bin(0)
        }
    }
}

/// Values outside the layout on one side: how many, and their sum (their mean stands for them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub count: u64,
    pub sum: f64,
}

impl Tally {
    fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
    }

    fn merge(&mut self, other: &Tally) {
        self.count += other.count;
        self.sum += other.sum;
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedHistogram {
    pub layout: Layout,
    pub counts: Vec<u64>,
    #[serde(default, skip_serializing_if = "Tally::is_empty")]
    pub below: Tally,
    #[serde(default, skip_serializing_if = "Tally::is_empty")]
    pub above: Tally,
}

impl FixedHistogram {
    pub fn new(layout: Layout, values: &[f64]) -> FixedHistogram {
        let mut histogram =
            FixedHistogram { layout, counts: vec![0; layout.bins], below: Tally::default(), above: Tally::default() };
        for &value in values {
            match layout.place(value) {
                Place::Below => histogram.below.add(value),
                Place::Bin(i) => histogram.counts[i] += 1,
                Place::Above => histogram.above.add(value),
            }
        }
        histogram
    }

    /// Whether the counts fit the layout (a profile read back from JSON may not).
    pub fn is_consistent(&self) -> bool {
        self.layout.is_valid() && self.counts.len() == self.layout.bins
    }

    /// Adds `other`'s counts; the caller has checked that the layouts are equal.
    pub(crate) fn merge(&mut self, other: &FixedHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.below.merge(&other.below);
        self.above.merge(&other.above);
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.below.count + self.above.count
    }

    pub fn outside(&self) -> u64 {
        self.below.count + self.above.count
    }

    /// The first bin of each of `groups` contiguous groups of bins (at most one group a bin),
    /// then `bins`.
    pub(crate) fn group_starts(&self, groups: usize) -> Vec<usize> {
        let bins = self.layout.bins;
        let groups = groups.clamp(1, bins);
        (0..=groups).map(|g| g * bins / groups).collect()
    }

    /// Counts inside the layout per group of [`group_starts`](Self::group_starts).
    pub(crate) fn group_sums(&self, starts: &[usize]) -> Vec<u64> {
        starts.windows(2).map(|w| self.counts.get(w[0]..w[1]).map_or(0, |bins| bins.iter().sum())).collect()
    }

    /// Counts per group of [`group_starts`](Self::group_starts), the values below the layout
    /// added to the first group and those above it to the last, as binning over the combined
    /// range would put them in the outer bins. A degenerate layout (a constant reference) has
    /// no bins to widen, so values below and above it get bins of their own.
    pub(crate) fn grouped(&self, starts: &[usize]) -> Vec<u64> {
        let mut counts = self.group_sums(starts);
        if self.layout.lo == self.layout.hi {
            counts.insert(0, self.below.count);
            counts.push(self.above.count);
            return counts;
        }
        if let Some(first) = counts.first_mut() {
            *first += self.below.count;
        }
        if let Some(last) = counts.last_mut() {
            *last += self.above.count;
        }
        counts
    }
}

/// A cumulative distribution function made of jumps and straight pieces: bins spread their
/// mass uniformly, tallies and single values are point masses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cdf {
    knots: Vec<Knot>,
}

/// F just left and just right of `x`; F is linear between consecutive knots.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Knot {
    x: f64,
    left: f64,
    right: f64,
}

impl Cdf {
    /// None when the histogram holds nothing.
    pub(crate) fn of_histogram(histogram: &FixedHistogram) -> Option<Cdf> {
        let total = histogram.total();
        if total == 0 || !histogram.is_consistent() {
            return None;
        }
        let share = |n: u64| n as f64 / total as f64;
        let mut cdf = Cdf { knots: Vec::with_capacity(histogram.counts.len() + 3) };
        let mut seen = 0u64;
        if let Some(mean) = histogram.below.mean() {
            seen += histogram.below.count;
            cdf.push(mean, 0.0, share(seen));
        }
        for (i, &count) in histogram.counts.iter().enumerate() {
            cdf.push(histogram.layout.edge(i), share(seen), share(seen));
            seen += count;
        }
        cdf.push(histogram.layout.hi, share(seen), share(seen));
        if let Some(mean) = histogram.above.mean() {
            cdf.push(mean, share(seen), 1.0);
        }
        Some(cdf)
    }

    /// Point masses (value, count), sorted by value; None when they hold nothing.
    pub(crate) fn of_points(points: &[(f64, u64)]) -> Option<Cdf> {
        let total: u64 = points.iter().map(|p| p.1).sum();
        if total == 0 {
            return None;
        }
        let mut cdf = Cdf { knots: Vec::with_capacity(points.len()) };
        let mut seen = 0u64;
        for &(x, count) in points {
            let left = seen as f64 / total as f64;
            seen += count;
            cdf.push(x, left, seen as f64 / total as f64);
        }
        Some(cdf)
    }

    /// A knot at or left of the last one (equal edges of a degenerate layout, or a tally's mean
    /// rounded onto an edge) joins it as one jump.
    fn push(&mut self, x: f64, left: f64, right: f64) {
        match self.knots.last_mut() {
            Some(last) if x <= last.x => last.right = right,
            _ => self.knots.push(Knot { x, left, right }),
        }
    }

    /// (F(x−), F(x+)).
    fn at(&self, x: f64) -> (f64, f64) {
        let i = self.knots.partition_point(|k| k.x < x);
        match (i.checked_sub(1).and_then(|j| self.knots.get(j)), self.knots.get(i)) {
            (_, Some(k)) if k.x == x => (k.left, k.right),
            (None, _) => (0.0, 0.0),
            (Some(_), None) => (1.0, 1.0),
            (Some(a), Some(b)) => {
                let f = a.right + (b.left - a.right) * (x - a.x) / (b.x - a.x);
                (f, f)
            }
        }
    }

    /// Every knot of either function, sorted, once.
    fn breakpoints(&self, other: &Cdf) -> Vec<f64> {
        let mut xs: Vec<f64> = self.knots.iter().chain(&other.knots).map(|k| k.x).collect();
        xs.sort_unstable_by(f64::total_cmp);
        xs.dedup();
        xs
    }

    /// ∫ |F_self − F_other| dx, the Wasserstein-1 distance; the gap is linear between
    /// breakpoints, so each piece integrates in closed form.
    pub(crate) fn wasserstein(&self, other: &Cdf) -> f64 {
        let xs = self.breakpoints(other);
        xs.windows(2)
            .map(|w| {
                let start = self.at(w[0]).1 - other.at(w[0]).1;
                let end = self.at(w[1]).0 - other.at(w[1]).0;
                let width = w[1] - w[0];
                let (a, b) = (start.abs(), end.abs());
                if start * end >= 0.0 {
                    width * (a + b) / 2.0
                } else {
                    // The gap crosses zero: two triangles.
                    width * (a * a + b * b) / (2.0 * (a + b))
                }
            })
            .sum()
    }

    /// sup |F_self − F_other|, reached at a breakpoint on one side of it.
    pub(crate) fn largest_gap(&self, other: &Cdf) -> f64 {
        self.breakpoints(other)
            .into_iter()
            .map(|x| {
                let (a, b) = (self.at(x), other.at(x));
                (a.0 - b.0).abs().max((a.1 - b.1).abs())
            })
            .fold(0.0, f64::max)
    }
}
