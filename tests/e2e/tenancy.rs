//! Tenants end to end: each tenant's callers act only on its own merchants and the
//! subscriptions it activated, as its own bank identity, for its own end users, in key
//! spaces of their own; a principal in no tenant is refused. Every refusal is made before
//! any provider call.

use std::collections::BTreeMap;

use pasarela::common::v1::InvokerContext;
use pasarela::operations::v1::ListUnknownOutcomesRequest;
use pasarela::operations::v1::operations_service_client::OperationsServiceClient;
use pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient;
use pasarela::recurring_payments::v1::{
    ActivateSubscriptionRequest, CancelSubscriptionRequest, ChargeSubscriptionRequest, Commerce,
    RequestSubscriptionRequest,
};
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela::security::v1::{GenerateOtcRequest, GenerateOtcResponse, SetChannelHoldRequest};
use pasarela_auth::{PrincipalSource, TenantPrincipal, TenantSettings, Untenanted};
use pasarela_recurring_payments::UnboundSubscriptions;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::recurring_payments::{self as rp, OTHER_WALLET, WALLET, wallet};
use crate::support::security as sec;
use crate::support::{
    Bearer, Beside, TestApp, bearer_with, cc, error_metadata, reason, spawn_app_with,
    token_with_claims,
};

/// Acme's merchant (the sandbox's usual one) and Globex's.
const ACME_COMMERCE: &str = rp::COMMERCE_ID;
const GLOBEX_COMMERCE: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const TELLER_COMMERCE: &str = "9b2d5d7e-1f7a-4c53-a1f0-2f1c1a0d3e55";

/// Acme's service, whichever application acts for it.
const ACME: &str = "acme-billing";
/// One subject two tenants' applications act for.
const SHARED: &str = "shared-svc";

fn jwt(subject: &str, client: Option<&str>) -> TenantPrincipal {
    TenantPrincipal {
        source: PrincipalSource::Jwt,
        subject: subject.into(),
        client_id: client.map(str::to_owned),
    }
}

/// Three tenants: acme (any application of its service), globex (one application of the
/// shared subject) and teller (another application of it, bound to its token's end user).
fn tenants(config: &mut pasarela_server::Config, unbound: UnboundSubscriptions) {
    rp::lab_setup(config);
    config.auth.untenanted = Untenanted::Refuse;
    config.auth.tenants = BTreeMap::from([
        (
            "acme".to_owned(),
            TenantSettings {
                principals: vec![jwt(ACME, None)],
                end_user_claim: None,
            },
        ),
        (
            "globex".to_owned(),
            TenantSettings {
                principals: vec![jwt(SHARED, Some("globex-app"))],
                end_user_claim: None,
            },
        ),
        (
            "teller".to_owned(),
            TenantSettings {
                principals: vec![jwt(SHARED, Some("teller-app"))],
                end_user_claim: Some("document".into()),
            },
        ),
    ]);
    let payments = config
        .recurring_payments
        .as_mut()
        .expect("recurring payments");
    payments.unbound_subscriptions = unbound;
    payments.tenants = [
        ("acme", ACME_COMMERCE),
        ("globex", GLOBEX_COMMERCE),
        ("teller", TELLER_COMMERCE),
    ]
    .into_iter()
    .map(|(name, commerce)| {
        let merchants = pasarela_recurring_payments::TenantSettings {
            commerce_ids: vec![commerce.to_owned()],
            contract: (name == "globex").then(globex_contract),
        };
        (name.to_owned(), merchants)
    })
    .collect();
    let security = config.security.as_mut().expect("security");
    security.access_token = Some(sec::TOKEN.to_owned().into());
    security.tenants = BTreeMap::from([(
        "acme".to_owned(),
        pasarela_security::TenantSettings {
            invoker: pasarela_security::InvokerFields {
                ally: "ACME".into(),
                ..Default::default()
            },
            caller_invoker_fields: None,
        },
    )]);
}

/// Globex's merchants hold their own contract with Daviplata (the sandbox's second one).
fn globex_contract() -> pasarela_recurring_payments::Contract {
    let (client_id, secret) = pasarela_sandbox::SandboxCredentials::default()
        .daviplata_contracts
        .remove(0);
    pasarela_recurring_payments::Contract {
        client_id,
        client_secret: secret.into(),
        cert_file: None,
        key_file: None,
    }
}

async fn app() -> TestApp {
    spawn_app_with(|config| tenants(config, UnboundSubscriptions::Refuse)).await
}

type Payments = RecurringPaymentsServiceClient<InterceptedService<Channel, Bearer>>;

fn payments(channel: Channel, token: &str) -> Payments {
    RecurringPaymentsServiceClient::with_interceptor(channel, bearer_with(token))
}

fn acme_token(application: &str) -> String {
    token_with_claims(ACME, &[("azp", application)])
}

fn globex_token() -> String {
    token_with_claims(SHARED, &[("azp", "globex-app")])
}

fn commerce(id: &str) -> Option<Commerce> {
    Some(Commerce {
        commerce_id: id.into(),
        commerce_name: "Comercio".into(),
        category: String::new(),
    })
}

type Who = (
    pasarela::common::v1::DocumentType,
    &'static str,
    &'static str,
);

/// D1 then D2 under `merchant`, with the lab's OTP.
async fn subscribe(client: &mut Payments, merchant: &str, who: Who) {
    let asked = client
        .request_subscription(RequestSubscriptionRequest {
            commerce: commerce(merchant),
            wallet: wallet(who),
            transaction: None,
        })
        .await
        .expect("subscription requested")
        .into_inner();
    client
        .activate_subscription(ActivateSubscriptionRequest {
            commerce: commerce(merchant),
            ..rp::activation(
                &uuid::Uuid::new_v4().to_string(),
                who,
                &asked.otp_session_id,
                &asked.lab_otp_value,
                5_000_000,
            )
        })
        .await
        .expect("activated");
}

fn charge(key: &str, merchant: &str, who: Who, amount: i64) -> ChargeSubscriptionRequest {
    ChargeSubscriptionRequest {
        commerce: commerce(merchant),
        ..rp::charge(key, who, amount)
    }
}

fn cancellation(key: &str, merchant: &str, who: Who) -> CancelSubscriptionRequest {
    CancelSubscriptionRequest {
        commerce: commerce(merchant),
        ..rp::cancellation(key, who)
    }
}

#[track_caller]
fn assert_refused(status: &tonic::Status, expected: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(reason(status), expected, "{status:?}");
}

#[tokio::test]
async fn each_tenant_charges_and_cancels_its_own_merchants_subscriptions_only() {
    let app = app().await;
    let mut acme = payments(app.channel(), &acme_token("acme-app"));
    let mut globex = payments(app.channel(), &globex_token());
    subscribe(&mut acme, ACME_COMMERCE, WALLET).await;
    subscribe(&mut globex, GLOBEX_COMMERCE, OTHER_WALLET).await;
    acme.charge_subscription(charge("acme-1", ACME_COMMERCE, WALLET, 100))
        .await
        .expect("acme charges its own subscriber");
    globex
        .charge_subscription(charge("globex-1", GLOBEX_COMMERCE, OTHER_WALLET, 100))
        .await
        .expect("globex charges its own subscriber");
    let sent = app.calls().await;

    let refused = globex
        .charge_subscription(charge("globex-2", ACME_COMMERCE, WALLET, 100))
        .await
        .unwrap_err();
    assert_refused(&refused, "MERCHANT_NOT_IN_TENANT");
    assert_eq!(error_metadata(&refused, "commerce_id"), ACME_COMMERCE);
    let refused = globex
        .cancel_subscription(cancellation("globex-3", ACME_COMMERCE, WALLET))
        .await
        .unwrap_err();
    assert_refused(&refused, "MERCHANT_NOT_IN_TENANT");
    for refused in [
        acme.charge_subscription(charge("acme-2", GLOBEX_COMMERCE, OTHER_WALLET, 100))
            .await
            .unwrap_err(),
        acme.cancel_subscription(cancellation("acme-3", GLOBEX_COMMERCE, OTHER_WALLET))
            .await
            .unwrap_err(),
        acme.request_subscription(RequestSubscriptionRequest {
            commerce: commerce(GLOBEX_COMMERCE),
            wallet: wallet(WALLET),
            transaction: None,
        })
        .await
        .unwrap_err(),
    ] {
        assert_refused(&refused, "MERCHANT_NOT_IN_TENANT");
    }
    assert_eq!(app.calls().await, sent, "nothing reached Daviplata");
    assert_eq!(app.daviplata_counter("payments_made").await, 2);
    // Each tenant's charge went under its own contract (the sandbox takes a token only
    // with the client it was issued to).
    let charged: Vec<String> = app
        .journal("daviplata")
        .await
        .iter()
        .filter(|call| call["path"] == "/v1/payments/subscriptions/payment")
        .map(|call| header_of(call, "client_id"))
        .collect();
    let deployment = app.sandbox.credentials.daviplata_client_id.clone();
    assert_eq!(charged, [deployment, globex_contract().client_id]);
    assert!(
        app.logs().contains("MERCHANT_NOT_IN_TENANT"),
        "each refusal is logged as a security event"
    );

    acme.cancel_subscription(cancellation("acme-4", ACME_COMMERCE, WALLET))
        .await
        .expect("acme cancels its own");
}

#[tokio::test]
async fn a_principal_in_no_tenant_is_refused_but_may_still_operate() {
    let app = app().await;
    let before = app.calls().await;
    let stranger = token_with_claims("stranger", &[]);
    let mut client = payments(app.channel(), &stranger);
    let refused = client
        .charge_subscription(charge("stranger", ACME_COMMERCE, WALLET, 100))
        .await
        .unwrap_err();
    assert_refused(&refused, "PRINCIPAL_IN_NO_TENANT");
    let mut bank = SecurityServiceClient::with_interceptor(app.channel(), bearer_with(&stranger));
    let refused = bank.generate_otc(otc("1007641")).await.unwrap_err();
    assert_refused(&refused, "PRINCIPAL_IN_NO_TENANT");
    let mut operator =
        OperationsServiceClient::with_interceptor(app.channel(), bearer_with(&stranger));
    operator
        .list_unknown_outcomes(ListUnknownOutcomesRequest::default())
        .await
        .expect("operators' methods are tenant-free");
    assert_eq!(app.calls().await, before, "nothing reached a provider");
}

#[tokio::test]
async fn two_applications_of_one_subject_share_no_idempotency_keys() {
    let app = app().await;
    let mut first = payments(app.channel(), &acme_token("app-one"));
    let mut second = payments(app.channel(), &acme_token("app-two"));
    subscribe(&mut first, ACME_COMMERCE, WALLET).await;
    let one = first
        .charge_subscription(charge("monthly", ACME_COMMERCE, WALLET, 100))
        .await
        .expect("the first application's charge")
        .into_inner();
    // The same key and another amount: under one key space this would be a reuse of the
    // key (or a replay of the first charge).
    let two = second
        .charge_subscription(charge("monthly", ACME_COMMERCE, WALLET, 200))
        .await
        .expect("the second application's own key")
        .into_inner();
    assert_ne!(one.approval_number, two.approval_number);
    assert_eq!(app.daviplata_counter("payments_made").await, 2);
}

#[tokio::test]
async fn an_end_user_claim_binds_the_customer() {
    let app = app().await;
    let (_, holder, _) = WALLET;
    let bound = token_with_claims(SHARED, &[("azp", "teller-app"), ("document", holder)]);
    let mut client = payments(app.channel(), &bound);
    let ask = |who: Who| RequestSubscriptionRequest {
        commerce: commerce(TELLER_COMMERCE),
        wallet: wallet(who),
        transaction: None,
    };
    client
        .request_subscription(ask(WALLET))
        .await
        .expect("the token's own end user");
    let refused = client
        .request_subscription(ask(OTHER_WALLET))
        .await
        .unwrap_err();
    assert_refused(&refused, "END_USER_MISMATCH");
    let unclaimed = token_with_claims(SHARED, &[("azp", "teller-app")]);
    let refused = payments(app.channel(), &unclaimed)
        .request_subscription(ask(WALLET))
        .await
        .unwrap_err();
    assert_refused(&refused, "END_USER_CLAIM_MISSING");

    // The bank's customers too: the OTC of another customer is refused before the bank,
    // and a claim naming the kind binds it: a CE of the same number is someone else.
    let teller = token_with_claims(SHARED, &[("azp", "teller-app"), ("document", "CC:1007641")]);
    assert_bound_to_its_customer(&app, &teller).await;
    let foreigner = GenerateOtcRequest {
        customer: Some(pasarela::common::v1::Identification {
            r#type: pasarela::common::v1::DocumentType::Ce.into(),
            number: "1007641".into(),
        }),
        ..otc("1007641")
    };
    let refused = SecurityServiceClient::with_interceptor(app.channel(), bearer_with(&teller))
        .generate_otc(foreigner)
        .await
        .unwrap_err();
    assert_refused(&refused, "END_USER_MISMATCH");
}

/// An OTC for customer `number`.
fn otc(number: &str) -> GenerateOtcRequest {
    GenerateOtcRequest {
        customer: cc(number),
        purpose: "LOGIN".into(),
        ..Default::default()
    }
}

/// `token` names customer 1007641: its OTC is asked, another customer's is refused before
/// the bank.
async fn assert_bound_to_its_customer(app: &TestApp, token: &str) {
    let mut bank = SecurityServiceClient::with_interceptor(app.channel(), bearer_with(token));
    bank.generate_otc(otc("1007641"))
        .await
        .expect("the bound customer's OTC");
    let before = app.calls().await;
    let refused = bank.generate_otc(otc("38250250")).await.unwrap_err();
    assert_refused(&refused, "END_USER_MISMATCH");
    assert_eq!(app.calls().await, before, "nothing reached the bank");
}

/// The value of header `name` in a call the sandbox journalled, or empty.
fn header_of(call: &serde_json::Value, name: &str) -> String {
    call["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|pair| {
            pair[0]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|pair| pair[1].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Every RPC of `SecurityService`, read from its contract.
fn security_rpcs() -> Vec<String> {
    let proto = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("proto/pasarela/security/v1/security.proto"),
    )
    .expect("the security contract");
    let rpcs: Vec<String> = proto
        .lines()
        .filter_map(|line| line.trim().strip_prefix("rpc "))
        .filter_map(|rest| rest.split('(').next())
        .map(|name| name.trim().to_owned())
        .collect();
    assert_eq!(rpcs.len(), 19, "{rpcs:?}");
    rpcs
}

/// Calls `method` with a request carrying only `invoker` (field 1 of every request of
/// `SecurityService`): the bank identity is decided before anything else is read.
async fn call_with_invoker(
    channel: Channel,
    token: &str,
    method: &str,
    invoker: InvokerContext,
) -> tonic::Status {
    let mut request = tonic::Request::new(GenerateOtcRequest {
        invoker: Some(invoker),
        ..Default::default()
    });
    let bearer = format!("Bearer {token}").parse().expect("ascii token");
    request.metadata_mut().insert("authorization", bearer);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = format!("/pasarela.security.v1.SecurityService/{method}");
    let codec = tonic_prost::ProstCodec::<GenerateOtcRequest, GenerateOtcResponse>::default();
    grpc.unary(request, path.parse().expect("a method path"), codec)
        .await
        .expect_err("refused")
}

#[tokio::test]
async fn a_caller_chosen_tx_id_channel_or_ally_is_refused_on_every_bcs_operation() {
    let app = app().await;
    let before = app.calls().await;
    let token = acme_token("acme-app");
    type Set = fn(&mut InvokerContext);
    let owned: [(&str, Set); 5] = [
        ("invoker.tx_id", |i| i.tx_id = "APII4087320000000001".into()),
        ("invoker.process_id", |i| i.process_id = "0000000001".into()),
        ("invoker.channel", |i| i.channel = "13".into()),
        ("invoker.ally", |i| i.ally = "OTHER".into()),
        ("invoker.user", |i| i.user = "SOMEONE".into()),
    ];
    for method in security_rpcs() {
        for (field, set) in owned {
            let mut invoker = InvokerContext::default();
            set(&mut invoker);
            let refused = call_with_invoker(app.channel(), &token, &method, invoker).await;
            assert_refused(&refused, "BANK_IDENTITY_NOT_CALLERS");
            assert_eq!(error_metadata(&refused, "fields"), field, "{method}");
        }
    }
    // S15's auditing user and branch are the identity's too.
    let mut bank = SecurityServiceClient::with_interceptor(app.channel(), bearer_with(&token));
    for (field, request) in [
        (
            "user",
            SetChannelHoldRequest {
                user: "OTHERUSER".into(),
                ..Default::default()
            },
        ),
        (
            "branch_id",
            SetChannelHoldRequest {
                branch_id: "1108".into(),
                ..Default::default()
            },
        ),
    ] {
        let refused = bank.set_channel_hold(request).await.unwrap_err();
        assert_refused(&refused, "BANK_IDENTITY_NOT_CALLERS");
        assert_eq!(error_metadata(&refused, "fields"), field);
    }
    assert_eq!(app.calls().await, before, "nothing reached the bank");

    // What the tenant is reaches the bank; what varies per call is the caller's.
    bank.generate_otc(GenerateOtcRequest {
        invoker: Some(InvokerContext {
            terminal_id: "POS42".into(),
            ..Default::default()
        }),
        ..otc("1007641")
    })
    .await
    .expect("a per-call field of the caller's");
    let sent = app.journal("bcs").await;
    let call = sent.last().expect("the OTC call");
    let header = |name: &str| header_of(call, name);
    assert_eq!(header("X-Invoker-Ally"), "ACME", "the tenant's ally");
    assert_eq!(
        header("X-Invoker-TerminalId"),
        "POS42",
        "the caller's terminal"
    );
    assert!(
        header("X-Invoker-TxId").starts_with("APII"),
        "pasarela's TxId"
    );
}

#[tokio::test]
async fn a_subscription_no_tenant_activated_is_refused_or_adopted_as_configured() {
    let app = app().await;
    // Another deployment (no tenants) subscribes the wallet: this one never saw it.
    let outside = Beside::start(&app.sandbox, rp::lab_setup).await;
    let mut elsewhere = rp::client_on(&app, outside.channel());
    subscribe(&mut elsewhere, ACME_COMMERCE, WALLET).await;
    outside.stop().await;

    let mut acme = payments(app.channel(), &acme_token("acme-app"));
    let refused = acme
        .charge_subscription(charge("unbound", ACME_COMMERCE, WALLET, 100))
        .await
        .unwrap_err();
    assert_refused(&refused, "SUBSCRIPTION_OWNER_UNKNOWN");
    assert_eq!(app.daviplata_counter("payments_made").await, 0);

    let adopting = Beside::start(&app.sandbox, |config| {
        tenants(config, UnboundSubscriptions::Adopt);
    })
    .await;
    let mut acme = payments(adopting.channel(), &acme_token("acme-app"));
    acme.charge_subscription(charge("adopted", ACME_COMMERCE, WALLET, 100))
        .await
        .expect("the merchant's tenant adopts it");
    assert_eq!(app.daviplata_counter("payments_made").await, 1);
    adopting.stop().await;
}

#[tokio::test]
async fn operators_list_one_tenants_unknown_outcomes() {
    let app = app().await;
    let mut acme = payments(app.channel(), &acme_token("acme-app"));
    subscribe(&mut acme, ACME_COMMERCE, WALLET).await;
    app.inject_once(
        "daviplata",
        "/v1/payments/subscriptions/payment",
        serde_json::json!({ "type": "drop", "after_handler": true }),
    )
    .await;
    acme.charge_subscription(charge("lost", ACME_COMMERCE, WALLET, 100))
        .await
        .expect_err("the answer is lost");
    let mut operator = OperationsServiceClient::with_interceptor(app.channel(), app.bearer());
    let listed = |tenant: &str| ListUnknownOutcomesRequest {
        tenant: tenant.into(),
        ..Default::default()
    };
    let acme_keys = operator
        .list_unknown_outcomes(listed("acme"))
        .await
        .expect("listed")
        .into_inner()
        .outcomes;
    assert_eq!(acme_keys.len(), 1, "{acme_keys:?}");
    assert_eq!(acme_keys[0].tenant, "acme");
    assert!(
        acme_keys[0].caller.starts_with("acme/jwt:acme-billing@"),
        "{acme_keys:?}"
    );
    let globex_keys = operator
        .list_unknown_outcomes(listed("globex"))
        .await
        .expect("listed")
        .into_inner()
        .outcomes;
    assert!(globex_keys.is_empty(), "{globex_keys:?}");
}

/// The worked configuration of docs/auth.md, "Tenants".
fn documented_configuration() -> figment::Figment {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/auth.md"),
    )
    .expect("docs/auth.md");
    let section = page
        .split("\n## Tenants\n")
        .nth(1)
        .expect("a Tenants section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("its worked configuration");
    figment::Figment::from(<figment::providers::Toml as figment::providers::Format>::string(block))
}

#[tokio::test]
async fn the_documented_tenants_start_and_hold_their_callers() {
    let documented = documented_configuration();
    let read = |key: &str| documented.find_value(key).expect(key);
    let app = spawn_app_with(|config| {
        rp::lab_setup(config);
        config.auth.untenanted = read("auth.untenanted").deserialize().expect("untenanted");
        config.auth.tenants = read("auth.tenants").deserialize().expect("auth tenants");
        let payments = config
            .recurring_payments
            .as_mut()
            .expect("recurring payments");
        payments.tenants = read("recurring_payments.tenants")
            .deserialize()
            .expect("merchants");
        let security = config.security.as_mut().expect("security");
        security.tenants = read("security.tenants").deserialize().expect("identities");
        security.access_token = Some(sec::TOKEN.to_owned().into());
    })
    .await;
    let globex = token_with_claims(
        SHARED,
        &[("azp", "globex-mobile-bff"), ("document", "1007641")],
    );
    assert_bound_to_its_customer(&app, &globex).await;
    let sent = app.journal("bcs").await;
    // The bound customer's OTC was the last call the bank saw.
    let ally = header_of(sent.last().expect("the OTC call"), "X-Invoker-Ally");
    assert_eq!(ally, "GLOBEX-ALLY-CODE");

    let mut acme = payments(app.channel(), &token_with_claims(ACME, &[]));
    acme.request_subscription(RequestSubscriptionRequest {
        commerce: commerce(ACME_COMMERCE),
        wallet: wallet(WALLET),
        transaction: None,
    })
    .await
    .expect("Acme asks for its own merchant");
    let stranger = token_with_claims(SHARED, &[("azp", "another-app")]);
    let refused = payments(app.channel(), &stranger)
        .request_subscription(RequestSubscriptionRequest {
            commerce: commerce(ACME_COMMERCE),
            wallet: wallet(WALLET),
            transaction: None,
        })
        .await
        .unwrap_err();
    assert_refused(&refused, "PRINCIPAL_IN_NO_TENANT");
}

/// S18's path.
const S18_PATH: &str = "/security-management/v3/withdrawal/otp";

#[tokio::test]
async fn a_tenants_lost_withdrawal_is_asked_about_as_that_tenant() {
    let app = spawn_app_with(|config| {
        tenants(config, UnboundSubscriptions::Refuse);
        let security = config.security.as_mut().expect("security");
        security.withdrawal_reconciliation.every = std::time::Duration::from_millis(300);
    })
    .await;
    let mut bank = SecurityServiceClient::with_interceptor(
        app.channel(),
        bearer_with(&acme_token("acme-app")),
    );
    let otp = sec::withdrawal_otp(&mut bank).await;
    app.inject_once(
        "bcs",
        S18_PATH,
        serde_json::json!({ "type": "drop", "after_handler": true }),
    )
    .await;
    bank.withdraw_with_otp(sec::withdrawal(&otp, "acme-lost"))
        .await
        .expect_err("the answer is lost");
    // The reconciler asks the bank on its own, under the identity the create carried.
    let mut consulta = None;
    for _ in 0..100 {
        let journal = app.journal("bcs").await;
        consulta = journal
            .into_iter()
            .find(|call| call["path"] == S18_PATH && header_of(call, "X-Invoker-Action") == "R");
        if consulta.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let consulta = consulta.expect("the reconciler's consulta");
    let journal = app.journal("bcs").await;
    let create = journal
        .iter()
        .find(|call| call["path"] == S18_PATH)
        .expect("the create");
    assert_eq!(header_of(create, "X-Invoker-Ally"), "ACME");
    assert_eq!(
        header_of(&consulta, "X-Invoker-Ally"),
        "ACME",
        "as the tenant"
    );
    assert_eq!(
        header_of(&consulta, "X-Invoker-TxId"),
        header_of(create, "X-Invoker-TxId"),
        "the consulta names the create's TxId"
    );
}
