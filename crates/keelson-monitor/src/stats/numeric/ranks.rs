//! Midranks of a pooled sample, as `scipy.stats.rankdata(method='average')` gives them.

/// Ranks (1-based, ties share their average rank) of `first` followed by `second`, and the size
/// of every group of tied values.
pub(super) struct PooledRanks {
    pub ranks: Vec<f64>,
    pub tie_sizes: Vec<usize>,
}

pub(super) fn pooled_midranks(first: &[f64], second: &[f64]) -> PooledRanks {
    let pooled: Vec<f64> = first.iter().chain(second).copied().collect();
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_unstable_by(|&x, &y| pooled[x].total_cmp(&pooled[y]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let value = pooled[order[start]];
        let end = start + order[start..].iter().take_while(|&&k| pooled[k] == value).count();
        // Positions start..end hold ranks start+1..=end; their mean is the midrank.
        let midrank = (start + 1 + end) as f64 / 2.0;
        for &k in &order[start..end] {
            ranks[k] = midrank;
        }
        tie_sizes.push(end - start);
        start = end;
    }
    PooledRanks { ranks, tie_sizes }
}
