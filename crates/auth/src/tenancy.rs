//! Tenants: which principals act for which tenant (a bank's business line, a merchant
//! group), decided once per call by the auth layer and carried on the [`Principal`]. What a
//! tenant may act on (merchants, the bank identity it acts as) each service reads from its
//! own section, by the tenant's name.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use tonic::Status;

use crate::policy::{MethodPath, MethodSet};
use crate::principal::{Principal, PrincipalSource};
use crate::rejection::{Reason, Rejection};

/// One tenant in `auth.tenants.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Who acts for the tenant.
    pub principals: Vec<TenantPrincipal>,
    /// A claim of the caller's token (e.g. the customer's document number) that the
    /// request's customer must equal; a token without it is refused where a request names
    /// a customer. Unset: the tenant's callers act for any of its customers.
    pub end_user_claim: Option<String>,
}

/// A principal as a tenant lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPrincipal {
    pub source: PrincipalSource,
    /// The token's `sub`, or the certificate identity.
    pub subject: String,
    /// JWT only: the application acting for the subject (`client_id`, else `azp`).
    /// Unset: any application of the subject.
    pub client_id: Option<String>,
}

/// One tenant's listing of a subject.
#[derive(Debug, Clone)]
struct Listing {
    source: PrincipalSource,
    /// The application it names; none: any application of the person.
    client_id: Option<String>,
    tenant: Arc<str>,
    end_user_claim: Option<String>,
}

/// What becomes of a principal listed in no tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Untenanted {
    /// Refused `PERMISSION_DENIED` `PRINCIPAL_IN_NO_TENANT` on every method outside
    /// `auth.tenant_free`.
    #[default]
    Refuse,
    /// Served with the deployment's own identity and no merchant bound (`pasarela dev`).
    Allow,
}

/// The tenants of a deployment, as the auth layer applies them.
#[derive(Debug, Clone)]
pub struct Tenancy {
    /// The tenants' listings by subject: read once per call, so a map rather than a scan of
    /// every tenant.
    listings: HashMap<String, Vec<Listing>>,
    untenanted: Untenanted,
    /// Methods any authenticated principal may call, tenant or none (operators' methods).
    free: MethodSet,
}

impl Tenancy {
    pub fn new(
        tenants: &BTreeMap<String, TenantSettings>,
        untenanted: Untenanted,
        free: &[String],
    ) -> Self {
        let mut listings: HashMap<String, Vec<Listing>> = HashMap::new();
        for (name, tenant) in tenants {
            let name: Arc<str> = Arc::from(name.as_str());
            for listed in &tenant.principals {
                listings
                    .entry(listed.subject.clone())
                    .or_default()
                    .push(Listing {
                        source: listed.source,
                        client_id: listed.client_id.clone(),
                        tenant: Arc::clone(&name),
                        end_user_claim: tenant.end_user_claim.clone(),
                    });
            }
        }
        Self {
            listings,
            untenanted,
            free: MethodSet::new(free),
        }
    }

    /// The claims tenants bind end users with: what a token verification keeps.
    pub fn claims(tenants: &BTreeMap<String, TenantSettings>) -> Vec<String> {
        let mut names: Vec<String> = tenants
            .values()
            .filter_map(|tenant| tenant.end_user_claim.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Sets the principal's tenant (a listing naming its application wins over one naming
    /// none) and its end user.
    pub fn resolve(&self, principal: &mut Principal) {
        let Some(listings) = self.listings.get(principal.subject.as_str()) else {
            return;
        };
        let of_its_source = || {
            listings
                .iter()
                .filter(|listing| listing.source == principal.source)
        };
        let found = of_its_source()
            .find(|listing| listing.client_id.is_some() && listing.client_id == principal.client_id)
            .or_else(|| of_its_source().find(|listing| listing.client_id.is_none()));
        let Some(listing) = found else {
            return;
        };
        principal.tenant = Some(Arc::clone(&listing.tenant));
        // An empty claim binds nobody: it is as missing as an absent one.
        principal.end_user = listing.end_user_claim.as_ref().map(|claim| {
            principal
                .claims
                .get(claim)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
                .map_or(EndUser::Missing, |value| EndUser::Bound(value.to_owned()))
        });
    }

    /// Refuses a principal in no tenant, unless the deployment allows it or the method is
    /// tenant-free.
    pub fn admit(
        &self,
        principal: &Principal,
        path: Option<&MethodPath<'_>>,
    ) -> Result<(), Rejection> {
        let free = path.is_some_and(|path| self.free.contains(path));
        if principal.tenant.is_some() || free || self.untenanted == Untenanted::Allow {
            return Ok(());
        }
        Err(Rejection::new(Reason::NoTenant))
    }
}

/// The end user a tenant binds a caller's requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndUser {
    /// The value of the tenant's claim in the caller's token.
    Bound(String),
    /// The tenant names a claim the token does not carry, or carries empty.
    Missing,
}

impl EndUser {
    /// The bound document: its kind when the claim names one (`CC:79000001`), and its
    /// number; none when the claim is missing.
    pub fn document(&self) -> Option<(Option<&str>, &str)> {
        let EndUser::Bound(bound) = self else {
            return None;
        };
        Some(match bound.split_once(':') {
            Some((kind, number)) => (Some(kind.trim()), number.trim()),
            None => (None, bound.trim()),
        })
    }
}

/// A request's customer as the end-user binding reads it: its document kind (`CC`), when
/// the request names one, and number.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub kind: Option<&'a str>,
    pub number: &'a str,
}

/// Refuses a request about `document` (a customer's or wallet holder's) unless it is the end
/// user the caller's tenant binds it to; callers whose tenant binds none act for any
/// customer. A claim `CC:79000001` binds the kind and the number, a bare `79000001` the
/// number; both are compared as written (the bank compares documents so: `079000001` and
/// `79000001` are two documents).
pub fn check_end_user(principal: Option<&Principal>, document: Document<'_>) -> Result<(), Status> {
    let Some(end_user) = principal.and_then(|p| p.end_user.as_ref()) else {
        return Ok(());
    };
    match end_user.document() {
        Some(bound) if is_the_end_user(bound, document) => Ok(()),
        Some(_) => Err(Trespass::EndUser.refuse(principal, &[])),
        None => Err(Trespass::EndUserClaimMissing.refuse(principal, &[])),
    }
}

fn is_the_end_user((kind, bound_number): (Option<&str>, &str), document: Document<'_>) -> bool {
    let number = document.number.trim();
    let same_kind = match (kind, document.kind) {
        (Some(bound), Some(asked)) => bound.eq_ignore_ascii_case(asked.trim()),
        _ => true,
    };
    !number.is_empty() && number == bound_number && same_kind
}

/// What a request may not do for its caller's tenant, decided by the service that reads
/// the request; each is answered `PERMISSION_DENIED` with its own `ErrorInfo.reason`,
/// before any provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Trespass {
    #[error("the merchant is not one of the caller's tenant")]
    Merchant,
    #[error("the subscription was activated by another tenant")]
    Subscription,
    #[error("no tenant is recorded as having activated the subscription")]
    SubscriptionOwnerUnknown,
    #[error("the customer is not the end user the caller's token names")]
    EndUser,
    #[error("the caller's token lacks the claim its tenant binds end users with")]
    EndUserClaimMissing,
    #[error("the caller may not set these fields of the bank identity")]
    BankIdentity,
}

impl Trespass {
    fn reason(self) -> Reason {
        match self {
            Trespass::Merchant => Reason::MerchantNotInTenant,
            Trespass::Subscription => Reason::SubscriptionOfAnotherTenant,
            Trespass::SubscriptionOwnerUnknown => Reason::SubscriptionOwnerUnknown,
            Trespass::EndUser => Reason::EndUserMismatch,
            Trespass::EndUserClaimMissing => Reason::EndUserClaimMissing,
            Trespass::BankIdentity => Reason::BankIdentityNotCallers,
        }
    }

    /// The refusal, logged as a security event naming the caller and its tenant (never
    /// the request's values: `metadata` names fields and merchants only).
    pub fn refuse(self, principal: Option<&Principal>, metadata: &[(&str, &str)]) -> Status {
        let reason = self.reason();
        tracing::warn!(
            reason = reason.name(),
            caller = principal
                .map(Principal::key)
                .as_deref()
                .unwrap_or("anonymous"),
            tenant = principal.and_then(|p| p.tenant.as_deref()).unwrap_or("-"),
            "refused for its tenant: {self}"
        );
        metadata
            .iter()
            .fold(Rejection::new(reason), |rejection, (key, value)| {
                rejection.with(key, *value)
            })
            .into_status()
    }
}

/// Refuses listings that could never be told apart: one principal (and application) in
/// two tenants.
pub fn check(tenants: &BTreeMap<String, TenantSettings>) -> anyhow::Result<()> {
    let listed: Vec<(&String, &TenantPrincipal)> = tenants
        .iter()
        .flat_map(|(name, tenant)| tenant.principals.iter().map(move |p| (name, p)))
        .collect();
    for (i, (name, principal)) in listed.iter().enumerate() {
        anyhow::ensure!(
            !principal.subject.is_empty(),
            "auth.tenants.{name}: a principal needs a subject"
        );
        anyhow::ensure!(
            principal.source == PrincipalSource::Jwt || principal.client_id.is_none(),
            "auth.tenants.{name}: client_id names a token's application; a certificate has none"
        );
        let twin = listed.iter().skip(i.saturating_add(1)).find(|(other, p)| {
            other != name
                && p.source == principal.source
                && p.subject == principal.subject
                && p.client_id == principal.client_id
        });
        if let Some((other, _)) = twin {
            anyhow::bail!(
                "auth.tenants: {} {:?} is listed in both {name} and {other}",
                principal.source,
                principal.subject
            );
        }
    }
    for (name, tenant) in tenants {
        anyhow::ensure!(
            tenant
                .end_user_claim
                .as_ref()
                .is_none_or(|claim| !claim.is_empty()),
            "auth.tenants.{name}.end_user_claim is empty"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(subject: &str, client: Option<&str>) -> Principal {
        Principal {
            subject: subject.into(),
            client_id: client.map(str::to_owned),
            ..Principal::default()
        }
    }

    fn listed(subject: &str, client: Option<&str>) -> TenantPrincipal {
        TenantPrincipal {
            source: PrincipalSource::Jwt,
            subject: subject.into(),
            client_id: client.map(str::to_owned),
        }
    }

    fn tenants() -> BTreeMap<String, TenantSettings> {
        BTreeMap::from([
            (
                "acme".to_owned(),
                TenantSettings {
                    principals: vec![listed("svc", None)],
                    end_user_claim: Some("document".into()),
                },
            ),
            (
                "globex".to_owned(),
                TenantSettings {
                    principals: vec![listed("svc", Some("globex-app"))],
                    end_user_claim: None,
                },
            ),
        ])
    }

    #[test]
    fn the_most_specific_listing_wins_and_binds_the_end_user() {
        let tenancy = Tenancy::new(&tenants(), Untenanted::Refuse, &[]);
        let mut acme = principal("svc", Some("acme-app"));
        acme.claims.insert("document".into(), "1028780657".into());
        tenancy.resolve(&mut acme);
        assert_eq!(acme.tenant.as_deref(), Some("acme"));
        assert_eq!(acme.end_user, Some(EndUser::Bound("1028780657".into())));
        let mut globex = principal("svc", Some("globex-app"));
        tenancy.resolve(&mut globex);
        assert_eq!(globex.tenant.as_deref(), Some("globex"));
        assert_eq!(globex.end_user, None);
        let mut unclaimed = principal("svc", None);
        tenancy.resolve(&mut unclaimed);
        assert_eq!(unclaimed.end_user, Some(EndUser::Missing));
    }

    #[test]
    fn a_principal_in_no_tenant_is_refused_unless_allowed_or_free() {
        let free = ["pasarela.operations.v1.OperationsService".to_owned()];
        let refuse = Tenancy::new(&tenants(), Untenanted::Refuse, &free);
        let mut stranger = principal("other", None);
        refuse.resolve(&mut stranger);
        let charge = MethodPath::parse("/pasarela.x.v1.X/Charge");
        let rejection = refuse.admit(&stranger, charge.as_ref()).unwrap_err();
        assert_eq!(rejection.reason, Reason::NoTenant);
        let list = MethodPath::parse("/pasarela.operations.v1.OperationsService/List");
        assert!(refuse.admit(&stranger, list.as_ref()).is_ok());
        let allow = Tenancy::new(&tenants(), Untenanted::Allow, &free);
        assert!(allow.admit(&stranger, charge.as_ref()).is_ok());
    }

    #[test]
    fn the_end_user_binds_the_customer_as_written() {
        let doc = |kind: Option<&'static str>, number: &'static str| Document { kind, number };
        let mut bound = principal("svc", None);
        bound.end_user = Some(EndUser::Bound("CC:79000001".into()));
        assert!(check_end_user(Some(&bound), doc(Some("CC"), "79000001")).is_ok());
        assert!(
            check_end_user(Some(&bound), doc(None, "79000001")).is_ok(),
            "no kind asked"
        );
        for (kind, number) in [
            (Some("CE"), "79000001"),
            (Some("CC"), "079000001"),
            (Some("CC"), "79000002"),
            (Some("CC"), ""),
        ] {
            let refused = check_end_user(Some(&bound), doc(kind, number)).unwrap_err();
            assert_eq!(
                refused.code(),
                tonic::Code::PermissionDenied,
                "{kind:?} {number}"
            );
        }
        bound.end_user = Some(EndUser::Bound("AB123".into()));
        assert!(check_end_user(Some(&bound), doc(Some("PA"), "AB123")).is_ok());
        assert!(check_end_user(Some(&bound), doc(Some("PA"), "ab123")).is_err());
        bound.end_user = Some(EndUser::Missing);
        assert!(check_end_user(Some(&bound), doc(Some("CC"), "79000001")).is_err());
        assert!(check_end_user(Some(&principal("svc", None)), doc(None, "1")).is_ok());
        assert!(check_end_user(None, doc(None, "1")).is_ok());
    }

    #[test]
    fn an_empty_claim_binds_nobody() {
        let tenancy = Tenancy::new(&tenants(), Untenanted::Refuse, &[]);
        let mut empty = principal("svc", Some("acme-app"));
        empty.claims.insert("document".into(), "  ".into());
        tenancy.resolve(&mut empty);
        assert_eq!(empty.end_user, Some(EndUser::Missing));
    }

    #[test]
    fn one_principal_in_two_tenants_is_refused() {
        let mut twins = tenants();
        twins.get_mut("globex").unwrap().principals = vec![listed("svc", None)];
        assert!(check(&twins).is_err());
        assert!(check(&tenants()).is_ok());
    }
}
