//! Sorting floats by their bits: an LSD radix sort over 16-bit digits, several times faster than
//! a comparison sort for the million-value columns drift reports sort (and drift reports are
//! mostly sorting). Small inputs use the standard sort.

/// Below this a comparison sort wins over four passes and their 512 KiB of counts.
const RADIX_MIN: usize = 4_096;
const DIGIT_BITS: u32 = 16;
const BUCKETS: usize = 1 << DIGIT_BITS;

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

/// Sorts in `f64::total_cmp` order.
pub fn sort_floats(values: &mut [f64]) {
    if values.len() < RADIX_MIN {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = values.iter().map(|v| key(*v)).collect();
    let mut scratch = vec![0u64; keys.len()];
    let mut counts = vec![0usize; BUCKETS];
    for pass in 0..(64 / DIGIT_BITS) {
        let shift = pass * DIGIT_BITS;
        counts.iter_mut().for_each(|c| *c = 0);
        for k in &keys {
            counts[((k >> shift) as usize) & (BUCKETS - 1)] += 1;
        }
        // A digit all keys share (the high digits of values of one magnitude) orders nothing.
        if counts.contains(&keys.len()) {
            continue;
        }
        let mut offset = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = offset;
            offset += n;
        }
        for k in &keys {
            let bucket = ((k >> shift) as usize) & (BUCKETS - 1);
            scratch[counts[bucket]] = *k;
            counts[bucket] += 1;
        }
        std::mem::swap(&mut keys, &mut scratch);
    }
    for (slot, k) in values.iter_mut().zip(keys) {
        *slot = value(k);
    }
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
