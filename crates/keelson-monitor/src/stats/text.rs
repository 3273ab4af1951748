//! Drift of a text column by a domain classifier, and ROC-AUC.
//!
//! Evidently's text drift (`legacy/utils/data_drift_utils.py`, `calculate_text_drift_score`)
//! labels reference texts 0 and current texts 1, splits them 50/50 into a training and a test
//! part, fits TF-IDF features and a linear classifier on the training part and scores the test
//! part; the statistic is the ROC-AUC there. A classifier that cannot tell the two apart scores
//! about 0.5. Two decisions follow from it:
//!
//! - `abs_text_content_drift` (threshold 0.55): drift when the AUC is above the threshold;
//! - `perc_text_content_drift` (threshold 0.95): drift when the AUC is above the 95th percentile
//!   of the AUCs of 1000 random classifiers (uniform scores) on the same test labels.
//!
//! [`domain_classifier`] computes both: the AUC as the statistic and, as the p-value, the share
//! of 1000 random classifiers scoring at least that AUC (drift for the percentile method when
//! that share is below 1 − threshold).
//!
//! How this differs from Evidently's pipeline (sklearn's `TfidfVectorizer(sublinear_tf=True,
//! max_df=0.5, stop_words="english")` + `SGDClassifier(loss="modified_huber", penalty="l1")`):
//! tokens are hashed into 2¹⁸ features (FNV-1a) instead of a vocabulary, there is no English
//! stop-word list (terms in more than half the training texts are dropped, as `max_df=0.5`
//! does), the classifier is a logistic regression trained by SGD with a small L2 penalty, and
//! the split is stratified (half of each side's texts in the test part) where Evidently's
//! `train_test_split` is not. The AUC is therefore close to, not equal to, Evidently's.

use super::categorical::Mt19937;
use super::NotComputable;
use super::Outcome;
use std::collections::BTreeMap;

/// Hashed feature space: 2¹⁸ dimensions.
const FEATURE_BITS: u32 = 18;
/// Passes of SGD over the training part.
const EPOCHS: usize = 20;
/// SGD step size (features are L2-normalised).
const LEARNING_RATE: f64 = 0.5;
/// L2 penalty per step.
const L2: f64 = 1e-4;
/// Random classifiers for the percentile decision (Evidently's `iter_num`).
pub const RANDOM_CLASSIFIERS: usize = 1000;
/// A term in more than this share of the training texts is dropped (Evidently's `max_df`).
const MAX_DOCUMENT_SHARE: f64 = 0.5;

/// `sklearn.metrics.roc_auc_score(labels, scores)`: the probability that a random positive
/// scores above a random negative, ties counting one half (average ranks). Both classes must be
/// present and every score finite.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64, NotComputable> {
    if scores.len() != labels.len() {
        return Err(NotComputable::new(format!("{} scores for {} labels", scores.len(), labels.len())));
    }
    if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
        return Err(NotComputable::new(format!("a score is {bad}")));
    }
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(NotComputable::new("ROC-AUC needs both classes among the labels"));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (average, 1-based) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Lower-cased words of at least two letters, digits or underscores (sklearn's default token
/// pattern `\b\w\w+\b`).
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|t| t.chars().count() >= 2).map(str::to_lowercase)
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Term counts of a text by hashed feature, in feature order.
fn term_counts(text: &str) -> BTreeMap<usize, u32> {
    let mask = (1u64 << FEATURE_BITS) - 1;
    let mut counts = BTreeMap::new();
    for token in tokens(text) {
        *counts.entry((fnv1a(token.as_bytes()) & mask) as usize).or_insert(0) += 1;
    }
    counts
}

/// A sparse, L2-normalised TF-IDF vector.
type Sparse = Vec<(usize, f64)>;

/// TF-IDF fitted on the training texts: smooth idf ln((1 + n) / (1 + df)) + 1, sublinear tf
/// 1 + ln tf, terms in more than half the training texts dropped.
struct TfIdf {
    idf: BTreeMap<usize, f64>,
}

impl TfIdf {
    fn fit(train: &[BTreeMap<usize, u32>]) -> TfIdf {
        let mut df: BTreeMap<usize, usize> = BTreeMap::new();
        for doc in train {
            for &feature in doc.keys() {
                *df.entry(feature).or_insert(0) += 1;
            }
        }
        let n = train.len() as f64;
        let idf = df
            .into_iter()
            .filter(|&(_, d)| d as f64 <= MAX_DOCUMENT_SHARE * n)
            .map(|(f, d)| (f, ((1.0 + n) / (1.0 + d as f64)).ln() + 1.0))
            .collect();
        TfIdf { idf }
    }

    fn transform(&self, doc: &BTreeMap<usize, u32>) -> Sparse {
        let mut vector: Sparse = doc
            .iter()
            .filter_map(|(f, &tf)| self.idf.get(f).map(|idf| (*f, (1.0 + f64::from(tf).ln()) * idf)))
            .collect();
        let norm = vector.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            vector.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        vector
    }
}

/// Logistic regression by SGD, weights kept as scale × v so the L2 decay costs nothing per step.
struct Logistic {
    v: Vec<f64>,
    scale: f64,
    bias: f64,
}

impl Logistic {
    fn margin(&self, x: &Sparse) -> f64 {
        self.scale * x.iter().map(|&(f, value)| self.v[f] * value).sum::<f64>() + self.bias
    }

    fn fit(train: &[Sparse], labels: &[bool], rng: &mut Mt19937) -> Logistic {
        let mut model = Logistic { v: vec![0.0; 1 << FEATURE_BITS], scale: 1.0, bias: 0.0 };
        let mut order: Vec<usize> = (0..train.len()).collect();
        for _ in 0..EPOCHS {
            rng.shuffle(&mut order);
            for &i in &order {
                let x = &train[i];
                let y = if labels[i] { 1.0 } else { 0.0 };
                let gradient = sigmoid(model.margin(x)) - y;
                model.scale *= 1.0 - LEARNING_RATE * L2;
                if model.scale < 1e-9 {
                    let scale = model.scale;
                    model.v.iter_mut().for_each(|w| *w *= scale);
                    model.scale = 1.0;
                }
                for &(f, value) in x {
                    model.v[f] -= LEARNING_RATE * gradient * value / model.scale;
                }
                model.bias -= LEARNING_RATE * gradient;
            }
        }
        model
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The share of [`RANDOM_CLASSIFIERS`] random classifiers (uniform scores) whose ROC-AUC on
/// `labels` is at least `auc`.
fn random_auc_share(labels: &[bool], auc: f64, rng: &mut Mt19937) -> Result<f64, NotComputable> {
    let mut scores = vec![0.0; labels.len()];
    let mut at_least = 0usize;
    for _ in 0..RANDOM_CLASSIFIERS {
        scores.iter_mut().for_each(|s| *s = rng.next_f64());
        if roc_auc(&scores, labels)? >= auc {
            at_least += 1;
        }
    }
    Ok(at_least as f64 / RANDOM_CLASSIFIERS as f64)
}

/// The domain classifier: reference texts labelled 0, current texts 1, half of each side (by a
/// shuffle seeded with `seed`) held out; statistic = ROC-AUC of a hashed TF-IDF logistic
/// regression on the held-out half, p-value = share of 1000 random classifiers with at least
/// that AUC on the same held-out labels. Deterministic for a seed. Each side needs at least two
/// texts.
pub fn domain_classifier<S: AsRef<str>>(reference: &[S], current: &[S], seed: u64) -> Result<Outcome, NotComputable> {
    for (side, texts) in [("reference", reference), ("current", current)] {
        if texts.len() < 2 {
            return Err(NotComputable::new(format!(
                "the {side} sample holds {} texts; the domain classifier needs at least 2 on each side",
                texts.len()
            )));
        }
    }
    let mut rng = Mt19937::new((seed ^ (seed >> 32)) as u32);
    // Stratified split: the first half of each side's shuffled indices is held out.
    let mut train: Vec<(&str, bool)> = Vec::new();
    let mut test: Vec<(&str, bool)> = Vec::new();
    for (texts, label) in [(reference, false), (current, true)] {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        rng.shuffle(&mut order);
        let held_out = texts.len() / 2;
        for (k, &i) in order.iter().enumerate() {
            let item = (texts[i].as_ref(), label);
            if k < held_out {
                test.push(item);
            } else {
                train.push(item);
            }
        }
    }
    let train_counts: Vec<BTreeMap<usize, u32>> = train.iter().map(|(t, _)| term_counts(t)).collect();
    let tfidf = TfIdf::fit(&train_counts);
    let train_x: Vec<Sparse> = train_counts.iter().map(|d| tfidf.transform(d)).collect();
    let train_y: Vec<bool> = train.iter().map(|&(_, l)| l).collect();
    let model = Logistic::fit(&train_x, &train_y, &mut rng);
    let scores: Vec<f64> = test.iter().map(|(t, _)| sigmoid(model.margin(&tfidf.transform(&term_counts(t))))).collect();
    let test_y: Vec<bool> = test.iter().map(|&(_, l)| l).collect();
    let auc = roc_auc(&scores, &test_y)?;
    let share = random_auc_share(&test_y, auc, &mut rng)?;
    Ok(Outcome::test(auc, share))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `n` texts of 8 words drawn from `words` by a seeded generator.
    fn texts(words: &[&str], n: usize, seed: u32) -> Vec<String> {
        let mut rng = Mt19937::new(seed);
        (0..n)
            .map(|_| (0..8).map(|_| words[rng.interval(words.len() as u64 - 1) as usize]).collect::<Vec<_>>().join(" "))
            .collect()
    }

    const WEATHER: [&str; 12] =
        ["rain", "sunny", "cloud", "storm", "wind", "snow", "fog", "humid", "cold", "warm", "forecast", "breeze"];
    const FINANCE: [&str; 12] =
        ["stock", "bond", "market", "price", "yield", "equity", "dividend", "broker", "fund", "asset", "trade", "loan"];

    #[test]
    fn roc_auc_averages_ties() {
        // sklearn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
        assert!((roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap() - 0.75).abs() < 1e-12);
        // all tied: 0.5
        assert_eq!(roc_auc(&[1.0, 1.0, 1.0], &[true, false, true]).unwrap(), 0.5);
        assert!(roc_auc(&[1.0, 2.0], &[true, true]).is_err());
    }

    #[test]
    fn identical_texts_give_about_half_and_no_drift() {
        let reference = texts(&WEATHER, 300, 1);
        let outcome = domain_classifier(&reference, &reference, 42).unwrap();
        assert!((outcome.statistic - 0.5).abs() < 0.1, "AUC {}", outcome.statistic);
        assert!(outcome.statistic <= 0.55);
        assert!(outcome.p_value.unwrap() > 0.05);
    }

    #[test]
    fn different_vocabularies_give_a_high_auc() {
        let reference = texts(&WEATHER, 200, 1);
        let current = texts(&FINANCE, 150, 2);
        let outcome = domain_classifier(&reference, &current, 7).unwrap();
        assert!(outcome.statistic > 0.9, "AUC {}", outcome.statistic);
        assert_eq!(outcome.p_value, Some(0.0));
    }

    #[test]
    fn deterministic_for_a_seed() {
        let reference = texts(&WEATHER, 100, 3);
        let mut current = texts(&WEATHER, 60, 4);
        current.extend(texts(&FINANCE, 40, 5));
        let a = domain_classifier(&reference, &current, 11).unwrap();
        let b = domain_classifier(&reference, &current, 11).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn too_few_texts_are_not_computable() {
        assert!(domain_classifier(&["a b"], &["c d", "e f"], 1).is_err());
    }
}
