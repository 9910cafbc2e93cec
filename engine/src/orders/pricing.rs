//! Money in integer cents: discount allocation to lines and refund shares. No floats anywhere.

/// Split `total` cents over lines pro rata to `weights` so the shares sum exactly to `total`.
///
/// Each line first gets the floor of its exact share; the cents left over go one each to the
/// lines with the largest remainders, ties broken by line order (so the result is deterministic).
/// All-zero weights split evenly by the same rule. `total` and the weights must be >= 0.
pub fn allocate_pro_rata(total: i64, weights: &[i64]) -> Vec<i64> {
    assert!(total >= 0, "negative total {total}");
    assert!(weights.iter().all(|w| *w >= 0), "negative weight");
    if weights.is_empty() {
        return Vec::new();
    }
    let even = weights.iter().all(|w| *w == 0);
    let weight = |w: i64| -> i128 {
        if even {
            1
        } else {
            i128::from(w)
        }
    };
    let sum: i128 = weights.iter().map(|w| weight(*w)).sum();
    let total = i128::from(total);
    let mut shares = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = total * weight(*w);
        shares.push(exact / sum);
        remainders.push((exact % sum, i));
    }
    let mut left = total - shares.iter().sum::<i128>();
    debug_assert!((0..weights.len() as i128).contains(&left));
    // Largest remainder first, then line order.
    remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    let shares: Vec<i64> = shares.into_iter().map(|s| s as i64).collect();
    debug_assert_eq!(shares.iter().map(|s| i128::from(*s)).sum::<i128>(), total);
    shares
}

/// The refund for `units` more units of a line of `qty` units that was allocated `amount` cents,
/// when `already` units were refunded before: the difference of the floors of the cumulative
/// shares, so refunding every unit in any number of steps gives back exactly `amount`.
pub fn refund_share(amount: i64, qty: u32, already: u32, units: u32) -> i64 {
    assert!(qty > 0 && already + units <= qty, "refund of {units} after {already} of {qty}");
    let share = |count: u32| -> i64 { (i128::from(amount) * i128::from(count) / i128::from(qty)) as i64 };
    share(already + units) - share(already)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainder_goes_to_the_largest_remainder_then_line_order() {
        // 100 cents over three equal lines: 33 each, the extra cent to the first line.
        assert_eq!(allocate_pro_rata(100, &[1, 1, 1]), vec![34, 33, 33]);
        // The Taobao sample: 258.00 over 198.00 and 100.00.
        assert_eq!(allocate_pro_rata(25_800, &[19_800, 10_000]), vec![17_142, 8_658]);
        assert_eq!(allocate_pro_rata(0, &[5, 5]), vec![0, 0]);
        assert_eq!(allocate_pro_rata(7, &[0, 0]), vec![4, 3]);
    }

    #[test]
    fn refunds_in_steps_add_up_to_the_line_amount() {
        // A line of 3 units for 1000 cents refunded one unit at a time gives back 1000 exactly.
        let parts: Vec<i64> = (0..3).map(|k| refund_share(1_000, 3, k, 1)).collect();
        assert_eq!(parts, vec![333, 333, 334]);
        assert_eq!(refund_share(1_000, 3, 0, 3), 1_000);
    }
}
