//! Daviplata's examples: its answers read, its request shapes, its errors mapped.

use super::*;

// ---- Daviplata -------------------------------------------------------------------------------------

const DAVI_TOKEN: &str = "/oauth2Provider/type1/v1/token";
const DAVI_REQUEST: &str = "/v1/payments/subscriptions/request";
const DAVI_ACTIVATE: &str = "/v1/payments/subscriptions/activate";
const DAVI_CANCEL: &str = "/v1/payments/subscriptions/cancel";
const DAVI_PAYMENT: &str = "/v1/payments/subscriptions/payment";

async fn serve_davi(app: &TestApp, path: &str, rel: &str) {
    let fx = fixture(rel);
    let status = fx.http_status.unwrap_or(200);
    app.inject_once(
        "daviplata",
        path,
        json!({ "type": "status", "status": status, "body": fx.example }),
    )
    .await;
}

/// Like [`serve_davi`], the example answering the transaction it is sent: its result's
/// `transactionId` (the request example's own) stands for the one pasarela sends.
async fn serve_davi_echoing(app: &TestApp, path: &str, rel: &str) {
    let fx = fixture(rel);
    let status = fx.http_status.unwrap_or(200);
    let mut body = fx.example.clone();
    let key = ["resultStatus", "ResultStatus"]
        .into_iter()
        .find(|key| body.get(key).is_some())
        .expect("a result object");
    body[key]["transactionId"] = json!(pasarela_sandbox::SENT_TRANSACTION_ID);
    app.inject_once(
        "daviplata",
        path,
        json!({ "type": "status", "status": status, "body": body }),
    )
    .await;
}

/// The wallet of Daviplata's examples (`Identification`, `Product`): their answers show it,
/// and a success for another wallet is someone else's.
const EXAMPLE_WALLET: (pasarela::common::v1::DocumentType, &str, &str) = (
    pasarela::common::v1::DocumentType::Cc,
    "1027868487",
    "3158765639",
);

/// The `TransactionHeader.transactionId` of the last call to `path`.
async fn sent_transaction_id(app: &TestApp, path: &str) -> String {
    let call = app.last_call("daviplata", "POST", path).await;
    let body: Value = serde_json::from_str(call["body"].as_str().expect("a body")).expect("JSON");
    body["TransactionHeader"]["transactionId"]
        .as_str()
        .expect("a transactionId")
        .to_owned()
}

fn subscription_request() -> pasarela::recurring_payments::v1::RequestSubscriptionRequest {
    pasarela::recurring_payments::v1::RequestSubscriptionRequest {
        commerce: davi::commerce(),
        wallet: davi::wallet(davi::WALLET),
        transaction: None,
    }
}

#[tokio::test]
async fn daviplata_response_examples_reach_the_proto_fields() {
    let app = davi::app().await;
    let mut client = davi::client(&app);

    serve_davi(&app, DAVI_TOKEN, "daviplata/d0-token-response.json").await;
    serve_davi(&app, DAVI_REQUEST, "daviplata/d1-subscribe-response.json").await;
    let d1 = client
        .request_subscription(subscription_request())
        .await
        .expect("D1")
        .into_inner();
    let token = example("daviplata/d0-token-response.json")["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let call = app.last_call("daviplata", "POST", DAVI_REQUEST).await;
    let authorization = call["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .find(|pair| pair[0] == "authorization")
        .expect("an Authorization header")[1]
        .clone();
    assert_eq!(
        authorization,
        json!(format!("Bearer {token}")),
        "the example's token is used"
    );
    let result = d1.result.expect("resultStatus");
    assert_eq!(
        (result.status, result.message.as_str()),
        (0, "Transacción aprobada")
    );
    assert_eq!(
        result.transaction_id,
        "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    );
    assert!(result.transaction_time.is_some());
    assert_eq!(
        (
            d1.otp_session_id.as_str(),
            d1.lab_otp_value.as_str(),
            d1.otp_validity_minutes
        ),
        ("60091282", "847687", 3)
    );
    // 2023-07-06 12:09:46.344, Bogotá time without a zone.
    assert_eq!(d1.otp_expire_time.map(|t| t.seconds), Some(1_688_663_386));

    serve_davi_echoing(&app, DAVI_ACTIVATE, "daviplata/d2-activate-response.json").await;
    let d2 = client
        .activate_subscription(davi::activation(
            "conformance-d2",
            EXAMPLE_WALLET,
            "60091282",
            "847687",
            100_001,
        ))
        .await
        .expect("D2")
        .into_inner();
    assert_eq!(d2.result.expect("ResultStatus").message, "OK");
    assert_subscription(d2.subscription.expect("Subscription"));

    serve_davi_echoing(&app, DAVI_CANCEL, "daviplata/d3-cancel-response.json").await;
    let d3 = client
        .cancel_subscription(davi::cancellation("conformance-d3", EXAMPLE_WALLET))
        .await
        .expect("D3")
        .into_inner();
    assert_eq!(
        d3.result.expect("ResultStatus").transaction_id,
        sent_transaction_id(&app, DAVI_CANCEL).await
    );

    serve_davi_echoing(&app, DAVI_PAYMENT, "daviplata/d4-payment-response.json").await;
    let d4 = client
        .charge_subscription(davi::charge("conformance-d4", EXAMPLE_WALLET, 100_001))
        .await
        .expect("D4")
        .into_inner();
    assert_eq!(d4.approval_number, "0000000000001111");
    assert_eq!(
        d4.result.expect("resultStatus").message,
        "Transacción aprobada"
    );
    assert_subscription(d4.subscription.expect("Subscription"));
}

/// The `Subscription` of the D2 and D4 examples.
#[track_caller]
fn assert_subscription(subscription: pasarela::recurring_payments::v1::Subscription) {
    assert_eq!(
        subscription.subscription_id,
        "16f5f77b-eb1c-4b31-a9af-5dfa557df179"
    );
    assert_eq!(subscription.maximum_amount, crate::support::cop(100_001));
    assert_eq!(subscription.payment_provider_id, "1098765432");
    let commerce = subscription.commerce.expect("Commerce");
    assert_eq!(
        (
            commerce.commerce_id.as_str(),
            commerce.commerce_name.as_str(),
            commerce.category.as_str()
        ),
        (
            "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "Comercializadora La Pradera",
            "Vestuario"
        )
    );
    let wallet = subscription.wallet.expect("Identification and Product");
    assert_eq!(wallet.holder.expect("Identification").number, "1027868487");
    assert_eq!(
        (wallet.product_code.as_str(), wallet.product_number.as_str()),
        ("DVP_CO", "3158765639")
    );
}

#[tokio::test]
async fn daviplata_request_examples_have_the_shape_pasarela_sends() {
    let app = davi::app().await;
    let mut client = davi::client(&app);
    let (session, otp) = davi::request_otp(&mut client, davi::WALLET).await;
    client
        .activate_subscription(davi::activation(
            "conformance-shape-d2",
            davi::WALLET,
            &session,
            &otp,
            500_000,
        ))
        .await
        .expect("D2");
    let mut charge = davi::charge("conformance-shape-d4", davi::WALLET, 100_001);
    charge
        .general_info
        .push(pasarela::recurring_payments::v1::GeneralInfo {
            name: "Oficina".into(),
            value: "Calle 72".into(),
        });
    client.charge_subscription(charge).await.expect("D4");
    client
        .cancel_subscription(davi::cancellation("conformance-shape-d3", davi::WALLET))
        .await
        .expect("D3");

    for (path, rel, headers) in [
        (
            DAVI_REQUEST,
            "daviplata/d1-subscribe-request.json",
            "daviplata/d1-subscribe-request-headers.txt",
        ),
        (
            DAVI_ACTIVATE,
            "daviplata/d2-activate-request.json",
            "daviplata/d2-activate-request-headers.txt",
        ),
        (
            DAVI_CANCEL,
            "daviplata/d3-cancel-request.json",
            "daviplata/d3-cancel-request-headers.txt",
        ),
        (
            DAVI_PAYMENT,
            "daviplata/d4-payment-request.json",
            "daviplata/d4-payment-request-headers.txt",
        ),
    ] {
        let call = app.last_call("daviplata", "POST", path).await;
        assert_same_shape(&body_of(&call), &example(rel), rel);
        let missing: Vec<String> = fixture_header_names(headers)
            .difference(&header_names(&call))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "{headers}: pasarela does not send {missing:?}"
        );
    }

    let token = app.last_call("daviplata", "POST", DAVI_TOKEN).await;
    let (_, _, form) = text_fixture("daviplata/d0-token-request.txt");
    assert_eq!(
        query_names(token["body"].as_str().expect("a form")),
        query_names(&form[0]),
        "D0 form"
    );
    let (_, _, listed) = text_fixture("daviplata/d0-token-request-headers.txt");
    let expected: BTreeSet<String> = listed
        .iter()
        .filter_map(|row| row.strip_prefix("<input checked=\"\" type=\"checkbox\"/> "))
        .map(|row| {
            row.split('\t')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect();
    assert_eq!(expected.len(), 2, "accept and content-type");
    let missing: Vec<String> = expected
        .difference(&header_names(&token))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "D0: pasarela does not send {missing:?}");
}
