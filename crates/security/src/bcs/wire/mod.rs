//! Banco Caja Social's wire format, one section per operation: the request each RPC becomes
//! (checking every field as the spec's tables and prose say) and the typed answer turned
//! back into the proto response. Field names and casing follow the spec's examples; answers
//! are read after the envelope layer lowered every key's first letter.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use pasarela::common::v1::PageInfo;
use pasarela::security::v1 as pb;
use pasarela_provider::Violations;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use std::marker::PhantomData;

use reqwest::Method;

use super::client::{Channel, Op, Path, Retry};
use super::envelope::Marker;
use super::errors::CodesOn5xx;
use super::fields::{self, SECRET_MAX};
use super::invoker::bank_now;
use super::invoker::{Field, field};
use super::operation::{Operation, Readings};
use super::routing::CredentialFamily;
use crate::config::{ConsultaBody, HoldsQuery, InvokerFields, PasswordStatusValues, RecordBase};
use pasarela::common::v1::{Identification, InvokerContext};

/// What one call sends: a path parameter, query parameters and a JSON body, each optional.
pub struct Outgoing<B> {
    pub path_id: Option<String>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<B>,
}

impl<B> Outgoing<B> {
    fn body(body: B) -> Self {
        Self {
            path_id: None,
            query: Vec::new(),
            body: Some(body),
        }
    }
}

/// The body of operations that send none (GET).
#[derive(Serialize)]
pub enum NoBody {}

impl Outgoing<NoBody> {
    fn query(path_id: Option<String>, query: Vec<(&'static str, String)>) -> Self {
        Self {
            path_id,
            query,
            body: None,
        }
    }
}

/// A wire answer that cannot be turned into the proto response; says which field, never
/// its value.
pub type Unreadable = &'static str;

// ---- shared pieces ----------------------------------------------------------------------

/// `CustomerType` <-> `nameAddrType` / `clientType.value` / `personType`.
const CUSTOMER_TYPES: &[(pb::CustomerType, &str)] = &[
    (pb::CustomerType::Natural, "N"),
    (pb::CustomerType::Juridical, "J"),
];

/// Authorization results of the risk engine (`authorization.value`).
const AUTHORIZATION_RESULTS: &[(&str, pb::AuthorizationResult)] = &[
    ("SI", pb::AuthorizationResult::Authorized),
    ("TV", pb::AuthorizationResult::QuestionsPending),
    ("NO", pb::AuthorizationResult::Denied),
];

const CUSTOMER_TYPE_EXPECTED: &str = "NATURAL or JURIDICAL";

fn expose<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn expose_optional<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => expose(secret, serializer),
        None => serializer.serialize_none(),
    }
}

fn is_empty(text: &str) -> bool {
    text.is_empty()
}

/// A JSON string, number, boolean or null read as text: the bank prints counters, amounts
/// and codes every way.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Text(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => text.trim().to_owned(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => String::new(),
        }))
    }
}

impl Text {
    fn into_string(self) -> String {
        self.0
    }

    fn as_str(&self) -> &str {
        &self.0
    }

    /// A counter; an empty value is zero.
    fn number(&self) -> Result<i32, Unreadable> {
        if self.0.is_empty() {
            return Ok(0);
        }
        self.0.parse().map_err(|_| "a counter that is not a number")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GovIssueIdent {
    gov_issue_ident_type: String,
    ident_serial_num: String,
}

fn gov_issue_ident(
    violations: &mut Violations,
    field: &str,
    value: Option<&pasarela::common::v1::Identification>,
) -> GovIssueIdent {
    let (kind, number) = fields::identification(violations, field, value);
    GovIssueIdent {
        gov_issue_ident_type: kind,
        ident_serial_num: number,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    #[serde(skip_serializing_if = "is_empty")]
    cell_phone: String,
    #[serde(skip_serializing_if = "is_empty")]
    email_addr: String,
}

/// Colombian mobile numbers have 10 digits (`cellPhone: "3175137626"`).
fn contact_info(
    violations: &mut Violations,
    field: &str,
    value: Option<&pb::ContactInfo>,
) -> Option<ContactInfo> {
    let value = value?;
    Some(ContactInfo {
        cell_phone: fields::digits(
            violations,
            &format!("{field}.cell_phone"),
            &value.cell_phone,
            0,
            10,
        ),
        email_addr: fields::email(violations, &format!("{field}.email"), &value.email),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContactInfoAnswer {
    cell_phone: Text,
    email_addr: Text,
}

impl From<ContactInfoAnswer> for pb::ContactInfo {
    fn from(answer: ContactInfoAnswer) -> Self {
        Self {
            cell_phone: answer.cell_phone.into_string(),
            email: answer.email_addr.into_string(),
        }
    }
}

#[derive(Serialize)]
pub struct Wrapped<T> {
    value: T,
}

fn wrapped<T>(value: T) -> Wrapped<T> {
    Wrapped { value }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WrappedAnswer {
    value: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Authorization {
    value: Text,
    code: Text,
}

impl Authorization {
    /// (result, value as sent, code).
    fn read(self) -> (pb::AuthorizationResult, String, String) {
        let value = self.value.into_string();
        let result = AUTHORIZATION_RESULTS
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(&value))
            .map(|(_, result)| *result)
            .unwrap_or(pb::AuthorizationResult::Other);
        (result, value, self.code.into_string())
    }
}

/// An answer whose envelope said OK and that carries nothing else pasarela needs.
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

/// Responses that carry nothing but the bank's success.
macro_rules! acknowledged {
    ($($response:ident),* $(,)?) => {$(
        impl TryFrom<Empty> for pb::$response {
            type Error = Unreadable;

            fn try_from(_: Empty) -> Result<Self, Unreadable> {
                Ok(Self::default())
            }
        }
    )*};
}

acknowledged!(
    GenerateOtcResponse,
    GenerateOtcV3Response,
    ValidateOtcResponse,
    EnrollDigitalUserResponse,
    ValidateDigitalEnrollmentResponse,
    ChangePasswordResponse,
    CreateUserResponse,
    ValidateEnrollmentCardResponse,
    ValidatePasswordRecoveryResponse,
    SetChannelHoldResponse,
);

/// A timestamp in the bank's local time (UTC-5) in one of `formats`.
fn bank_time(
    text: &str,
    formats: &[&str],
    now_offset: FixedOffset,
) -> Result<Option<prost_types::Timestamp>, Unreadable> {
    if text.is_empty() {
        return Ok(None);
    }
    let naive = formats
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .ok_or("a date in an unknown format")?;
    let instant: DateTime<FixedOffset> = now_offset
        .from_local_datetime(&naive)
        .single()
        .ok_or("a date that does not exist")?;
    Ok(Some(prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or_default(),
    }))
}

fn bank_offset() -> FixedOffset {
    super::invoker::bank_now().offset().to_owned()
}

mod challenges;
mod enrollment;
mod holds;
mod otc;
mod passwords;
mod withdrawals;

pub use challenges::*;
pub use enrollment::*;
pub use holds::*;
pub use otc::*;
pub use passwords::*;
pub use withdrawals::*;

#[cfg(test)]
mod tests;
