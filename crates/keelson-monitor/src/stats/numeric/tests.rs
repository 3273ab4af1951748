use super::*;

fn normal_like(n: usize, shift: f64, seed: u64) -> Vec<f64> {
    // A cheap deterministic spread of values (sum of uniforms), no RNG dependency needed.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n).map(|_| (0..4).map(|_| next()).sum::<f64>() - 2.0 + shift).collect()
}

#[test]
fn identical_samples_have_no_distance() {
    let a = normal_like(500, 0.0, 1);
    assert_eq!(ks(&a, &a).unwrap().statistic, 0.0);
    assert_eq!(ks(&a, &a).unwrap().p_value, Some(1.0));
    assert_eq!(wasserstein(&a, &a).unwrap().statistic, 0.0);
    assert_eq!(wasserstein_normed(&a, &a).unwrap().statistic, 0.0);
    assert_eq!(energy_distance(&a, &a).unwrap().statistic, 0.0);
}

#[test]
fn bad_input_is_not_computable() {
    let good = [1.0, 2.0, 3.0];
    type Method = fn(&[f64], &[f64]) -> Result<crate::stats::Outcome, crate::stats::NotComputable>;
    let methods: [Method; 10] = [
        ks,
        wasserstein,
        wasserstein_normed,
        anderson,
        cramer_von_mises,
        energy_distance,
        t_test,
        welch_t_test,
        mann_whitney,
        mann_whitney_less,
    ];
    for method in methods {
        for bad in [vec![], vec![f64::NAN, 1.0], vec![f64::INFINITY], vec![1.0, f64::NEG_INFINITY]] {
            assert!(method(&bad, &good).is_err());
            assert!(method(&good, &bad).is_err());
        }
        // Both sides constant and equal: either no answer or a number, never NaN.
        if let Ok(outcome) = method(&[2.0; 5], &[2.0; 6]) {
            assert!(!outcome.statistic.is_nan());
            assert!(!outcome.p_value.is_some_and(f64::is_nan));
        }
    }
}

#[test]
fn symmetric_methods_do_not_depend_on_order() {
    let a = normal_like(300, 0.0, 2);
    let b = normal_like(170, 0.3, 3);
    type Method = fn(&[f64], &[f64]) -> Result<crate::stats::Outcome, crate::stats::NotComputable>;
    let symmetric: [Method; 5] = [ks, wasserstein, energy_distance, anderson, cramer_von_mises];
    for method in symmetric {
        let (ab, ba) = (method(&a, &b).unwrap(), method(&b, &a).unwrap());
        assert!((ab.statistic - ba.statistic).abs() < 1e-12);
        assert_eq!(ab.p_value.is_some(), ba.p_value.is_some());
        if let (Some(p), Some(q)) = (ab.p_value, ba.p_value) {
            assert!((p - q).abs() < 1e-12);
        }
    }
    // Swapping sides flips the sign of t and keeps the two-sided p-value.
    let (ab, ba) = (welch_t_test(&a, &b).unwrap(), welch_t_test(&b, &a).unwrap());
    assert!((ab.statistic + ba.statistic).abs() < 1e-12);
    assert!((ab.p_value.unwrap() - ba.p_value.unwrap()).abs() < 1e-12);
}

#[test]
fn large_samples_run() {
    let a = normal_like(200_000, 0.0, 4);
    let b = normal_like(200_000, 0.01, 5);
    let outcome = ks(&a, &b).unwrap();
    assert!(outcome.statistic > 0.0 && outcome.statistic < 0.05);
    assert!(outcome.p_value.is_some_and(|p| (0.0..=1.0).contains(&p)));
    assert!(wasserstein(&a, &b).unwrap().statistic > 0.0);
    assert!(energy_distance(&a, &b).unwrap().statistic > 0.0);
}
