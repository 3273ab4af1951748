//! The named drift methods (Evidently's stattest names), what each applies to, its default
//! threshold and drift rule, Evidently's default choice per column, and one entry point,
//! [`compare`].
//!
//! Thresholds and comparison directions are those of Evidently's stattests
//! (`legacy/calculations/stattests/*.py`): p-value tests drift when the p-value is below the
//! threshold (`ks` and `cramer_von_mises` when at most the threshold), distances when at least
//! the threshold (`ed` and `abs_text_content_drift` when above it).

use super::binned::{self, BinnedDistance};
use super::categorical::{self, CategoryCounts, CategorySamples};
use super::{numeric, text, NotComputable, Outcome};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kind of a column, as Evidently's `ColumnType` (numerical, categorical, text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
    Text,
}

impl std::fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Text => "text",
        })
    }
}

/// Whether a method's score is a p-value (small = drift) or a distance (large = drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    PValue,
    Distance,
}

/// A drift method, named as Evidently names its stattest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "ks")]
    Ks,
    /// Evidently's `wasserstein` is the Wasserstein distance normed by the reference's standard
    /// deviation.
    #[serde(rename = "wasserstein")]
    Wasserstein,
    #[serde(rename = "psi")]
    Psi,
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    #[serde(rename = "hellinger")]
    Hellinger,
    #[serde(rename = "kl_div")]
    KlDiv,
    #[serde(rename = "anderson")]
    Anderson,
    #[serde(rename = "cramer_von_mises")]
    CramerVonMises,
    #[serde(rename = "ed")]
    EnergyDistance,
    #[serde(rename = "t_test")]
    TTest,
    #[serde(rename = "mannw")]
    MannWhitney,
    #[serde(rename = "chisquare")]
    ChiSquare,
    #[serde(rename = "z")]
    Z,
    #[serde(rename = "TVD")]
    Tvd,
    #[serde(rename = "g_test")]
    GTest,
    #[serde(rename = "fisher_exact")]
    FisherExact,
    #[serde(rename = "perc_text_content_drift")]
    PercTextContentDrift,
    #[serde(rename = "abs_text_content_drift")]
    AbsTextContentDrift,
}

/// A name that is not a method's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown drift method {name:?}; valid methods: {}", Method::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownMethod {
    pub name: String,
}

impl Method {
    pub const ALL: [Method; 18] = [
        Method::Ks,
        Method::Wasserstein,
        Method::Psi,
        Method::JensenShannon,
        Method::Hellinger,
        Method::KlDiv,
        Method::Anderson,
        Method::CramerVonMises,
        Method::EnergyDistance,
        Method::TTest,
        Method::MannWhitney,
        Method::ChiSquare,
        Method::Z,
        Method::Tvd,
        Method::GTest,
        Method::FisherExact,
        Method::PercTextContentDrift,
        Method::AbsTextContentDrift,
    ];

    /// Evidently's name of the stattest.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::Wasserstein => "wasserstein",
            Method::Psi => "psi",
            Method::JensenShannon => "jensenshannon",
            Method::Hellinger => "hellinger",
            Method::KlDiv => "kl_div",
            Method::Anderson => "anderson",
            Method::CramerVonMises => "cramer_von_mises",
            Method::EnergyDistance => "ed",
            Method::TTest => "t_test",
            Method::MannWhitney => "mannw",
            Method::ChiSquare => "chisquare",
            Method::Z => "z",
            Method::Tvd => "TVD",
            Method::GTest => "g_test",
            Method::FisherExact => "fisher_exact",
            Method::PercTextContentDrift => "perc_text_content_drift",
            Method::AbsTextContentDrift => "abs_text_content_drift",
        }
    }

    /// The method of an Evidently stattest name (exact spelling).
    pub fn from_name(name: &str) -> Result<Method, UnknownMethod> {
        Method::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| UnknownMethod { name: name.to_string() })
    }

    /// The column kinds Evidently allows the stattest for (`allowed_feature_types`).
    /// [`compare`] also accepts numeric values for the categorical tests, counted by value, as
    /// Evidently's default choice applies them to numeric columns with few values.
    pub fn column_kinds(self) -> &'static [ColumnKind] {
        match self {
            Method::Ks
            | Method::Wasserstein
            | Method::Anderson
            | Method::CramerVonMises
            | Method::EnergyDistance
            | Method::TTest
            | Method::MannWhitney => &[ColumnKind::Numeric],
            Method::Psi | Method::JensenShannon | Method::Hellinger | Method::KlDiv => {
                &[ColumnKind::Categorical, ColumnKind::Numeric]
            }
            Method::ChiSquare | Method::Z | Method::Tvd | Method::GTest | Method::FisherExact => {
                &[ColumnKind::Categorical]
            }
            Method::PercTextContentDrift | Method::AbsTextContentDrift => &[ColumnKind::Text],
        }
    }

    /// Whether [`compare`] computes this method for a column of this kind.
    pub fn accepts(self, kind: ColumnKind) -> bool {
        self.column_kinds().contains(&kind) || (kind == ColumnKind::Numeric && self.counts_categories())
    }

    /// The tests on category counts.
    fn counts_categories(self) -> bool {
        matches!(self, Method::ChiSquare | Method::Z | Method::Tvd | Method::GTest | Method::FisherExact)
    }

    /// Whether [`score`] is a p-value or a distance for this method. The percentile text method's
    /// score is the share of random classifiers at least as good as the domain classifier, a
    /// p-value of sorts.
    pub fn score_kind(self) -> ScoreKind {
        match self {
            Method::Ks
            | Method::Anderson
            | Method::CramerVonMises
            | Method::TTest
            | Method::MannWhitney
            | Method::ChiSquare
            | Method::Z
            | Method::Tvd
            | Method::GTest
            | Method::FisherExact
            | Method::PercTextContentDrift => ScoreKind::PValue,
            Method::Wasserstein
            | Method::Psi
            | Method::JensenShannon
            | Method::Hellinger
            | Method::KlDiv
            | Method::EnergyDistance
            | Method::AbsTextContentDrift => ScoreKind::Distance,
        }
    }

    /// Evidently's `default_threshold` of the stattest.
    pub fn default_threshold(self) -> f64 {
        match self {
            Method::Ks | Method::TTest | Method::MannWhitney | Method::ChiSquare | Method::Z => 0.05,
            Method::Wasserstein
            | Method::Psi
            | Method::JensenShannon
            | Method::Hellinger
            | Method::KlDiv
            | Method::Anderson
            | Method::CramerVonMises
            | Method::EnergyDistance
            | Method::Tvd
            | Method::GTest
            | Method::FisherExact => 0.1,
            Method::PercTextContentDrift => 0.95,
            Method::AbsTextContentDrift => 0.55,
        }
    }

    /// Evidently's drift decision for a [`score`]: `p ≤ t` for `ks` and `cramer_von_mises`,
    /// `p < t` for the other tests, `d ≥ t` for the distances but `d > t` for `ed` and
    /// `abs_text_content_drift`. For `perc_text_content_drift` the threshold is Evidently's
    /// confidence (0.95): drift when the share of random classifiers at least as good is below
    /// 1 − t. A NaN score never drifts.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            Method::Ks | Method::CramerVonMises => score <= threshold,
            Method::Anderson
            | Method::TTest
            | Method::MannWhitney
            | Method::ChiSquare
            | Method::Z
            | Method::Tvd
            | Method::GTest
            | Method::FisherExact => score < threshold,
            Method::Wasserstein | Method::Psi | Method::JensenShannon | Method::Hellinger | Method::KlDiv => {
                score >= threshold
            }
            Method::EnergyDistance | Method::AbsTextContentDrift => score > threshold,
            Method::PercTextContentDrift => score < 1.0 - threshold,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Method, UnknownMethod> {
        Method::from_name(s)
    }
}

/// The reference sample size above which Evidently picks distances instead of tests.
pub const MAX_ROWS_FOR_TESTS: usize = 1000;
/// A numeric column with at most this many distinct values (both samples together) is tested
/// like a categorical one.
pub const MAX_VALUES_NUMERIC_AS_CATEGORICAL: usize = 5;

/// Evidently's `_get_default_stattest`. `reference_rows`: the reference sample's size;
/// `n_unique_union`: distinct values of both samples together.
///
/// - text: `abs_text_content_drift` above 1000 reference rows, else `perc_text_content_drift`;
/// - up to 1000 rows: numeric with more than 5 values → `ks`; otherwise (categorical, or
///   numeric with at most 5 values) `chisquare` above 2 values, else `z`;
/// - above 1000 rows: numeric with more than 5 values → `wasserstein`, else `jensenshannon`.
pub fn default_method(kind: ColumnKind, reference_rows: usize, n_unique_union: usize) -> Method {
    let few_values = n_unique_union <= MAX_VALUES_NUMERIC_AS_CATEGORICAL;
    match kind {
        ColumnKind::Text if reference_rows > MAX_ROWS_FOR_TESTS => Method::AbsTextContentDrift,
        ColumnKind::Text => Method::PercTextContentDrift,
        _ if reference_rows <= MAX_ROWS_FOR_TESTS => {
            if kind == ColumnKind::Numeric && !few_values {
                Method::Ks
            } else if n_unique_union > 2 {
                Method::ChiSquare
            } else {
                Method::Z
            }
        }
        ColumnKind::Numeric if !few_values => Method::Wasserstein,
        _ => Method::JensenShannon,
    }
}

/// One column's values in one sample, nulls already removed.
#[derive(Debug, Clone, Copy)]
pub enum ColumnValues<'a> {
    Numeric(&'a [f64]),
    Categorical(&'a [&'a str]),
    Text(&'a [&'a str]),
}

impl ColumnValues<'_> {
    pub fn kind(&self) -> ColumnKind {
        match self {
            ColumnValues::Numeric(_) => ColumnKind::Numeric,
            ColumnValues::Categorical(_) => ColumnKind::Categorical,
            ColumnValues::Text(_) => ColumnKind::Text,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Numeric(v) => v.len(),
            ColumnValues::Categorical(v) | ColumnValues::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The seed of the text domain classifier in [`compare`] (Evidently's `random_state=42`).
pub const TEXT_SEED: u64 = 42;

/// Computes `method` on a reference and a current sample of the same column kind. Numeric
/// values given to a categorical test are counted by value; a method that does not apply to the
/// column kind, or samples of different kinds, give [`NotComputable`].
pub fn compare(method: Method, reference: ColumnValues, current: ColumnValues) -> Result<Outcome, NotComputable> {
    let kind = reference.kind();
    if current.kind() != kind {
        return Err(NotComputable::new(format!(
            "the reference column is {:?} and the current one {:?}",
            kind,
            current.kind()
        )));
    }
    if !method.accepts(kind) {
        return Err(NotComputable::new(format!(
            "{method} does not apply to a {} column; it applies to {}",
            kind,
            method.column_kinds().iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" and ")
        )));
    }
    match (reference, current) {
        (ColumnValues::Numeric(r), ColumnValues::Numeric(c)) => compare_numeric(method, r, c),
        (ColumnValues::Categorical(r), ColumnValues::Categorical(c)) => {
            compare_samples(method, &CategorySamples::from_values(r, c))
        }
        (ColumnValues::Text(r), ColumnValues::Text(c)) => text::domain_classifier(r, c, TEXT_SEED),
        _ => Err(NotComputable::new("the reference and current columns differ in kind")),
    }
}

impl Method {
    /// The distance a binned method computes on two distributions.
    pub fn binned_distance(self) -> Option<BinnedDistance> {
        match self {
            Method::Psi => Some(BinnedDistance::Psi),
            Method::JensenShannon => Some(BinnedDistance::JensenShannon),
            Method::Hellinger => Some(BinnedDistance::Hellinger),
            Method::KlDiv => Some(BinnedDistance::KlDiv),
            _ => None,
        }
    }
}

fn compare_numeric(method: Method, reference: &[f64], current: &[f64]) -> Result<Outcome, NotComputable> {
    if let Some(distance) = method.binned_distance() {
        return binned::numeric_distance(distance, reference, current);
    }
    match method {
        Method::Ks => numeric::ks(reference, current),
        Method::Wasserstein => numeric::wasserstein_normed(reference, current),
        Method::Anderson => numeric::anderson(reference, current),
        Method::CramerVonMises => numeric::cramer_von_mises(reference, current),
        Method::EnergyDistance => numeric::energy_distance(reference, current),
        Method::TTest => numeric::t_test(reference, current),
        Method::MannWhitney => numeric::mann_whitney_less(reference, current),
        _ => compare_samples(method, &CategorySamples::from_numeric(reference, current)?),
    }
}

fn compare_samples(method: Method, samples: &CategorySamples) -> Result<Outcome, NotComputable> {
    let counts: &CategoryCounts = &samples.counts;
    if let Some(distance) = method.binned_distance() {
        return categorical::distance(distance, counts);
    }
    match method {
        Method::ChiSquare => categorical::chi_square(counts),
        Method::Z => categorical::z_test(counts),
        Method::Tvd => categorical::total_variation_samples(samples),
        Method::GTest => categorical::g_test(counts),
        Method::FisherExact => categorical::fisher_exact(counts),
        other => Err(NotComputable::new(format!("{other} does not apply to category counts"))),
    }
}

/// The score Evidently compares with the threshold: the p-value for tests, the statistic for
/// distances (NaN for a test outcome without a p-value).
pub fn score(outcome: &Outcome, method: Method) -> f64 {
    match method.score_kind() {
        ScoreKind::PValue => outcome.p_value.unwrap_or(f64::NAN),
        ScoreKind::Distance => outcome.statistic,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for method in Method::ALL {
            assert_eq!(Method::from_name(method.name()).unwrap(), method);
            assert_eq!(method.to_string().parse::<Method>().unwrap(), method);
            let json = serde_json::to_string(&method).unwrap();
            assert_eq!(json, format!("\"{}\"", method.name()));
            assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), method);
        }
        let error = "tvd".parse::<Method>().unwrap_err().to_string();
        assert!(error.contains("\"tvd\"") && error.contains("TVD") && error.contains("jensenshannon"), "{error}");
    }

    #[test]
    fn default_choice_at_its_cut_offs() {
        use ColumnKind::*;
        assert_eq!(default_method(Numeric, 1000, 6), Method::Ks);
        assert_eq!(default_method(Numeric, 1000, 5), Method::ChiSquare);
        assert_eq!(default_method(Numeric, 1000, 3), Method::ChiSquare);
        assert_eq!(default_method(Numeric, 1000, 2), Method::Z);
        assert_eq!(default_method(Numeric, 1001, 6), Method::Wasserstein);
        assert_eq!(default_method(Numeric, 1001, 5), Method::JensenShannon);
        assert_eq!(default_method(Categorical, 1000, 3), Method::ChiSquare);
        assert_eq!(default_method(Categorical, 1000, 2), Method::Z);
        assert_eq!(default_method(Categorical, 1000, 50), Method::ChiSquare);
        assert_eq!(default_method(Categorical, 1001, 2), Method::JensenShannon);
        assert_eq!(default_method(Text, 1000, 900), Method::PercTextContentDrift);
        assert_eq!(default_method(Text, 1001, 900), Method::AbsTextContentDrift);
    }

    #[test]
    fn drift_directions() {
        assert!(Method::Ks.drifted(0.05, 0.05));
        assert!(Method::CramerVonMises.drifted(0.1, 0.1));
        for m in [Method::Anderson, Method::TTest, Method::MannWhitney, Method::ChiSquare, Method::Z, Method::Tvd] {
            assert!(!m.drifted(0.05, 0.05), "{m}");
            assert!(m.drifted(0.049, 0.05), "{m}");
        }
        assert!(!Method::GTest.drifted(0.1, 0.1) && !Method::FisherExact.drifted(0.1, 0.1));
        for m in [Method::Wasserstein, Method::Psi, Method::JensenShannon, Method::Hellinger, Method::KlDiv] {
            assert!(m.drifted(0.1, 0.1), "{m}");
            assert!(!m.drifted(0.099, 0.1), "{m}");
        }
        assert!(!Method::EnergyDistance.drifted(0.1, 0.1) && Method::EnergyDistance.drifted(0.11, 0.1));
        assert!(!Method::AbsTextContentDrift.drifted(0.55, 0.55) && Method::AbsTextContentDrift.drifted(0.56, 0.55));
        assert!(Method::PercTextContentDrift.drifted(0.01, 0.95) && !Method::PercTextContentDrift.drifted(0.2, 0.95));
        for m in Method::ALL {
            assert!(!m.drifted(f64::NAN, m.default_threshold()), "{m}");
        }
    }

    #[test]
    fn thresholds_and_kinds() {
        assert_eq!(Method::Ks.default_threshold(), 0.05);
        assert_eq!(Method::Psi.default_threshold(), 0.1);
        assert_eq!(Method::GTest.default_threshold(), 0.1);
        assert_eq!(Method::AbsTextContentDrift.default_threshold(), 0.55);
        assert_eq!(Method::ChiSquare.score_kind(), ScoreKind::PValue);
        assert_eq!(Method::Tvd.score_kind(), ScoreKind::PValue);
        assert_eq!(Method::JensenShannon.score_kind(), ScoreKind::Distance);
        assert!(Method::ChiSquare.accepts(ColumnKind::Numeric));
        assert!(!Method::Ks.accepts(ColumnKind::Categorical));
        assert!(!Method::Psi.accepts(ColumnKind::Text));
    }

    #[test]
    fn compare_refuses_what_does_not_apply() {
        let reference = ["a", "b"];
        let current = ["a"];
        let error = compare(Method::Ks, ColumnValues::Categorical(&reference), ColumnValues::Categorical(&current))
            .unwrap_err();
        assert!(error.reason.contains("ks does not apply to a categorical column"), "{}", error.reason);
        assert!(compare(Method::Psi, ColumnValues::Text(&reference), ColumnValues::Text(&current)).is_err());
        assert!(compare(Method::ChiSquare, ColumnValues::Numeric(&[1.0]), ColumnValues::Categorical(&current)).is_err());
    }

    #[test]
    fn compare_counts_numbers_by_value_and_refuses_empty_sides() {
        let numeric =
            compare(Method::ChiSquare, ColumnValues::Numeric(&[1.0, 2.0, 2.0]), ColumnValues::Numeric(&[1.0, 2.0]))
                .unwrap();
        let categorical = compare(
            Method::ChiSquare,
            ColumnValues::Categorical(&["1", "2", "2"]),
            ColumnValues::Categorical(&["1", "2"]),
        )
        .unwrap();
        assert_eq!(numeric, categorical);
        let empty: [&str; 0] = [];
        for method in [Method::ChiSquare, Method::Z, Method::Tvd, Method::GTest, Method::FisherExact, Method::Psi] {
            assert!(compare(method, ColumnValues::Categorical(&empty), ColumnValues::Categorical(&["a"])).is_err());
            assert!(compare(method, ColumnValues::Numeric(&[1.0]), ColumnValues::Numeric(&[])).is_err());
        }
        assert!(compare(Method::AbsTextContentDrift, ColumnValues::Text(&empty), ColumnValues::Text(&["a b"])).is_err());
    }

    #[test]
    fn compare_runs_the_domain_classifier_on_text() {
        let reference: Vec<String> = (0..60).map(|i| format!("rain cloud storm {} wind", i % 7)).collect();
        let current: Vec<String> = (0..60).map(|i| format!("stock bond market {} price", i % 5)).collect();
        let r: Vec<&str> = reference.iter().map(String::as_str).collect();
        let c: Vec<&str> = current.iter().map(String::as_str).collect();
        let method = Method::AbsTextContentDrift;
        let outcome = compare(method, ColumnValues::Text(&r), ColumnValues::Text(&c)).unwrap();
        assert!(method.drifted(score(&outcome, method), method.default_threshold()));
        let method = Method::PercTextContentDrift;
        assert!(method.drifted(score(&outcome, method), method.default_threshold()));
    }

    #[test]
    fn score_picks_p_value_or_statistic() {
        let test = Outcome::test(3.0, 0.2);
        assert_eq!(score(&test, Method::ChiSquare), 0.2);
        assert_eq!(score(&Outcome::distance(0.3), Method::Psi), 0.3);
        assert!(score(&Outcome::distance(0.3), Method::Ks).is_nan());
    }
}
