//! Daviplata's wire format (the "transformers"): request and response bodies as the
//! provider spells them, and their translation from and to the proto types. Quirks kept
//! here and nowhere else: `commercelId` with an `l` (or as configured), `resultStatus` / `ResultStatus`,
//! amounts as decimal JSON numbers, OTP expiry as a zone-less Colombian local time.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use pasarela::common::v1::{DocumentType, Identification, Money};
use pasarela::recurring_payments::v1 as pb;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::operation::{Call, Operation, Readings};
use crate::config::{CommerceField, Config, DocumentField};
use crate::money;
use crate::tenancy::Act;
use crate::validate::{self, Activation, Parties, Payment};
use tonic::Status;

/// Values every request carries that come from configuration, not from the caller.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub payment_provider_id: String,
    pub api_rules_version: String,
    /// D2's spelling of the document number (`identificationNumber` elsewhere).
    pub activation_document: DocumentField,
    /// The merchant id's key in every `TransactionHeader`.
    pub commerce_id: CommerceField,
}

impl Defaults {
    pub fn of(config: &Config) -> Self {
        Self {
            payment_provider_id: config.payment_provider_id.clone(),
            api_rules_version: config.api_rules_version.clone(),
            activation_document: config.activation_document_field,
            commerce_id: config.commerce_id_field,
        }
    }
}

/// pasarela's reference of one call, fixed before the call leaves.
pub struct Reference {
    pub transaction_id: String,
    pub transaction_date: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct Envelope<D> {
    #[serde(rename = "Consumer")]
    consumer: Consumer,
    #[serde(rename = "TransactionHeader")]
    header: TransactionHeader,
    #[serde(rename = "TransactionDetail")]
    detail: D,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Consumer {
    payment_provider_id: String,
}

struct TransactionHeader {
    transaction_id: String,
    transaction_date: String,
    api_rules_version: String,
    /// Every example spells the key `commercelId`, the field tables `commerceId`.
    commerce_key: &'static str,
    commerce_id: String,
    commerce_name: String,
    category: String,
}

impl Serialize for TransactionHeader {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("transactionId", &self.transaction_id)?;
        map.serialize_entry("transactionDate", &self.transaction_date)?;
        map.serialize_entry("apiRulesVersion", &self.api_rules_version)?;
        map.serialize_entry(self.commerce_key, &self.commerce_id)?;
        if !self.commerce_name.is_empty() {
            map.serialize_entry("commerceName", &self.commerce_name)?;
        }
        if !self.category.is_empty() {
            map.serialize_entry("category", &self.category)?;
        }
        map.end()
    }
}

/// The wallet part of a detail; its document number's key depends on the operation.
pub struct WalletDetail {
    identification_type: &'static str,
    identification_number: String,
    number_key: &'static str,
    product_code: String,
    product_number: String,
}

impl Serialize for WalletDetail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("identificationType", self.identification_type)?;
        map.serialize_entry(self.number_key, &self.identification_number)?;
        map.serialize_entry("productCode", &self.product_code)?;
        map.serialize_entry("productNumber", &self.product_number)?;
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivateDetail {
    #[serde(flatten)]
    wallet: WalletDetail,
    amount_currency_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_value: Option<Box<RawValue>>,
    #[serde(serialize_with = "expose")]
    otp_value: SecretString,
    /// Spelled with one `s` on the wire.
    otp_sesion_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetail {
    #[serde(flatten)]
    wallet: WalletDetail,
    #[serde(rename = "Amount")]
    amount: Amount,
    #[serde(skip_serializing_if = "String::is_empty")]
    invoice_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    invoice_description: String,
    #[serde(rename = "GeneralInfo", skip_serializing_if = "Vec::is_empty")]
    general_info: Vec<NameValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Amount {
    amount_currency_type: &'static str,
    amount_value: Box<RawValue>,
}

#[derive(Serialize)]
struct NameValue {
    name: String,
    value: String,
}

fn expose<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// The two-letter code of the document kinds Daviplata accepts.
pub fn document_code(kind: DocumentType) -> Option<&'static str> {
    const ACCEPTED: [(DocumentType, &str); 3] = [
        (DocumentType::Cc, "CC"),
        (DocumentType::Ce, "CE"),
        (DocumentType::Ti, "TI"),
    ];
    ACCEPTED
        .iter()
        .find(|(accepted, _)| *accepted == kind)
        .map(|(_, code)| *code)
}

/// The product code sent when the caller gives none.
pub const DEFAULT_PRODUCT_CODE: &str = "DVP_CO";

fn envelope<D>(
    defaults: &Defaults,
    reference: &Reference,
    parties: &Parties<'_>,
    detail: D,
) -> Envelope<D> {
    let commerce = parties.commerce;
    Envelope {
        consumer: Consumer {
            payment_provider_id: defaults.payment_provider_id.clone(),
        },
        header: TransactionHeader {
            transaction_id: reference.transaction_id.clone(),
            transaction_date: reference
                .transaction_date
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            api_rules_version: defaults.api_rules_version.clone(),
            commerce_key: defaults.commerce_id.key(),
            commerce_id: commerce.commerce_id.clone(),
            commerce_name: commerce.commerce_name.clone(),
            category: commerce.category.clone(),
        },
        detail,
    }
}

/// The wallet part of every detail.
fn wallet_detail(parties: &Parties<'_>, number_key: &'static str) -> WalletDetail {
    let wallet = parties.wallet;
    let product_code = if wallet.product_code.is_empty() {
        DEFAULT_PRODUCT_CODE
    } else {
        &wallet.product_code
    };
    WalletDetail {
        identification_type: parties.document_code,
        identification_number: parties.holder.number.clone(),
        number_key,
        product_code: product_code.to_owned(),
        product_number: wallet.product_number.clone(),
    }
}

/// The body of request and cancel: the wallet and nothing more.
pub fn wallet_body(
    defaults: &Defaults,
    reference: &Reference,
    parties: &Parties<'_>,
) -> Envelope<WalletDetail> {
    // Every operation but D2 spells it as D2's example does; D2's spelling is configured.
    let detail = wallet_detail(parties, DocumentField::IdentificationNumber.key());
    envelope(defaults, reference, parties, detail)
}

pub fn activate_body(
    defaults: &Defaults,
    reference: &Reference,
    activation: &Activation<'_>,
) -> Envelope<ActivateDetail> {
    let parties = &activation.parties;
    let detail = ActivateDetail {
        wallet: wallet_detail(parties, defaults.activation_document.key()),
        amount_currency_type: money::CURRENCY,
        amount_value: activation
            .maximum
            .map(|max| money::to_wire(max.minor_units)),
        otp_value: SecretString::from(activation.otp_value),
        otp_sesion_id: activation.otp_session_id.to_owned(),
    };
    envelope(defaults, reference, parties, detail)
}

pub fn payment_body(
    defaults: &Defaults,
    reference: &Reference,
    payment: &Payment<'_>,
) -> Envelope<PaymentDetail> {
    let parties = &payment.parties;
    let detail = PaymentDetail {
        wallet: wallet_detail(parties, DocumentField::IdentificationNumber.key()),
        amount: Amount {
            amount_currency_type: money::CURRENCY,
            amount_value: money::to_wire(payment.amount.minor_units),
        },
        invoice_id: payment.invoice_id.to_owned(),
        invoice_description: payment.invoice_description.to_owned(),
        general_info: payment
            .general_info
            .iter()
            .map(|info| NameValue {
                name: info.name.clone(),
                value: info.value.clone(),
            })
            .collect(),
    };
    envelope(defaults, reference, parties, detail)
}

/// `resultStatus` (request, payment) or `ResultStatus` (activate, cancel).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultStatus {
    /// 0 is approved; some gateways send it as a string.
    pub status: Option<serde_json::Value>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub transaction_id: String,
    pub transaction_date: Option<String>,
    #[serde(default)]
    pub approval_number: String,
}

impl ResultStatus {
    /// The status as a number (`0` or `"0"`); `None` when missing or not a number.
    pub fn status_code(&self) -> Option<i64> {
        match self.status.as_ref()? {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn to_proto(&self) -> pb::ResultStatus {
        pb::ResultStatus {
            status: self
                .status_code()
                .and_then(|s| i32::try_from(s).ok())
                .unwrap_or_default(),
            message: self.message.clone(),
            transaction_id: self.transaction_id.clone(),
            transaction_time: self.transaction_date.as_deref().and_then(iso_timestamp),
        }
    }
}

/// Any answer body: the result object under either casing, and whatever else came.
#[derive(Debug, Deserialize)]
pub struct Answer {
    #[serde(rename = "resultStatus", alias = "ResultStatus")]
    pub result: Option<ResultStatus>,
    #[serde(rename = "infoOtp", alias = "InfoOtp")]
    pub info_otp: Option<InfoOtp>,
    #[serde(rename = "Subscription", alias = "subscription")]
    pub subscription: Option<Subscription>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InfoOtp {
    /// Only Daviplata's lab sends the OTP itself.
    pub value: Option<SecretString>,
    #[serde(rename = "expirationDateOTP")]
    pub expiration_date_otp: Option<String>,
    #[serde(rename = "idSesionOTP")]
    pub id_sesion_otp: Option<serde_json::Value>,
    #[serde(rename = "expirationTimeOTP")]
    pub expiration_time_otp: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(default)]
    pub subscription_id: String,
    pub max_value: Option<WireAmount>,
    #[serde(rename = "PaymentProvider")]
    pub payment_provider: Option<PaymentProvider>,
    #[serde(rename = "Commerce")]
    pub commerce: Option<WireCommerce>,
    #[serde(rename = "Identification")]
    pub identification: Option<WireIdentification>,
    #[serde(rename = "Product")]
    pub product: Option<WireProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAmount {
    #[serde(default)]
    pub amount_currency_type: String,
    pub amount_value: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentProvider {
    #[serde(default)]
    pub payment_provider_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireCommerce {
    #[serde(default, rename = "commercelId", alias = "commerceId")]
    pub commerce_id: String,
    #[serde(default)]
    pub commerce_name: String,
    #[serde(default)]
    pub category: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireIdentification {
    #[serde(default)]
    pub identification_type: String,
    #[serde(default)]
    pub identification_number: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireProduct {
    #[serde(default)]
    pub product_code: String,
    #[serde(default)]
    pub product_number: String,
}

/// Why an answer with a success status could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable(pub &'static str);

impl Answer {
    fn result(&self) -> Result<pb::ResultStatus, Unreadable> {
        self.result
            .as_ref()
            .map(ResultStatus::to_proto)
            .ok_or(Unreadable("no resultStatus"))
    }

    pub fn into_request_response(
        self,
        pass_lab_otp: bool,
    ) -> Result<pb::RequestSubscriptionResponse, Unreadable> {
        let result = self.result()?;
        let otp = self.info_otp.ok_or(Unreadable("no infoOtp"))?;
        let session = match otp.id_sesion_otp {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(Unreadable("no idSesionOTP")),
        };
        let lab_otp_value = otp
            .value
            .filter(|_| pass_lab_otp)
            .map(|value| value.expose_secret().to_owned())
            .unwrap_or_default();
        Ok(pb::RequestSubscriptionResponse {
            result: Some(result),
            otp_session_id: session,
            otp_expire_time: otp
                .expiration_date_otp
                .as_deref()
                .and_then(colombian_local_time),
            otp_validity_minutes: otp.expiration_time_otp.unwrap_or_default(),
            lab_otp_value,
        })
    }

    /// An activation is only known done with the subscription it created.
    pub fn into_activate_response(self) -> Result<pb::ActivateSubscriptionResponse, Unreadable> {
        let result = self.result()?;
        let subscription = self
            .subscription
            .ok_or(Unreadable("no Subscription"))?
            .into_proto();
        Ok(pb::ActivateSubscriptionResponse {
            result: Some(result),
            subscription: Some(subscription),
        })
    }

    pub fn into_cancel_response(self) -> Result<pb::CancelSubscriptionResponse, Unreadable> {
        Ok(pb::CancelSubscriptionResponse {
            result: Some(self.result()?),
        })
    }

    pub fn into_charge_response(self) -> Result<pb::ChargeSubscriptionResponse, Unreadable> {
        let approval_number = self
            .result
            .as_ref()
            .map(|r| r.approval_number.clone())
            .filter(|n| !n.is_empty())
            .ok_or(Unreadable("no approvalNumber"))?;
        Ok(pb::ChargeSubscriptionResponse {
            result: Some(self.result()?),
            approval_number,
            subscription: self.subscription.map(Subscription::into_proto),
        })
    }
}

impl Subscription {
    fn into_proto(self) -> pb::Subscription {
        let commerce = self.commerce.map(|c| pb::Commerce {
            commerce_id: c.commerce_id,
            commerce_name: c.commerce_name,
            category: c.category,
        });
        let identification = self.identification.map(|i| {
            let mut holder = Identification {
                number: i.identification_number,
                ..Identification::default()
            };
            holder.set_type(document_kind(&i.identification_type));
            holder
        });
        let product = self.product;
        let wallet = (identification.is_some() || product.is_some()).then(|| pb::Wallet {
            holder: identification,
            product_code: product
                .as_ref()
                .map(|p| p.product_code.clone())
                .unwrap_or_default(),
            product_number: product.map(|p| p.product_number).unwrap_or_default(),
        });
        pb::Subscription {
            subscription_id: self.subscription_id,
            maximum_amount: self.max_value.and_then(|max| {
                Some(Money {
                    currency_code: max.amount_currency_type,
                    minor_units: money::from_wire(max.amount_value.as_deref()?)?,
                })
            }),
            payment_provider_id: self
                .payment_provider
                .map(|p| p.payment_provider_id)
                .unwrap_or_default(),
            commerce,
            wallet,
        }
    }
}

fn document_kind(code: &str) -> DocumentType {
    DocumentType::from_str_name(&format!("DOCUMENT_TYPE_{}", code.trim().to_uppercase()))
        .unwrap_or(DocumentType::Unspecified)
}

/// ISO 8601 with an offset, as Daviplata stamps its answers.
fn iso_timestamp(text: &str) -> Option<prost_types::Timestamp> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| timestamp(t.with_timezone(&Utc)))
}

/// `2023-07-06 12:09:46.344`: no zone on the wire; Daviplata runs on Colombian time (UTC-5,
/// no daylight saving).
fn colombian_local_time(text: &str) -> Option<prost_types::Timestamp> {
    let colombia = FixedOffset::west_opt(5 * 3600)?;
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .ok()?
        .and_local_timezone(colombia)
        .single()
        .map(|t| timestamp(t.with_timezone(&Utc)))
        .or_else(|| iso_timestamp(text))
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

/// `transactionDate` of a call, from the caller's timestamp or now.
pub fn transaction_date(given: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    given
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .unwrap_or_else(Utc::now)
}

// ---- the operations ----------------------------------------------------------------------

impl Call for pb::RequestSubscriptionRequest {
    const OPERATION: Operation = Operation::Request;
    const ACT: Act = Act::Ask;
    type Valid<'a> = Parties<'a>;
    type Detail = WalletDetail;
    type Response = pb::RequestSubscriptionResponse;

    fn parse(&self) -> Result<Parties<'_>, Status> {
        validate::request(self)
    }

    fn parties<'v>(valid: &'v Parties<'_>) -> &'v Parties<'v> {
        valid
    }

    fn key(&self) -> Option<&str> {
        None
    }

    fn without_key(&self) -> Self {
        self.clone()
    }

    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }

    fn body(
        parties: &Parties<'_>,
        defaults: &Defaults,
        reference: &Reference,
    ) -> Envelope<WalletDetail> {
        wallet_body(defaults, reference, parties)
    }

    fn read(
        answer: Answer,
        readings: Readings,
    ) -> Result<pb::RequestSubscriptionResponse, Unreadable> {
        answer.into_request_response(readings.pass_otp)
    }
}

impl Call for pb::ActivateSubscriptionRequest {
    const OPERATION: Operation = Operation::Activate;
    const ACT: Act = Act::Activate;
    type Valid<'a> = Activation<'a>;
    type Detail = ActivateDetail;
    type Response = pb::ActivateSubscriptionResponse;

    fn parse(&self) -> Result<Activation<'_>, Status> {
        validate::activate(self)
    }

    fn parties<'v>(valid: &'v Activation<'_>) -> &'v Parties<'v> {
        &valid.parties
    }

    fn key(&self) -> Option<&str> {
        Some(&self.idempotency_key)
    }

    fn without_key(&self) -> Self {
        Self {
            idempotency_key: String::new(),
            ..self.clone()
        }
    }

    fn secrets(&self) -> Vec<&str> {
        vec![&self.otp_value]
    }

    fn body(
        activation: &Activation<'_>,
        defaults: &Defaults,
        reference: &Reference,
    ) -> Envelope<ActivateDetail> {
        activate_body(defaults, reference, activation)
    }

    fn read(answer: Answer, _: Readings) -> Result<pb::ActivateSubscriptionResponse, Unreadable> {
        answer.into_activate_response()
    }
}

impl Call for pb::CancelSubscriptionRequest {
    const OPERATION: Operation = Operation::Cancel;
    const ACT: Act = Act::Use;
    type Valid<'a> = Parties<'a>;
    type Detail = WalletDetail;
    type Response = pb::CancelSubscriptionResponse;

    fn parse(&self) -> Result<Parties<'_>, Status> {
        validate::cancel(self)
    }

    fn parties<'v>(valid: &'v Parties<'_>) -> &'v Parties<'v> {
        valid
    }

    fn key(&self) -> Option<&str> {
        Some(&self.idempotency_key)
    }

    fn without_key(&self) -> Self {
        Self {
            idempotency_key: String::new(),
            ..self.clone()
        }
    }

    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }

    fn body(
        parties: &Parties<'_>,
        defaults: &Defaults,
        reference: &Reference,
    ) -> Envelope<WalletDetail> {
        wallet_body(defaults, reference, parties)
    }

    fn read(answer: Answer, _: Readings) -> Result<pb::CancelSubscriptionResponse, Unreadable> {
        answer.into_cancel_response()
    }
}

impl Call for pb::ChargeSubscriptionRequest {
    const OPERATION: Operation = Operation::Charge;
    const ACT: Act = Act::Use;
    type Valid<'a> = Payment<'a>;
    type Detail = PaymentDetail;
    type Response = pb::ChargeSubscriptionResponse;

    fn parse(&self) -> Result<Payment<'_>, Status> {
        validate::charge(self)
    }

    fn parties<'v>(valid: &'v Payment<'_>) -> &'v Parties<'v> {
        &valid.parties
    }

    fn key(&self) -> Option<&str> {
        Some(&self.idempotency_key)
    }

    fn without_key(&self) -> Self {
        Self {
            idempotency_key: String::new(),
            ..self.clone()
        }
    }

    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }

    fn body(
        payment: &Payment<'_>,
        defaults: &Defaults,
        reference: &Reference,
    ) -> Envelope<PaymentDetail> {
        payment_body(defaults, reference, payment)
    }

    fn read(answer: Answer, _: Readings) -> Result<pb::ChargeSubscriptionResponse, Unreadable> {
        answer.into_charge_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            payment_provider_id: "00000001".into(),
            api_rules_version: "1.0".into(),
            activation_document: DocumentField::IdentificationNumber,
            commerce_id: CommerceField::CommercelId,
        }
    }

    fn reference() -> Reference {
        Reference {
            transaction_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
            transaction_date: DateTime::parse_from_rfc3339("2023-04-14T22:33:45.070Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    fn wallet() -> pb::Wallet {
        let mut holder = Identification {
            number: "1027868487".into(),
            ..Identification::default()
        };
        holder.set_type(DocumentType::Cc);
        pb::Wallet {
            holder: Some(holder),
            product_code: String::new(),
            product_number: "3158765639".into(),
        }
    }

    fn commerce() -> pb::Commerce {
        pb::Commerce {
            commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
            commerce_name: "Comercializadora La Pradera".into(),
            category: "Vestuario".into(),
        }
    }

    #[test]
    fn activate_body_matches_the_spec_example() {
        let request = pb::ActivateSubscriptionRequest {
            idempotency_key: "order-1".into(),
            commerce: Some(commerce()),
            wallet: Some(wallet()),
            otp_value: "847687".into(),
            otp_session_id: "60091282".into(),
            maximum_amount: Some(Money {
                currency_code: "COP".into(),
                minor_units: 100001,
            }),
            ..Default::default()
        };
        let activation = validate::activate(&request).unwrap();
        let body =
            serde_json::to_value(activate_body(&defaults(), &reference(), &activation)).unwrap();
        let expected = serde_json::json!({
            "Consumer": { "paymentProviderId": "00000001" },
            "TransactionHeader": {
                "transactionId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                "transactionDate": "2023-04-14T22:33:45.070Z",
                "apiRulesVersion": "1.0",
                "commercelId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                "commerceName": "Comercializadora La Pradera",
                "category": "Vestuario"
            },
            "TransactionDetail": {
                "identificationType": "CC",
                "identificationNumber": "1027868487",
                "productCode": "DVP_CO",
                "productNumber": "3158765639",
                "amountCurrencyType": "COP",
                "amountValue": 1000.01,
                "otpValue": "847687",
                "otpSesionId": "60091282"
            }
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn payment_amount_is_an_exact_decimal_number() {
        let request = pb::ChargeSubscriptionRequest {
            idempotency_key: "order-1".into(),
            commerce: Some(commerce()),
            wallet: Some(wallet()),
            amount: Some(Money {
                currency_code: "COP".into(),
                minor_units: 1_500_050,
            }),
            ..Default::default()
        };
        let payment = validate::charge(&request).unwrap();
        let text =
            serde_json::to_string(&payment_body(&defaults(), &reference(), &payment)).unwrap();
        assert!(
            text.contains(r#""Amount":{"amountCurrencyType":"COP","amountValue":15000.50}"#),
            "{text}"
        );
        assert!(!text.contains("GeneralInfo"), "{text}");
    }

    #[test]
    fn reads_both_casings_of_the_result() {
        let lower: Answer =
            serde_json::from_str(r#"{"resultStatus":{"status":0,"message":"OK"}}"#).unwrap();
        let upper: Answer =
            serde_json::from_str(r#"{"ResultStatus":{"status":"0","message":"OK"}}"#).unwrap();
        for answer in [lower, upper] {
            assert_eq!(
                answer
                    .into_cancel_response()
                    .unwrap()
                    .result
                    .unwrap()
                    .message,
                "OK"
            );
        }
    }

    #[test]
    fn reads_the_payment_example() {
        let body = r#"{
          "resultStatus": {"status": 0, "message": "Transacción aprobada",
            "transactionId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "transactionDate": "2023-08-02T20:25:45.040-05:00",
            "approvalNumber": "0000000000001111"},
          "Subscription": {"subscriptionId": "16f5f77b-eb1c-4b31-a9af-5dfa557df179",
            "maxValue": {"amountCurrencyType": "COP", "amountValue": 1000.01},
            "PaymentProvider": {"paymentProviderId": "1098765432"},
            "Commerce": {"commercelId": "c-1", "commerceName": "La Pradera", "category": "Vestuario"},
            "Identification": {"identificationType": "CC", "identificationNumber": "1027868487"},
            "Product": {"productCode": "DVP_CO", "productNumber": "3158765639"}}
        }"#;
        let answer: Answer = serde_json::from_str(body).unwrap();
        let response = answer.into_charge_response().unwrap();
        assert_eq!(response.approval_number, "0000000000001111");
        let subscription = response.subscription.unwrap();
        assert_eq!(subscription.maximum_amount.unwrap().minor_units, 100001);
        assert_eq!(subscription.commerce.unwrap().commerce_id, "c-1");
        let holder = subscription.wallet.unwrap().holder.unwrap();
        assert_eq!(holder.r#type(), DocumentType::Cc);
        let time = response.result.unwrap().transaction_time.unwrap();
        assert_eq!(time.seconds, 1_691_025_945);
    }

    #[test]
    fn otp_expiry_is_colombian_time_and_the_lab_otp_is_withheld_by_default() {
        let body = r#"{"resultStatus":{"status":0,"message":"Transacción aprobada"},
          "infoOtp":{"value":"847687","expirationDateOTP":"2023-07-06 12:09:46.344",
          "idSesionOTP":"60091282","expirationTimeOTP":3}}"#;
        let withheld = serde_json::from_str::<Answer>(body)
            .unwrap()
            .into_request_response(false)
            .unwrap();
        assert_eq!(withheld.lab_otp_value, "");
        assert_eq!(withheld.otp_session_id, "60091282");
        assert_eq!(withheld.otp_expire_time.unwrap().seconds, 1_688_663_386);
        let passed = serde_json::from_str::<Answer>(body)
            .unwrap()
            .into_request_response(true)
            .unwrap();
        assert_eq!(passed.lab_otp_value, "847687");
    }

    #[test]
    fn a_payment_without_approval_number_is_unreadable() {
        let answer: Answer = serde_json::from_str(r#"{"resultStatus":{"status":0}}"#).unwrap();
        assert_eq!(
            answer.into_charge_response().unwrap_err(),
            Unreadable("no approvalNumber")
        );
    }
}
