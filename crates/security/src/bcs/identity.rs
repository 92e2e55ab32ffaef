//! Whose bank identity a call carries: the deployment's invoker values, its tenant's laid
//! over them, a withdrawal's fixed values over both, and only the few fields a caller may
//! set per call (its end user's address, terminal, session) from the request. The TxId,
//! the ProcessId and the action are pasarela's on every operation: a caller's TxId could
//! be one pasarela just sent for another customer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pasarela::common::v1::InvokerContext;
use pasarela_auth::{Principal, Trespass};
use serde::Deserialize;
use tonic::Status;

use super::client::Channel;
use super::invoker;
use crate::config::InvokerFields;

/// Fields no caller sets: pasarela generates them for each call.
const GENERATED: [&str; 3] = ["tx_id", "process_id", "action"];

/// One tenant in `security.tenants.<name>` (the name is the one in `auth.tenants`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// The bank identity the tenant acts as (channel, sub-channel, branch, ally, user...),
    /// laid over `security.invoker`.
    pub invoker: InvokerFields,
    /// The fields its callers may set per call; unset, `security.caller_invoker_fields`.
    pub caller_invoker_fields: Option<Vec<String>>,
}

/// The identity of one tenant (or of the deployment), resolved and checked at start-up.
#[derive(Debug)]
pub struct Identity {
    /// Invoker values of API calls.
    api: InvokerFields,
    /// Those of withdrawals at a banking correspondent: the withdrawal's fixed values over
    /// `api`.
    correspondent: InvokerFields,
    /// What a caller may set on API calls.
    caller_may_set: BTreeSet<&'static str>,
    /// What a caller may set on withdrawals: the above less the fixed values.
    caller_may_set_on_withdrawals: BTreeSet<&'static str>,
}

impl Identity {
    fn new(
        api: InvokerFields,
        withdrawal: &InvokerFields,
        caller_fields: &[String],
        setting: &str,
    ) -> anyhow::Result<Self> {
        let mut correspondent = api.clone();
        invoker::merge(&mut correspondent, withdrawal);
        invoker::check_defaults(&api, &format!("{setting}.invoker"))?;
        invoker::check_defaults(&correspondent, "security.withdrawal_invoker")?;
        let caller_may_set = caller_fields
            .iter()
            .map(|name| {
                let field = invoker::field(name.trim()).ok_or_else(|| {
                    anyhow::anyhow!("{setting}.caller_invoker_fields: no invoker field {name:?}")
                })?;
                anyhow::ensure!(
                    !GENERATED.contains(&field),
                    "{setting}.caller_invoker_fields: {field} is pasarela's on every call"
                );
                Ok(field)
            })
            .collect::<anyhow::Result<BTreeSet<_>>>()?;
        let fixed: BTreeSet<&str> = invoker::set_fields(withdrawal).collect();
        let caller_may_set_on_withdrawals = caller_may_set.difference(&fixed).copied().collect();
        Ok(Self {
            api,
            correspondent,
            caller_may_set,
            caller_may_set_on_withdrawals,
        })
    }

    /// The invoker values of a call on `channel` before the request's own layer.
    pub fn base(&self, channel: Channel) -> &InvokerFields {
        match channel {
            Channel::Api => &self.api,
            Channel::Correspondent => &self.correspondent,
        }
    }

    /// The request's layer, refused `PERMISSION_DENIED` (`BANK_IDENTITY_NOT_CALLERS`,
    /// naming the fields) when it sets a field its caller may not.
    pub fn caller_layer(
        &self,
        channel: Channel,
        context: Option<&InvokerContext>,
        principal: Option<&Principal>,
    ) -> Result<InvokerFields, Status> {
        let Some(context) = context else {
            return Ok(InvokerFields::default());
        };
        let layer = invoker::from_context(context);
        let allowed = match channel {
            Channel::Api => &self.caller_may_set,
            Channel::Correspondent => &self.caller_may_set_on_withdrawals,
        };
        let refused: Vec<&str> = invoker::set_fields(&layer)
            .filter(|field| !allowed.contains(field))
            .collect();
        if refused.is_empty() {
            return names_its_end_user(&layer, principal).map(|()| layer);
        }
        let fields = refused
            .iter()
            .map(|field| format!("invoker.{field}"))
            .collect::<Vec<_>>()
            .join(",");
        Err(Trespass::BankIdentity.refuse(principal, &[("fields", &fields)]))
    }
}

/// A caller bound to an end user names no other customer in the headers that name one
/// (`X-Invoker-CustId`, `X-Security-CustLoginId`): each must be the end user's number, or
/// its kind and number run together (`CC1028780657`, as S12's example writes a login).
fn names_its_end_user(layer: &InvokerFields, principal: Option<&Principal>) -> Result<(), Status> {
    let Some(end_user) = principal.and_then(|p| p.end_user.as_ref()) else {
        return Ok(());
    };
    let (kind, number) = end_user.document().unwrap_or((None, ""));
    let names_the_end_user = |value: &str| {
        !number.is_empty()
            && (value == number || kind.is_some_and(|kind| value == format!("{kind}{number}")))
    };
    let others: Vec<String> = [
        ("cust_id", &layer.cust_id),
        ("cust_login_id", &layer.cust_login_id),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty() && !names_the_end_user(value))
    .map(|(field, _)| format!("invoker.{field}"))
    .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(Trespass::EndUser.refuse(principal, &[("fields", &others.join(","))]))
}

/// The deployment's identity and each tenant's.
#[derive(Debug)]
pub struct Identities {
    deployment: Identity,
    tenants: HashMap<String, Identity>,
}

impl Identities {
    pub fn new(
        invoker: &InvokerFields,
        withdrawal: &InvokerFields,
        caller_fields: &[String],
        tenants: &BTreeMap<String, TenantSettings>,
    ) -> anyhow::Result<Self> {
        let deployment = Identity::new(invoker.clone(), withdrawal, caller_fields, "security")?;
        let tenants = tenants
            .iter()
            .map(|(name, tenant)| {
                let mut api = invoker.clone();
                invoker::merge(&mut api, &tenant.invoker);
                let fields = tenant
                    .caller_invoker_fields
                    .as_deref()
                    .unwrap_or(caller_fields);
                let setting = format!("security.tenants.{name}");
                Ok((
                    name.clone(),
                    Identity::new(api, withdrawal, fields, &setting)?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            deployment,
            tenants,
        })
    }

    /// The identity a principal's calls carry: its tenant's, else the deployment's.
    pub fn of(&self, principal: Option<&Principal>) -> &Identity {
        principal
            .and_then(|p| p.tenant.as_deref())
            .and_then(|tenant| self.tenants.get(tenant))
            .unwrap_or(&self.deployment)
    }

    /// The deployment's own identity (the reconciler's consultas).
    pub fn deployment(&self) -> &Identity {
        &self.deployment
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pasarela_auth::EndUser;

    use super::*;

    fn identities() -> Identities {
        let invoker = InvokerFields {
            channel: "007".into(),
            ally: "DEPLOYMENT".into(),
            ..InvokerFields::default()
        };
        let withdrawal = InvokerFields {
            channel: "13".into(),
            terminal_id: "FIXED".into(),
            ..InvokerFields::default()
        };
        let tenants = BTreeMap::from([(
            "acme".to_owned(),
            TenantSettings {
                invoker: InvokerFields {
                    ally: "ACME".into(),
                    ..InvokerFields::default()
                },
                caller_invoker_fields: Some(vec!["terminal_id".into()]),
            },
        )]);
        let callers = ["user_ip_address".to_owned(), "terminal_id".to_owned()];
        Identities::new(&invoker, &withdrawal, &callers, &tenants).unwrap()
    }

    fn acme() -> Principal {
        Principal {
            tenant: Some(Arc::from("acme")),
            ..Principal::default()
        }
    }

    #[test]
    fn the_tenant_layer_lies_between_the_deployment_and_the_withdrawal() {
        let identities = identities();
        let acme = acme();
        let identity = identities.of(Some(&acme));
        assert_eq!(identity.base(Channel::Api).ally, "ACME");
        assert_eq!(identity.base(Channel::Api).channel, "007");
        assert_eq!(identity.base(Channel::Correspondent).channel, "13");
        assert_eq!(identities.of(None).base(Channel::Api).ally, "DEPLOYMENT");
    }

    #[test]
    fn a_caller_sets_only_its_tenants_fields() {
        let identities = identities();
        let acme = acme();
        let identity = identities.of(Some(&acme));
        let terminal = InvokerContext {
            terminal_id: "T1".into(),
            ..InvokerContext::default()
        };
        assert!(
            identity
                .caller_layer(Channel::Api, Some(&terminal), None)
                .is_ok()
        );
        let refused = identity
            .caller_layer(Channel::Correspondent, Some(&terminal), None)
            .unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::PermissionDenied,
            "fixed on withdrawals"
        );
        for context in [
            InvokerContext {
                user_ip_address: "10.0.0.1".into(),
                ..InvokerContext::default()
            },
            InvokerContext {
                tx_id: "APII4087320000000001".into(),
                ..InvokerContext::default()
            },
            InvokerContext {
                channel: "13".into(),
                ally: "OTHER".into(),
                ..InvokerContext::default()
            },
        ] {
            let refused = identity
                .caller_layer(Channel::Api, Some(&context), None)
                .unwrap_err();
            assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{context:?}");
        }
    }

    #[test]
    fn a_bound_caller_names_no_other_customer_in_the_headers() {
        let identities = identities();
        let mut bound = acme();
        bound.end_user = Some(EndUser::Bound("CC:1028780657".into()));
        let identity = identities.of(Some(&bound));
        let login = |value: &str| InvokerContext {
            terminal_id: "T1".into(),
            cust_login_id: value.into(),
            ..InvokerContext::default()
        };
        let fields = [
            "user_ip_address".to_owned(),
            "terminal_id".to_owned(),
            "cust_login_id".to_owned(),
        ];
        let open = Identities::new(
            &InvokerFields::default(),
            &InvokerFields::default(),
            &fields,
            &BTreeMap::new(),
        )
        .unwrap();
        let deployment = open.of(None);
        for own in ["CC1028780657", "1028780657"] {
            assert!(
                deployment
                    .caller_layer(Channel::Api, Some(&login(own)), Some(&bound))
                    .is_ok(),
                "{own}"
            );
        }
        let refused = deployment
            .caller_layer(Channel::Api, Some(&login("CC79000001")), Some(&bound))
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            identity
                .caller_layer(Channel::Api, None, Some(&bound))
                .is_ok()
        );
    }

    #[test]
    fn generated_and_unknown_fields_cannot_be_granted() {
        let none = InvokerFields::default();
        for fields in [["tx_id"], ["process_id"], ["no_such_field"]] {
            let fields = fields.map(str::to_owned);
            assert!(Identities::new(&none, &none, &fields, &BTreeMap::new()).is_err());
        }
    }
}
