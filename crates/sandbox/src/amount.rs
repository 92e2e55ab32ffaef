//! Decimal amounts as the providers write them (`20000`, `15000.5`, `15000.50`) turned
//! into exact integer cents, so that money is compared without floats and an amount too
//! large to hold is refused instead of overflowing.

/// The cents of `text`: digits, then optionally a point and at most two digits. `None`
/// for anything else (a sign, an exponent, a third decimal) and for more than `u128` holds.
pub(crate) fn cents(text: &str) -> Option<u128> {
    let (units, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if units.is_empty() || fraction.len() > 2 || !digits(units) || !digits(fraction) {
        return None;
    }
    let fraction: u128 = format!("{fraction:0<2}").parse().ok()?;
    units
        .parse::<u128>()
        .ok()?
        .checked_mul(100)?
        .checked_add(fraction)
}

#[cfg(test)]
mod tests {
    use super::cents;

    #[test]
    fn decimals_become_exact_cents() {
        let cases = [
            ("20000", Some(2_000_000)),
            ("15000.5", Some(1_500_050)),
            ("15000.50", Some(1_500_050)),
            ("15.", Some(1_500)),
            ("0", Some(0)),
            ("1.005", None),
            ("-1", None),
            ("1e5", None),
            (".5", None),
            ("", None),
            ("diez mil", None),
        ];
        for (text, expected) in cases {
            assert_eq!(cents(text), expected, "{text}");
        }
    }

    #[test]
    fn an_amount_too_large_to_hold_is_none() {
        let largest_units = (u128::MAX / 100).to_string();
        assert!(cents(&largest_units).is_some());
        assert_eq!(cents(&format!("{largest_units}0")), None);
        assert_eq!(cents(&u128::MAX.to_string()), None);
    }
}
