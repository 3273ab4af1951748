//! Sorting floats by their bits: an LSD radix sort over 16-bit digits, several times faster than
//! a comparison sort for the million-value columns drift reports sort (and drift reports are
//! mostly sorting). Small inputs use the standard sort.

/// Below this a comparison sort wins over the passes and their counts.
const RADIX_MIN: usize = 4_096;
/// 11-bit digits: 2,048 buckets keep the counts in L1 and the scatter's write streams few
/// enough for the cache (16-bit digits were slower than a comparison sort at 1M values).
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;
const PASSES: usize = 64usize.div_ceil(DIGIT_BITS as usize);

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
    /// The scatter buffer of each thread's last sort, kept: a fresh 8 MiB buffer per column costs
    /// as much in page faults as the sort itself.
    static SCRATCH: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sorts in `f64::total_cmp` order, in place: the floats become their keys where they lie
/// (`bytemuck` views the slice as `u64`s), are sorted, and become floats again.
pub fn sort_floats(values: &mut [f64]) {
    if values.len() < RADIX_MIN {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let keys: &mut [u64] = bytemuck::cast_slice_mut(values);
    for k in keys.iter_mut() {
        *k = key(f64::from_bits(*k));
    }
    // Every pass's counts in one read of the keys.
    let mut counts = vec![[0usize; BUCKETS]; PASSES];
    for k in keys.iter() {
        for (pass, digit_counts) in counts.iter_mut().enumerate() {
            digit_counts[digit(*k, pass)] += 1;
        }
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        scratch.clear();
        scratch.resize(keys.len(), 0);
        // Sorted data lands alternately in `keys` and `scratch`; `in_keys` says where it is.
        let mut in_keys = true;
        for (pass, digit_counts) in counts.iter_mut().enumerate() {
            // A digit all keys share (the high digits of values of one magnitude) orders nothing.
            if digit_counts.contains(&keys.len()) {
                continue;
            }
            let mut offset = 0;
            for c in digit_counts.iter_mut() {
                let n = *c;
                *c = offset;
                offset += n;
            }
            let (from, to): (&[u64], &mut [u64]) =
                if in_keys { (&*keys, &mut scratch[..]) } else { (&scratch[..], &mut *keys) };
            for k in from {
                let bucket = digit(*k, pass);
                to[digit_counts[bucket]] = *k;
                digit_counts[bucket] += 1;
            }
            in_keys = !in_keys;
        }
        if !in_keys {
            keys.copy_from_slice(&scratch);
        }
    });
    for k in keys.iter_mut() {
        *k = value(*k).to_bits();
    }
}

fn digit(key: u64, pass: usize) -> usize {
    ((key >> (pass as u32 * DIGIT_BITS)) as usize) & (BUCKETS - 1)
}

/// Whether the values are already in ascending order (then nothing needs copying).
pub fn is_sorted(values: &[f64]) -> bool {
    values.windows(2).all(|w| w[0].total_cmp(&w[1]).is_le())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_total_cmp_at_every_size_and_sign() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0, 1, 2, 100, 4_095, 4_096, 50_000] {
            let mut values: Vec<f64> = (0..n)
                .map(|i| match i % 5 {
                    0 => -((next() % 1000) as f64) / 7.0,
                    1 => (next() as f64) * 1e-300,
                    2 => 0.0,
                    3 => -0.0,
                    _ => f64::from_bits(next() >> 2) - 1e10,
                })
                .collect();
            let mut expected = values.clone();
            expected.sort_unstable_by(f64::total_cmp);
            sort_floats(&mut values);
            assert_eq!(
                values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "n = {n}"
            );
            assert!(is_sorted(&values));
        }
        assert!(!is_sorted(&[2.0, 1.0]));
    }
}
