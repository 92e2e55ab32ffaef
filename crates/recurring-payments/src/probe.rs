//! `pasarela probe` for Daviplata: asks the gateway, with pasarela's own client and
//! credentials, the harmless calls that tell which reading of its spec it plays; and, in a
//! lab only and when asked to, the checks that activate a subscription and charge it.

use std::time::Instant;

use pasarela::common::v1::Money;
use pasarela::recurring_payments::v1 as pb;
use pasarela::recurring_payments::v1::recurring_payments_service_server::RecurringPaymentsService;
use pasarela_provider::probe::{Finding, Taken, finding};
use pasarela_provider::{Environment, reasons};
use tonic::{Code, Request, Status};

use crate::config::{CommerceField, Config, DocumentField, IdempotencyConfig};
use crate::daviplata::client::{self, Daviplata};
use crate::daviplata::errors::reason;
use crate::daviplata::wire::{self, Defaults, Reference};
use crate::handler::RecurringPayments;
use crate::money;

/// The two spellings of the client id header the spec and IBM API Connect use.
const CLIENT_ID_HEADERS: [&str; 2] = ["client_id", "x-ibm-client-id"];

/// Every harmless check of this provider.
pub async fn probe(config: &Config) -> anyhow::Result<Vec<Finding>> {
    Ok(vec![client_id_header(config).await?])
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
        let deadline = Instant::now() + daviplata.ceiling();
        let outcome = daviplata
            .call(
                client::REQUEST,
                &serde_json::json!({}),
                deadline,
                &[],
                |_| Ok(()),
            )
            .await;
        let taken = match outcome {
            Ok(()) => Taken::Read,
            Err(error) if error.reason == reasons::PROVIDER_AUTH_FAILED => Taken::Refused,
            Err(error) if error.code == Code::Unavailable => Taken::Unknown,
            Err(_) => Taken::Read,
        };
        outcomes.push((header, taken));
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
/// twice under the same id, then cancelled). Refused unless this configuration names
/// Daviplata's lab: they charge the wallet.
pub async fn probe_moving_money(config: &Config, lab: &LabAccount) -> anyhow::Result<Vec<Finding>> {
    anyhow::ensure!(
        config.environment == Environment::Sandbox,
        "refused: the money-moving checks activate subscriptions and charge the wallet, and \
         `recurring_payments.environment` is production; they run only against Daviplata's \
         lab (`environment = \"sandbox\"`)"
    );
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

/// What a refusal says of the way a request was spelt: refused unread (its structure), or
/// nothing at all (the lab down, pasarela's credentials refused), or read (a business
/// refusal of its content).
fn refusal(status: &Status) -> Taken {
    let why = reason_of(status);
    if why.as_deref() == Some(reason::PROVIDER_REJECTED_REQUEST) {
        Taken::Refused
    } else if matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
        || why.as_deref() == Some(reasons::PROVIDER_AUTH_FAILED)
    {
        Taken::Unknown
    } else {
        Taken::Read
    }
}

/// One payment sent twice under the same `transactionId`, on a fresh subscription: a
/// Daviplata that deduplicates answers the repeat with the first payment's approval.
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
        commerce: Some(lab.commerce.clone()),
        wallet: Some(lab.wallet.clone()),
        amount: Some(Money {
            currency_code: money::CURRENCY.to_owned(),
            minor_units: lab.amount_minor_units,
        }),
        ..Default::default()
    };
    let body = wire::payment_body(&defaults, &reference, &charge);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let deadline = Instant::now() + daviplata.ceiling();
        let answer = daviplata
            .call(client::PAYMENT, &body, deadline, &[], |answer| {
                answer.into_charge_response()
            })
            .await;
        answers.push(answer.map(|charged| charged.approval_number));
    }
    unsubscribe(&service, lab).await;
    let (observed, matching): (String, &[&str]) = match (&answers[0], &answers[1]) {
        (Ok(first), Ok(again)) if first == again && !first.is_empty() => (
            format!("the repeat answered the first payment (approval {first}): deduplicated"),
            &["false", "true"],
        ),
        (Ok(first), Ok(again)) => (
            format!("the repeat was charged again (approvals {first}, {again})"),
            &["false"],
        ),
        (Ok(_), Err(error)) => (
            format!(
                "the repeat was refused ({}): not deduplicated",
                error.reason
            ),
            &["false"],
        ),
        (Err(error), _) => (
            format!("cannot tell: the first payment failed ({})", error.reason),
            &[],
        ),
    };
    Ok(dedup_finding(config, observed, matching))
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
    RecurringPayments::new(Config {
        lab_otp_passthrough: true,
        idempotency: IdempotencyConfig::default(),
        ..config.clone()
    })
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

fn reason_of(status: &Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    Some(status.get_error_details().error_info()?.reason.clone())
}

/// A status in words for the table: its code and message, never a body.
fn words(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}
