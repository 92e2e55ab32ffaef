//! Subscription maxima pasarela has seen (activate and charge answers carry them), so that
//! an over-maximum charge is refused before it reaches Daviplata. Per replica and
//! best-effort: where nothing is known Daviplata still enforces its maximum.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use pasarela::recurring_payments::v1 as pb;

#[derive(Default)]
pub struct Limits {
    maxima: Mutex<HashMap<String, i64>>,
}

/// A subscription is one wallet with one merchant.
fn key(commerce: Option<&pb::Commerce>, wallet: Option<&pb::Wallet>) -> String {
    let commerce_id = commerce.map(|c| c.commerce_id.as_str()).unwrap_or_default();
    let product_number = wallet
        .map(|w| w.product_number.as_str())
        .unwrap_or_default();
    format!("{commerce_id}\u{0}{product_number}")
}

impl Limits {
    pub fn known(
        &self,
        commerce: Option<&pb::Commerce>,
        wallet: Option<&pb::Wallet>,
    ) -> Option<i64> {
        self.with(|maxima| maxima.get(&key(commerce, wallet)).copied())
    }

    /// Remembers the maximum of `subscription`, if its answer carried one.
    pub fn learn(
        &self,
        commerce: Option<&pb::Commerce>,
        wallet: Option<&pb::Wallet>,
        subscription: Option<&pb::Subscription>,
    ) {
        if let Some(max) = subscription.and_then(|s| s.maximum_amount.as_ref()) {
            self.with(|maxima| maxima.insert(key(commerce, wallet), max.minor_units));
        }
    }

    pub fn forget(&self, commerce: Option<&pb::Commerce>, wallet: Option<&pb::Wallet>) {
        self.with(|maxima| maxima.remove(&key(commerce, wallet)));
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, i64>) -> T) -> T {
        // Single inserts and removals: a panic elsewhere cannot tear the map.
        f(&mut self.maxima.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
