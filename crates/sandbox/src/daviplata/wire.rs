//! Daviplata's wire format as the emulator reads and writes it: the gateway's JSON schema
//! of each request (checked first, with its JSV errors), the typed requests, and the
//! answers with their quirks: `commercelId` with an `l` (the field table's `commerceId` is
//! accepted too, unless a reading picks one), `resultStatus` for request and payment but `ResultStatus` for activate
//! and cancel, amounts as JSON numbers, and the OTP expiry as a zone-less Bogotá time.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::errors::Failure;
use super::state::{CommerceField, DocumentField};

/// The JSON type a schema property demands.
pub enum Kind {
    Text,
    Number,
    Object(&'static [Property]),
    List(&'static [Property]),
}

/// One property of a request schema.
pub struct Property {
    name: &'static str,
    /// Other spellings accepted for the same property.
    alias: Option<&'static str>,
    kind: Kind,
    required: bool,
}

const fn text(name: &'static str, required: bool) -> Property {
    Property {
        name,
        alias: None,
        kind: Kind::Text,
        required,
    }
}

const fn object(name: &'static str, properties: &'static [Property]) -> Property {
    Property {
        name,
        alias: None,
        kind: Kind::Object(properties),
        required: true,
    }
}

const CONSUMER: Property = object("Consumer", &[text("paymentProviderId", true)]);

const HEADER: Property = object(
    "TransactionHeader",
    &[
        text("transactionId", false),
        text("transactionDate", false),
        text("apiRulesVersion", false),
        Property {
            name: "commercelId",
            alias: Some("commerceId"),
            kind: Kind::Text,
            required: true,
        },
        text("commerceName", false),
        text("category", false),
    ],
);

/// The wallet part of every `TransactionDetail`.
macro_rules! wallet_properties {
    ($($more:expr),* $(,)?) => {
        &[
            text("identificationType", true),
            text("identificationNumber", true),
            text("productCode", true),
            text("productNumber", true),
            $($more),*
        ]
    };
}

pub const REQUEST_SCHEMA: &[Property] = &[
    CONSUMER,
    HEADER,
    object("TransactionDetail", wallet_properties!()),
];

pub const CANCEL_SCHEMA: &[Property] = REQUEST_SCHEMA;

pub const ACTIVATE_SCHEMA: &[Property] = &[
    CONSUMER,
    HEADER,
    object(
        "TransactionDetail",
        wallet_properties!(
            text("amountCurrencyType", true),
            Property {
                name: "amountValue",
                alias: None,
                kind: Kind::Number,
                required: false,
            },
            text("otpValue", true),
            text("otpSesionId", true),
        ),
    ),
];

pub const PAYMENT_SCHEMA: &[Property] = &[
    CONSUMER,
    HEADER,
    object(
        "TransactionDetail",
        wallet_properties!(
            object(
                "Amount",
                &[
                    text("amountCurrencyType", true),
                    Property {
                        name: "amountValue",
                        alias: None,
                        kind: Kind::Number,
                        required: true,
                    },
                ],
            ),
            text("invoiceId", false),
            text("invoiceDescription", false),
            Property {
                name: "GeneralInfo",
                alias: None,
                kind: Kind::List(&[text("name", true), text("value", true)]),
                required: false,
            },
        ),
    ),
];

/// Parses `body` and checks it against `schema` the way the gateway does, before any
/// business rule.
pub fn parse<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    schema: &[Property],
) -> Result<(T, Value), Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Failure::Unreadable)?;
    check_object(&value, schema)?;
    // The schema guarantees every shape the typed request relies on.
    let typed = serde_json::from_value(value.clone()).map_err(|_| Failure::Unreadable)?;
    Ok((typed, value))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_object(value: &Value, schema: &[Property]) -> Result<(), Failure> {
    let Value::Object(map) = value else {
        return Err(Failure::WrongType(type_name(value)));
    };
    if let Some((_, extra)) = map.iter().find(|(key, _)| {
        !schema
            .iter()
            .any(|p| p.name == key.as_str() || p.alias == Some(key.as_str()))
    }) {
        return Err(Failure::WrongType(type_name(extra)));
    }
    schema.iter().try_for_each(|property| {
        let found = map
            .get(property.name)
            .or_else(|| property.alias.and_then(|alias| map.get(alias)))
            .filter(|v| !v.is_null());
        match found {
            None if property.required => Err(Failure::MissingProperty(property.name.to_owned())),
            None => Ok(()),
            Some(value) => check_value(value, &property.kind),
        }
    })
}

fn check_value(value: &Value, kind: &Kind) -> Result<(), Failure> {
    match (kind, value) {
        (Kind::Text, Value::String(_)) | (Kind::Number, Value::Number(_)) => Ok(()),
        (Kind::Object(schema), _) => check_object(value, schema),
        (Kind::List(schema), Value::Array(items)) => {
            items.iter().try_for_each(|item| check_object(item, schema))
        }
        _ => Err(Failure::WrongType(type_name(value))),
    }
}

#[derive(Deserialize)]
pub struct Envelope<D> {
    #[serde(rename = "Consumer")]
    pub consumer: Consumer,
    #[serde(rename = "TransactionHeader")]
    pub header: Header,
    #[serde(rename = "TransactionDetail")]
    pub detail: D,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    pub payment_provider_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub transaction_id: Option<String>,
    #[serde(rename = "commercelId", alias = "commerceId")]
    pub commerce_id: String,
    pub commerce_name: Option<String>,
    pub category: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    pub identification_type: String,
    pub identification_number: String,
    pub product_code: String,
    pub product_number: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivateDetail {
    #[serde(flatten)]
    pub wallet: Wallet,
    pub amount_currency_type: String,
    pub amount_value: Option<Number>,
    pub otp_value: String,
    pub otp_sesion_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetail {
    #[serde(flatten)]
    pub wallet: Wallet,
    #[serde(rename = "Amount")]
    pub amount: Amount,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Amount {
    pub amount_currency_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_value: Option<Number>,
}

/// `resultStatus` / `ResultStatus`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultStatus {
    pub status: u8,
    pub message: &'static str,
    pub transaction_id: String,
    pub transaction_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_number: Option<String>,
}

#[derive(Serialize)]
pub struct RequestAnswer {
    #[serde(rename = "resultStatus")]
    pub result: ResultStatus,
    #[serde(rename = "infoOtp")]
    pub info_otp: InfoOtp,
}

#[derive(Serialize)]
pub struct InfoOtp {
    /// Only in the lab: the OTP the holder would get by SMS.
    pub value: String,
    #[serde(rename = "expirationDateOTP")]
    pub expiration_date: String,
    #[serde(rename = "idSesionOTP")]
    pub session_id: String,
    /// Minutes.
    #[serde(rename = "expirationTimeOTP")]
    pub expiration_minutes: u64,
}

#[derive(Serialize)]
pub struct ActivateAnswer {
    #[serde(rename = "ResultStatus")]
    pub result: ResultStatus,
    #[serde(rename = "Subscription")]
    pub subscription: SubscriptionView,
}

#[derive(Serialize)]
pub struct CancelAnswer {
    #[serde(rename = "ResultStatus")]
    pub result: ResultStatus,
}

#[derive(Serialize)]
pub struct PaymentAnswer {
    #[serde(rename = "resultStatus")]
    pub result: ResultStatus,
    #[serde(rename = "Subscription")]
    pub subscription: SubscriptionView,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub subscription_id: String,
    pub max_value: Amount,
    #[serde(rename = "PaymentProvider")]
    pub payment_provider: PaymentProvider,
    #[serde(rename = "Commerce")]
    pub commerce: Commerce,
    #[serde(rename = "Identification")]
    pub identification: Identification,
    #[serde(rename = "Product")]
    pub product: Product,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentProvider {
    pub payment_provider_id: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Commerce {
    #[serde(rename = "commercelId")]
    pub commerce_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commerce_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identification {
    pub identification_type: String,
    pub identification_number: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub product_code: String,
    pub product_number: String,
}

/// The values each coded field accepts.
const ACCEPTED: [(&str, &[&str]); 3] = [
    ("identificationType", &["CC", "CE", "TI"]),
    ("productCode", &["DVP_CO"]),
    ("amountCurrencyType", &["COP"]),
];

fn accept(field: &str, value: &str) -> Result<(), Failure> {
    let known = ACCEPTED
        .iter()
        .find(|(name, _)| *name == field)
        .is_none_or(|(_, values)| values.contains(&value));
    if known && !value.trim().is_empty() {
        Ok(())
    } else {
        Err(invalid(field, value))
    }
}

fn invalid(field: &str, value: &str) -> Failure {
    Failure::InvalidValue {
        field: field.to_owned(),
        value: value.to_owned(),
    }
}

/// D2's body with its document number under the name the schema knows: a bank that reads
/// the table's `identificationNum` alone finds no document in an `identificationNumber`,
/// one that reads the example's alone finds `identificationNum` unknown (the schema refuses
/// it), one that reads either takes both.
pub fn activation_document(
    body: &[u8],
    reading: Option<DocumentField>,
) -> Result<Vec<u8>, Failure> {
    const TABLE: &str = "identificationNum";
    const EXAMPLE: &str = "identificationNumber";
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return Ok(body.to_vec());
    };
    let Some(detail) = value
        .get_mut("TransactionDetail")
        .and_then(Value::as_object_mut)
    else {
        return Ok(body.to_vec());
    };
    match reading {
        Some(DocumentField::IdentificationNumber) => return Ok(body.to_vec()),
        Some(DocumentField::IdentificationNum) if detail.contains_key(EXAMPLE) => {
            return Err(Failure::MissingProperty(TABLE.to_owned()));
        }
        _ => {}
    }
    if let Some(number) = detail.remove(TABLE) {
        detail.insert(EXAMPLE.to_owned(), number);
    }
    Ok(serde_json::to_vec(&value).expect("a JSON value"))
}

/// Refuses a `TransactionHeader` that spells the merchant id the way a gateway reading
/// the other spelling alone does not know: as a property its schema does not have.
pub fn commerce_field(body: &[u8], reading: Option<CommerceField>) -> Result<(), Failure> {
    let Some(reading) = reading else {
        return Ok(());
    };
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    match value.pointer(&format!("/TransactionHeader/{}", reading.other_key())) {
        Some(unknown) => Err(Failure::WrongType(type_name(unknown))),
        None => Ok(()),
    }
}

/// The wallet's values, beyond the types the schema checked.
pub fn check_wallet(wallet: &Wallet) -> Result<(), Failure> {
    accept("identificationType", &wallet.identification_type)?;
    accept("identificationNumber", &wallet.identification_number)?;
    accept("productCode", &wallet.product_code)?;
    accept("productNumber", &wallet.product_number)
}

pub fn check_currency(currency: &str) -> Result<(), Failure> {
    accept("amountCurrencyType", currency)
}

/// A positive amount with at most two decimals, in cents.
pub fn check_amount(field: &str, amount: &Number) -> Result<u64, Failure> {
    cents(amount)
        .filter(|cents| *cents > 0)
        .ok_or_else(|| invalid(field, &amount.to_string()))
}

/// Bogotá's offset (no daylight saving time).
fn bogota() -> FixedOffset {
    FixedOffset::west_opt(5 * 3600).expect("a valid offset")
}

/// `2023-07-06T12:06:46.385-05:00`.
pub fn transaction_date(at: DateTime<Utc>) -> String {
    at.with_timezone(&bogota())
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// `2023-07-06 12:09:46.344`, Bogotá time without a zone.
pub fn otp_expiration(at: DateTime<Utc>) -> String {
    at.with_timezone(&bogota())
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// An amount in cents, from a JSON number with at most two decimals; `None` for anything
/// else (negative, exponent, more decimals, more than `u64` holds).
pub fn cents(amount: &Number) -> Option<u64> {
    u64::try_from(crate::amount::cents(&amount.to_string())?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(body: &str, schema: &[Property]) -> Failure {
        parse::<Value>(body.as_bytes(), schema).unwrap_err()
    }

    #[test]
    fn schema_errors_are_the_gateway_ones() {
        let ok = r#"{"Consumer":{"paymentProviderId":"1"},"TransactionHeader":{"commerceId":"c"},
            "TransactionDetail":{"identificationType":"CC","identificationNumber":"1","productCode":"DVP_CO","productNumber":"3"}}"#;
        assert!(parse::<Value>(ok.as_bytes(), REQUEST_SCHEMA).is_ok());
        let missing = ok.replace(r#""productNumber":"3""#, r#""productNumber":null"#);
        assert_eq!(
            failure(&missing, REQUEST_SCHEMA),
            Failure::MissingProperty("productNumber".into())
        );
        let number = ok.replace(
            r#""identificationNumber":"1""#,
            r#""identificationNumber":1"#,
        );
        assert_eq!(
            failure(&number, REQUEST_SCHEMA),
            Failure::WrongType("integer")
        );
        let extra = ok.replace(r#""commerceId":"c""#, r#""commerceId":"c","extra":"x""#);
        assert_eq!(
            failure(&extra, REQUEST_SCHEMA),
            Failure::WrongType("string")
        );
        assert_eq!(failure("{\"a\":1,}", REQUEST_SCHEMA), Failure::Unreadable);
    }

    #[test]
    fn a_merchant_id_reading_refuses_the_other_spelling_as_unknown() {
        let table = br#"{"TransactionHeader":{"commerceId":"c"}}"#;
        let example = br#"{"TransactionHeader":{"commercelId":"c"}}"#;
        for body in [&table[..], &example[..]] {
            assert_eq!(commerce_field(body, None), Ok(()));
        }
        let examples_only = Some(CommerceField::CommercelId);
        assert_eq!(commerce_field(example, examples_only), Ok(()));
        assert_eq!(
            commerce_field(table, examples_only),
            Err(Failure::WrongType("string"))
        );
        let tables_only = Some(CommerceField::CommerceId);
        assert_eq!(commerce_field(table, tables_only), Ok(()));
        assert!(commerce_field(example, tables_only).is_err());
    }

    #[test]
    fn amounts_are_exact_cents() {
        let n = |s: &str| serde_json::from_str::<Number>(s).unwrap();
        assert_eq!(cents(&n("1000.01")), Some(100_001));
        assert_eq!(cents(&n("1000.1")), Some(100_010));
        assert_eq!(cents(&n("7")), Some(700));
        assert_eq!(cents(&n("1.005")), None);
        assert_eq!(cents(&n("-1")), None);
    }

    #[test]
    fn dates_are_bogota_time() {
        let at = DateTime::parse_from_rfc3339("2023-07-06T17:06:46.385Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(transaction_date(at), "2023-07-06T12:06:46.385-05:00");
        assert_eq!(otp_expiration(at), "2023-07-06 12:06:46.385");
    }
}
