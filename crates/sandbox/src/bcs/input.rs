//! Reading a request once the gate has admitted it: its JSON body and its query string,
//! answering the operation's own bad-request row when they cannot be read.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use super::envelope::{BcsError, Op};
use super::guard::{admit, header};
use super::state::State;

/// The channel the request is registered with; the spec's default is "007" (Internet).
const DEFAULT_CHANNEL: &str = "007";

/// The JSON body of a request the gate admits.
pub(crate) fn admitted_body<T: DeserializeOwned>(
    state: &State,
    op: Op,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, BcsError> {
    admit(state, op, headers)?;
    self::body(op, body)
}

/// The query string of a request the gate admits.
pub(crate) fn admitted_query(
    state: &State,
    op: Op,
    headers: &HeaderMap,
    raw: Option<String>,
) -> Result<Query, BcsError> {
    admit(state, op, headers)?;
    Query::parse(op, raw)
}

pub(crate) fn body<T: DeserializeOwned>(op: Op, body: &Bytes) -> Result<T, BcsError> {
    serde_json::from_slice(body).map_err(|_| op.bad_request("el cuerpo no es un JSON valido"))
}

/// Query parameters by lower-cased name: the spec spells them `GovIssueIdentType`,
/// `govIssueIdentType`, `RecordsXPage`... from one operation to the next.
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(op: Op, raw: Option<String>) -> Result<Query, BcsError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
            .map_err(|_| op.bad_request("parametros de consulta invalidos"))?;
        Ok(Query(
            pairs
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
        ))
    }

    /// A non-blank parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(&name.to_ascii_lowercase())
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }
}

pub(crate) fn channel(headers: &HeaderMap) -> String {
    header(headers, "X-Invoker-Channel")
        .map_or_else(|| DEFAULT_CHANNEL.to_string(), |c| c.trim().to_string())
}
