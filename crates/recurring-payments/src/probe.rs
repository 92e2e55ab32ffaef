//! `pasarela probe` for Daviplata: asks the gateway, with pasarela's own client and
//! credentials, the harmless calls that tell which reading of its spec it plays; and, in a
//! lab only and when asked to, the checks that activate a subscription and charge it.

use std::time::Instant;

use pasarela::common::v1::Money;
use pasarela::recurring_payments::v1 as pb;
use pasarela::recurring_payments::v1::recurring_payments_service_server::RecurringPaymentsService;
use pasarela_provider::probe::{self, Finding, Taken, finding};
use pasarela_provider::{Environment, ProviderError};
use tonic::{Code, Request, Status};

use crate::config::{CommerceField, Config, DocumentField, IdempotencyConfig};
use crate::daviplata::client::{self, Daviplata};
use crate::daviplata::errors::{DOMAIN, reason};
use crate::daviplata::operation::Operation;
use crate::daviplata::wire::{self, Defaults, Reference};
use crate::handler::RecurringPayments;
use crate::money;
use crate::validate;

/// The two spellings of the client id header the spec and IBM API Connect use.
const CLIENT_ID_HEADERS: [&str; 2] = ["client_id", "x-ibm-client-id"];

/// Every harmless check of this provider.
pub async fn probe(config: &Config) -> anyhow::Result<Vec<Finding>> {
    Ok(vec![
        client_id_header(config).await?,
        client_secret_header(config).await?,
    ])
}

/// Where a business call carries the client secret too, as the probe asks: not at all,
/// or under each name a gateway may read it from.
const CLIENT_SECRET_READINGS: [(&str, Option<&str>); 3] = [
    ("unset", None),
    ("client_secret", Some("client_secret")),
    ("x-ibm-client-secret", Some("x-ibm-client-secret")),
];

/// D1 with an empty body, without the secret and with it under each name: a gateway that
/// wants it refuses the call without it as an unknown client (401); one that does not
/// reads every one.
async fn client_secret_header(config: &Config) -> anyhow::Result<Finding> {
    let mut outcomes = Vec::new();
    for (reading, header) in CLIENT_SECRET_READINGS {
        let daviplata = Daviplata::new(&Config {
            client_secret_header: header.map(str::to_owned),
            ..config.clone()
        })?;
        outcomes.push((reading, empty_request(&daviplata).await));
    }
    Ok(finding(
        "Daviplata client secret on business calls",
        "recurring_payments.client_secret_header",
        config
            .client_secret_header
            .clone()
            .unwrap_or_else(|| "unset".into()),
        &outcomes,
    ))
}

/// D1 with an empty body, as one client asks it: an unknown client is refused (401), a
/// known one reaches the backend, which refuses the empty request; no OTP is sent.
async fn empty_request(daviplata: &Daviplata) -> Taken {
    let now = Instant::now();
    let deadline = now.checked_add(daviplata.ceiling()).unwrap_or(now);
    let call = client::Sending {
        op: Operation::Request,
        transaction_id: None,
        wallet: None,
        secrets: &[],
    };
    let outcome = daviplata
        .call(call, &serde_json::json!({}), deadline, |_| Ok(()))
        .await;
    // The gateway refuses a client it does not know (401) or will not serve (403) before
    // the backend reads anything; a failing provider, or no answer, tells nothing; any
    // other answer was read.
    match outcome {
        Ok(()) => Taken::Read,
        Err(error) => match error
            .details
            .answered
            .as_ref()
            .map(|answered| answered.http)
        {
            Some(401 | 403) => Taken::Refused,
            Some(status) if status < 500 => Taken::Read,
            _ => Taken::Unknown,
        },
    }
}

/// D1 sent once per header with an empty body: the gateway checks the client id before
/// the backend reads anything, so a wrong header is an unknown client (401) and a right
/// one reaches the backend, which refuses the empty request; no OTP is sent to anybody.
async fn client_id_header(config: &Config) -> anyhow::Result<Finding> {
    let mut outcomes = Vec::new();
    for header in CLIENT_ID_HEADERS {
        let daviplata = Daviplata::new(&Config {
            client_id_header: header.to_owned(),
            ..config.clone()
        })?;
        outcomes.push((header, empty_request(&daviplata).await));
    }
    Ok(finding(
        "Daviplata client id header",
        "recurring_payments.client_id_header",
        config.client_id_header.clone(),
        &outcomes,
    ))
}

/// A wallet of Daviplata's lab and the merchant it subscribes to, for the checks that
/// move money.
#[derive(Debug, Clone)]
pub struct LabAccount {
    pub commerce: pb::Commerce,
    pub wallet: pb::Wallet,
    /// Each of the two charges, in COP minor units.
    pub amount_minor_units: i64,
}

/// The checks that need the lab's wallet: the merchant id's spelling (one D1 per spelling,
/// an OTP to the lab wallet), D2's document spelling (one activation per spelling, each
/// cancelled) and whether a repeated `transactionId` is deduplicated (one payment sent
/// twice under the same id and once under another, then cancelled). Refused unless this
/// configuration names Daviplata's lab: they charge the wallet.
pub async fn probe_moving_money(config: &Config, lab: &LabAccount) -> anyhow::Result<Vec<Finding>> {
    ensure_lab(config)?;
    let commerce = commerce_id_spelling(config, lab).await?;
    // The later checks speak with the spelling that was read, so that they tell their own
    // reading apart whatever the configured one.
    let mut config = config.clone();
    if let Some(field) = commerce.read_first {
        config.commerce_id_field = field;
    }
    let document = activation_document_spelling(&config, lab).await?;
    let dedup = match document.read_first {
        Some(field) => {
            config.activation_document_field = field;
            transaction_id_dedup(&config, lab).await?
        }
        None => dedup_finding(&config, "cannot tell: no activation succeeded".into(), &[]),
    };
    Ok(vec![commerce.finding, document.finding, dedup])
}

/// Refuses a configuration that does not name Daviplata's lab: checked before any probe
/// sends anything.
pub fn ensure_lab(config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.environment == Environment::Sandbox,
        "refused: the money-moving checks activate subscriptions and charge the wallet, and \
         `recurring_payments.environment` is production; they run only against Daviplata's \
         lab (`environment = \"sandbox\"`)"
    );
    Ok(())
}

/// A finding, and the first reading the provider read when the finding is conclusive.
struct Told<T> {
    finding: Finding,
    read_first: Option<T>,
}

fn told<T: Copy>(
    check: &'static str,
    key: &'static str,
    configured: &str,
    outcomes: &[(T, &'static str, Taken)],
) -> Told<T> {
    let named: Vec<_> = outcomes
        .iter()
        .map(|(_, name, taken)| (*name, *taken))
        .collect();
    let finding = finding(check, key, configured.to_owned(), &named);
    let read_first = outcomes
        .iter()
        .find(|(_, _, taken)| *taken == Taken::Read)
        .filter(|_| !finding.matching.is_empty())
        .map(|(reading, _, _)| *reading);
    Told {
        finding,
        read_first,
    }
}

/// D1 of the lab wallet once per spelling of `TransactionHeader`'s merchant id: a gateway
/// that reads one alone refuses the other as a property its schema does not have.
async fn commerce_id_spelling(
    config: &Config,
    lab: &LabAccount,
) -> anyhow::Result<Told<CommerceField>> {
    let mut outcomes = Vec::new();
    for field in [CommerceField::CommercelId, CommerceField::CommerceId] {
        let service = lab_service(&Config {
            commerce_id_field: field,
            ..config.clone()
        })
        .await?;
        let taken = match request_otp(&service, lab).await {
            Ok(_) => Taken::Read,
            Err(status) => refusal(&status),
        };
        outcomes.push((field, field.key(), taken));
    }
    Ok(told(
        "Daviplata merchant id",
        "recurring_payments.commerce_id_field",
        config.commerce_id_field.key(),
        &outcomes,
    ))
}

/// D1 and D2 once per spelling of D2's document number, each activation cancelled.
async fn activation_document_spelling(
    config: &Config,
    lab: &LabAccount,
) -> anyhow::Result<Told<DocumentField>> {
    let mut outcomes = Vec::new();
    for field in [
        DocumentField::IdentificationNumber,
        DocumentField::IdentificationNum,
    ] {
        let service = lab_service(&Config {
            activation_document_field: field,
            ..config.clone()
        })
        .await?;
        let taken = match subscribe(&service, lab).await? {
            Ok(_) => {
                unsubscribe(&service, lab).await;
                Taken::Read
            }
            Err(status) => refusal(&status),
        };
        outcomes.push((field, field.key(), taken));
    }
    Ok(told(
        "D2 document number",
        "recurring_payments.activation_document_field",
        config.activation_document_field.key(),
        &outcomes,
    ))
}

/// How Daviplata took a request: its structure refused unread, or read, or nothing known.
fn refusal(status: &Status) -> Taken {
    probe::taken(status, DOMAIN, &[reason::PROVIDER_REJECTED_REQUEST])
}

/// One payment sent twice under the same `transactionId` and once under another, on a
/// fresh subscription: a Daviplata that deduplicates answers the repeat with the first
/// payment's approval, and the control with another.
async fn transaction_id_dedup(config: &Config, lab: &LabAccount) -> anyhow::Result<Finding> {
    let service = lab_service(config).await?;
    if let Err(status) = subscribe(&service, lab).await? {
        let observed = format!("cannot tell: the activation failed ({})", words(&status));
        return Ok(dedup_finding(config, observed, &[]));
    }
    let daviplata = Daviplata::new(config)?;
    let defaults = Defaults::of(config);
    let reference = Reference {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        transaction_date: wire::transaction_date(None),
    };
    let charge = pb::ChargeSubscriptionRequest {
        // Checked as any charge is; the key never leaves pasarela.
        idempotency_key: "probe-dedup".to_owned(),
        commerce: Some(lab.commerce.clone()),
        wallet: Some(lab.wallet.clone()),
        amount: Some(Money {
            currency_code: money::CURRENCY.to_owned(),
            minor_units: lab.amount_minor_units,
        }),
        ..Default::default()
    };
    let payment = validate::charge(&charge)
        .map_err(|status| anyhow::anyhow!("the lab account's charge: {}", status.message()))?;
    let body = wire::payment_body(&defaults, &reference, &payment);
    // The same payment twice under one transactionId, then once under another: the
    // control tells a lab that answers every payment alike from one that deduplicates.
    let control = Reference {
        transaction_id: uuid::Uuid::new_v4().to_string(),
        ..reference
    };
    let control_body = wire::payment_body(&defaults, &control, &payment);
    let first = (&reference.transaction_id, &body);
    let mut answers = Vec::new();
    for (id, body) in [first, first, (&control.transaction_id, &control_body)] {
        let now = Instant::now();
        let deadline = now.checked_add(daviplata.ceiling()).unwrap_or(now);
        let call = client::Sending {
            op: Operation::Charge,
            transaction_id: Some(id),
            wallet: Some(&lab.wallet.product_number),
            secrets: &[],
        };
        let answer = daviplata
            .call(call, body, deadline, |answer| answer.into_charge_response())
            .await;
        answers.push(answer.map(|charged| charged.approval_number));
    }
    unsubscribe(&service, lab).await;
    let (observed, matching) = dedup_verdict(&answers[0], &answers[1], &answers[2]);
    Ok(dedup_finding(config, observed, matching))
}

/// What the first payment, its repeat under the same id and the control under another say
/// of deduplication, and the settings of `resend_unknown_outcomes` that are safe.
fn dedup_verdict(
    first: &Result<String, ProviderError>,
    repeat: &Result<String, ProviderError>,
    control: &Result<String, ProviderError>,
) -> (String, &'static [&'static str]) {
    let cannot_tell = |why: String| (format!("cannot tell: {why}"), &[][..]);
    let first = match first {
        Ok(approval) if !approval.is_empty() => approval,
        Ok(_) => return cannot_tell("the payment answered no approval".into()),
        Err(error) => return cannot_tell(format!("the first payment failed ({})", error.reason)),
    };
    match (repeat, control) {
        (Ok(again), Ok(other)) if again == first && !other.is_empty() && other != first => (
            format!("the repeat answered the first payment (approval {first}): deduplicated"),
            &["false", "true"],
        ),
        (Ok(again), _) if again == first => cannot_tell(
            "the control payment under another id did not answer another approval".into(),
        ),
        (Ok(again), _) => (
            format!("the repeat was charged again (approvals {first}, {again})"),
            &["false"],
        ),
        (Err(error), _)
            if error.code == Code::Unavailable || error.code == Code::DeadlineExceeded =>
        {
            cannot_tell(format!("the repeat got no answer ({})", error.reason))
        }
        (Err(error), _) => (
            format!(
                "the repeat was refused ({}): not deduplicated",
                error.reason
            ),
            &["false"],
        ),
    }
}

fn dedup_finding(config: &Config, observed: String, matching: &[&str]) -> Finding {
    Finding {
        check: "Daviplata transactionId repeated",
        key: "recurring_payments.resend_unknown_outcomes",
        observed,
        matching: matching.iter().map(|&setting| setting.to_owned()).collect(),
        configured: config.resend_unknown_outcomes.to_string(),
    }
}

/// The service as `config` has it, but handing back the lab's OTP and keeping its records
/// in memory.
async fn lab_service(config: &Config) -> anyhow::Result<RecurringPayments> {
    // Its own metrics: a probe is no server, and nothing scrapes it.
    RecurringPayments::new(
        Config {
            lab_otp_passthrough: true,
            idempotency: IdempotencyConfig::default(),
            ..config.clone()
        },
        pasarela_idempotency::IdempotencyMetrics::default(),
    )
    .await
}

/// D1 then D2 with the OTP the lab hands back. The outer error: the lab would not start
/// (no OTP); the inner one, how D2 answered.
async fn subscribe(
    service: &RecurringPayments,
    lab: &LabAccount,
) -> anyhow::Result<Result<pb::ActivateSubscriptionResponse, Status>> {
    let requested = request_otp(service, lab)
        .await
        .map_err(|status| anyhow::anyhow!("D1 (request an OTP) failed: {}", words(&status)))?;
    anyhow::ensure!(
        !requested.lab_otp_value.is_empty(),
        "D1 answered no OTP: the money-moving checks need Daviplata's lab, which hands it back"
    );
    let activated = service
        .activate_subscription(Request::new(pb::ActivateSubscriptionRequest {
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            commerce: Some(lab.commerce.clone()),
            wallet: Some(lab.wallet.clone()),
            otp_value: requested.lab_otp_value,
            otp_session_id: requested.otp_session_id,
            ..Default::default()
        }))
        .await;
    Ok(activated.map(tonic::Response::into_inner))
}

/// D1: an OTP sent to the lab wallet.
async fn request_otp(
    service: &RecurringPayments,
    lab: &LabAccount,
) -> Result<pb::RequestSubscriptionResponse, Status> {
    let requested = service
        .request_subscription(Request::new(pb::RequestSubscriptionRequest {
            commerce: Some(lab.commerce.clone()),
            wallet: Some(lab.wallet.clone()),
            transaction: None,
        }))
        .await?;
    Ok(requested.into_inner())
}

/// D3, leaving the lab wallet as it was found; a failure is logged, not fatal.
async fn unsubscribe(service: &RecurringPayments, lab: &LabAccount) {
    let cancelled = service
        .cancel_subscription(Request::new(pb::CancelSubscriptionRequest {
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            commerce: Some(lab.commerce.clone()),
            wallet: Some(lab.wallet.clone()),
            transaction: None,
        }))
        .await;
    if let Err(status) = cancelled {
        tracing::warn!(
            code = ?status.code(),
            "the probe's subscription could not be cancelled: cancel it in the lab"
        );
    }
}

/// A status in words for the table: its code and message, never a body.
fn words(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approved(approval: &str) -> Result<String, ProviderError> {
        Ok(approval.to_owned())
    }

    fn failed(code: Code, reason: &str) -> Result<String, ProviderError> {
        Err(ProviderError::new(code, reason, DOMAIN))
    }

    #[test]
    fn deduplication_is_named_only_when_the_control_differs() {
        let (_, dedup) = dedup_verdict(&approved("1"), &approved("1"), &approved("2"));
        assert_eq!(dedup, ["false", "true"]);
        let (observed, same) = dedup_verdict(&approved("1"), &approved("1"), &approved("1"));
        assert!(
            same.is_empty(),
            "a lab answering one approval to all: {observed}"
        );
        let (_, control_lost) = dedup_verdict(
            &approved("1"),
            &approved("1"),
            &failed(Code::Unavailable, "PROVIDER_UNAVAILABLE"),
        );
        assert!(control_lost.is_empty());
        let (_, control_blank) = dedup_verdict(&approved("1"), &approved("1"), &approved(""));
        assert!(
            control_blank.is_empty(),
            "a control without approval proves nothing"
        );
    }

    #[test]
    fn a_second_charge_or_a_refused_repeat_is_no_deduplication() {
        let (_, twice) = dedup_verdict(&approved("1"), &approved("2"), &approved("3"));
        assert_eq!(twice, ["false"]);
        let refused = failed(Code::FailedPrecondition, "TRANSACTION_REJECTED");
        assert_eq!(
            dedup_verdict(&approved("1"), &refused, &approved("3")).1,
            ["false"]
        );
    }

    #[test]
    fn no_answer_tells_nothing() {
        let timeout = failed(Code::DeadlineExceeded, "PROVIDER_TIMEOUT");
        assert!(
            dedup_verdict(&approved("1"), &timeout, &approved("3"))
                .1
                .is_empty()
        );
        assert!(
            dedup_verdict(&timeout, &approved("1"), &approved("3"))
                .1
                .is_empty()
        );
        assert!(
            dedup_verdict(&approved(""), &approved(""), &approved(""))
                .1
                .is_empty()
        );
    }
}
