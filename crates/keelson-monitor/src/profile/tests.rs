#![allow(clippy::unwrap_used)]

use super::*;
use crate::drift::{compare_column, compare_sources, ColumnOptions, DriftOptions, InMemory};
use crate::stats::method::Method;
use std::collections::BTreeMap;

/// xorshift64* with Box–Muller normals: seeded, so every run sees the same data.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn normals(n: usize, shift: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n).map(|_| rng.normal() + shift).collect()
}

fn numeric(name: &str, values: &[f64]) -> ColumnSample {
    ColumnSample::numeric(name, values.iter().map(|v| Some(*v)))
}

/// Categories with skewed frequencies; `tilt` moves mass toward the later ones.
fn categories(n: usize, tilt: f64, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let u = rng.uniform().powf(1.0 + tilt);
            format!("c{:02}", (u * u * 30.0) as usize)
        })
        .collect()
}

fn strings(name: &str, values: &[String]) -> ColumnSample {
    ColumnSample::strings(name, ColumnKind::Categorical, values.iter().map(|v| Some(v.clone())))
}

fn with_method(method: Method) -> DriftOptions {
    DriftOptions { numeric_method: Some(method), categorical_method: Some(method), ..DriftOptions::default() }
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    a == b || (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

/// The measured gaps of the histogram estimates (shift in σ, method, exact, from profiles).
#[test]
fn large_numeric_columns_match_the_raw_path_within_measured_tolerances() {
    let reference = numeric("x", &normals(200_000, 0.0, 1));
    let reference_profile = ColumnProfile::reference(&reference);
    assert!(reference_profile.values.is_none());
    // The last one also widens the spread, so the current range passes the reference's on both
    // sides and the combined range Evidently bins over differs from the stored layout.
    for (shift, scale) in [(0.0, 1.0), (0.05, 1.0), (0.2, 1.0), (0.2, 1.25)] {
        let values: Vec<f64> = normals(150_000, 0.0, 2).into_iter().map(|v| v * scale + shift).collect();
        let current = numeric("x", &values);
        let current_profile = ColumnProfile::with_layout(&current, &reference_profile);
        let default = compare_profiles(&reference_profile, &current_profile, &DriftOptions::default());
        assert_eq!(default.method, Method::Wasserstein);
        // (method, absolute tolerance on the statistic). Measured worst gaps over these four
        // cases: Wasserstein 8.8e-6, PSI 3.7e-4, JS 1.6e-6, Hellinger 1.5e-5, KL 2.9e-5, KS D 1.3e-4
        // (all 0 for the binned distances while the current range stays inside the reference's).
        let tolerances = [
            (Method::Wasserstein, 0.005),
            (Method::Psi, 1e-3),
            (Method::JensenShannon, 1e-4),
            (Method::Hellinger, 1e-4),
            (Method::KlDiv, 1e-4),
            (Method::Ks, 5e-4),
            (Method::TTest, 1e-9),
        ];
        for (method, tolerance) in tolerances {
            let options = with_method(method);
            let exact = compare_column(&reference, &current, &options);
            let estimate = compare_profiles(&reference_profile, &current_profile, &options);
            let (e, a) = (exact.statistic.unwrap(), estimate.statistic.unwrap());
            eprintln!(
                "shift {shift}σ scale {scale} {method}: exact {e:.6} profile {a:.6} (Δ {:.2e}); score {:.6e} vs {:.6e}",
                (a - e).abs(),
                exact.score.unwrap(),
                estimate.score.unwrap()
            );
            assert_eq!(estimate.drifted, exact.drifted, "{method} at {shift}σ");
            assert_eq!(estimate.approximate, method != Method::TTest, "{method}");
            if method == Method::TTest {
                assert!(close(a, e, 1e-9), "{method}: {a} vs {e}");
                assert!((estimate.p_value.unwrap() - exact.p_value.unwrap()).abs() < 1e-9);
            } else {
                assert!((a - e).abs() <= tolerance, "{method} at {shift}σ: {a} vs {e}");
            }
            assert_eq!(estimate.quality, exact.quality, "out-of-range and missing shares are exact");
            assert_eq!(estimate.reference.rows, exact.reference.rows);
            assert!(close(estimate.current.std.unwrap(), exact.current.std.unwrap(), 1e-12));
        }
    }
}

#[test]
fn out_of_range_share_is_exact() {
    let reference = numeric("x", &normals(50_000, 0.0, 3));
    let current = numeric("x", &normals(40_000, 1.5, 4));
    let profile = ColumnProfile::reference(&reference);
    let drift = compare_profiles(&profile, &ColumnProfile::with_layout(&current, &profile), &DriftOptions::default());
    let exact = compare_column(&reference, &current, &DriftOptions::default());
    assert!(exact.quality.out_of_range_share.unwrap() > 0.001);
    assert_eq!(drift.quality.out_of_range_share, exact.quality.out_of_range_share);
    assert!(drift.drifted && exact.drifted);
}

#[test]
fn categorical_tests_from_counts_equal_the_raw_ones() {
    let reference = strings("c", &categories(20_000, 0.0, 5));
    let mut current_values = categories(15_000, 0.3, 6);
    current_values.extend(["brand new".to_string(), "brand new".to_string(), "also new".to_string()]);
    let current = strings("c", &current_values);
    let reference_profile = ColumnProfile::reference(&reference);
    let current_profile = ColumnProfile::with_layout(&current, &reference_profile);
    for method in [
        Method::ChiSquare,
        Method::Z,
        Method::GTest,
        Method::Psi,
        Method::JensenShannon,
        Method::Hellinger,
        Method::KlDiv,
        Method::Tvd,
    ] {
        let options = with_method(method);
        let exact = compare_column(&reference, &current, &options);
        let estimate = compare_profiles(&reference_profile, &current_profile, &options);
        assert!(close(estimate.statistic.unwrap(), exact.statistic.unwrap(), 1e-12), "{method}");
        if method != Method::Tvd {
            assert_eq!(estimate.p_value.is_some(), exact.p_value.is_some(), "{method}");
            if let (Some(a), Some(e)) = (estimate.p_value, exact.p_value) {
                assert!((a - e).abs() <= 1e-12, "{method}: {a} vs {e}");
            }
            assert_eq!(estimate.drifted, exact.drifted, "{method}");
        }
        assert_eq!(estimate.approximate, method == Method::Tvd, "{method}");
        assert_eq!(estimate.quality.new_category_share, exact.quality.new_category_share);
        assert_eq!(estimate.chart, exact.chart);
    }
    let default = compare_profiles(&reference_profile, &current_profile, &DriftOptions::default());
    assert_eq!(default.method, Method::JensenShannon);
    assert_eq!(default.quality.new_categories, ["brand new", "also new"]);

    let coin = |n: usize, p: f64, seed: u64| -> Vec<String> {
        let mut rng = Rng(seed);
        (0..n).map(|_| if rng.uniform() < p { "yes".to_string() } else { "no".to_string() }).collect()
    };
    let (reference, current) = (strings("b", &coin(30_000, 0.3, 7)), strings("b", &coin(12_000, 0.32, 8)));
    let reference_profile = ColumnProfile::reference(&reference);
    let current_profile = ColumnProfile::with_layout(&current, &reference_profile);
    for method in [Method::FisherExact, Method::Z] {
        let options = with_method(method);
        let exact = compare_column(&reference, &current, &options);
        let estimate = compare_profiles(&reference_profile, &current_profile, &options);
        assert!(close(estimate.statistic.unwrap(), exact.statistic.unwrap(), 1e-12), "{method}");
        assert!((estimate.p_value.unwrap() - exact.p_value.unwrap()).abs() <= 1e-12, "{method}");
    }
}

#[test]
fn numeric_columns_of_few_values_are_compared_exactly_by_value() {
    let flags = |n: usize, p: f64, seed: u64| -> Vec<f64> {
        let mut rng = Rng(seed);
        (0..n).map(|_| (rng.uniform() * 3.0 * p).floor().min(2.0)).collect()
    };
    let reference = numeric("f", &flags(30_000, 1.0, 9));
    let current = numeric("f", &flags(20_000, 0.9, 10));
    let reference_profile = ColumnProfile::reference(&reference);
    let current_profile = ColumnProfile::with_layout(&current, &reference_profile);
    let default = compare_profiles(&reference_profile, &current_profile, &DriftOptions::default());
    assert_eq!(default.method, Method::JensenShannon);
    for method in [
        Method::JensenShannon,
        Method::Psi,
        Method::Hellinger,
        Method::KlDiv,
        Method::ChiSquare,
        Method::GTest,
        Method::Wasserstein,
        Method::Ks,
    ] {
        let options = with_method(method);
        let exact = compare_column(&reference, &current, &options);
        let estimate = compare_profiles(&reference_profile, &current_profile, &options);
        assert!(!estimate.approximate, "{method}");
        assert!(close(estimate.statistic.unwrap(), exact.statistic.unwrap(), 1e-12), "{method}");
        if let (Some(a), Some(e)) = (estimate.p_value, exact.p_value) {
            assert!((a - e).abs() <= 1e-12, "{method}: {a} vs {e}");
        }
        assert_eq!(estimate.drifted, exact.drifted, "{method}");
    }
}

#[test]
fn small_references_give_the_raw_results() {
    let reference = ColumnSample::numeric(
        "x",
        normals(5_000, 0.0, 11).into_iter().enumerate().map(|(i, v)| (i % 50 != 0).then_some(v)),
    );
    let current = numeric("x", &normals(3_000, 0.1, 12));
    let cat_reference = strings("c", &categories(800, 0.0, 13));
    let cat_current = strings("c", &categories(600, 0.5, 14));
    for (reference, current) in [(&reference, &current), (&cat_reference, &cat_current)] {
        let profile = ColumnProfile::reference(reference);
        let stored: ColumnProfile = serde_json::from_str(&serde_json::to_string(&profile).unwrap()).unwrap();
        let window = ColumnProfile::with_layout(current, &stored);
        let methods: &[Option<Method>] = if reference.kind == ColumnKind::Numeric {
            &[None, Some(Method::Anderson), Some(Method::EnergyDistance), Some(Method::MannWhitney), Some(Method::Ks)]
        } else {
            &[None, Some(Method::Tvd), Some(Method::ChiSquare)]
        };
        for method in methods {
            let options = method.map(with_method).unwrap_or_default();
            let exact = compare_column(reference, current, &options);
            assert_eq!(compare_profiles(&stored, &window, &options), exact);
            assert!(!exact.approximate);
        }
    }
}

#[test]
fn merged_windows_equal_the_profile_of_their_concatenation() {
    let reference = numeric("x", &normals(30_000, 0.0, 15));
    let reference_profile = ColumnProfile::reference(&reference);
    let mut all: Vec<Option<f64>> = normals(25_000, 0.7, 16).into_iter().map(Some).collect();
    all.extend([None, Some(f64::NAN), Some(f64::INFINITY), Some(-9.5), Some(1e6)]);
    all.rotate_left(7_000);
    let mut merged: Option<ColumnProfile> = None;
    for window in [&all[..4_000], &all[4_000..4_100], &all[4_100..]] {
        let profile =
            ColumnProfile::with_layout(&ColumnSample::numeric("x", window.iter().copied()), &reference_profile);
        match merged.as_mut() {
            None => merged = Some(profile),
            Some(m) => m.merge(&profile).unwrap(),
        }
    }
    let merged = merged.unwrap();
    let whole = ColumnProfile::with_layout(&ColumnSample::numeric("x", all.iter().copied()), &reference_profile);
    assert_eq!(
        (merged.rows, merged.nulls, merged.nans, merged.infinities),
        (whole.rows, whole.nulls, whole.nans, whole.infinities)
    );
    let (m, w) = (merged.numeric.as_ref().unwrap(), whole.numeric.as_ref().unwrap());
    assert_eq!(m.histogram.counts, w.histogram.counts);
    assert_eq!((m.histogram.below.count, m.histogram.above.count), (w.histogram.below.count, w.histogram.above.count));
    assert!(close(m.histogram.above.sum, w.histogram.above.sum, 1e-12));
    assert!(close(m.histogram.below.sum, w.histogram.below.sum, 1e-12));
    assert_eq!((m.min, m.max, m.moments.count), (w.min, w.max, w.moments.count));
    assert!(close(m.moments.mean, w.moments.mean, 1e-12) && close(m.moments.m2, w.moments.m2, 1e-12));
    assert_eq!(merged.values, None);
    assert_eq!(m.histogram.total(), 25_002);

    // Categories and small windows: equal outright, values kept while under the cap.
    let values = categories(3_000, 0.2, 17);
    let whole = ColumnProfile::reference(&strings("c", &values));
    let mut merged = ColumnProfile::reference(&strings("c", &values[..1_234]));
    merged.merge(&ColumnProfile::reference(&strings("c", &values[1_234..]))).unwrap();
    assert_eq!(merged, whole);

    // Counts per value of a small numeric column survive merging until there are too many.
    let mut few = ColumnProfile::reference(&numeric("n", &[1.0, 2.0, 2.0]));
    let layout_source = few.clone();
    few.merge(&ColumnProfile::with_layout(&numeric("n", &[2.0, -0.0, 0.0]), &layout_source)).unwrap();
    assert_eq!(few.numeric.as_ref().unwrap().value_counts, Some(vec![(0.0, 2), (1.0, 1), (2.0, 3)]));
    let many: Vec<f64> = (0..30).map(f64::from).collect();
    few.merge(&ColumnProfile::with_layout(&numeric("n", &many), &layout_source)).unwrap();
    assert_eq!(few.numeric.as_ref().unwrap().value_counts, None);
}

#[test]
fn merging_refuses_other_layouts_columns_and_kinds() {
    let a = ColumnProfile::reference(&numeric("x", &[1.0, 2.0, 3.0]));
    let b = ColumnProfile::reference(&numeric("x", &[1.0, 5.0]));
    assert!(a.clone().merge(&b).is_err());
    assert!(a.clone().merge(&ColumnProfile::reference(&numeric("y", &[1.0, 2.0, 3.0]))).is_err());
    assert!(a.clone().merge(&ColumnProfile::reference(&strings("x", &["1".to_string()]))).is_err());

    let frame =
        FrameProfile::reference(&[numeric("x", &[1.0, 2.0]), strings("c", &["a".to_string(), "b".to_string()])]);
    let mut merged = frame.clone();
    merged.merge(&frame).unwrap();
    assert_eq!(merged.rows, 4);
    assert_eq!(merged.column("c").unwrap().categories.as_ref().unwrap().counts["a"], 2);
    let other = FrameProfile::reference(&[numeric("x", &[1.0, 2.0])]);
    let before = merged.clone();
    assert!(merged.merge(&other).is_err());
    assert_eq!(merged, before);
}

#[test]
fn category_counts_are_capped_with_the_rest_in_other() {
    let values: Vec<String> =
        (0..MAX_CATEGORIES + 500).flat_map(|i| std::iter::repeat_n(format!("k{i}"), 1 + usize::from(i < 10))).collect();
    let profile = ColumnProfile::reference(&strings("c", &values));
    let tally = profile.categories.as_ref().unwrap();
    assert!(tally.truncated);
    assert_eq!(tally.counts.len(), MAX_CATEGORIES);
    assert_eq!(tally.other, 500);
    assert_eq!(tally.total(), values.len() as u64);
    assert_eq!(tally.counts["k3"], 2);
    let drift = compare_profiles(&profile, &profile, &with_method(Method::JensenShannon));
    assert!(drift.approximate);
    assert_eq!(drift.score, Some(0.0));
}

#[test]
fn profiles_round_trip_through_json() {
    let frame = FrameProfile::reference(&[
        ColumnSample::numeric("x", normals(20_000, 0.0, 18).into_iter().map(Some).chain([None, Some(f64::NAN)])),
        numeric("small", &normals(100, 0.0, 19)),
        numeric("constant", &[4.0; 50]),
        strings("c", &categories(12_000, 0.0, 20)),
        ColumnSample::numeric("empty", [None, None]),
    ]);
    let json = serde_json::to_string(&frame).unwrap();
    eprintln!("frame profile JSON: {} bytes", json.len());
    let back: FrameProfile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, frame);
    assert_eq!(back.rows, 20_002);
}

#[test]
fn edge_cases_never_panic_and_say_what_is_not_computable() {
    let big = numeric("x", &normals(20_000, 0.0, 21));
    let reference = ColumnProfile::reference(&big);

    let all_null = ColumnSample::numeric("x", (0..20_000).map(|_| None));
    let nulls = ColumnProfile::reference(&all_null);
    let drift = compare_profiles(&nulls, &reference, &DriftOptions::default());
    assert_eq!(drift.score, None);
    assert!(drift.not_computable.unwrap().contains("reference sample has no values"));
    let window = ColumnProfile::with_layout(&all_null, &reference);
    let drift = compare_profiles(&reference, &window, &DriftOptions::default());
    assert!(drift.not_computable.unwrap().contains("current sample has no values"));
    assert_eq!(drift.quality.missing_share, Some(1.0));

    let empty = ColumnProfile::with_layout(&ColumnSample::numeric("x", []), &reference);
    let drift = compare_profiles(&reference, &empty, &DriftOptions::default());
    assert!(drift.not_computable.unwrap().contains("current sample has no rows"));
    assert_eq!(drift.quality, crate::drift::ColumnQuality::default());
    assert!(drift.chart.is_some());

    let constant = ColumnProfile::reference(&numeric("x", &[3.0; 20_000]));
    assert_eq!(constant.numeric.as_ref().unwrap().histogram.layout, Layout { lo: 3.0, hi: 3.0, bins: 1 });
    let current = numeric("x", &normals(15_000, 3.0, 22));
    let window = ColumnProfile::with_layout(&current, &constant);
    for method in
        [Method::Wasserstein, Method::Ks, Method::Psi, Method::JensenShannon, Method::Hellinger, Method::TTest]
    {
        let options = with_method(method);
        let exact = compare_column(&numeric("x", &[3.0; 20_000]), &current, &options);
        let estimate = compare_profiles(&constant, &window, &options);
        eprintln!("constant reference {method}: exact {:?} profile {:?}", exact.score, estimate.score);
        assert_eq!(estimate.drifted, exact.drifted, "{method}");
    }
    let same = ColumnProfile::with_layout(&numeric("x", &[3.0; 15_000]), &constant);
    let drift = compare_profiles(&constant, &same, &with_method(Method::Wasserstein));
    assert_eq!(drift.score, Some(0.0));
    let drift = compare_profiles(&constant, &same, &with_method(Method::TTest));
    assert!(drift.not_computable.is_some(), "0/0 t statistic");

    let dirty = ColumnSample::numeric(
        "x",
        normals(15_000, 0.0, 23).into_iter().map(Some).chain([Some(f64::NAN), Some(f64::NEG_INFINITY), None]),
    );
    let window = ColumnProfile::with_layout(&dirty, &reference);
    assert_eq!((window.nans, window.infinities, window.nulls), (1, 1, 1));
    assert_eq!(window.numeric.as_ref().unwrap().histogram.total(), 15_000);
    let drift = compare_profiles(&reference, &window, &DriftOptions::default());
    assert!(drift.score.unwrap().is_finite());
    assert!((drift.quality.missing_share.unwrap() - 3.0 / 15_003.0).abs() < 1e-15);

    for method in [Method::Anderson, Method::CramerVonMises, Method::EnergyDistance, Method::MannWhitney] {
        let drift = compare_profiles(&reference, &window, &with_method(method));
        let reason = drift.not_computable.unwrap();
        assert!(reason.contains("needs the raw values") && reason.contains("wasserstein"), "{reason}");
    }
    let drift = compare_profiles(&reference, &window, &with_method(Method::ChiSquare));
    assert!(drift.not_computable.unwrap().contains("counts a numeric column by value"));

    let texts: Vec<String> = (0..12_000).map(|i| format!("text number {i}")).collect();
    let text = ColumnProfile::reference(&ColumnSample::strings("t", ColumnKind::Text, texts.into_iter().map(Some)));
    let drift = compare_profiles(&text, &text, &DriftOptions::default());
    assert!(drift.not_computable.unwrap().contains("raw texts"));
}

#[test]
fn frame_profiles_plan_and_judge_as_raw_sources() {
    let reference = vec![
        numeric("a", &normals(20_000, 0.0, 24)),
        numeric("b", &normals(20_000, 0.0, 25)),
        strings("c", &categories(20_000, 0.0, 26)),
        strings("only_reference", &categories(10, 0.0, 27)),
        numeric("mixed", &[1.0, 2.0]),
    ];
    let current = vec![
        numeric("a", &normals(15_000, 0.5, 28)),
        numeric("b", &normals(15_000, 0.0, 29)),
        strings("c", &categories(15_000, 1.0, 30)),
        strings("mixed", &["x".to_string()]),
    ];
    let options = DriftOptions {
        per_column: BTreeMap::from([(
            "b".to_string(),
            ColumnOptions { method: Some(Method::Ks), threshold: Some(0.01) },
        )]),
        ..DriftOptions::default()
    };
    let reference_profile = FrameProfile::reference(&reference);
    let current_profile = FrameProfile::with_layout(&current, &reference_profile);
    let exact = compare_sources(&InMemory(reference), &InMemory(current), &options, None).unwrap();
    let estimate = compare_frame_profiles(&reference_profile, &current_profile, &options).unwrap();
    assert_eq!(estimate.skipped, exact.skipped);
    assert_eq!(
        (estimate.compared, estimate.drifted, estimate.share, estimate.dataset_drift),
        (exact.compared, exact.drifted, exact.share, exact.dataset_drift)
    );
    let methods =
        |r: &crate::drift::DriftResult| r.columns.iter().map(|c| (c.column.clone(), c.method)).collect::<Vec<_>>();
    assert_eq!(methods(&estimate), methods(&exact));
    assert_eq!(estimate.columns[1].threshold, 0.01);
    let bad = DriftOptions { columns: Some(vec!["nope".to_string()]), ..DriftOptions::default() };
    assert!(compare_frame_profiles(&reference_profile, &current_profile, &bad).is_err());
}
