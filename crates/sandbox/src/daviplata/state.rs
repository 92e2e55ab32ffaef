//! The Daviplata emulator's state and rules: issued tokens, OTP sessions (3 minutes, single
//! use), subscriptions per wallet, merchant and payment provider, state changes deduplicated
//! by the caller's `transactionId` (or not: the spec never promises it, and the admin
//! listener switches it off), and the counts tests use to prove "exactly one".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::{Failure, Refusal};
use super::wire::{
    self, ActivateAnswer, ActivateDetail, Amount, CancelAnswer, Commerce, Envelope, Identification,
    InfoOtp, PaymentAnswer, PaymentDetail, PaymentProvider, Product, RequestAnswer, ResultStatus,
    SubscriptionView, Wallet,
};
use crate::secrets::Accepted;

/// The wallets the emulated Daviplata knows, embedded so the sandbox runs without files.
const WALLETS: &str = include_str!("../../fixtures/daviplata.json");

/// How the emulator is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub client_id: String,
    pub client_secret: Accepted,
    /// Other clients (id, secret) the gateway knows: other contracts.
    pub contracts: Vec<(String, String)>,
    pub token_ttl: Duration,
    pub otp_ttl: Duration,
}

#[derive(Deserialize)]
struct Seed {
    wallets: Vec<WalletFixture>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WalletFixture {
    identification_type: String,
    identification_number: String,
    product_number: String,
    status: WalletStatus,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum WalletStatus {
    Active,
    Blocked,
}

/// What the emulator has done since start (or the last reset).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    pub tokens_issued: u64,
    pub otps_sent: u64,
    pub subscriptions_activated: u64,
    pub subscriptions_cancelled: u64,
    pub payments_made: u64,
    /// Payments answered from an earlier one with the same `transactionId`.
    pub payments_replayed: u64,
}

/// Who a subscription or OTP session belongs to: a wallet, at a merchant, through a
/// payment provider.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    identification_type: String,
    identification_number: String,
    product_number: String,
    payment_provider_id: String,
    commerce_id: String,
}

impl Owner {
    fn of<D>(envelope: &Envelope<D>, wallet: &Wallet) -> Owner {
        Owner {
            identification_type: wallet.identification_type.clone(),
            identification_number: wallet.identification_number.clone(),
            product_number: wallet.product_number.clone(),
            payment_provider_id: envelope.consumer.payment_provider_id.clone(),
            commerce_id: envelope.header.commerce_id.clone(),
        }
    }
}

struct OtpSession {
    otp: String,
    owner: Owner,
    expires_at: Instant,
    used: bool,
}

struct Subscription {
    owner: Owner,
    view: SubscriptionView,
    max_cents: Option<u64>,
    active: bool,
}

impl Subscription {
    /// In force for this wallet, merchant and payment provider.
    fn serves(&self, owner: &Owner) -> bool {
        self.active && self.owner == *owner
    }
}

/// The state-changing operations whose answers are replayed for a repeated
/// `transactionId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Operation {
    Activate,
    Cancel,
    Payment,
}

struct Replay {
    fingerprint: String,
    answer: Value,
}

/// The readings of the spec this Daviplata plays, switchable on the admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readings {
    /// A repeated `transactionId` gets the first answer (true) or is executed again.
    pub dedup_transaction_ids: bool,
    /// The one header the gateway reads the client id from; unset, both spellings.
    #[serde(default)]
    pub client_id_header: Option<ClientIdHeader>,
    /// The one spelling of D2's document number it reads; unset, both.
    #[serde(default)]
    pub activation_document: Option<DocumentField>,
    /// The one spelling of the merchant id every `TransactionHeader` may use; unset, both.
    #[serde(default)]
    pub commerce_id: Option<CommerceField>,
    /// The gateway wants the client's secret on D1-D4 too (`client_secret` or
    /// `x-ibm-client-secret`), as the error table's "Cuando no se envia Client Id o Client
    /// Secret" may mean; unset, the client id alone, as the operations' header lists print.
    #[serde(default)]
    pub client_secret_required: bool,
}

impl Default for Readings {
    fn default() -> Self {
        Readings {
            dedup_transaction_ids: true,
            client_id_header: None,
            activation_document: None,
            commerce_id: None,
            client_secret_required: false,
        }
    }
}

/// `client_id` as the spec prints it (lines 112, 196, 310, 405), or `x-ibm-client-id` as
/// IBM API Connect, which runs Daviplata's lab, expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientIdHeader {
    ClientId,
    XIbmClientId,
}

/// D2's document number as its example (line 223) and every other operation spell it, or
/// as its field table does (line 248).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentField {
    IdentificationNumber,
    IdentificationNum,
}

/// The merchant id as every example spells it (`commercelId`, lines 134, 217, 279, 331),
/// or as the field tables do (`commerceId`, lines 153, 244, 351, 481).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommerceField {
    CommercelId,
    CommerceId,
}

impl CommerceField {
    /// The spelling this reading does not have.
    pub fn other_key(self) -> &'static str {
        match self {
            CommerceField::CommercelId => "commerceId",
            CommerceField::CommerceId => "commercelId",
        }
    }
}

impl ClientIdHeader {
    pub fn header(self) -> &'static str {
        match self {
            ClientIdHeader::ClientId => "client_id",
            ClientIdHeader::XIbmClientId => "x-ibm-client-id",
        }
    }
}

#[derive(Default)]
struct Book {
    readings: Readings,
    /// token -> when it stops being valid
    /// Each token, the client it was issued to, and when it expires.
    tokens: HashMap<String, (String, Instant)>,
    sessions: HashMap<String, OtpSession>,
    subscriptions: Vec<Subscription>,
    replays: HashMap<(Operation, String), Replay>,
    counters: Counters,
    approvals: u64,
    /// Every payment executed, in order: what a test checks pasarela's answers against.
    ledger: Vec<ExecutedPayment>,
}

/// One payment Daviplata executed: its `transactionId`, approval number, and the request's
/// `invoiceId`, by which a test tells whose it was.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecutedPayment {
    pub transaction_id: String,
    pub approval_number: String,
    pub invoice_id: String,
}

#[derive(Clone)]
pub struct Daviplata {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    wallets: Vec<WalletFixture>,
    book: Mutex<Book>,
}

/// The status of an approved answer, dated now in Bogotá time.
fn result(transaction_id: String, message: &'static str) -> ResultStatus {
    ResultStatus {
        status: 0,
        message,
        transaction_id,
        transaction_date: wire::transaction_date(Utc::now()),
        approval_number: None,
    }
}

fn random_digits(count: usize) -> String {
    let mut rng = rand::rng();
    (0..count)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn to_json(answer: &impl Serialize) -> Value {
    serde_json::to_value(answer).expect("answers serialise")
}

/// What identifies a repeated request: everything but its date.
fn fingerprint(raw: &Value) -> String {
    let mut raw = raw.clone();
    if let Some(header) = raw
        .get_mut("TransactionHeader")
        .and_then(Value::as_object_mut)
    {
        header.remove("transactionDate");
    }
    raw.to_string()
}

impl Daviplata {
    pub fn new(settings: Settings) -> Daviplata {
        let seed: Seed =
            serde_json::from_str(WALLETS).expect("the builtin daviplata fixtures are valid");
        Daviplata {
            inner: Arc::new(Inner {
                settings,
                wallets: seed.wallets,
                book: Mutex::new(Book::default()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // A poisoned lock is still safe to use: each operation changes the book whole under
        // it, so a panic cannot leave it half-changed.
        self.inner
            .book
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    pub fn reset_counters(&self) {
        self.lock().counters = Counters::default();
    }

    /// Every payment executed since the last reset.
    pub fn ledger(&self) -> Vec<ExecutedPayment> {
        self.lock().ledger.clone()
    }

    /// Forgets tokens, sessions, subscriptions, payments and counts; keeps the readings.
    pub fn reset(&self) {
        let mut book = self.lock();
        let readings = book.readings;
        *book = Book {
            readings,
            ..Book::default()
        };
    }

    pub fn readings(&self) -> Readings {
        self.lock().readings
    }

    pub fn set_readings(&self, readings: Readings) {
        self.lock().readings = readings;
    }

    /// Makes every issued token expired, as if its lifetime had passed.
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Makes OTP session `id` expired; whether it existed.
    pub fn expire_otp_session(&self, id: &str) -> bool {
        let mut book = self.lock();
        match book.sessions.get_mut(id) {
            Some(session) => {
                session.expires_at = Instant::now();
                true
            }
            None => false,
        }
    }

    /// A new access token and its lifetime.
    /// Whether the gateway knows `client_id`: the main client or another contract's.
    pub fn knows(&self, client_id: &str) -> bool {
        let settings = &self.inner.settings;
        client_id == settings.client_id || settings.contracts.iter().any(|(id, _)| id == client_id)
    }

    /// Whether `secret` is `client_id`'s (the main client's may be rotating: either of
    /// its accepted secrets).
    pub fn accepts(&self, client_id: &str, secret: &str) -> bool {
        let settings = &self.inner.settings;
        if client_id == settings.client_id {
            return settings.client_secret.accepts(secret);
        }
        settings
            .contracts
            .iter()
            .any(|(id, known)| id == client_id && known == secret)
    }

    /// A token for `client_id`, good only with that client's id.
    pub fn issue_token(&self, client_id: &str) -> (String, Duration) {
        let token: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(64)
            .map(char::from)
            .collect();
        let ttl = self.inner.settings.token_ttl;
        let now = Instant::now();
        let mut book = self.lock();
        book.tokens.retain(|_, (_, expires)| *expires > now);
        let expires = crate::later(ttl);
        book.tokens
            .insert(token.clone(), (client_id.to_owned(), expires));
        book.counters.tokens_issued += 1;
        (token, ttl)
    }

    /// Whether `token` is live and was issued to `client_id`.
    pub fn token_is_valid(&self, token: &str, client_id: &str) -> bool {
        self.lock()
            .tokens
            .get(token)
            .is_some_and(|(client, expires)| client == client_id && *expires > Instant::now())
    }

    fn wallet_is_eligible(&self, wallet: &Wallet) -> bool {
        self.inner.wallets.iter().any(|known| {
            known.product_number == wallet.product_number
                && known.identification_type == wallet.identification_type
                && known.identification_number == wallet.identification_number
                && known.status == WalletStatus::Active
        })
    }

    /// D1: an OTP session for the wallet.
    pub fn request(&self, request: Envelope<Wallet>) -> Result<Value, Failure> {
        wire::check_wallet(&request.detail)?;
        if !self.wallet_is_eligible(&request.detail) {
            return Err(Failure::Refused(Refusal::WalletNotEligible));
        }
        let ttl = self.inner.settings.otp_ttl;
        let otp = random_digits(6);
        let mut book = self.lock();
        let session_id = loop {
            let id = random_digits(8);
            if !book.sessions.contains_key(&id) {
                break id;
            }
        };
        book.sessions.insert(
            session_id.clone(),
            OtpSession {
                otp: otp.clone(),
                owner: Owner::of(&request, &request.detail),
                expires_at: crate::later(ttl),
                used: false,
            },
        );
        book.counters.otps_sent += 1;
        let expires = chrono::TimeDelta::from_std(ttl)
            .ok()
            .and_then(|ttl| Utc::now().checked_add_signed(ttl))
            .unwrap_or_else(Utc::now);
        Ok(to_json(&RequestAnswer {
            result: result(transaction_id(&request), "Transacción aprobada"),
            info_otp: InfoOtp {
                value: otp,
                expiration_date: wire::otp_expiration(expires),
                session_id,
                expiration_minutes: ttl.as_secs().div_ceil(60),
            },
        }))
    }

    /// D2: the OTP is checked, then the wallet becomes subscribed with its maximum.
    pub fn activate(
        &self,
        request: Envelope<ActivateDetail>,
        raw: &Value,
    ) -> Result<Value, Failure> {
        let detail = &request.detail;
        wire::check_wallet(&detail.wallet)?;
        wire::check_currency(&detail.amount_currency_type)?;
        let max_cents = detail
            .amount_value
            .as_ref()
            .map(|value| wire::check_amount("amountValue", value))
            .transpose()?;
        let owner = Owner::of(&request, &detail.wallet);
        self.once(Operation::Activate, &request, raw, |book| {
            let session = book
                .sessions
                .get_mut(&detail.otp_sesion_id)
                .filter(|s| s.owner == owner)
                .ok_or(Failure::Refused(Refusal::OtpWrong))?;
            if session.used || session.expires_at <= Instant::now() {
                return Err(Failure::Refused(Refusal::OtpExpiredOrUsed));
            }
            if session.otp != detail.otp_value {
                return Err(Failure::Refused(Refusal::OtpWrong));
            }
            if book.subscriptions.iter().any(|s| s.serves(&owner)) {
                return Err(Failure::Refused(Refusal::WalletAlreadySubscribed));
            }
            session.used = true;
            let view = subscription_view(&request, &owner);
            book.subscriptions.push(Subscription {
                owner: owner.clone(),
                view: view.clone(),
                max_cents,
                active: true,
            });
            book.counters.subscriptions_activated += 1;
            Ok(to_json(&ActivateAnswer {
                result: result(transaction_id(&request), "OK"),
                subscription: view,
            }))
        })
    }

    /// D3: the wallet's subscription at this merchant ends.
    pub fn cancel(&self, request: Envelope<Wallet>, raw: &Value) -> Result<Value, Failure> {
        wire::check_wallet(&request.detail)?;
        let owner = Owner::of(&request, &request.detail);
        self.once(Operation::Cancel, &request, raw, |book| {
            let subscription = book
                .subscriptions
                .iter_mut()
                .find(|s| s.serves(&owner))
                .ok_or(Failure::Refused(Refusal::WalletNotSubscribed))?;
            subscription.active = false;
            book.counters.subscriptions_cancelled += 1;
            Ok(to_json(&CancelAnswer {
                result: result(transaction_id(&request), "OK"),
            }))
        })
    }

    /// D4: a charge within the subscription's maximum, with a new approval number.
    pub fn pay(&self, request: Envelope<PaymentDetail>, raw: &Value) -> Result<Value, Failure> {
        let detail = &request.detail;
        wire::check_wallet(&detail.wallet)?;
        wire::check_currency(&detail.amount.amount_currency_type)?;
        let value = detail
            .amount
            .amount_value
            .as_ref()
            .ok_or_else(|| Failure::MissingProperty("amountValue".into()))?;
        let cents = wire::check_amount("amountValue", value)?;
        let owner = Owner::of(&request, &detail.wallet);
        self.once(Operation::Payment, &request, raw, |book| {
            let subscription = book
                .subscriptions
                .iter()
                .find(|s| s.serves(&owner))
                .ok_or(Failure::Refused(Refusal::SubscriptionInvalid))?;
            if subscription.max_cents.is_some_and(|max| cents > max) {
                return Err(Failure::Refused(Refusal::AmountOverMaximum));
            }
            let view = subscription.view.clone();
            book.approvals += 1;
            book.counters.payments_made += 1;
            let mut result = result(transaction_id(&request), "Transacción aprobada");
            let approval_number = format!("{:016}", book.approvals);
            book.ledger.push(ExecutedPayment {
                transaction_id: result.transaction_id.clone(),
                approval_number: approval_number.clone(),
                invoice_id: raw["TransactionDetail"]["invoiceId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
            result.approval_number = Some(approval_number);
            Ok(to_json(&PaymentAnswer {
                result,
                subscription: view,
            }))
        })
    }

    /// Runs `operation` once per `transactionId`: a repeat with the same request gets the
    /// first answer again without acting; a different request under the same id is
    /// refused. Only successes are remembered, so a refused call may be retried.
    fn once<D>(
        &self,
        operation: Operation,
        request: &Envelope<D>,
        raw: &Value,
        run: impl FnOnce(&mut Book) -> Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let mut book = self.lock();
        let id = request
            .header
            .transaction_id
            .clone()
            .filter(|_| book.readings.dedup_transaction_ids);
        let Some(id) = id else {
            return run(&mut book);
        };
        let fingerprint = fingerprint(raw);
        let key = (operation, id);
        if let Some(replay) = book.replays.get(&key) {
            if replay.fingerprint != fingerprint {
                return Err(Failure::Refused(Refusal::CannotExecute));
            }
            let answer = replay.answer.clone();
            if operation == Operation::Payment {
                book.counters.payments_replayed += 1;
            }
            return Ok(answer);
        }
        let answer = run(&mut book)?;
        book.replays.insert(
            key,
            Replay {
                fingerprint,
                answer: answer.clone(),
            },
        );
        Ok(answer)
    }
}

/// What activate, and every payment after it, show of a new subscription.
fn subscription_view(request: &Envelope<ActivateDetail>, owner: &Owner) -> SubscriptionView {
    let detail = &request.detail;
    SubscriptionView {
        subscription_id: uuid::Uuid::new_v4().to_string(),
        max_value: Amount {
            amount_currency_type: detail.amount_currency_type.clone(),
            amount_value: detail.amount_value.clone(),
        },
        payment_provider: PaymentProvider {
            payment_provider_id: owner.payment_provider_id.clone(),
        },
        commerce: Commerce {
            commerce_id: owner.commerce_id.clone(),
            commerce_name: request.header.commerce_name.clone(),
            category: request.header.category.clone(),
        },
        identification: Identification {
            identification_type: owner.identification_type.clone(),
            identification_number: owner.identification_number.clone(),
        },
        product: Product {
            product_code: detail.wallet.product_code.clone(),
            product_number: owner.product_number.clone(),
        },
    }
}

/// The caller's `transactionId`, or a new one when it sent none.
fn transaction_id<D>(request: &Envelope<D>) -> String {
    request
        .header
        .transaction_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
