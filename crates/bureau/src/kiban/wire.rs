//! Kiban's wire format for the password-expiry operation: the request body, the answer
//! envelope and the 400 field-error arrays, and their translation to the proto types.
//!
//! The envelope echoes the request (`request`, password included) and the raw XML sent to
//! the bureau (`apiData`, password included). Neither has a field here, so serde skips
//! them without ever holding their values.

use std::time::Duration;

use chrono::{Datelike as _, NaiveDate};
use pasarela::bureau::v1::GetPasswordExpirationResponse;
use pasarela::google::r#type::Date;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::request::ExpiryQuery;

/// `envelope.status` of a call that got its answer.
pub const SUCCESS: &str = "SUCCESS";

/// The JSON body of the call.
#[derive(Serialize)]
pub struct ExpiryBody<'a> {
    clave: &'a str,
    contrasena: &'a str,
}

impl<'a> From<&'a ExpiryQuery> for ExpiryBody<'a> {
    fn from(query: &'a ExpiryQuery) -> Self {
        Self {
            clave: &query.member_code,
            contrasena: query.password.expose_secret(),
        }
    }
}

/// Kiban's answer envelope, on success and on a bureau failure alike.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Kiban's id of the call.
    #[serde(default)]
    pub id: Option<String>,
    /// Milliseconds Kiban took, bureau included.
    #[serde(default)]
    pub duration: Option<u64>,
    /// `SUCCESS`, `SERVICE_ERROR`, ...
    #[serde(default)]
    pub status: Option<String>,
    /// Kiban's text on a failure, in Spanish.
    #[serde(default)]
    pub error_message: Option<String>,
    /// The bureau's answer on success.
    #[serde(default)]
    pub response: Option<Expiration>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiration {
    /// `MM/DD/YYYY`.
    pub fecha_expiracion: Option<String>,
}

/// One entry of Kiban's 400 arrays: `{"code": "LENGTH_ERROR", "message": "should be 10",
/// "field": "clave"}`.
#[derive(Debug, Deserialize)]
pub struct FieldError {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub field: String,
}

/// A non-success answer, read as far as it can be.
#[derive(Debug)]
pub enum FailureBody {
    Fields(Vec<FieldError>),
    Envelope(Envelope),
    Unreadable,
}

impl FailureBody {
    pub fn parse(body: &[u8]) -> Self {
        if let Ok(fields) = serde_json::from_slice::<Vec<FieldError>>(body) {
            return Self::Fields(fields);
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(envelope) => Self::Envelope(envelope),
            Err(_) => Self::Unreadable,
        }
    }
}

/// Why a success answer could not be used; never carries a value read from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    NotAnEnvelope,
    NoExpirationDate,
    BadDate,
}

impl Unusable {
    pub fn describe(self) -> &'static str {
        match self {
            Self::NotAnEnvelope => "Kiban's answer is not the JSON envelope it documents",
            Self::NoExpirationDate => "Kiban's answer has no response.fechaExpiracion",
            Self::BadDate => "Kiban's response.fechaExpiracion is not a MM/DD/YYYY date",
        }
    }
}

/// The typed response from a success envelope.
pub fn to_response(envelope: &Envelope) -> Result<GetPasswordExpirationResponse, Unusable> {
    let raw = envelope
        .response
        .as_ref()
        .and_then(|response| response.fecha_expiracion.as_deref())
        .ok_or(Unusable::NoExpirationDate)?;
    let date = parse_date(raw).ok_or(Unusable::BadDate)?;
    Ok(GetPasswordExpirationResponse {
        expiration_date: Some(Date {
            year: date.year(),
            month: date.month() as i32,
            day: date.day() as i32,
        }),
        request_id: envelope.id.clone().unwrap_or_default(),
        provider_duration: envelope.duration.map(millis),
    })
}

fn millis(ms: u64) -> prost_types::Duration {
    let duration = Duration::from_millis(ms);
    prost_types::Duration {
        // u64 milliseconds / 1000 always fits an i64.
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or_default(),
    }
}

/// `MM/DD/YYYY` (one-digit month and day tolerated), a real calendar day of years
/// 1-9999, the range `google.type.Date` allows.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let mut parts = raw.trim().split('/');
    let (month, day, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |digits: &str, lens: &[usize]| {
        (lens.contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u32>().ok())
            .flatten()
    };
    let year = i32::try_from(number(year, &[4])?)
        .ok()
        .filter(|y| *y >= 1)?;
    NaiveDate::from_ymd_opt(year, number(month, &[1, 2])?, number(day, &[1, 2])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUCCESS_BODY: &str = r#"{
        "id": "6699c0090e17d41228c1e799",
        "createdAt": "2024-07-19T01:23:21.467062984Z",
        "finishedAt": "2024-07-19T01:23:21.699983348Z",
        "duration": 232,
        "status": "SUCCESS",
        "request": {"clave": "FF12345678", "contrasena": "P4SSW0RD"},
        "apiData": [{
            "url": "128.9.55.100:25400",
            "duration": 105,
            "request": {"date": "2024-07-19T01:23:21.594212251Z",
                "body": "<credentials member=\"FF12345678\" password=\"P4SSW0RD\"/>"},
            "response": {"date": "2024-07-19T01:23:21.699977109Z",
                "body": {"fechaExpiracion": "08/29/2022"}, "httpCode": 200}
        }],
        "response": {"fechaExpiracion": "08/29/2022"}
    }"#;

    #[test]
    fn the_documented_success_becomes_a_date() {
        let envelope: Envelope = serde_json::from_str(SUCCESS_BODY).expect("envelope");
        let response = to_response(&envelope).expect("usable");
        assert_eq!(
            response.expiration_date,
            Some(Date {
                year: 2022,
                month: 8,
                day: 29
            })
        );
        assert_eq!(response.request_id, "6699c0090e17d41228c1e799");
        assert_eq!(
            response.provider_duration,
            Some(prost_types::Duration {
                seconds: 0,
                nanos: 232_000_000
            })
        );
    }

    #[test]
    fn the_echoed_password_is_not_kept() {
        let envelope: Envelope = serde_json::from_str(SUCCESS_BODY).expect("envelope");
        let kept = format!("{envelope:?} {:?}", to_response(&envelope));
        assert!(!kept.contains("P4SSW0RD"), "{kept}");
        assert!(!kept.contains("FF12345678"), "{kept}");
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("02/29/2024"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(parse_date("8/9/2022"), NaiveDate::from_ymd_opt(2022, 8, 9));
        for bad in [
            "",
            "29/08/2022",
            "02/30/2023",
            "2022-08-29",
            "08/29/22",
            "08/29/+2022",
            "08/29/2022/1",
            "08/29/0000",
            "13/01/2022",
            "aa/bb/cccc",
            "08/29/２０２２",
            "008/29/2022",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_missing_or_bad_date_is_unusable() {
        let cases = [
            (r#"{"status":"SUCCESS"}"#, Unusable::NoExpirationDate),
            (
                r#"{"status":"SUCCESS","response":{}}"#,
                Unusable::NoExpirationDate,
            ),
            (
                r#"{"status":"SUCCESS","response":{"fechaExpiracion":"2022-08-29"}}"#,
                Unusable::BadDate,
            ),
        ];
        for (body, expected) in cases {
            let envelope: Envelope = serde_json::from_str(body).expect("envelope");
            assert_eq!(to_response(&envelope).unwrap_err(), expected, "{body}");
        }
    }

    #[test]
    fn failure_bodies_are_told_apart() {
        let fields = FailureBody::parse(
            br#"[{"code":"LENGTH_ERROR","message":"should be 10","field":"clave"}]"#,
        );
        assert!(matches!(fields, FailureBody::Fields(ref f) if f[0].field == "clave"));
        let envelope = FailureBody::parse(br#"{"status":"SERVICE_ERROR","errorMessage":"x"}"#);
        assert!(matches!(envelope, FailureBody::Envelope(_)));
        for unreadable in [&b"<html>502</html>"[..], b"", b"[{\"code\":", b"42"] {
            assert!(matches!(
                FailureBody::parse(unreadable),
                FailureBody::Unreadable
            ));
        }
    }
}
