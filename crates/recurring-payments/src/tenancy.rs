//! What each tenant may act on in Daviplata: its own merchants, and the subscriptions it
//! activated (remembered in the shared store, so that every replica knows).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use pasarela::common::v1 as pb_common;
use pasarela::recurring_payments::v1 as pb;
use pasarela_auth::{Document, Principal, Trespass, check_end_user};
use pasarela_idempotency::{Store, StoreUnavailable};
use pasarela_provider::Credential;
use serde::Deserialize;
use tonic::Status;

use crate::Config;

/// One tenant in `recurring_payments.tenants.<name>` (the name is the one in
/// `auth.tenants`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// The Daviplata merchants (`commerce_id`) the tenant acts for; none, it acts for no
    /// merchant.
    pub commerce_ids: Vec<String>,
    /// The tenant's own Daviplata contract, where its merchants hold one with Daviplata;
    /// unset, the deployment's (`recurring_payments.client_id`, ...).
    pub contract: Option<Contract>,
}

/// A Daviplata contract of a tenant's own: what pasarela presents for its calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub client_id: String,
    pub client_secret: Credential,
    /// The contract's client certificate and its key (mutual TLS), where Daviplata issued
    /// one per contract; unset, the deployment's.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl Contract {
    /// The deployment's Daviplata settings with this contract's credentials.
    pub fn over(&self, deployment: &Config, tenant: &str) -> anyhow::Result<Config> {
        anyhow::ensure!(
            self.cert_file.is_some() == self.key_file.is_some(),
            "recurring_payments.tenants.{tenant}.contract: cert_file and key_file go together"
        );
        let mut config = deployment.clone();
        config.client_id.clone_from(&self.client_id);
        config.client_secret.clone_from(&self.client_secret);
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            config.outbound.http.cert_file = Some(cert.clone());
            config.outbound.http.key_file = Some(key.clone());
        }
        Ok(config)
    }
}

/// What becomes of a charge or cancel of a subscription no tenant is recorded as having
/// activated (activated before tenants were configured, or outside pasarela).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnboundSubscriptions {
    /// Refused `PERMISSION_DENIED` `SUBSCRIPTION_OWNER_UNKNOWN`.
    #[default]
    Refuse,
    /// Taken by the tenant whose merchant it is, for good, at its first charge or cancel.
    Adopt,
}

/// Prefix of the store's bindings of subscriptions to the tenant that activated them.
const SUBSCRIPTIONS: &str = "pasarela:recurring-payments:subscription";

/// The service's tenants and the shared record of who activated what.
pub struct Tenants {
    merchants: BTreeMap<String, BTreeSet<String>>,
    unbound: UnboundSubscriptions,
    store: Arc<dyn Store>,
}

/// A request's merchant and wallet, as a tenant's checks read them.
pub struct Subject<'a> {
    pub commerce: Option<&'a pb::Commerce>,
    pub wallet: Option<&'a pb::Wallet>,
}

impl<'a> Subject<'a> {
    pub fn of(commerce: Option<&'a pb::Commerce>, wallet: Option<&'a pb::Wallet>) -> Self {
        Self { commerce, wallet }
    }
}

impl Subject<'_> {
    fn commerce_id(&self) -> &str {
        self.commerce.map_or("", |c| c.commerce_id.as_str())
    }

    fn holder(&self) -> Document<'_> {
        let holder = self.wallet.and_then(|w| w.holder.as_ref());
        Document {
            kind: holder.map(pb_common::Identification::kind),
            number: holder.map_or("", |holder| holder.number.as_str()),
        }
    }

    /// The subscription's name in the store: its merchant, its wallet and the wallet's
    /// holder, so that a charge naming the wallet under another holder is not the
    /// subscription activated (it finds no owner, and is refused).
    fn subscription(&self) -> String {
        let wallet = self.wallet.map_or("", |w| w.product_number.as_str());
        let holder = self.holder();
        // JSON keeps the parts apart whatever they hold.
        let parts = serde_json::json!([
            self.commerce_id(),
            wallet,
            holder.kind.unwrap_or_default(),
            holder.number
        ]);
        format!("{SUBSCRIPTIONS}:{parts}")
    }
}

/// Whether a call starts a subscription or acts on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// D1: no subscription yet.
    Ask,
    /// D2: the subscription becomes the tenant's.
    Activate,
    /// D3, D4: only the tenant that activated it.
    Use,
}

impl Tenants {
    pub fn new(
        tenants: &BTreeMap<String, TenantSettings>,
        unbound: UnboundSubscriptions,
        store: Arc<dyn Store>,
    ) -> Self {
        let merchants = tenants
            .iter()
            .map(|(name, tenant)| {
                let ids = tenant.commerce_ids.iter().map(|id| id.trim().to_owned());
                (name.clone(), ids.collect())
            })
            .collect();
        Self {
            merchants,
            unbound,
            store,
        }
    }

    /// Refuses a request its caller's tenant may not make: another tenant's merchant or
    /// subscription, or a wallet holder other than the token's end user. A principal in no
    /// tenant (where the deployment allows it) is bound by no merchant.
    pub async fn admit(
        &self,
        principal: Option<&Principal>,
        subject: &Subject<'_>,
        act: Act,
    ) -> Result<(), Refusal> {
        check_end_user(principal, subject.holder())?;
        let Some(tenant) = principal.and_then(|p| p.tenant.as_deref()) else {
            return Ok(());
        };
        let commerce = subject.commerce_id();
        let own = self
            .merchants
            .get(tenant)
            .is_some_and(|ids| ids.contains(commerce));
        if !own {
            return Err(Trespass::Merchant
                .refuse(principal, &[("commerce_id", commerce)])
                .into());
        }
        let key = subject.subscription();
        let owner = match (act, self.unbound) {
            (Act::Ask, _) => return Ok(()),
            (Act::Activate, _) | (Act::Use, UnboundSubscriptions::Adopt) => {
                Some(self.store.bind(&key, tenant).await?)
            }
            (Act::Use, UnboundSubscriptions::Refuse) => self.store.bound(&key).await?,
        };
        match owner {
            Some(owner) if owner == tenant => Ok(()),
            Some(_) => Err(Trespass::Subscription.refuse(principal, &[]).into()),
            None => Err(Trespass::SubscriptionOwnerUnknown
                .refuse(principal, &[])
                .into()),
        }
    }

    /// Refuses tenants naming no `auth.tenants` entry, and a merchant in two tenants.
    pub fn check(
        tenants: &BTreeMap<String, TenantSettings>,
        known: &BTreeSet<String>,
    ) -> anyhow::Result<()> {
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, tenant) in tenants {
            anyhow::ensure!(
                known.contains(name),
                "recurring_payments.tenants.{name}: no such tenant in auth.tenants"
            );
            for id in &tenant.commerce_ids {
                if let Some(other) = owner.insert(id.trim(), name) {
                    anyhow::bail!(
                        "recurring_payments.tenants: merchant {id:?} is in both {other} and {name}"
                    );
                }
            }
        }
        Ok(())
    }
}

/// Why a tenant's check refused a call: the refusal itself, or a store that did not answer.
#[derive(Debug)]
pub enum Refusal {
    Denied(Status),
    Store(StoreUnavailable),
}

impl From<Status> for Refusal {
    fn from(status: Status) -> Self {
        Refusal::Denied(status)
    }
}

impl From<StoreUnavailable> for Refusal {
    fn from(error: StoreUnavailable) -> Self {
        Refusal::Store(error)
    }
}

#[cfg(test)]
mod tests {
    use pasarela::common::v1::{DocumentType, Identification};
    use pasarela_idempotency::MemoryStore;

    use super::*;

    fn tenants(merchant_of: &[(&str, &str)], store: &Arc<dyn Store>) -> Tenants {
        let settings = merchant_of
            .iter()
            .map(|(tenant, merchant)| {
                let settings = TenantSettings {
                    commerce_ids: vec![(*merchant).to_owned()],
                    contract: None,
                };
                ((*tenant).to_owned(), settings)
            })
            .collect();
        Tenants::new(&settings, UnboundSubscriptions::Refuse, Arc::clone(store))
    }

    fn of(tenant: &str) -> Principal {
        Principal {
            tenant: Some(Arc::from(tenant)),
            ..Principal::default()
        }
    }

    fn reason(refusal: Refusal) -> String {
        let Refusal::Denied(status) = refusal else {
            panic!("the store answered");
        };
        tonic_types::StatusExt::get_details_error_info(&status)
            .map(|info| info.reason)
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_subscription_is_its_activating_tenants_and_its_holders() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let commerce = pb::Commerce {
            commerce_id: "c1".into(),
            ..pb::Commerce::default()
        };
        let wallet = |number: &str| pb::Wallet {
            holder: Some(Identification {
                r#type: DocumentType::Cc.into(),
                number: number.into(),
            }),
            product_code: String::new(),
            product_number: "3000000001".into(),
        };
        let (holder, other) = (wallet("1000000001"), wallet("1000000002"));
        let subject = |wallet| Subject {
            commerce: Some(&commerce),
            wallet: Some(wallet),
        };
        let before = tenants(&[("acme", "c1")], &store);
        let acme = of("acme");
        before
            .admit(Some(&acme), &subject(&holder), Act::Activate)
            .await
            .expect("activated by acme");
        before
            .admit(Some(&acme), &subject(&holder), Act::Use)
            .await
            .expect("charged by acme");
        let refused = before.admit(Some(&acme), &subject(&other), Act::Use).await;
        assert_eq!(reason(refused.unwrap_err()), "SUBSCRIPTION_OWNER_UNKNOWN");

        // The merchant moves to another tenant: what acme activated stays acme's.
        let after = tenants(&[("globex", "c1")], &store);
        let refused = after
            .admit(Some(&of("globex")), &subject(&holder), Act::Use)
            .await;
        assert_eq!(
            reason(refused.unwrap_err()),
            "SUBSCRIPTION_OF_ANOTHER_TENANT"
        );
        let refused = after.admit(Some(&acme), &subject(&holder), Act::Use).await;
        assert_eq!(reason(refused.unwrap_err()), "MERCHANT_NOT_IN_TENANT");
    }
}
