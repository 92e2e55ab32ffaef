//! Asks the bank, on a schedule of its own, what became of every withdrawal whose outcome
//! is unknown, so that none waits for its caller to retry: one replica at a time (a lease
//! in the ledger), each key asked again less and less often, and only a conclusive answer
//! (the bank's approval) settles a key; anything else leaves it to the caller's retry or an
//! operator. The same consulta is the bank's word on an operator's settlement.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use pasarela::security::v1::{WithdrawWithOtpRequest, WithdrawWithOtpResponse};
use pasarela_auth::{CallContext, Principal, tenant_of_key};
use pasarela_idempotency::{Askable, Ledger, Outcome, Testimony, Witness};
use pasarela_provider::ProviderError;

use crate::bcs::client::{self, Bcs};
use crate::bcs::invoker::{ACTION_READ, bank_now};
use crate::bcs::wire;
use crate::config::{ConsultaBody, ProviderCode};
use crate::withdrawal::bank_has_none;

/// The lease's name in the ledger.
const LEASE: &str = "withdrawal-reconciler";

/// Longest wait between two consultas of one key.
const BACKOFF_MAX: Duration = Duration::from_secs(60 * 60);

/// What the reconciler works with, held while the service lives.
pub(crate) struct Reconciler {
    pub ledger: Ledger,
    pub bcs: std::sync::Arc<Bcs>,
    pub every: Duration,
    /// This process, as the lease names its holder.
    pub holder: String,
    /// The consulta answers that mean "no such withdrawal".
    pub not_found: Vec<ProviderCode>,
}

/// When each key is asked next, and how long it waited last.
#[derive(Default)]
struct Schedule {
    next: HashMap<String, (Instant, Duration)>,
}

impl Schedule {
    fn due(&self, key_hash: &str, now: Instant) -> bool {
        self.next.get(key_hash).is_none_or(|(at, _)| *at <= now)
    }

    /// Asked and not settled: the next consulta waits twice as long, up to an hour.
    fn asked(&mut self, key_hash: &str, now: Instant, every: Duration) {
        let wait = self
            .next
            .get(key_hash)
            .map_or(every, |(_, last)| last.saturating_mul(2).min(BACKOFF_MAX));
        let at = now.checked_add(wait).unwrap_or(now);
        self.next.insert(key_hash.to_owned(), (at, wait));
    }
}

/// Runs rounds every `every` while the service (`alive`) lives.
pub(crate) fn spawn(reconciler: Weak<Reconciler>, every: Duration) {
    tokio::spawn(async move {
        let mut schedule = Schedule::default();
        let mut ticks = tokio::time::interval(pasarela_provider::deadline::period(every));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(reconciler) = reconciler.upgrade() else {
                return;
            };
            reconciler.round(&mut schedule).await;
        }
    });
}

impl Reconciler {
    /// One round: with the lease, every due key is asked once.
    async fn round(&self, schedule: &mut Schedule) {
        let lease = self.every.saturating_mul(3);
        match self.ledger.lease(LEASE, &self.holder, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(error = %error, "the reconciler could not reach the ledger");
                return;
            }
        }
        let askable = match self.ledger.askable(wire::WITHDRAW_WITH_OTP.name).await {
            Ok(askable) => askable,
            Err(error) => {
                tracing::warn!(error = %error, "the reconciler could not list unknown outcomes");
                return;
            }
        };
        let now = Instant::now();
        schedule
            .next
            .retain(|key, _| askable.iter().any(|a| a.key_hash() == key));
        for asked in askable {
            if !schedule.due(asked.key_hash(), now) {
                continue;
            }
            schedule.asked(asked.key_hash(), now, self.every);
            self.ask(asked).await;
        }
    }

    /// Sends one consulta; the bank's approval settles the key.
    async fn ask(&self, asked: Askable) {
        let Heard::Paid(response) = self.consult(&asked).await else {
            return;
        };
        let tx_id = response.tx_id.clone();
        if let Err(error) = self.ledger.resolve(asked, Outcome::of(&Ok(response))).await {
            tracing::info!(tx_id = %tx_id, error = %error, "an unknown withdrawal changed before its answer was recorded");
        }
    }

    /// What the bank answers a consulta of `asked`, sent once.
    async fn consult(&self, asked: &Askable) -> Heard {
        let tx_id = asked.transaction_id().to_owned();
        let Some(request) = decode(asked.context()) else {
            tracing::error!(tx_id = %tx_id, "an unknown withdrawal's context cannot be read");
            return Heard::Unaskable;
        };
        // The code is never kept: a stand-in passes the create's checks and is not sent.
        let request = WithdrawWithOtpRequest {
            otp: "0".into(),
            ..request
        };
        // The consulta carries the bank identity the create carried: its caller's tenant's.
        let tenant = tenant_of_key(asked.caller()).map(Arc::from);
        let call = CallContext {
            request_id: format!("reconciler-{}", asked.key_hash()),
            principal: tenant.map(|tenant| Principal {
                tenant: Some(tenant),
                ..Principal::default()
            }),
            ..CallContext::default()
        };
        let op = &wire::WITHDRAWAL_QUERY;
        let prepared = self
            .bcs
            .prepare(op, &call, request.invoker.as_ref(), |_, v| {
                wire::withdrawal_query(&request, bank_now(), ConsultaBody::Identifying, v)
            });
        let mut consulta = match prepared {
            Ok(prepared) => prepared.with_tx_id(tx_id.clone()),
            Err(status) => {
                tracing::error!(tx_id = %tx_id, message = status.message(), "an unknown withdrawal cannot be asked about");
                return Heard::Unaskable;
            }
        };
        consulta.set_action(ACTION_READ);
        let answer = match self.bcs.send(op, &consulta, self.bcs.deadline(&call)).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::info!(tx_id = %tx_id, reason = %error.reason, "the bank did not settle an unknown withdrawal");
                return Heard::Refused(error);
            }
        };
        match client::readable(
            &wire::WITHDRAW_WITH_OTP,
            answer.into_response(tx_id.clone()),
        ) {
            Ok(response) => Heard::Paid(response),
            Err(error) => {
                tracing::warn!(tx_id = %tx_id, reason = %error.reason, "the bank's answer about an unknown withdrawal could not be read");
                Heard::Refused(error)
            }
        }
    }
}

/// What a consulta heard.
enum Heard {
    /// The bank paid the withdrawal: its answer.
    Paid(WithdrawWithOtpResponse),
    /// A refusal, a failure or an answer that cannot be read.
    Refused(ProviderError),
    /// Nothing could be sent.
    Unaskable,
}

/// Before an operator's settlement is accepted, the bank is asked what it did.
impl Witness for Reconciler {
    fn ask<'a>(&'a self, asked: &'a Askable) -> BoxFuture<'a, Testimony> {
        Box::pin(async move {
            match self.consult(asked).await {
                Heard::Paid(response) => Testimony::Approved(response.approval_id),
                Heard::Refused(error) if bank_has_none(&self.not_found, &error) => {
                    Testimony::NoSuchCall
                }
                Heard::Refused(error) => Testimony::Inconclusive(error.reason.to_string()),
                Heard::Unaskable => Testimony::Inconclusive("not asked".to_owned()),
            }
        })
    }
}

fn decode(context: &str) -> Option<WithdrawWithOtpRequest> {
    let bytes = hex::decode(context).ok()?;
    prost::Message::decode(bytes.as_slice()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_asked_less_and_less_often() {
        let mut schedule = Schedule::default();
        let (now, every) = (Instant::now(), Duration::from_secs(60));
        assert!(schedule.due("k", now));
        schedule.asked("k", now, every);
        assert!(!schedule.due("k", now + Duration::from_secs(59)));
        assert!(schedule.due("k", now + every));
        schedule.asked("k", now, every);
        assert_eq!(schedule.next["k"].1, every * 2);
        for _ in 0..20 {
            schedule.asked("k", now, every);
        }
        assert_eq!(schedule.next["k"].1, BACKOFF_MAX);
    }
}
