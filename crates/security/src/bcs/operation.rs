//! A Banco Caja Social operation as a value: its proto request knows its row of the
//! client's table, the customer it acts for, whether it checks a secret, the bank's request
//! it becomes and how the bank's answer becomes its response. Each impl sits beside its
//! wire section; the handler runs every one the same way.

use pasarela::common::v1::{Identification, InvokerContext};
use pasarela_provider::Violations;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::client::Op;
use super::wire::{Outgoing, Unreadable};
use crate::config::{HoldsQuery, InvokerFields, OtcShape, PasswordStatusValues, RecordBase};

/// How the bank reads what its spec leaves open, as configured: the settings that shape a
/// request on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Readings {
    pub otc_shape: OtcShape,
    pub password_status_values: PasswordStatusValues,
    /// S14's query: its names' casing, and the number of its first record.
    pub holds_query: (HoldsQuery, RecordBase),
}

pub trait Operation {
    /// The JSON body the bank is sent (`NoBody` for a GET).
    type Body: Serialize;
    /// The bank's success body.
    type Answer: DeserializeOwned + 'static;
    /// The proto response.
    type Response;

    /// The operation's row of the client's table.
    const OP: &'static Op<Self::Answer>;

    fn invoker(&self) -> Option<&InvokerContext>;

    /// The customer the request acts for, as a tenant's end-user binding reads it; none
    /// when the request names none (or names one only by alias).
    fn customer(&self) -> Option<&Identification>;

    /// Whether this request tells a right secret of its customer from a wrong one, and is
    /// counted against the customer's budget. No default: each operation says.
    fn checks_secret(&self) -> bool;

    /// The bank's request, every field checked into `v`; `fields` are the invoker values
    /// the call is sent with.
    fn build(
        &self,
        fields: &InvokerFields,
        readings: &Readings,
        v: &mut Violations,
    ) -> Outgoing<Self::Body>;

    /// The proto response of the bank's success body.
    fn read(&self, answer: Self::Answer) -> Result<Self::Response, Unreadable>;
}
