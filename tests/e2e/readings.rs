//! Where a spec reads two ways, the sandbox plays either reading strictly and pasarela has
//! a setting for each (docs/spec-decisions.md): configured to match, calls work; configured
//! for the other reading, they fail with an error that says the provider could not read
//! pasarela's request or refused its credentials (S2-S4, whose tables print one answer for
//! every unreadable request, say so in the bank's words).

use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::recurring_payments::v1::RequestSubscriptionRequest;
use pasarela::security::v1::{
    ContactInfo, GenerateOtcRequest, GetAuthenticationLevelRequest, HoldFilter,
    ListChannelHoldsRequest, PasswordStatus, UpdatePasswordStatusRequest, ValidateOtcRequest,
};
use serde_json::json;
use tonic::Code;

use crate::support::recurring_payments::{WALLET, commerce, wallet};
use crate::support::security::{customer, status_request};
use crate::support::{TestApp, admin, cc, spawn_app_with};
use pasarela_security::config::{CredentialFamily, HoldsQuery, OtcCodeField, OtcContactInfo};

/// Sets the BCS emulator's readings of S14's query, S1's path and S16's credentials; the
/// second bank serves the kebab-case family alone, its camelCase family on another host.
async fn bank_reads(app: &TestApp, holds_query: &str, password_status_path: &str, s16: &str) {
    let serves = (s16 == "gateway").then_some("kebab_case");
    let (path, readings) = bcs_readings(json!({
        "holds_query": holds_query,
        "password_status_path": password_status_path,
        "unprinted_credentials": s16,
        "serves": serves,
    }));
    app.admin_send(reqwest::Method::PUT, path, readings).await;
}

/// How a case configured for the other reading must fail: pasarela's fault or its
/// configuration's, in the provider's words, never the caller's.
struct Refusal {
    code: Code,
    reason: &'static str,
    /// Words the error must carry, if any.
    says: Option<&'static str>,
}

/// One case of a spec read two ways: the sandbox's reading set with PUT `readings`, then
/// pasarela, configured by `configure`, makes `call`, which must work when `works` and
/// otherwise fail as `refusal` says.
async fn case(
    context: &str,
    configure: impl FnOnce(&mut pasarela_server::config::Config),
    readings: (&str, serde_json::Value),
    call: impl AsyncFnOnce(&TestApp) -> Result<(), tonic::Status>,
    works: bool,
    refusal: &Refusal,
) {
    let app = spawn_app_with(configure).await;
    app.admin_send(reqwest::Method::PUT, readings.0, readings.1)
        .await;
    match (works, call(&app).await) {
        (true, Ok(())) => {}
        (false, Err(status)) => {
            assert_eq!(status.code(), refusal.code, "{context}: {status:?}");
            assert_eq!(
                crate::support::reason(&status),
                refusal.reason,
                "{context}: {status:?}"
            );
            if let Some(words) = refusal.says {
                assert!(
                    format!("{status:?}").contains(words),
                    "{context}: the provider's words say what it could not read: {status:?}"
                );
            }
        }
        (works, outcome) => panic!("{context}: expected works={works}, got {outcome:?}"),
    }
    app.stop().await;
}

/// The BCS emulator's readings: S18's at their defaults, `more` on top.
fn bcs_readings(more: serde_json::Value) -> (&'static str, serde_json::Value) {
    let defaults = json!({ "dedup_tx_ids": true, "consulta_not_found": "no_found" });
    ("/bcs/readings", over(defaults, more))
}

/// The Daviplata emulator's readings: deduplication at its default, `more` on top.
fn daviplata_readings(more: serde_json::Value) -> (&'static str, serde_json::Value) {
    let defaults = json!({ "dedup_transaction_ids": true });
    ("/daviplata/readings", over(defaults, more))
}

/// The fields of `more` laid over `defaults` (two JSON objects).
fn over(mut defaults: serde_json::Value, more: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(more) = more else {
        panic!("readings are an object: {more}")
    };
    defaults.as_object_mut().expect("an object").extend(more);
    defaults
}

/// The four cases of a reading: each setting against each reading of the provider.
fn four<R: Copy, S: Copy>(a: (R, S), b: (R, S)) -> [(R, S, bool); 4] {
    [
        (a.0, a.1, true),
        (b.0, b.1, true),
        (b.0, a.1, false),
        (a.0, b.1, false),
    ]
}

#[tokio::test]
async fn the_password_status_values_work_when_they_match_the_bank_and_fail_clearly_when_not() {
    use pasarela_security::config::PasswordStatusValues;
    // A status the proto enum checked, spelt the way this bank does not read.
    let refusal = Refusal {
        code: Code::Internal,
        reason: "PASSWORD_STATUS_INVALID",
        says: None,
    };
    let cases = four(
        ("words", PasswordStatusValues::Words),
        ("digits", PasswordStatusValues::Digits),
    );
    for (bank, setting, works) in cases {
        let lock = async |app: &TestApp| {
            let request = UpdatePasswordStatusRequest {
                customer: cc("1007641"),
                status: PasswordStatus::Locked.into(),
                ..Default::default()
            };
            crate::support::security::client(app)
                .update_password_status(request)
                .await
                .map(drop)
        };
        case(
            &format!("bank {bank}, pasarela {setting:?}"),
            |config| security(config).password_status_values = setting,
            bcs_readings(json!({ "password_status_values": bank })),
            lock,
            works,
            &refusal,
        )
        .await;
    }
}

/// S1's two paths: the README's (pasarela's default) and the spec's.
const README_S1: &str = "/user/password/status";
const SPEC_S1: &str = "/security-management/v1/user/password/status";

#[tokio::test]
async fn the_password_status_path_works_when_it_matches_the_bank_and_fails_clearly_when_not() {
    // pasarela's path, not the caller's customer: never NOT_FOUND.
    let refusal = Refusal {
        code: Code::Internal,
        reason: "PROVIDER_PATH_NOT_FOUND",
        says: None,
    };
    for (bank, setting, works) in four(("readme", README_S1), ("spec", SPEC_S1)) {
        let status = async |app: &TestApp| {
            crate::support::security::client(app)
                .get_password_status(status_request("4835799410", customer("1007641")))
                .await
                .map(drop)
        };
        case(
            &format!("bank {bank}, pasarela {setting}"),
            |config| security(config).paths.set("get_password_status", setting),
            bcs_readings(json!({ "password_status_path": bank })),
            status,
            works,
            &refusal,
        )
        .await;
    }
}

#[tokio::test]
async fn the_holds_query_casing_works_when_it_matches_the_bank_and_fails_clearly_when_not() {
    let refusal = Refusal {
        code: Code::Internal,
        reason: "PROVIDER_REQUEST_MALFORMED",
        says: Some("unknown query parameter"),
    };
    for (bank, setting, works) in four(("table", HoldsQuery::Table), ("camel", HoldsQuery::Camel)) {
        let holds = async |app: &TestApp| {
            let request = ListChannelHoldsRequest {
                customer: cc("1007641"),
                filter: HoldFilter::All.into(),
                ..Default::default()
            };
            crate::support::security::client(app)
                .list_channel_holds(request)
                .await
                .map(drop)
        };
        let configure = |config: &mut pasarela_server::config::Config| {
            let security = security(config);
            security.access_token = Some(crate::support::security::TOKEN.to_owned().into());
            security.holds_query = setting;
        };
        case(
            &format!("bank {bank}, pasarela {setting:?}"),
            configure,
            bcs_readings(json!({ "holds_query": bank })),
            holds,
            works,
            &refusal,
        )
        .await;
    }
}

/// S16 for a customer of the sandbox's fixtures.
async fn authentication_level(app: &TestApp) -> Result<(), tonic::Status> {
    crate::support::security::client(app)
        .get_authentication_level(GetAuthenticationLevelRequest {
            customer: cc("1030"),
            adviser: cc("1025"),
            request_number: "257896".into(),
            transaction_request_id: "101261".into(),
            auth_system: "SIEBEL".into(),
            ..Default::default()
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn the_credential_headers_of_s16_work_when_they_match_the_bank_and_fail_clearly_when_not() {
    // pasarela's credentials, not the caller's.
    let refusal = Refusal {
        code: Code::Unavailable,
        reason: "PROVIDER_AUTH_FAILED",
        says: None,
    };
    let cases = four(
        ("mule", CredentialFamily::Mule),
        ("gateway", CredentialFamily::Gateway),
    );
    for (bank, setting, works) in cases {
        let configure = |config: &mut pasarela_server::config::Config| {
            let security = security(config);
            security.access_token = Some(crate::support::security::TOKEN.to_owned().into());
            security
                .credential_headers
                .insert("get_authentication_level".into(), setting);
        };
        case(
            &format!("bank {bank}, pasarela {setting:?}"),
            configure,
            bcs_readings(json!({ "unprinted_credentials": bank })),
            authentication_level,
            works,
            &refusal,
        )
        .await;
    }
}

/// K1 for a member of the sandbox's fixtures.
async fn password_expiry(app: &TestApp) -> Result<(), tonic::Status> {
    BureauServiceClient::with_interceptor(app.channel(), app.bearer())
        .get_password_expiration(GetPasswordExpirationRequest {
            member_code: "PM00000001".into(),
            password: "Abc12345".into(),
            test_case_id: "663567bb713cf2110a110679".into(),
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn the_kiban_key_header_works_when_it_matches_kiban_and_fails_clearly_when_not() {
    // pasarela's credentials, not the caller's.
    let refusal = Refusal {
        code: Code::Unavailable,
        reason: "PROVIDER_AUTH_FAILED",
        says: None,
    };
    for (kiban, setting, works) in four(("x-api-key", "x-api-key"), ("apikey", "apikey")) {
        let configure = |config: &mut pasarela_server::config::Config| {
            config.bureau.as_mut().expect("bureau").api_key_header = setting.to_owned();
        };
        case(
            &format!("Kiban reads {kiban}, pasarela sends {setting}"),
            configure,
            ("/kiban/readings", json!({ "api_key_header": kiban })),
            password_expiry,
            works,
            &refusal,
        )
        .await;
    }
}

/// S2 with a contact to send the code to.
async fn generate_otc_to_a_phone(app: &TestApp) -> Result<(), tonic::Status> {
    crate::support::security::client(app)
        .generate_otc(GenerateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            contact: Some(ContactInfo {
                cell_phone: "3175137626".into(),
                email: String::new(),
            }),
            ..Default::default()
        })
        .await
        .map(drop)
}

/// S2 then S4 with the code the bank sent.
async fn validate_a_sent_code(app: &TestApp) -> Result<(), tonic::Status> {
    let mut client = crate::support::security::client(app);
    client
        .generate_otc(GenerateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            ..Default::default()
        })
        .await
        .expect("a code is sent whatever S4 reads");
    let sent = app.admin_get("/bcs/otc/CC/1007641").await;
    let code = sent["otc"].as_str().expect("a code was sent").to_owned();
    client
        .validate_otc(ValidateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            code,
            ..Default::default()
        })
        .await
        .map(drop)
}

/// A body the bank's schema refuses. S2-S4's tables print one answer for every request
/// the bank cannot validate, `400 1 BDA` "validation error at the input messaging level",
/// which pasarela cannot tell from a value the bank refuses: it stays INVALID_ARGUMENT,
/// with the bank's words saying which property it could not read.
const MALFORMED: Refusal = Refusal {
    code: Code::InvalidArgument,
    reason: "BAD_REQUEST",
    says: Some("propiedad desconocida"),
};

#[tokio::test]
async fn the_place_of_s2s_contact_works_when_it_matches_the_bank_and_fails_clearly_when_not() {
    let cases = four(
        ("top_level", OtcContactInfo::TopLevel),
        ("in_otc", OtcContactInfo::InOtc),
    );
    for (bank, setting, works) in cases {
        let configure = |config: &mut pasarela_server::config::Config| {
            let security = security(config);
            security.access_token = Some(crate::support::security::TOKEN.to_owned().into());
            security.otc_contact_info = setting;
        };
        case(
            &format!("bank {bank}, pasarela {setting:?}"),
            configure,
            bcs_readings(json!({ "otc_contact_info": bank })),
            generate_otc_to_a_phone,
            works,
            &MALFORMED,
        )
        .await;
    }
}

#[tokio::test]
async fn the_name_of_s4s_code_works_when_it_matches_the_bank_and_fails_clearly_when_not() {
    let cases = four(
        ("otc_value", OtcCodeField::OtcValue),
        ("value", OtcCodeField::Value),
    );
    for (bank, setting, works) in cases {
        let configure = |config: &mut pasarela_server::config::Config| {
            let security = security(config);
            security.access_token = Some(crate::support::security::TOKEN.to_owned().into());
            security.otc_code_field = setting;
        };
        case(
            &format!("bank {bank}, pasarela {setting:?}"),
            configure,
            bcs_readings(json!({ "otc_code_field": bank })),
            validate_a_sent_code,
            works,
            &MALFORMED,
        )
        .await;
    }
}

/// How many calls `sandbox` answered on `route` (`"POST /path"`).
async fn calls_of(sandbox: &pasarela_sandbox::Sandbox, route: &str) -> u64 {
    let calls = admin(sandbox, reqwest::Method::GET, "/calls", None).await;
    calls["bcs"][route].as_u64().unwrap_or_default()
}

#[tokio::test]
async fn an_operation_on_another_host_is_reached_only_where_its_base_url_says() {
    const S2: &str = "POST /securityManagement/V1/generateOTC";
    let dir = tempfile::tempdir().expect("dir");
    // The spec's CloudHub host: the camelCase paths only.
    let cloudhub = pasarela_sandbox::Sandbox::start(pasarela_server::dev::sandbox_options(
        &dir.path().join("cloudhub"),
    ))
    .await
    .expect("a second bank host");
    let (path, serves_camel) = bcs_readings(json!({ "serves": "camel_case" }));
    admin(&cloudhub, reqwest::Method::PUT, path, Some(serves_camel)).await;
    for elsewhere in [false, true] {
        let cloudhub_url = cloudhub.bcs_url.clone();
        let app = spawn_app_with(move |config| {
            let security = security(config);
            security.access_token = Some(crate::support::security::TOKEN.to_owned().into());
            if elsewhere {
                security
                    .base_urls
                    .insert("generate_otc".into(), cloudhub_url);
            }
        })
        .await;
        // The configured host: the kebab-case paths only.
        let (path, serves_kebab) = bcs_readings(json!({ "serves": "kebab_case" }));
        app.admin_send(reqwest::Method::PUT, path, serves_kebab)
            .await;
        let before = calls_of(&cloudhub, S2).await;

        crate::support::security::client(&app)
            .get_password_status(status_request("1", customer("1007641")))
            .await
            .expect("S1 lives on the configured host");
        let generated = crate::support::security::client(&app)
            .generate_otc(GenerateOtcRequest {
                customer: cc("1007641"),
                purpose: "LOGIN".into(),
                ..Default::default()
            })
            .await;
        // The probe asks S7 at each configured host: the family lives at the second only.
        let second = cloudhub.bcs_url.clone();
        let findings = probe_with(&app, |config| {
            let base_urls = &mut security(config).base_urls;
            base_urls.insert("generate_otc".into(), second.clone());
            if elsewhere {
                base_urls.insert("validate_digital_enrollment".into(), second.clone());
            }
        })
        .await;
        assert_eq!(matching(&findings, S7_HOST), [cloudhub.bcs_url.as_str()]);
        let s7 = findings.iter().find(|f| f.key == S7_HOST).expect("asked");
        assert_eq!(s7.matches(), Some(elsewhere), "{s7:?}");
        if elsewhere {
            generated.expect("S2 is sent to its own host");
            assert_eq!(calls_of(&cloudhub, S2).await, before + 1);
        } else {
            let refused = generated.expect_err("the configured host has no S2");
            assert_eq!(refused.code(), Code::Internal, "{refused:?}");
            assert_eq!(crate::support::reason(&refused), "PROVIDER_PATH_NOT_FOUND");
            assert_eq!(calls_of(&cloudhub, S2).await, before);
        }
        app.stop().await;
    }
}

/// Sets the Daviplata emulator's client id header.
async fn gateway_reads_client_id_from(app: &TestApp, header: &str) {
    let (path, readings) = daviplata_readings(json!({ "client_id_header": header }));
    app.admin_send(reqwest::Method::PUT, path, readings).await;
}

/// D1 for the sandbox's first wallet.
async fn request_subscription(app: &TestApp) -> Result<(), tonic::Status> {
    crate::support::recurring_payments::client(app)
        .request_subscription(RequestSubscriptionRequest {
            commerce: commerce(),
            wallet: wallet(WALLET),
            transaction: None,
        })
        .await
        .map(drop)
}

/// The security section of a configuration under test.
fn security(config: &mut pasarela_server::config::Config) -> &mut pasarela_security::Config {
    config.security.as_mut().expect("security")
}

/// The recurring-payments section of a configuration under test.
fn payments(
    config: &mut pasarela_server::config::Config,
) -> &mut pasarela_recurring_payments::Config {
    config
        .recurring_payments
        .as_mut()
        .expect("recurring payments")
}

#[tokio::test]
async fn the_client_id_header_works_when_it_matches_the_gateway_and_fails_clearly_when_not() {
    // pasarela's credentials, not the caller's.
    let refusal = Refusal {
        code: Code::Internal,
        reason: "PROVIDER_AUTH_FAILED",
        says: None,
    };
    let cases = four(
        ("client_id", "client_id"),
        ("x_ibm_client_id", "x-ibm-client-id"),
    );
    for (gateway, setting, works) in cases {
        case(
            &format!("gateway {gateway}, pasarela {setting}"),
            |config| payments(config).client_id_header = setting.to_owned(),
            daviplata_readings(json!({ "client_id_header": gateway })),
            request_subscription,
            works,
            &refusal,
        )
        .await;
    }
}

#[tokio::test]
async fn the_client_secret_travels_on_business_calls_only_where_the_gateway_wants_it() {
    // pasarela's credentials, not the caller's.
    let refusal = Refusal {
        code: Code::Internal,
        reason: "PROVIDER_AUTH_FAILED",
        says: None,
    };
    for (required, setting, works) in [
        (false, None, true),
        (true, Some("client_secret"), true),
        (true, Some("x-ibm-client-secret"), true),
        (true, None, false),
        (false, Some("client_secret"), true),
    ] {
        case(
            &format!("gateway wants it: {required}, pasarela sends it as {setting:?}"),
            |config| payments(config).client_secret_header = setting.map(str::to_owned),
            daviplata_readings(json!({ "client_secret_required": required })),
            request_subscription,
            works,
            &refusal,
        )
        .await;
    }
    // Unset, the secret goes to the token endpoint only.
    let app = spawn_app_with(|_| {}).await;
    request_subscription(&app).await.expect("asked");
    let sent = app.journal("daviplata").await;
    let business = sent
        .iter()
        .find(|call| call["path"] == "/v1/payments/subscriptions/request")
        .expect("D1");
    let secret = &app.sandbox.credentials.daviplata_client_secret;
    assert!(
        !business["headers"].to_string().contains(secret.as_str()),
        "no secret on a business call: {business}"
    );
}

#[tokio::test]
async fn the_merchant_id_spelling_works_when_it_matches_and_fails_clearly_when_not() {
    use pasarela_recurring_payments::config::CommerceField;
    // The gateway's schema refusal of pasarela's body, not the caller's.
    let refusal = Refusal {
        code: Code::Internal,
        reason: "PROVIDER_REJECTED_REQUEST",
        says: None,
    };
    let cases = four(
        ("commercel_id", CommerceField::CommercelId),
        ("commerce_id", CommerceField::CommerceId),
    );
    for (gateway, setting, works) in cases {
        case(
            &format!("gateway {gateway}, pasarela {setting:?}"),
            |config| payments(config).commerce_id_field = setting,
            daviplata_readings(json!({ "commerce_id": gateway })),
            request_subscription,
            works,
            &refusal,
        )
        .await;
    }
}

/// What `pasarela probe` finds against the sandbox with pasarela's dev configuration of it.
async fn probe(app: &TestApp) -> Vec<pasarela_provider::probe::Finding> {
    probe_with(app, |_| {}).await
}

/// [`probe`] with the dev configuration changed by `configure`.
async fn probe_with(
    app: &TestApp,
    configure: impl FnOnce(&mut pasarela_server::config::Config),
) -> Vec<pasarela_provider::probe::Finding> {
    let mut config = pasarela_server::dev::config_for(&app.sandbox, None).expect("dev config");
    security(&mut config).access_token = Some(crate::support::security::TOKEN.to_owned().into());
    configure(&mut config);
    pasarela_server::probe::findings(&config, None)
        .await
        .expect("the probe runs")
}

/// The lab account of the money-moving checks: the sandbox's first wallet.
fn lab() -> pasarela_recurring_payments::probe::LabAccount {
    pasarela_recurring_payments::probe::LabAccount {
        commerce: commerce().expect("a commerce"),
        wallet: wallet(WALLET).expect("a wallet"),
        amount_minor_units: 100,
    }
}

/// What `pasarela probe --move-money` finds, with the dev configuration changed by `edit`.
async fn probe_moving_money(
    app: &TestApp,
    edit: impl FnOnce(&mut pasarela_recurring_payments::Config),
) -> Result<Vec<pasarela_provider::probe::Finding>, String> {
    let mut config = pasarela_server::dev::config_for(&app.sandbox, None).expect("dev config");
    edit(payments(&mut config));
    config.services = vec![pasarela_server::config::ServiceName::RecurringPayments];
    pasarela_server::probe::findings(&config, Some(&lab()))
        .await
        .map_err(|error| format!("{error:#}"))
}

/// Sets every reading of the Daviplata emulator the money-moving checks tell apart.
async fn daviplata_reads(app: &TestApp, dedup: bool, field: &str, commerce_id: &str) {
    let (path, readings) = daviplata_readings(json!({
        "dedup_transaction_ids": dedup,
        "activation_document": field,
        "commerce_id": commerce_id,
    }));
    app.admin_send(reqwest::Method::PUT, path, readings).await;
}

#[tokio::test]
async fn probe_moving_money_names_the_deduplication_and_spelling_daviplata_plays() {
    let app = spawn_app_with(|_| {}).await;
    for (dedup, field, commerce_id, resend, spelling, merchant) in [
        (
            true,
            "identification_number",
            "commercel_id",
            &["false", "true"][..],
            "identificationNumber",
            "commercelId",
        ),
        (
            false,
            "identification_num",
            "commerce_id",
            &["false"][..],
            "identificationNum",
            "commerceId",
        ),
    ] {
        daviplata_reads(&app, dedup, field, commerce_id).await;
        let executed_before = app.daviplata_counter("payments_made").await;
        let findings = probe_moving_money(&app, |_| {})
            .await
            .expect("the probe runs");
        let context = format!("dedup {dedup}, {field}");
        assert_eq!(
            matching(&findings, "recurring_payments.activation_document_field"),
            [spelling],
            "{context}"
        );
        assert_eq!(
            matching(&findings, "recurring_payments.resend_unknown_outcomes"),
            resend,
            "{context}"
        );
        assert_eq!(
            matching(&findings, "recurring_payments.commerce_id_field"),
            [merchant],
            "{context}"
        );
        // The payment, its repeat when not deduplicated, and the control under another id.
        let charged = app.daviplata_counter("payments_made").await - executed_before;
        assert_eq!(
            charged,
            if dedup { 2 } else { 3 },
            "{context}: the lab wallet's charges"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn probe_refuses_to_move_money_outside_a_lab() {
    let app = spawn_app_with(|_| {}).await;
    app.clear_journal().await;
    // Every service of the dev configuration, so that a refusal coming after the
    // harmless checks would show in Banco Caja Social's journal too.
    let mut config = pasarela_server::dev::config_for(&app.sandbox, None).expect("dev config");
    payments(&mut config).environment =
        pasarela_recurring_payments::config::Environment::Production;
    let refused = pasarela_server::probe::findings(&config, Some(&lab()))
        .await
        .map(drop)
        .map_err(|error| format!("{error:#}"))
        .expect_err("production is refused");
    assert!(
        refused.contains("recurring_payments.environment"),
        "{refused}"
    );
    for provider in ["daviplata", "bcs"] {
        let calls = app.journal(provider).await;
        assert!(
            calls.is_empty(),
            "refused before anything is sent: {calls:?}"
        );
    }
    app.stop().await;
}

fn matching<'a>(findings: &'a [pasarela_provider::probe::Finding], key: &str) -> Vec<&'a str> {
    findings
        .iter()
        .find(|finding| finding.key == key)
        .unwrap_or_else(|| panic!("a finding for {key}"))
        .matching
        .iter()
        .map(String::as_str)
        .collect()
}

/// The probe's key for the host of the camelCase family.
const S7_HOST: &str = "security.base_urls.validate_digital_enrollment";

/// The probe's key for the credential headers of S16.
const S16_CREDENTIALS: &str = "security.credential_headers.get_authentication_level";

#[tokio::test]
async fn probe_names_the_setting_of_each_reading_the_sandbox_plays() {
    let app = spawn_app_with(|_| {}).await;
    let lenient = probe(&app).await;
    assert_eq!(
        matching(&lenient, "security.holds_query"),
        ["table", "camel"]
    );
    assert_eq!(
        matching(&lenient, "security.paths.get_password_status"),
        [README_S1, SPEC_S1]
    );
    assert_eq!(
        matching(&lenient, "recurring_payments.client_id_header"),
        ["client_id", "x-ibm-client-id"]
    );
    assert_eq!(
        matching(&lenient, "recurring_payments.client_secret_header"),
        ["unset", "client_secret", "x-ibm-client-secret"]
    );
    assert_eq!(
        matching(&lenient, S16_CREDENTIALS),
        ["mule", "mule_bearer", "gateway"]
    );
    // Whether a bank that reads record 0 counts from zero the probe cannot tell (it asks
    // about nobody); a bank that counts strictly from one refuses record 0.
    assert!(matching(&lenient, "security.holds_record_base").is_empty());
    assert!(
        lenient
            .iter()
            .filter(|finding| finding.key != "security.holds_record_base")
            .all(|finding| finding.matches() == Some(true))
    );
    let (path, readings) = bcs_readings(json!({ "holds_record_base": "one" }));
    app.admin_send(reqwest::Method::PUT, path, readings).await;
    assert_eq!(
        matching(&probe(&app).await, "security.holds_record_base"),
        ["one"]
    );
    let (path, readings) = bcs_readings(json!({ "unprinted_credentials": "gateway" }));
    app.admin_send(reqwest::Method::PUT, path, readings).await;
    assert_eq!(matching(&probe(&app).await, S16_CREDENTIALS), ["gateway"]);
    let (path, readings) = daviplata_readings(json!({ "client_secret_required": true }));
    app.admin_send(reqwest::Method::PUT, path, readings).await;
    assert_eq!(
        matching(
            &probe(&app).await,
            "recurring_payments.client_secret_header"
        ),
        ["client_secret", "x-ibm-client-secret"]
    );

    for (bank, s1, gateway, holds, path, header) in [
        (
            "table",
            "readme",
            "client_id",
            "table",
            README_S1,
            "client_id",
        ),
        (
            "camel",
            "spec",
            "x_ibm_client_id",
            "camel",
            SPEC_S1,
            "x-ibm-client-id",
        ),
    ] {
        // The dev configuration sends S16 as `mule`: it matches the first bank only.
        let s16 = if bank == "table" { "mule" } else { "gateway" };
        bank_reads(&app, bank, s1, s16).await;
        gateway_reads_client_id_from(&app, gateway).await;
        let findings = probe(&app).await;
        assert_eq!(
            matching(&findings, "security.holds_query"),
            [holds],
            "{bank}"
        );
        assert_eq!(
            matching(&findings, "security.paths.get_password_status"),
            [path],
            "{s1}"
        );
        assert_eq!(
            matching(&findings, "recurring_payments.client_id_header"),
            [header],
            "{gateway}"
        );
        let table = pasarela_server::probe::table(&findings);
        // The dev configuration is `table`, the README's S1 path and `client_id`: it
        // matches the first bank only.
        let expected = if holds == "table" { "yes" } else { "NO" };
        // (A check that cannot tell is left out: which record S14 counts first, a bank
        // reading record 0 does not say; nor where the secret goes, a gateway that knows
        // no client id.)
        assert!(
            table
                .lines()
                .filter(|line| !line.ends_with('?'))
                .all(|line| line.starts_with("check") || line.ends_with(expected)),
            "{table}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_activation_document_spelling_works_when_it_matches_and_fails_clearly_when_not() {
    use pasarela_recurring_payments::config::DocumentField;
    // Daviplata's refusal of the structure pasarela sent, in its own words.
    let refusal = Refusal {
        code: Code::Internal,
        reason: "PROVIDER_REJECTED_REQUEST",
        says: Some("structure"),
    };
    let cases = four(
        ("identification_number", DocumentField::IdentificationNumber),
        ("identification_num", DocumentField::IdentificationNum),
    );
    for (gateway, setting, works) in cases {
        let activate = async |app: &TestApp| {
            let mut client = crate::support::recurring_payments::client(app);
            let (session, otp) =
                crate::support::recurring_payments::request_otp(&mut client, WALLET).await;
            let key = format!("activate-{gateway}-{setting:?}");
            let request = crate::support::recurring_payments::activation(
                &key, WALLET, &session, &otp, 100_000,
            );
            client.activate_subscription(request).await.map(drop)
        };
        case(
            &format!("gateway {gateway}, pasarela {setting:?}"),
            |config| payments(config).activation_document_field = setting,
            daviplata_readings(json!({ "activation_document": gateway })),
            activate,
            works,
            &refusal,
        )
        .await;
    }
}

/// The first page of customer 38250250's holds (three of them), with pasarela counting
/// records from `setting` and the bank from `bank`.
async fn first_holds(
    bank: &str,
    setting: pasarela_security::config::RecordBase,
) -> Result<Vec<pasarela::security::v1::ChannelHold>, tonic::Status> {
    let app = spawn_app_with(|config| {
        let security = security(config);
        security.access_token = Some(crate::support::security::TOKEN.to_owned().into());
        security.holds_record_base = setting;
    })
    .await;
    let (path, readings) = bcs_readings(json!({ "holds_record_base": bank }));
    app.admin_send(reqwest::Method::PUT, path, readings).await;
    let request = ListChannelHoldsRequest {
        customer: cc("38250250"),
        filter: HoldFilter::All.into(),
        page: Some(pasarela::common::v1::PageRequest {
            page_size: 20,
            page_number: 1,
        }),
        ..Default::default()
    };
    let listed = crate::support::security::client(&app)
        .list_channel_holds(request)
        .await
        .map(|answer| answer.into_inner().holds);
    app.stop().await;
    listed
}

#[tokio::test]
async fn the_first_record_of_s14_is_counted_as_the_bank_counts_it_and_zero_never_hides_one() {
    use pasarela_security::config::RecordBase;
    let all = first_holds("one", RecordBase::One)
        .await
        .expect("counted alike");
    assert!(all.len() >= 2, "the customer has holds: {all:?}");
    assert_eq!(
        first_holds("zero", RecordBase::Zero)
            .await
            .expect("counted alike"),
        all
    );
    // Counted from zero against a bank that counts from one: refused, loudly, as
    // pasarela's fault.
    let refused = first_holds("one", RecordBase::Zero).await.unwrap_err();
    assert_eq!(refused.code(), Code::Internal, "{refused:?}");
    assert_eq!(
        crate::support::reason(&refused),
        "PROVIDER_REQUEST_MALFORMED"
    );
    // Counted from one against a bank that counts from zero: the first hold is hidden,
    // silently; what the default (zero) never does.
    let hidden = first_holds("zero", RecordBase::One)
        .await
        .expect("answered");
    assert_eq!(
        hidden.first(),
        all.get(1),
        "the page starts at the second hold"
    );
    assert!(!hidden.contains(&all[0]), "the first hold is missing");
}
