//! The test app's verbs: the sandbox's admin API (faults, call counts, the request
//! journal, Daviplata's counters, Banco Caja Social's helpers) as methods of [`TestApp`], and the request pieces
//! every module builds (a document, an amount).

use pasarela::common::v1::{DocumentType, Identification, Money};
use serde_json::{Value, json};

use super::{TestApp, admin};

impl TestApp {
    /// Adds a fault rule on `provider` (`bcs`, `kiban`, `daviplata`): on one route, or any
    /// when `path` is `None`; for `times` calls, or until cleared.
    pub async fn inject(
        &self,
        provider: &str,
        path: Option<&str>,
        fault: Value,
        times: Option<u32>,
    ) {
        let mut rule = json!({ "provider": provider, "fault": fault });
        if let Some(path) = path {
            rule["path"] = json!(path);
        }
        if let Some(times) = times {
            rule["times"] = json!(times);
        }
        admin(&self.sandbox, reqwest::Method::POST, "/faults", Some(rule)).await;
    }

    /// The next call of `provider`'s route `path` meets `fault`.
    pub async fn inject_once(&self, provider: &str, path: &str, fault: Value) {
        self.inject(provider, Some(path), fault, Some(1)).await;
    }

    /// Removes every fault rule.
    pub async fn clear_faults(&self) {
        admin(&self.sandbox, reqwest::Method::DELETE, "/faults", None).await;
    }

    /// Calls the sandbox received, by provider and route.
    pub async fn calls(&self) -> Value {
        self.admin_get("/calls").await
    }

    /// Calls the sandbox received on one route of `provider`.
    pub async fn route_calls(&self, provider: &str, route: &str) -> u64 {
        self.calls().await[provider][route].as_u64().unwrap_or(0)
    }

    /// The calls `provider` received so far, oldest first, as the sandbox journalled them:
    /// `method`, `route`, `path`, `query` (raw), `headers` (`[name, value]` pairs), `body`.
    pub async fn journal(&self, provider: &str) -> Vec<Value> {
        match self
            .admin_get(&format!("/journal?provider={provider}"))
            .await
        {
            Value::Array(entries) => entries,
            other => panic!("the journal is not a list: {other}"),
        }
    }

    /// The last call of `provider` with `method` on `path` that the sandbox received.
    pub async fn last_call(&self, provider: &str, method: &str, path: &str) -> Value {
        self.journal(provider)
            .await
            .into_iter()
            .rev()
            .find(|call| call["method"] == method && call["path"] == path)
            .unwrap_or_else(|| panic!("no {method} {path} reached the {provider} sandbox"))
    }

    /// Forgets the calls journalled so far.
    pub async fn clear_journal(&self) {
        admin(&self.sandbox, reqwest::Method::DELETE, "/journal", None).await;
    }

    /// Daviplata's counter `name` (`tokens_issued`, `payments_made`, ...).
    pub async fn daviplata_counter(&self, name: &str) -> u64 {
        let counters = self.admin_get("/daviplata/counters").await;
        counters[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name}: {counters}"))
    }

    /// A GET of the sandbox's admin API.
    pub async fn admin_get(&self, path: &str) -> Value {
        admin(&self.sandbox, reqwest::Method::GET, path, None).await
    }

    /// Any other call of the sandbox's admin API, with a JSON body.
    pub async fn admin_send(&self, method: reqwest::Method, path: &str, body: Value) {
        admin(&self.sandbox, method, path, Some(body)).await;
    }
}

/// A Colombian citizen's document (CC).
pub fn cc(number: &str) -> Option<Identification> {
    Some(Identification {
        r#type: DocumentType::Cc.into(),
        number: number.into(),
    })
}

/// An amount in Colombian pesos' minor units (cents).
pub fn cop(minor_units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "COP".into(),
        minor_units,
    })
}

/// An amount in whole Colombian pesos.
pub fn pesos(amount: i64) -> Option<Money> {
    cop(amount * 100)
}

/// A journalled call's body, parsed as JSON.
pub fn body_of(call: &Value) -> Value {
    let body = call["body"].as_str().expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("a JSON body: {e}: {body}"))
}
