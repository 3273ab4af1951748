//! Sorting floats by their bits, several times faster than a comparison sort for the
//! million-value columns drift reports sort (and drift reports are mostly sorting).
//!
//! One most-significant-digit pass spreads the keys over 65,536 buckets by the 16 bits just
//! below the prefix every key shares (so a narrow range spreads as well as a wide one); each
//! bucket, small enough to stay in cache, is then sorted least-significant digit first over its
//! remaining bits, skipping the digits its keys all share. Small inputs and buckets use the
//! standard sort.

/// Below this a comparison sort wins over the passes and their counts.
const RADIX_MIN: usize = 4_096;
/// Bits of the most significant digit.
const TOP_BITS: u32 = 16;
const TOP_BUCKETS: usize = 1 << TOP_BITS;
/// Bits of each digit inside a bucket: 256 counts stay in L1 next to the bucket.
const DIGIT_BITS: u32 = 8;
const DIGIT_MASK: u64 = (1 << DIGIT_BITS) - 1;
/// Buckets up to this size are sorted by comparison.
const SMALL_BUCKET: usize = 256;

/// A key whose unsigned order is `f64::total_cmp`'s: flip every bit of negatives, the sign bit
/// of the rest.
fn key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn value(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
}

thread_local! {
    /// The scatter buffer of each thread's last sort, kept (and never cleared: every slot is
    /// written before it is read): a fresh 8 MiB buffer per column costs as much in page faults
    /// as the sort itself.
    static SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sorts in `f64::total_cmp` order, in place: the floats become their keys where they lie
/// (`bytemuck` views the slice as `u64`s), are sorted, and become floats again.
pub fn sort_floats(values: &mut [f64]) {
    // Counts are u32: a column of four billion values is sorted by comparison.
    if values.len() < RADIX_MIN || values.len() > u32::MAX as usize {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let keys: &mut [u64] = bytemuck::cast_slice_mut(values);
    let (mut low, mut high) = (u64::MAX, 0);
    for k in keys.iter_mut() {
        *k = key(f64::from_bits(*k));
        low = low.min(*k);
        high = high.max(*k);
    }
    if low == high {
        keys.iter_mut().for_each(|k| *k = value(*k).to_bits());
        return;
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < keys.len() {
            scratch.resize(keys.len(), 0);
        }
        sort_keys(keys, &mut scratch[..keys.len()], low, high);
    });
}

/// Sorts `keys` (whose smallest and largest are `low` and `high`, not equal) using `scratch`,
/// and turns them back into floats' bits, bucket by bucket while each is in cache.
fn sort_keys(keys: &mut [u64], scratch: &mut [u64], low: u64, high: u64) {
    let shared = (low ^ high).leading_zeros();
    // The top digit is the 16 bits below the shared prefix, or the lowest 16.
    let shift = 64u32.saturating_sub(shared + TOP_BITS);
    let top = |k: u64| ((k >> shift) as usize) & (TOP_BUCKETS - 1);
    let mut starts = vec![0u32; TOP_BUCKETS + 1];
    for k in keys.iter() {
        starts[top(*k)] += 1;
    }
    let mut offset = 0;
    for start in starts.iter_mut() {
        let n = *start;
        *start = offset;
        offset += n;
    }
    let mut next = starts.clone();
    for k in keys.iter() {
        let bucket = top(*k);
        scratch[next[bucket] as usize] = *k;
        next[bucket] += 1;
    }
    // Each bucket, now in `scratch`, is sorted into its place in `keys`.
    for bucket in starts.windows(2) {
        let (start, end) = (bucket[0] as usize, bucket[1] as usize);
        sort_bucket(&mut scratch[start..end], &mut keys[start..end], shift);
    }
}

/// Sorts `from` by its low `bits` bits (the rest are equal) into `to` as floats' bits, both
/// slices serving as scratch.
fn sort_bucket(from: &mut [u64], to: &mut [u64], bits: u32) {
    if from.len() <= SMALL_BUCKET {
        from.sort_unstable();
        to.iter_mut().zip(from.iter()).for_each(|(t, k)| *t = value(*k).to_bits());
        return;
    }
    const DIGITS: usize = 64 / DIGIT_BITS as usize;
    let digits = bits.div_ceil(DIGIT_BITS) as usize;
    let digit = |k: u64, d: usize| ((k >> (d as u32 * DIGIT_BITS)) & DIGIT_MASK) as usize;
    // Every digit's counts, and the bits where any key differs from the first (digits outside
    // them order nothing), in one read.
    let first = from[0];
    let mut differing = 0;
    let mut counts = [[0u32; 1 << DIGIT_BITS]; DIGITS];
    for k in from.iter() {
        differing |= k ^ first;
        for (d, digit_counts) in counts.iter_mut().enumerate().take(digits) {
            digit_counts[digit(*k, d)] += 1;
        }
    }
    let mut in_from = true;
    for (d, digit_counts) in counts.iter_mut().enumerate().take(digits) {
        if digit(differing, d) == 0 {
            continue;
        }
        let mut offset = 0;
        for count in digit_counts.iter_mut() {
            let n = *count;
            *count = offset;
            offset += n;
        }
        let (source, target): (&[u64], &mut [u64]) = if in_from { (&*from, &mut *to) } else { (&*to, &mut *from) };
        for k in source {
            let slot = &mut digit_counts[digit(*k, d)];
            target[*slot as usize] = *k;
            *slot += 1;
        }
        in_from = !in_from;
    }
    if in_from {
        to.iter_mut().zip(from.iter()).for_each(|(t, k)| *t = value(*k).to_bits());
    } else {
        to.iter_mut().for_each(|k| *k = value(*k).to_bits());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    fn assert_sorts(mut values: Vec<f64>, what: &str) {
        let mut expected = values.clone();
        expected.sort_unstable_by(f64::total_cmp);
        sort_floats(&mut values);
        assert_eq!(
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{what}"
        );
        assert!(values.is_sorted_by(|a, b| a.total_cmp(b).is_le()), "{what}");
    }

    #[test]
    fn sorts_like_total_cmp_at_every_size_and_sign() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        for n in [0, 1, 2, 100, 4_095, 4_096, 50_000, 300_000] {
            let values: Vec<f64> = (0..n)
                .map(|i| match i % 6 {
                    0 => -((next() % 1000) as f64) / 7.0,
                    1 => (next() as f64) * 1e-300,
                    2 => 0.0,
                    3 => -0.0,
                    4 => f64::from_bits(next()),
                    _ => f64::from_bits(next() >> 2) - 1e10,
                })
                .collect();
            assert_sorts(values, &format!("mixed, n = {n}"));
        }
    }

    #[test]
    fn sorts_narrow_ranges_repeated_values_and_skewed_buckets() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let n = 200_000;
        let units: Vec<f64> = (0..n).map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64).collect();
        type Make = fn(usize, f64) -> f64;
        let cases: [(&str, Make); 6] = [
            // Every key shares its top 30-odd bits: the top digit must come from below them.
            ("narrow", |_, u| 1.0 + u * 1e-9),
            ("integers", |_, u| (u * 100.0).floor()),
            ("two values", |i, _| if i % 3 == 0 { -1.5 } else { 2.5 }),
            ("one value but one", |i, _| if i == 777 { 1e-12 } else { 0.0 }),
            ("heavy tail", |_, u| (u * 40.0).exp()),
            ("ascending", |i, _| i as f64 - 1e5),
        ];
        for (what, make) in cases {
            assert_sorts((0..n).map(|i| make(i, units[i])).collect(), what);
            assert_sorts((0..n).rev().map(|i| make(i, units[i])).collect(), what);
        }
    }
}
