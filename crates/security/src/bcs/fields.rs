//! Checks of request fields shared by the operations (documents, amounts, enums, text),
//! each recording a violation under the field's proto path instead of failing fast.

use std::sync::LazyLock;

use pasarela::common::v1::{DocumentType, Identification, Money};
use pasarela_provider::Violations;
use regex::Regex;

/// Document types Banco Caja Social accepts and their wire codes.
const DOCUMENT_TYPES: &[(DocumentType, &str)] = &[
    (DocumentType::Cc, "CC"),
    (DocumentType::Ce, "CE"),
    (DocumentType::Pa, "PA"),
    (DocumentType::Ti, "TI"),
    (DocumentType::Ni, "NI"),
    (DocumentType::Pe, "PE"),
];

/// Longest document number (`identSerialNum`: maxLength 30).
const DOCUMENT_NUMBER_MAX: usize = 30;

/// Longest encrypted secret pasarela forwards (passwords, PINs, CVVs, OTPs travel encrypted
/// by the channel; the spec gives no length, this bound only keeps requests sane).
pub const SECRET_MAX: usize = 512;

static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[0-9]+$").expect("regex"));
static ALNUM: LazyLock<Regex> = LazyLock::new(|| Regex::new("^[A-Za-z0-9]+$").expect("regex"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^@\s]+@[^@\s]+\.[^@\s]+$").expect("regex"));

/// A customer document as `(govIssueIdentType, identSerialNum)`.
pub fn identification(
    violations: &mut Violations,
    field: &str,
    value: Option<&Identification>,
) -> (String, String) {
    let Some(value) = value else {
        violations.add(field, "is required");
        return (String::new(), String::new());
    };
    let kind = choice(
        violations,
        &format!("{field}.type"),
        value.r#type,
        DOCUMENT_TYPES,
        "one of CC, CE, PA, TI, NI, PE",
    );
    let number = text(
        violations,
        &format!("{field}.number"),
        &value.number,
        1,
        DOCUMENT_NUMBER_MAX,
    );
    if !number.is_empty() && !is_plain_identifier(&value.number) {
        violations.add(
            format!("{field}.number"),
            "must be letters, digits and '-' only, without spaces: the bank compares it as written",
        );
    }
    (kind.to_owned(), number)
}

/// Whether an identifier is written the one way the bank, the guessing budgets, the logs
/// and the bank's URLs all read it: ASCII letters, digits and `-`, nothing around them.
/// Any other spelling of a document (a space, a no-break space, a tab) would be a fresh
/// budget for the same customer; in a path segment, a `.` would be a dot segment.
pub fn is_plain_identifier(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The customer a document names, as the guessing budgets count them: case and leading
/// zeros do not make another customer (the bank may read `0001007641` as `1007641`), so
/// every such spelling shares one budget.
pub fn holder_key(kind: i32, number: &str) -> String {
    let upper = number.to_ascii_uppercase();
    let significant = upper.trim_start_matches('0');
    format!("{kind}:{significant}")
}

/// The wire code of a proto enum value, from the operation's table of allowed values.
pub fn choice<E: Copy + Into<i32>>(
    violations: &mut Violations,
    field: &str,
    value: i32,
    table: &[(E, &'static str)],
    expected: &str,
) -> &'static str {
    match table.iter().find(|(variant, _)| (*variant).into() == value) {
        Some((_, code)) => code,
        None => {
            violations.add(field, format!("must be {expected}"));
            ""
        }
    }
}

/// A free-text field of `min..=max` characters (0 = optional), trimmed, printable.
pub fn text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> String {
    let value = value.trim();
    if value.is_empty() {
        if min > 0 {
            violations.add(field, "is required");
        }
        return String::new();
    }
    violations.length(field, value, min.max(1), max);
    violations.printable(field, value);
    value.to_owned()
}

/// A field of digits only, `min..=max` of them (0 = optional).
pub fn digits(
    violations: &mut Violations,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> String {
    let value = text(violations, field, value, min, max);
    matching(violations, field, value, (&DIGITS, "digits only"))
}

/// A field of ASCII letters and digits only, `min..=max` of them (0 = optional).
pub fn alphanumeric(
    violations: &mut Violations,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> String {
    let value = text(violations, field, value, min, max);
    matching(
        violations,
        field,
        value,
        (&ALNUM, "letters and digits only"),
    )
}

/// `value` if empty or matching `pattern` (described for the caller), else a violation.
fn matching(
    violations: &mut Violations,
    field: &str,
    value: String,
    (pattern, described): (&Regex, &str),
) -> String {
    if !value.is_empty() {
        violations.pattern(field, &value, pattern, described);
    }
    value
}

/// A secret as the channel sends it (encrypted or hashed): required, bounded, printable.
/// Violations name the field, never the value.
pub fn secret(violations: &mut Violations, field: &str, value: &str, max: usize) -> String {
    if value.is_empty() {
        violations.add(field, "is required");
        return String::new();
    }
    optional_secret(violations, field, value, max)
}

/// A secret the spec lets a request leave out (S19's `answer.value`): bounded and printable
/// when given. Violations name the field, never the value.
pub fn optional_secret(
    violations: &mut Violations,
    field: &str,
    value: &str,
    max: usize,
) -> String {
    if value.chars().count() > max {
        violations.add(field, format!("must be at most {max} characters"));
    } else if value.chars().any(char::is_control) {
        violations.add(field, "must not contain control characters");
    }
    value.to_owned()
}

pub fn email(violations: &mut Violations, field: &str, value: &str) -> String {
    let value = text(violations, field, value, 0, 100);
    matching(violations, field, value, (&EMAIL, "an e-mail address"))
}

/// An amount in whole Colombian pesos: the bank's `amt` has no decimals.
pub fn pesos(
    violations: &mut Violations,
    field: &str,
    value: Option<&Money>,
    required: bool,
    max_digits: usize,
) -> Option<u64> {
    let Some(money) = value else {
        if required {
            violations.add(field, "is required");
        }
        return None;
    };
    if money.currency_code != "COP" {
        violations.add(format!("{field}.currency_code"), "must be COP");
    }
    let units = money.minor_units;
    if units <= 0 {
        violations.add(format!("{field}.minor_units"), "must be positive");
        return None;
    }
    if units % 100 != 0 {
        violations.add(
            format!("{field}.minor_units"),
            "must be whole pesos (a multiple of 100)",
        );
        return None;
    }
    let pesos = (units / 100).unsigned_abs();
    if pesos.to_string().len() > max_digits {
        violations.add(
            format!("{field}.minor_units"),
            format!("must have at most {max_digits} digits in pesos"),
        );
    }
    Some(pesos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: Violations) -> String {
        violations
            .finish()
            .map(|()| String::new())
            .unwrap_or_else(|status| status.message().to_owned())
    }

    #[test]
    fn documents_need_a_known_type_and_a_number() {
        let mut v = Violations::new();
        let ident = Identification {
            r#type: DocumentType::Unspecified.into(),
            number: "x".repeat(31),
        };
        identification(&mut v, "customer", Some(&ident));
        identification(&mut v, "adviser", None);
        let message = fields(v);
        assert!(message.contains("customer.type"), "{message}");
        assert!(message.contains("customer.number"), "{message}");
        assert!(message.contains("adviser"), "{message}");

        let mut v = Violations::new();
        let ident = Identification {
            r#type: DocumentType::Pe.into(),
            number: "1007641".into(),
        };
        assert_eq!(
            identification(&mut v, "customer", Some(&ident)),
            ("PE".into(), "1007641".into())
        );
        assert!(v.is_empty());
    }

    #[test]
    fn amounts_are_whole_pesos_in_cop() {
        let mut v = Violations::new();
        let money = |currency: &str, units| Money {
            currency_code: currency.into(),
            minor_units: units,
        };
        assert_eq!(
            pesos(&mut v, "amount", Some(&money("COP", 2_000_000)), true, 14),
            Some(20_000)
        );
        assert!(v.is_empty());
        pesos(&mut v, "a", Some(&money("USD", 100)), true, 14);
        pesos(&mut v, "b", Some(&money("COP", 150)), true, 14);
        pesos(&mut v, "c", Some(&money("COP", -100)), true, 14);
        pesos(&mut v, "d", None, true, 14);
        pesos(
            &mut v,
            "e",
            Some(&money("COP", 10_000_000_000_000_000)),
            true,
            14,
        );
        let message = fields(v);
        for field in [
            "a.currency_code",
            "b.minor_units",
            "c.minor_units",
            "d",
            "e.minor_units",
        ] {
            assert!(message.contains(field), "{field}: {message}");
        }
    }

    #[test]
    fn secrets_are_never_quoted() {
        let mut v = Violations::new();
        secret(&mut v, "password", "hunter2\u{7}", SECRET_MAX);
        let message = fields(v);
        assert!(!message.contains("hunter2"), "{message}");
    }
}
