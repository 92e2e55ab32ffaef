//! Money between the proto's integer minor units and Daviplata's decimal JSON numbers
//! (`1000.01`), by text and integers only, so no floating-point rounding can creep in.

use serde_json::value::RawValue;

/// The only currency Daviplata moves.
pub const CURRENCY: &str = "COP";

/// Decimals of an amount on Daviplata's wire.
const SCALE: u32 = 2;
const FACTOR: i64 = 10_i64.pow(SCALE);

/// `minor_units` as a JSON number with exactly two decimals: 100001 -> `1000.01`.
pub fn to_wire(minor_units: i64) -> Box<RawValue> {
    let sign = if minor_units < 0 { "-" } else { "" };
    let magnitude = minor_units.unsigned_abs();
    let factor = FACTOR.unsigned_abs();
    let text = format!(
        "{sign}{}.{:0width$}",
        magnitude / factor,
        magnitude % factor,
        width = SCALE as usize
    );
    RawValue::from_string(text).expect("a decimal literal is valid JSON")
}

/// A JSON number from Daviplata as minor units: `1000.01` -> 100001, `5` -> 500. Refuses
/// exponents, more than two decimals and values beyond `i64`.
pub fn from_wire(number: &RawValue) -> Option<i64> {
    let text = number.get().trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || fraction.len() > SCALE as usize
        || !all_digits(whole)
        || !all_digits(fraction)
    {
        return None;
    }
    let fraction = format!("{fraction:0<width$}", width = SCALE as usize);
    let magnitude = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(FACTOR)?
        .checked_add(fraction.parse::<i64>().ok()?)?;
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn formats_two_decimals() {
        assert_eq!(to_wire(100001).get(), "1000.01");
        assert_eq!(to_wire(5).get(), "0.05");
        assert_eq!(to_wire(1_500_050).get(), "15000.50");
        assert_eq!(to_wire(-250).get(), "-2.50");
    }

    #[test]
    fn parses_what_daviplata_sends() {
        assert_eq!(from_wire(&raw("1000.01")), Some(100001));
        assert_eq!(from_wire(&raw("1000.1")), Some(100010));
        assert_eq!(from_wire(&raw("1000")), Some(100000));
        assert_eq!(from_wire(&raw("0.29")), Some(29));
    }

    #[test]
    fn refuses_what_cannot_be_exact() {
        for text in ["1e3", "1.001", "\"10\"", "", ".5", "92233720368547758.08"] {
            assert_eq!(from_wire(&raw_or_string(text)), None, "{text}");
        }
    }

    fn raw_or_string(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap_or_else(|_| raw("\"x\""))
    }

    proptest! {
        #[test]
        fn round_trips(minor in any::<i64>().prop_filter("i64::MIN has no magnitude", |v| *v != i64::MIN)) {
            prop_assert_eq!(from_wire(&to_wire(minor)), Some(minor));
        }

        #[test]
        fn agrees_with_json_parsing_of_small_amounts(minor in 0_i64..100_000_000_000) {
            let parsed: serde_json::Value = serde_json::from_str(to_wire(minor).get()).unwrap();
            let expected = minor as f64 / 100.0;
            prop_assert_eq!(parsed.as_f64(), Some(expected));
        }
    }
}
