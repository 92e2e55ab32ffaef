//! Reads the bank's answers: the envelope in every casing seen (`responseType` /
//! `ResponseType`, `errorCode` / `ErrorCode`, values `OK`, `WR`, `ER`, `ER500`...), success
//! bodies handed on for typed parsing, failures to the error table.

use pasarela_provider::{ProviderError, RawResponse};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::{CodesOn5xx, Failure, bad_response, from_failure};

/// `responseType.value`s that mean the operation went through (`WR`: done, with a warning).
const SUCCESS_VALUES: &[&str] = &["OK", "WR"];

/// Statuses whose meaning stands even when the body cannot be read (a gateway's HTML page;
/// on 404, a gateway with no resource at the path: `errors::BY_STATUS_WITHOUT_CODE` makes
/// a codeless 404 pasarela's, never the caller's NOT_FOUND).
fn status_speaks_alone(status: u16) -> bool {
    matches!(status, 401 | 403 | 404 | 408 | 429) || status >= 500
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Envelope {
    response_type: Option<Wrapped>,
    response_detail: Option<Detail>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Wrapped {
    value: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Detail {
    error_code: Value,
    error_desc: Value,
    error_type: Value,
}

/// What `responseType.value` a success must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// None, or one of the success values.
    Optional,
    /// One of the success values.
    Required,
    /// `OK` alone (money moves): anything but `OK` or an `ER…` refusal is unreadable.
    OkOnly,
}

/// How one operation's answers are read.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub operation: &'static str,
    /// What a success must say.
    pub marker: Marker,
    /// What a code named on a 5xx that no table lists means.
    pub codes_on_5xx: CodesOn5xx,
}

/// The typed success body of an operation, or the error its answer stands for, as its
/// [`Reading`] says.
pub fn read<T: DeserializeOwned>(reading: Reading, raw: &RawResponse) -> Result<T, ProviderError> {
    let Reading {
        operation,
        marker,
        codes_on_5xx,
    } = reading;
    let status = raw.status.as_u16();
    let body = match parse_object(&raw.body) {
        Some(body) => body,
        None if status_speaks_alone(status) => {
            return Err(from_failure(
                operation,
                codes_on_5xx,
                &Failure {
                    http: status,
                    ..Failure::default()
                },
            ));
        }
        None => return Err(bad_response(operation, status, unreadable(&raw.body))),
    };
    // Read from a borrow: only the envelope's fields are copied, not the whole body.
    let envelope = Envelope::deserialize(&body)
        .map_err(|_| bad_response(operation, status, "an envelope of the wrong shape"))?;
    let value = envelope
        .response_type
        .as_ref()
        .map(|wrapped| text(&wrapped.value))
        .unwrap_or_default();
    let upper = value.to_ascii_uppercase();
    // With a marker only `OK` is a success and only `ER…` a refusal: anything else (a
    // warning, a value no table knows) is unreadable, which leaves a withdrawal unknown.
    let unmarked = match marker {
        Marker::Optional => false,
        Marker::Required => value.is_empty(),
        Marker::OkOnly => upper != "OK" && !upper.starts_with("ER"),
    };
    if unmarked && raw.status.is_success() {
        return Err(bad_response(operation, status, "no responseType.value OK"));
    }
    let failed = !raw.status.is_success()
        || (!value.is_empty() && !SUCCESS_VALUES.contains(&upper.as_str()));
    if failed {
        let detail = envelope.response_detail.unwrap_or_default();
        return Err(from_failure(
            operation,
            codes_on_5xx,
            &Failure {
                http: status,
                value,
                code: text(&detail.error_code),
                kind: text(&detail.error_type),
                desc: text(&detail.error_desc),
            },
        ));
    }
    serde_json::from_value(body).map_err(|_| {
        bad_response(
            operation,
            status,
            "a body that does not match the operation",
        )
    })
}

/// The body as a JSON object with every key's first letter in lower case, so one set of
/// camelCase structs reads `ResponseType`, `TrnSrcInfo.BlockingInfo` and their kin.
fn parse_object(body: &[u8]) -> Option<Value> {
    let mut value = serde_json::from_slice::<Value>(body).ok()?;
    value.is_object().then(|| {
        normalize(&mut value);
        value
    })
}

/// Lower-cases the first letter of every key, in place; a map is rebuilt only when one
/// of its keys needs it (most of the bank's answers are camelCase already).
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if !map.keys().all(|key| starts_lower(key)) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(key, value)| match starts_lower(&key) {
                        true => (key, value),
                        false => (lower_first(&key), value),
                    })
                    .collect();
            }
            map.values_mut().for_each(normalize);
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// Whether lower-casing `key`'s first letter leaves it as it is.
fn starts_lower(key: &str) -> bool {
    key.chars()
        .next()
        .is_none_or(|first| first.to_lowercase().eq([first]))
}

fn lower_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A JSON scalar as text (the bank prints codes both as strings and numbers).
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => String::new(),
    }
}

/// Names what kind of unreadable body arrived, without quoting it.
fn unreadable(body: &[u8]) -> &'static str {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        "an empty body"
    } else if trimmed.starts_with(b"<") {
        "an HTML or XML body instead of JSON"
    } else if serde_json::from_slice::<Value>(trimmed).is_ok() {
        "JSON that is not an object"
    } else {
        "a body that is not valid JSON"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;
    use tonic::Code;

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec().into(),
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Holds {
        trn_src_info: Value,
    }

    fn reading(operation: &'static str, marker: Marker) -> Reading {
        Reading {
            operation,
            marker,
            codes_on_5xx: CodesOn5xx::Failure,
        }
    }

    #[test]
    fn every_key_starts_lower_case_at_every_depth() {
        let body = r#"{"ResponseType":{"Value":"OK"},"trnSrcInfo":[{"BlockingInfo":{"ÉxtraKey":1,"ok":2}}],"_x":{"Y":[]}}"#.as_bytes();
        let expected = serde_json::json!({
            "responseType": {"value": "OK"},
            "trnSrcInfo": [{"blockingInfo": {"éxtraKey": 1, "ok": 2}}],
            "_x": {"y": []},
        });
        assert_eq!(parse_object(body), Some(expected));
        assert_eq!(parse_object(b"[1]"), None);
    }

    #[test]
    fn both_casings_of_the_envelope_are_read() {
        let camel = r#"{"responseType":{"value":"ER"},"responseDetail":{"errorCode":"1008","errorDesc":"x","errorType":"OUD"}}"#;
        let pascal = r#"{"ResponseType":{"value":"ER"},"ResponseDetail":{"ErrorCode":"00068","ErrorDesc":"Usuario ya existe.","ErrorType":"OUD"}}"#;
        let error = read::<Value>(reading("op", Marker::Optional), &raw(400, camel)).unwrap_err();
        assert_eq!(error.reason, "PASSWORD_EQUALS_ID");
        let error = read::<Value>(reading("op", Marker::Optional), &raw(400, pascal)).unwrap_err();
        assert_eq!(error.code, Code::AlreadyExists);
        assert_eq!(error.reason, "USER_ALREADY_EXISTS");
    }

    #[test]
    fn an_error_envelope_on_206_is_a_failure() {
        let body = r#"{"responseType":{"value":"ER"},"responseDetail":{"errorCode":"1","errorDesc":"BUSSINES MISTAKE","errorType":"BDA"}}"#;
        let error = read::<Value>(
            reading("generate_otc_v3", Marker::Optional),
            &raw(206, body),
        )
        .unwrap_err();
        assert_eq!(error.reason, "BUSINESS_RULE_REJECTED");
    }

    #[test]
    fn er500_with_an_empty_detail_is_unavailable() {
        let body = r#"{"responseType":{"value":"ER500"},"responseDetail":{"errorCode":"","errorDesc":"","errorType":""}}"#;
        let error = read::<Value>(
            reading("list_channel_holds", Marker::Optional),
            &raw(500, body),
        )
        .unwrap_err();
        assert_eq!(error.code, Code::Unavailable);
        assert_eq!(error.details.metadata["provider_response_type"], "ER500");
    }

    #[test]
    fn pascal_case_bodies_reach_camel_case_structs() {
        let body = r#"{"ResponseType":{"Value":"OK"},"TrnSrcInfo":{"ResultsPagesGeneric":{"TotalRecords":"1"}}}"#;
        let holds: Holds = read(reading("op", Marker::Optional), &raw(200, body)).unwrap();
        assert_eq!(
            holds.trn_src_info["resultsPagesGeneric"]["totalRecords"],
            "1"
        );
    }

    #[test]
    fn a_success_without_envelope_is_read_unless_the_operation_has_a_marker() {
        let body = r#"{"trnSrcInfo":{}}"#;
        assert!(read::<Holds>(reading("op", Marker::Optional), &raw(200, body)).is_ok());
        let error = read::<Holds>(reading("op", Marker::Required), &raw(200, body)).unwrap_err();
        assert_eq!(error.reason, "PROVIDER_BAD_RESPONSE");
        let marked = r#"{"responseType":{"value":"OK"},"trnSrcInfo":{}}"#;
        assert!(read::<Holds>(reading("op", Marker::OkOnly), &raw(200, marked)).is_ok());
        let warned = r#"{"responseType":{"value":"WR"},"trnSrcInfo":{}}"#;
        assert!(read::<Holds>(reading("op", Marker::Required), &raw(200, warned)).is_ok());
        for value in ["WR", "PENDIENTE"] {
            let body = format!(r#"{{"responseType":{{"value":"{value}"}},"trnSrcInfo":{{}}}}"#);
            let error = read::<Holds>(reading("op", Marker::OkOnly), &raw(200, &body)).unwrap_err();
            assert_eq!(error.reason, "PROVIDER_BAD_RESPONSE", "{value}");
        }
    }

    #[test]
    fn malformed_answers_are_bad_responses_without_the_body() {
        for body in ["", "<html>oops secret</html>", "{\"responseType\":", "[1]"] {
            let error =
                read::<Value>(reading("op", Marker::Optional), &raw(200, body)).unwrap_err();
            assert_eq!(error.reason, "PROVIDER_BAD_RESPONSE", "{body:?}");
            assert_eq!(error.code, Code::Internal);
            assert!(!error.message.contains("oops"), "{}", error.message);
        }
        let error = read::<Holds>(
            reading("op", Marker::Optional),
            &raw(200, r#"{"trnSrcInfo":1}"#),
        )
        .map(|_| ());
        assert!(error.is_ok(), "a Value field takes any shape");
    }

    #[test]
    fn a_gateway_page_keeps_the_meaning_of_its_status() {
        let error = read::<Value>(
            reading("op", Marker::Optional),
            &raw(502, "<html>Bad gateway</html>"),
        )
        .unwrap_err();
        assert_eq!(error.code, Code::Unavailable);
        let error = read::<Value>(reading("op", Marker::Optional), &raw(401, "")).unwrap_err();
        assert_eq!(error.reason, "PROVIDER_AUTH_FAILED");
    }
}
