//! The parse step: every field checked before any call to Daviplata, all violations
//! reported at once, and what the checks proved returned as a value the wire is built from
//! (`Parties`, `Activation`, `Payment`), so that no builder reads an absent field as a
//! default. The spec gives few lengths; the limits here are pasarela's, written down in
//! `docs/recurring-payments.md`.

use std::sync::LazyLock;

use pasarela::common::v1::{DocumentType, Identification, Money};
use pasarela::recurring_payments::v1 as pb;
use pasarela_idempotency as idempotency;
use pasarela_provider::Violations;
use regex::Regex;
use tonic::Status;

use crate::daviplata::wire::document_code;
use crate::money::CURRENCY;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid regex")
}

static COMMERCE_ID: LazyLock<Regex> = LazyLock::new(|| regex("^[A-Za-z0-9-]{1,36}$"));
static DOCUMENT_NUMBER: LazyLock<Regex> = LazyLock::new(|| regex("^[0-9]{5,15}$"));
static PRODUCT_CODE: LazyLock<Regex> = LazyLock::new(|| regex("^[A-Z0-9_]{1,10}$"));
static PRODUCT_NUMBER: LazyLock<Regex> = LazyLock::new(|| regex("^[0-9]{10}$"));
static OTP_SESSION: LazyLock<Regex> = LazyLock::new(|| regex("^[A-Za-z0-9-]{1,36}$"));

/// Free-text fields: (name, most characters).
const COMMERCE_NAME_MAX: usize = 100;
const CATEGORY_MAX: usize = 50;
const OTP_MAX: usize = 128;
const INVOICE_ID_MAX: usize = 20;
const INVOICE_DESCRIPTION_MAX: usize = 100;
const GENERAL_INFO_MAX: usize = 10;
const GENERAL_INFO_NAME_MAX: usize = 50;
const GENERAL_INFO_VALUE_MAX: usize = 100;

fn optional_text(v: &mut Violations, field: &str, value: &str, max: usize) {
    v.length(field, value, 0, max);
    v.printable(field, value);
}

/// The merchant, the wallet and the caller's transaction of a request, checked: what every
/// body is built from.
pub struct Parties<'a> {
    pub commerce: &'a pb::Commerce,
    pub wallet: &'a pb::Wallet,
    pub holder: &'a Identification,
    /// The holder's document kind as Daviplata spells it.
    pub document_code: &'static str,
    pub transaction: Option<&'a pb::ProviderTransaction>,
}

/// D2's own fields, checked, beside its parties.
pub struct Activation<'a> {
    pub parties: Parties<'a>,
    pub otp_value: &'a str,
    pub otp_session_id: &'a str,
    pub maximum: Option<&'a Money>,
}

/// D4's own fields, checked, beside its parties.
pub struct Payment<'a> {
    pub parties: Parties<'a>,
    pub amount: &'a Money,
    pub invoice_id: &'a str,
    pub invoice_description: &'a str,
    pub general_info: &'a [pb::GeneralInfo],
}

/// The merchant and the wallet, each checked, beside the caller's transaction (checked
/// last, by [`transaction`]); none when the merchant or the wallet is missing or its
/// holder has no kind Daviplata reads (a violation says which).
fn parties<'a>(
    v: &mut Violations,
    commerce: Option<&'a pb::Commerce>,
    wallet: Option<&'a pb::Wallet>,
    transaction: Option<&'a pb::ProviderTransaction>,
) -> Option<Parties<'a>> {
    let commerce = self::commerce(v, commerce);
    let (wallet, holder, document_code) = self::wallet(v, wallet)?;
    Some(Parties {
        commerce: commerce?,
        wallet,
        holder,
        document_code,
        transaction,
    })
}

fn commerce<'a>(
    v: &mut Violations,
    commerce: Option<&'a pb::Commerce>,
) -> Option<&'a pb::Commerce> {
    let Some(commerce) = commerce else {
        v.add("commerce", "is required");
        return None;
    };
    if v.required("commerce.commerce_id", &commerce.commerce_id) {
        v.pattern(
            "commerce.commerce_id",
            &commerce.commerce_id,
            &COMMERCE_ID,
            "1 to 36 letters, digits or '-'",
        );
    }
    optional_text(
        v,
        "commerce.commerce_name",
        &commerce.commerce_name,
        COMMERCE_NAME_MAX,
    );
    optional_text(v, "commerce.category", &commerce.category, CATEGORY_MAX);
    Some(commerce)
}

/// The wallet, its holder and the holder's document code, checked.
fn wallet<'a>(
    v: &mut Violations,
    wallet: Option<&'a pb::Wallet>,
) -> Option<(&'a pb::Wallet, &'a Identification, &'static str)> {
    let Some(wallet) = wallet else {
        v.add("wallet", "is required");
        return None;
    };
    let holder = wallet.holder.as_ref().and_then(|holder| {
        let kind = DocumentType::try_from(holder.r#type).unwrap_or_default();
        let code = document_code(kind);
        if code.is_none() {
            v.add("wallet.holder.type", "must be CC, CE or TI");
        }
        if v.required("wallet.holder.number", &holder.number) {
            v.pattern(
                "wallet.holder.number",
                &holder.number,
                &DOCUMENT_NUMBER,
                "5 to 15 digits",
            );
        }
        Some((holder, code?))
    });
    if wallet.holder.is_none() {
        v.add("wallet.holder", "is required");
    }
    if !wallet.product_code.is_empty() {
        v.pattern(
            "wallet.product_code",
            &wallet.product_code,
            &PRODUCT_CODE,
            "1 to 10 capitals, digits or '_'",
        );
    }
    if v.required("wallet.product_number", &wallet.product_number) {
        v.pattern(
            "wallet.product_number",
            &wallet.product_number,
            &PRODUCT_NUMBER,
            "10 digits",
        );
    }
    holder.map(|(holder, code)| (wallet, holder, code))
}

/// Whose transaction id a call sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TransactionId {
    /// The caller may name the call (a request for an OTP moves nothing).
    Caller,
    /// Idempotent calls send pasarela's own id: one a caller picks could be another
    /// caller's, answered with that call's outcome by a provider that deduplicates.
    Pasarela,
}

fn transaction(
    v: &mut Violations,
    transaction: Option<&pb::ProviderTransaction>,
    whose: TransactionId,
) {
    let Some(transaction) = transaction else {
        return;
    };
    let id = &transaction.transaction_id;
    if !id.is_empty() && whose == TransactionId::Pasarela {
        v.add(
            "transaction.transaction_id",
            "is chosen by pasarela on idempotent calls: leave it empty (the idempotency key names the call)",
        );
    } else if !id.is_empty() && uuid::Uuid::try_parse(id).is_err() {
        v.add("transaction.transaction_id", "must be a UUID");
    }
    if let Some(time) = &transaction.transaction_time
        && chrono::DateTime::from_timestamp(
            time.seconds,
            u32::try_from(time.nanos).unwrap_or(u32::MAX),
        )
        .is_none()
    {
        v.add("transaction.transaction_time", "is not a valid time");
    }
}

/// A COP amount above zero.
fn amount(v: &mut Violations, field: &str, money: &Money) {
    if money.currency_code != CURRENCY {
        v.add(format!("{field}.currency_code"), "must be COP");
    }
    if money.minor_units <= 0 {
        v.add(format!("{field}.minor_units"), "must be greater than zero");
    }
}

pub fn request(request: &pb::RequestSubscriptionRequest) -> Result<Parties<'_>, Status> {
    let mut v = Violations::new();
    let parties = parties(
        &mut v,
        request.commerce.as_ref(),
        request.wallet.as_ref(),
        request.transaction.as_ref(),
    );
    transaction(&mut v, request.transaction.as_ref(), TransactionId::Caller);
    v.finish_with(parties)
}

pub fn activate(request: &pb::ActivateSubscriptionRequest) -> Result<Activation<'_>, Status> {
    let mut v = Violations::new();
    idempotency::check_key(&mut v, &request.idempotency_key);
    let parties = parties(
        &mut v,
        request.commerce.as_ref(),
        request.wallet.as_ref(),
        request.transaction.as_ref(),
    );
    if v.required("otp_value", &request.otp_value) {
        v.length("otp_value", &request.otp_value, 1, OTP_MAX);
        v.printable("otp_value", &request.otp_value);
    }
    if v.required("otp_session_id", &request.otp_session_id) {
        v.pattern(
            "otp_session_id",
            &request.otp_session_id,
            &OTP_SESSION,
            "1 to 36 letters, digits or '-'",
        );
    }
    if let Some(maximum) = &request.maximum_amount {
        amount(&mut v, "maximum_amount", maximum);
    }
    transaction(
        &mut v,
        request.transaction.as_ref(),
        TransactionId::Pasarela,
    );
    v.finish_with(parties.map(|parties| Activation {
        parties,
        otp_value: &request.otp_value,
        otp_session_id: &request.otp_session_id,
        maximum: request.maximum_amount.as_ref(),
    }))
}

pub fn cancel(request: &pb::CancelSubscriptionRequest) -> Result<Parties<'_>, Status> {
    let mut v = Violations::new();
    idempotency::check_key(&mut v, &request.idempotency_key);
    let parties = parties(
        &mut v,
        request.commerce.as_ref(),
        request.wallet.as_ref(),
        request.transaction.as_ref(),
    );
    transaction(
        &mut v,
        request.transaction.as_ref(),
        TransactionId::Pasarela,
    );
    v.finish_with(parties)
}

/// The amount is checked against the subscription's maximum by Daviplata alone, which
/// every replica asks: a copy kept here could be another replica's stale one.
pub fn charge(request: &pb::ChargeSubscriptionRequest) -> Result<Payment<'_>, Status> {
    let mut v = Violations::new();
    idempotency::check_key(&mut v, &request.idempotency_key);
    let parties = parties(
        &mut v,
        request.commerce.as_ref(),
        request.wallet.as_ref(),
        request.transaction.as_ref(),
    );
    let amount = request.amount.as_ref();
    match amount {
        None => v.add("amount", "is required"),
        Some(money) => self::amount(&mut v, "amount", money),
    }
    optional_text(&mut v, "invoice_id", &request.invoice_id, INVOICE_ID_MAX);
    optional_text(
        &mut v,
        "invoice_description",
        &request.invoice_description,
        INVOICE_DESCRIPTION_MAX,
    );
    if request.general_info.len() > GENERAL_INFO_MAX {
        v.add(
            "general_info",
            format!("at most {GENERAL_INFO_MAX} entries"),
        );
    }
    for (i, info) in request.general_info.iter().enumerate() {
        let name = format!("general_info[{i}].name");
        if v.required(&name, &info.name) {
            optional_text(&mut v, &name, &info.name, GENERAL_INFO_NAME_MAX);
        }
        optional_text(
            &mut v,
            &format!("general_info[{i}].value"),
            &info.value,
            GENERAL_INFO_VALUE_MAX,
        );
    }
    transaction(
        &mut v,
        request.transaction.as_ref(),
        TransactionId::Pasarela,
    );
    let payment = parties.zip(amount).map(|(parties, amount)| Payment {
        parties,
        amount,
        invoice_id: &request.invoice_id,
        invoice_description: &request.invoice_description,
        general_info: &request.general_info,
    });
    v.finish_with(payment)
}

#[cfg(test)]
mod tests {
    use pasarela::common::v1::Identification;
    use tonic_types::StatusExt as _;

    use super::*;

    fn fields(status: Status) -> Vec<String> {
        status
            .get_error_details()
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|f| f.field.clone())
            .collect()
    }

    fn good_charge() -> pb::ChargeSubscriptionRequest {
        let mut holder = Identification {
            number: "1027868487".into(),
            ..Default::default()
        };
        holder.set_type(DocumentType::Cc);
        pb::ChargeSubscriptionRequest {
            idempotency_key: "order-1".into(),
            commerce: Some(pb::Commerce {
                commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
                ..Default::default()
            }),
            wallet: Some(pb::Wallet {
                holder: Some(holder),
                product_code: String::new(),
                product_number: "3158765639".into(),
            }),
            amount: Some(Money {
                currency_code: "COP".into(),
                minor_units: 100_000,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_charge_passes() {
        charge(&good_charge()).unwrap();
        request(&pb::RequestSubscriptionRequest {
            commerce: good_charge().commerce,
            wallet: good_charge().wallet,
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut bad = good_charge();
        bad.idempotency_key = "with space".into();
        bad.wallet
            .as_mut()
            .unwrap()
            .holder
            .as_mut()
            .unwrap()
            .set_type(DocumentType::Pa);
        bad.wallet.as_mut().unwrap().product_number = "31587".into();
        bad.amount = Some(Money {
            currency_code: "USD".into(),
            minor_units: 0,
        });
        bad.transaction = Some(pb::ProviderTransaction {
            transaction_id: "not-a-uuid".into(),
            transaction_time: None,
        });
        bad.general_info = vec![pb::GeneralInfo {
            name: String::new(),
            value: "x".into(),
        }];
        assert_eq!(
            fields(charge(&bad).err().expect("refused")),
            [
                "idempotency_key",
                "wallet.holder.type",
                "wallet.product_number",
                "amount.currency_code",
                "amount.minor_units",
                "general_info[0].name",
                "transaction.transaction_id",
            ]
        );
    }

    #[test]
    fn activation_needs_the_otp_and_its_session() {
        let request = pb::ActivateSubscriptionRequest {
            idempotency_key: "k".into(),
            ..Default::default()
        };
        assert_eq!(
            fields(activate(&request).err().expect("refused")),
            ["commerce", "wallet", "otp_value", "otp_session_id"]
        );
    }
}
