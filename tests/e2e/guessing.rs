//! Secret-checking RPCs are no guessing oracle: the checks of one holder's secret are
//! counted across every caller (forty principals share one member's budget) and, with the
//! buckets in Redis, across replicas; past the budget the provider is not asked.

use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::security::v1::ValidateOtcRequest;
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela_provider::Credential;
use secrecy::SecretString;
use tonic::transport::Endpoint;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::support::tools;
use crate::support::{
    TestApp, TestRedis, bearer_with, cc, principal_token, reason, spawn_app_with,
};

const KIBAN_ROUTE: (&str, &str) = ("kiban", "POST /api/v1/password-expiry-date-bc-pm");
const OTC_ROUTE: (&str, &str) = ("bcs", "POST /securityManagement/V1/validateOTC");

/// A budget small enough to spend in a test and slow enough not to refill during it.
fn budget(burst: u32) -> pasarela_auth::Budget {
    pasarela_auth::Budget {
        per_second: 0.001,
        burst,
    }
}

/// Refused for the holder's budget, with when to retry.
fn assert_holder_refused(status: &Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(status), "RATE_LIMITED");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.metadata["group"], pasarela_auth::SECRET_ATTEMPTS);
    assert!(status.get_details_retry_info().is_some(), "RetryInfo");
}

async fn guess_password(app: &TestApp, principal: &str, member_code: &str) -> Result<(), Status> {
    let mut client = BureauServiceClient::with_interceptor(
        app.channel(),
        bearer_with(&principal_token(principal)),
    );
    client
        .get_password_expiration(GetPasswordExpirationRequest {
            member_code: member_code.into(),
            password: "Qx7Lw2Np".into(),
            test_case_id: String::new(),
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn forty_principals_guessing_one_members_password_are_stopped_together() {
    let app = spawn_app_with(|config| config.auth.secret_attempts = budget(5)).await;
    let mut answered = 0;
    for principal in 0..40 {
        // Case does not make another member.
        let member = ["PM00000001", "pm00000001", "Pm00000001"][principal % 3];
        match guess_password(&app, &format!("guesser-{principal}"), member).await {
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert_holder_refused(&status);
            }
            _ => answered += 1,
        }
    }
    assert_eq!(answered, 5, "the member's budget, whoever asks");
    assert_eq!(
        app.route_calls(KIBAN_ROUTE.0, KIBAN_ROUTE.1).await,
        5,
        "past the budget Kiban is not asked"
    );
    let other = guess_password(&app, "guesser-0", "FF12345678").await;
    assert_ne!(
        other.map_err(|status| status.code()),
        Err(Code::ResourceExhausted),
        "another member keeps their own budget"
    );
    // An invalid request is refused by validation and spends nothing.
    let invalid = guess_password(&app, "guesser-0", "short")
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test]
async fn replicas_sharing_redis_count_one_customers_guesses_together() {
    if tools::lacking(&["redis-server"]) {
        return;
    }
    let redis = TestRedis::start().await;
    let shared = |config: &mut pasarela_server::Config| {
        config.auth.secret_attempts = budget(4);
        config.auth.rate_limit_redis_url = Some(SecretString::from(redis.url.clone()));
        config.auth.holder_key = Some(Credential::from(
            "a holder key both replicas share, 32+ bytes",
        ));
    };
    let first = spawn_app_with(shared).await;
    // A second replica in front of the same sandbox, sharing the Redis.
    let mut config = pasarela_server::dev::config_for(&first.sandbox, None).expect("config");
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = None;
    shared(&mut config);
    let second = pasarela_server::app::start(config)
        .await
        .expect("second replica");
    let second_channel = Endpoint::from_shared(format!("http://{}", second.grpc_addr))
        .expect("endpoint")
        .connect_lazy();
    let mut refused = 0;
    for guess in 0..10 {
        let channel = if guess % 2 == 0 {
            first.channel()
        } else {
            second_channel.clone()
        };
        let mut client = SecurityServiceClient::with_interceptor(
            channel,
            bearer_with(&principal_token(&format!("guesser-{guess}"))),
        );
        let outcome = client
            .validate_otc(ValidateOtcRequest {
                customer: cc("1007641"),
                purpose: "LOGIN".into(),
                code: format!("{:06}", 100_000 + guess),
                ..Default::default()
            })
            .await;
        if let Err(status) = &outcome
            && status.code() == Code::ResourceExhausted
        {
            assert_holder_refused(status);
            refused += 1;
        }
    }
    assert_eq!(refused, 6, "4 guesses in all, over both replicas");
    assert_eq!(first.route_calls(OTC_ROUTE.0, OTC_ROUTE.1).await, 4);
    second.shutdown().await.expect("second replica stops");
    first.stop().await;
}

/// One customer written many ways is one budget: spellings with spaces around the number
/// (ASCII, ideographic, no-break, tabs) are refused before the bank or the budget sees them,
/// and case or leading zeros share the customer's one budget.
#[tokio::test]
async fn a_customer_spelt_many_ways_has_one_guessing_budget() {
    let app = spawn_app_with(|config| config.auth.secret_attempts = budget(4)).await;
    let mut client = SecurityServiceClient::with_interceptor(
        app.channel(),
        bearer_with(&principal_token("speller")),
    );
    let guess = |number: &str, n: u32| ValidateOtcRequest {
        customer: cc(number),
        purpose: "LOGIN".into(),
        code: format!("{:06}", 200_000 + n),
        ..Default::default()
    };
    let respelt = [
        " 1007641",
        "1007641 ",
        "\u{3000}1007641",
        "\u{a0}1007641",
        "\u{2003}1007641",
        "\t1007641",
        "1007641\n",
    ];
    for (n, number) in (0u32..).zip(respelt) {
        let refused = client.validate_otc(guess(number, n)).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{number:?}");
    }
    assert_eq!(app.route_calls(OTC_ROUTE.0, OTC_ROUTE.1).await, 0);
    let mut refused = 0;
    for (n, number) in (10u32..).zip(["1007641", "01007641", "001007641", "1007641"].repeat(2)) {
        if let Err(status) = client.validate_otc(guess(number, n)).await
            && status.code() == Code::ResourceExhausted
        {
            assert_holder_refused(&status);
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "four checks in all, whatever the leading zeros");
    assert_eq!(app.route_calls(OTC_ROUTE.0, OTC_ROUTE.1).await, 4);
}
