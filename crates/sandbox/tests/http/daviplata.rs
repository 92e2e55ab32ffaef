//! Daviplata (D0-D4) over real mutual TLS: the token, the gateway's checks, the
//! subscription life cycle with its documented refusals, deduplicated payments, counters.

use pasarela_sandbox::DevPki;
use reqwest::Client;
use serde_json::{Value, json};

use crate::support::{self, TestSandbox, json, other_code, tls_client, token_form};

const TOKEN: &str = "/oauth2Provider/type1/v1/token";
const REQUEST: &str = "/v1/payments/subscriptions/request";
const ACTIVATE: &str = "/v1/payments/subscriptions/activate";
const CANCEL: &str = "/v1/payments/subscriptions/cancel";
const PAYMENT: &str = "/v1/payments/subscriptions/payment";

/// A wallet of the builtin fixtures (the one of the document's examples).
const WALLET: (&str, &str, &str) = ("CC", "1027868487", "3158765639");

struct Daviplata {
    sandbox: TestSandbox,
    client: Client,
}

async fn start() -> Daviplata {
    let sandbox = support::start().await;
    let client = sandbox.daviplata_client();
    Daviplata { sandbox, client }
}

fn form(client_id: &str, secret: &str, grant: &str, scope: &str) -> String {
    format!("grant_type={grant}&client_id={client_id}&client_secret={secret}&scope={scope}")
}

fn envelope(wallet: (&str, &str, &str), transaction_id: &str, extra: Value) -> Value {
    let mut detail = json!({
        "identificationType": wallet.0,
        "identificationNumber": wallet.1,
        "productCode": "DVP_CO",
        "productNumber": wallet.2,
    });
    detail
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    json!({
        "Consumer": { "paymentProviderId": "00000001" },
        "TransactionHeader": {
            "transactionId": transaction_id,
            "transactionDate": "2023-04-14T21:31:23.682Z",
            "apiRulesVersion": "1.0",
            "commercelId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "commerceName": "Comercializadora La Pradera",
            "category": "Vestuario",
        },
        "TransactionDetail": detail,
    })
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Daviplata {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.sandbox.daviplata_url)
    }

    fn credentials(&self) -> (&str, &str) {
        let c = &self.sandbox.sandbox.credentials;
        (&c.daviplata_client_id, &c.daviplata_client_secret)
    }

    async fn token_with(&self, body: String) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(TOKEN))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .expect("token answer");
        json(response).await
    }

    fn valid_token_form(&self) -> String {
        token_form(&self.sandbox.sandbox.credentials)
    }

    async fn token(&self) -> String {
        let (status, body) = self.token_with(self.valid_token_form()).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    async fn call_with(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let (id, _) = self.credentials();
        let response = self
            .client
            .post(self.url(path))
            .header("client_id", id)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("daviplata answers");
        json(response).await
    }

    async fn call(&self, path: &str, body: &Value) -> (u16, Value) {
        let token = self.token().await;
        self.call_with(path, &token, body).await
    }

    /// D1 for `wallet`: (idSesionOTP, OTP value).
    async fn request_otp(&self, wallet: (&str, &str, &str)) -> (String, String) {
        let (status, body) = self
            .call(REQUEST, &envelope(wallet, &new_id(), json!({})))
            .await;
        assert_eq!(status, 200, "{body}");
        let otp = &body["infoOtp"];
        (
            otp["idSesionOTP"].as_str().unwrap().to_owned(),
            otp["value"].as_str().unwrap().to_owned(),
        )
    }

    async fn activate(
        &self,
        wallet: (&str, &str, &str),
        session: &str,
        otp: &str,
        max: Value,
    ) -> (u16, Value) {
        let detail = json!({
            "amountCurrencyType": "COP",
            "amountValue": max,
            "otpValue": otp,
            "otpSesionId": session,
        });
        self.call(ACTIVATE, &envelope(wallet, &new_id(), detail))
            .await
    }

    /// A wallet subscribed with a maximum of `max`.
    async fn subscribe(&self, wallet: (&str, &str, &str), max: Value) -> Value {
        let (session, otp) = self.request_otp(wallet).await;
        let (status, body) = self.activate(wallet, &session, &otp, max).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn pay(
        &self,
        wallet: (&str, &str, &str),
        transaction_id: &str,
        amount: Value,
    ) -> (u16, Value) {
        let detail = json!({
            "Amount": { "amountCurrencyType": "COP", "amountValue": amount },
            "invoiceId": "AB12345678",
            "invoiceDescription": "PAGO MENSUAL PLAN FAMILIAR",
            "GeneralInfo": [{ "name": "Referencia", "value": "1010101" }],
        });
        self.call(PAYMENT, &envelope(wallet, transaction_id, detail))
            .await
    }

    async fn counters(&self) -> Value {
        self.sandbox.admin_get("/daviplata/counters").await
    }
}

fn message(body: &Value) -> &str {
    body["mensajeError"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_token_is_issued_for_client_credentials() {
    let daviplata = start().await;
    let (status, body) = daviplata.token_with(daviplata.valid_token_form()).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "pg_recurrente");
    assert!(!body["access_token"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn the_token_lifetime_is_configurable() {
    let sandbox =
        support::start_with(|o| o.daviplata_token_ttl = std::time::Duration::from_secs(5)).await;
    let daviplata = Daviplata {
        client: sandbox.daviplata_client(),
        sandbox,
    };
    let (_, body) = daviplata.token_with(daviplata.valid_token_form()).await;
    assert_eq!(body["expires_in"], 5);
}

#[tokio::test]
async fn token_refusals_are_the_documented_oauth_errors() {
    let daviplata = start().await;
    let (id, secret) = daviplata.credentials();
    let cases = [
        (
            form(id, "wrong", "client_credentials", "pg_recurrente"),
            400,
            "error",
            "invalid_client",
        ),
        (
            form(id, secret, "client_credentials", "other"),
            400,
            "error",
            "invalid_scope",
        ),
        (
            form(id, secret, "password", "pg_recurrente"),
            400,
            "error",
            "unknown",
        ),
        (
            form("stranger", secret, "client_credentials", "pg_recurrente"),
            401,
            "moreInformation",
            "Invalid client id or secret.",
        ),
    ];
    for (body, status, key, value) in cases {
        let (got, answer) = daviplata.token_with(body.clone()).await;
        assert_eq!((got, answer[key].as_str()), (status, Some(value)), "{body}");
    }
    assert_eq!(daviplata.counters().await["tokens_issued"], 0);
}

#[tokio::test]
async fn a_connection_without_a_client_certificate_is_refused() {
    let daviplata = start().await;
    let pki = &daviplata.sandbox.sandbox.pki;
    let anonymous = tls_client(&pki.ca_cert, None);
    let result = anonymous.post(daviplata.url(TOKEN)).body("").send().await;
    assert!(result.is_err(), "no client certificate must be refused");
    assert_eq!(daviplata.counters().await["tokens_issued"], 0);
}

#[tokio::test]
async fn a_foreign_client_certificate_is_refused() {
    let daviplata = start().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let foreign = DevPki::load_or_create(elsewhere.path()).expect("another PKI");
    let pki = &daviplata.sandbox.sandbox.pki;
    let client = tls_client(
        &pki.ca_cert,
        Some((&foreign.client_cert, &foreign.client_key)),
    );
    let result = client
        .post(daviplata.url(TOKEN))
        .body(daviplata.valid_token_form())
        .send()
        .await;
    assert!(
        result.is_err(),
        "a certificate of another CA must be refused"
    );
}

#[tokio::test]
async fn the_dev_pki_is_reused_across_restarts_and_replaced_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let first = DevPki::load_or_create(dir.path()).unwrap();
    let ca = std::fs::read(&first.ca_cert).unwrap();
    let again = DevPki::load_or_create(dir.path()).unwrap();
    assert_eq!(
        std::fs::read(&again.ca_cert).unwrap(),
        ca,
        "a valid set is kept"
    );
    std::fs::write(&first.client_key, "not a key").unwrap();
    let renewed = DevPki::load_or_create(dir.path()).unwrap();
    assert_ne!(
        std::fs::read(&renewed.ca_cert).unwrap(),
        ca,
        "a broken set is replaced"
    );
}

#[tokio::test]
async fn business_calls_need_the_client_id_and_a_valid_bearer_token() {
    let daviplata = start().await;
    let body = envelope(WALLET, &new_id(), json!({}));
    let token = daviplata.token().await;
    let (id, _) = daviplata.credentials();

    let no_client = daviplata
        .client
        .post(daviplata.url(REQUEST))
        .bearer_auth(&token)
        .json(&body);
    let (status, answer) = json(no_client.send().await.unwrap()).await;
    assert_eq!(
        (status, answer["moreInformation"].as_str()),
        (401, Some("Invalid client id or secret."))
    );

    let no_token = daviplata
        .client
        .post(daviplata.url(REQUEST))
        .header("client_id", id)
        .json(&body);
    let (status, _) = json(no_token.send().await.unwrap()).await;
    assert_eq!(status, 401);

    let (status, answer) = daviplata.call_with(REQUEST, "forged", &body).await;
    assert_eq!(status, 401);
    assert_eq!(
        message(&answer),
        "No cuenta con autorización para realizar la transacción"
    );

    let ibm = daviplata
        .client
        .post(daviplata.url(REQUEST))
        .header("x-ibm-client-id", id)
        .bearer_auth(&token)
        .json(&body);
    assert_eq!(
        ibm.send().await.unwrap().status(),
        200,
        "x-ibm-client-id is accepted"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let daviplata = start().await;
    let token = daviplata.token().await;
    let body = envelope(WALLET, &new_id(), json!({}));
    assert_eq!(daviplata.call_with(REQUEST, &token, &body).await.0, 200);
    let expired = daviplata
        .sandbox
        .admin_post("/daviplata/tokens/expire", json!({}))
        .await;
    assert_eq!(expired.status(), 204);
    assert_eq!(daviplata.call_with(REQUEST, &token, &body).await.0, 401);
}

#[tokio::test]
async fn request_returns_an_otp_session_of_three_minutes() {
    let daviplata = start().await;
    let transaction_id = new_id();
    let (status, body) = daviplata
        .call(REQUEST, &envelope(WALLET, &transaction_id, json!({})))
        .await;
    assert_eq!(status, 200);
    let result = &body["resultStatus"];
    assert_eq!(result["status"], 0);
    assert_eq!(result["message"], "Transacción aprobada");
    assert_eq!(result["transactionId"], transaction_id.as_str());
    chrono::DateTime::parse_from_rfc3339(result["transactionDate"].as_str().unwrap()).unwrap();
    let otp = &body["infoOtp"];
    assert_eq!(otp["expirationTimeOTP"], 3);
    assert_eq!(otp["value"].as_str().unwrap().len(), 6);
    assert!(!otp["idSesionOTP"].as_str().unwrap().is_empty());
    chrono::NaiveDateTime::parse_from_str(
        otp["expirationDateOTP"].as_str().unwrap(),
        "%Y-%m-%d %H:%M:%S%.3f",
    )
    .expect("zone-less local time");
}

#[tokio::test]
async fn wallets_that_cannot_subscribe_are_refused() {
    let daviplata = start().await;
    let unknown = ("CC", "1027868487", "3000000001");
    let blocked = ("CC", "1000000009", "3000000009");
    for wallet in [unknown, blocked] {
        let (status, body) = daviplata
            .call(REQUEST, &envelope(wallet, &new_id(), json!({})))
            .await;
        assert_eq!(status, 422);
        assert_eq!(
            message(&body),
            "Monedero no asociado al documento o en estado que no permite la suscripción"
        );
    }
}

#[tokio::test]
async fn activation_subscribes_the_wallet() {
    let daviplata = start().await;
    let body = daviplata.subscribe(WALLET, json!(1000.01)).await;
    assert_eq!(body["ResultStatus"]["status"], 0);
    assert_eq!(body["ResultStatus"]["message"], "OK");
    let subscription = &body["Subscription"];
    assert!(uuid::Uuid::parse_str(subscription["subscriptionId"].as_str().unwrap()).is_ok());
    assert_eq!(
        subscription["maxValue"],
        json!({ "amountCurrencyType": "COP", "amountValue": 1000.01 })
    );
    assert_eq!(
        subscription["Commerce"]["commercelId"],
        "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    );
    assert_eq!(
        subscription["Identification"]["identificationNumber"],
        WALLET.1
    );
    assert_eq!(subscription["Product"]["productNumber"], WALLET.2);
    assert_eq!(
        subscription["PaymentProvider"]["paymentProviderId"],
        "00000001"
    );
    assert_eq!(daviplata.counters().await["subscriptions_activated"], 1);
}

#[tokio::test]
async fn a_wrong_otp_is_refused_and_the_right_one_still_works() {
    let daviplata = start().await;
    let (session, otp) = daviplata.request_otp(WALLET).await;
    let (status, body) = daviplata
        .activate(WALLET, &session, other_code(&otp), json!(50))
        .await;
    assert_eq!((status, message(&body)), (422, "Otp errado"));
    let (status, _) = daviplata.activate(WALLET, &session, &otp, json!(50)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_used_or_expired_otp_is_refused() {
    let daviplata = start().await;
    let (session, otp) = daviplata.request_otp(WALLET).await;
    assert_eq!(
        daviplata
            .activate(WALLET, &session, &otp, json!(50))
            .await
            .0,
        200
    );
    let (status, body) = daviplata.activate(WALLET, &session, &otp, json!(50)).await;
    assert_eq!(
        (status, message(&body)),
        (422, "Otp expirado o ya fue usado")
    );

    let other = ("CC", "1000000001", "3000000001");
    let (session, otp) = daviplata.request_otp(other).await;
    let expired = daviplata
        .sandbox
        .admin_post(
            &format!("/daviplata/otp-sessions/{session}/expire"),
            json!({}),
        )
        .await;
    assert_eq!(expired.status(), 204);
    let (status, body) = daviplata.activate(other, &session, &otp, json!(50)).await;
    assert_eq!(
        (status, message(&body)),
        (422, "Otp expirado o ya fue usado")
    );
}

#[tokio::test]
async fn a_subscribed_wallet_cannot_subscribe_again() {
    let daviplata = start().await;
    daviplata.subscribe(WALLET, json!(100)).await;
    let (session, otp) = daviplata.request_otp(WALLET).await;
    let (status, body) = daviplata.activate(WALLET, &session, &otp, json!(100)).await;
    assert_eq!(
        (status, message(&body)),
        (422, "Monedero ya está asociado al ttp aliado y comercio")
    );
}

#[tokio::test]
async fn payments_within_the_maximum_are_approved() {
    let daviplata = start().await;
    daviplata.subscribe(WALLET, json!(1000.01)).await;
    let transaction_id = new_id();
    let (status, body) = daviplata.pay(WALLET, &transaction_id, json!(1000.01)).await;
    assert_eq!(status, 200, "{body}");
    let result = &body["resultStatus"];
    assert_eq!(result["status"], 0);
    assert_eq!(result["transactionId"], transaction_id.as_str());
    assert_eq!(result["approvalNumber"].as_str().unwrap().len(), 16);
    assert!(body["Subscription"]["subscriptionId"].is_string());

    let (status, body) = daviplata.pay(WALLET, &new_id(), json!(1000.02)).await;
    assert_eq!(status, 422);
    assert!(message(&body).contains("supera el valor máximo"), "{body}");
    assert_eq!(daviplata.counters().await["payments_made"], 1);
}

#[tokio::test]
async fn a_payment_without_a_subscription_is_invalid() {
    let daviplata = start().await;
    let (status, body) = daviplata.pay(WALLET, &new_id(), json!(10)).await;
    assert_eq!(
        (status, message(&body)),
        (422, "Suscripción inválida o monedero no asociado al aliado")
    );
}

#[tokio::test]
async fn the_same_transaction_id_pays_once() {
    let daviplata = start().await;
    daviplata.subscribe(WALLET, json!(500)).await;
    let transaction_id = new_id();
    let (_, first) = daviplata.pay(WALLET, &transaction_id, json!(20)).await;
    let (status, again) = daviplata.pay(WALLET, &transaction_id, json!(20)).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["resultStatus"]["approvalNumber"],
        first["resultStatus"]["approvalNumber"]
    );
    let counters = daviplata.counters().await;
    assert_eq!(
        (
            counters["payments_made"].as_u64(),
            counters["payments_replayed"].as_u64()
        ),
        (Some(1), Some(1))
    );

    let (status, body) = daviplata.pay(WALLET, &transaction_id, json!(21)).await;
    assert_eq!(
        (status, message(&body)),
        (422, "No se puede ejecutar la transacción")
    );
    let (_, other) = daviplata.pay(WALLET, &new_id(), json!(20)).await;
    assert_ne!(
        other["resultStatus"]["approvalNumber"],
        first["resultStatus"]["approvalNumber"]
    );
    assert_eq!(daviplata.counters().await["payments_made"], 2);
}

#[tokio::test]
async fn cancel_ends_the_subscription() {
    let daviplata = start().await;
    daviplata.subscribe(WALLET, json!(500)).await;
    let (status, body) = daviplata
        .call(CANCEL, &envelope(WALLET, &new_id(), json!({})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["ResultStatus"]["status"], 0);
    let (status, body) = daviplata.pay(WALLET, &new_id(), json!(10)).await;
    assert_eq!(
        (status, message(&body)),
        (422, "Suscripción inválida o monedero no asociado al aliado")
    );
    let (status, body) = daviplata
        .call(CANCEL, &envelope(WALLET, &new_id(), json!({})))
        .await;
    assert_eq!(
        (status, message(&body)),
        (422, "Monedero no está asociado al ttp aliado y/o comercio")
    );
    assert_eq!(daviplata.counters().await["subscriptions_cancelled"], 1);
}

#[tokio::test]
async fn malformed_requests_get_the_gateway_errors() {
    let daviplata = start().await;
    let mut missing = envelope(WALLET, &new_id(), json!({}));
    missing["TransactionDetail"]
        .as_object_mut()
        .unwrap()
        .remove("productNumber");
    let (status, body) = daviplata.call(REQUEST, &missing).await;
    assert_eq!(status, 422);
    assert!(
        body["moreInformation"]
            .as_str()
            .unwrap()
            .contains("[JSV0002] Invalid object: the property 'productNumber' is missing.")
    );

    let mut numeric = envelope(WALLET, &new_id(), json!({}));
    numeric["TransactionDetail"]["identificationNumber"] = json!(1027868487);
    let (status, body) = daviplata.call(REQUEST, &numeric).await;
    assert_eq!(status, 422);
    assert!(
        body["moreInformation"]
            .as_str()
            .unwrap()
            .contains("Invalid value type 'integer'")
    );

    let bad_type = envelope(("XX", WALLET.1, WALLET.2), &new_id(), json!({}));
    let (status, body) = daviplata.call(REQUEST, &bad_type).await;
    assert_eq!(
        (status, message(&body)),
        (
            400,
            "El valor XX no es válido en el Campo identificationType"
        )
    );

    let token = daviplata.token().await;
    let (id, _) = daviplata.credentials();
    let trailing_comma = r#"{"Consumer": {"paymentProviderId": "00000001",}}"#;
    let response = daviplata
        .client
        .post(daviplata.url(ACTIVATE))
        .header("client_id", id)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(trailing_comma)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn the_field_tables_spelling_commerce_id_is_accepted() {
    let daviplata = start().await;
    let mut body = envelope(WALLET, &new_id(), json!({}));
    let header = body["TransactionHeader"].as_object_mut().unwrap();
    let id = header.remove("commercelId").unwrap();
    header.insert("commerceId".into(), id);
    assert_eq!(daviplata.call(REQUEST, &body).await.0, 200);
}

#[tokio::test]
async fn counters_count_each_token_issued() {
    let daviplata = start().await;
    for _ in 0..3 {
        daviplata.token().await;
    }
    assert_eq!(daviplata.counters().await["tokens_issued"], 3);
    let calls = daviplata.sandbox.admin_get("/calls").await;
    assert_eq!(calls["daviplata"][format!("POST {TOKEN}")], 3);
    assert_eq!(
        daviplata
            .sandbox
            .admin_post("/reset", json!({}))
            .await
            .status(),
        204
    );
    assert_eq!(daviplata.counters().await["tokens_issued"], 0);
}
