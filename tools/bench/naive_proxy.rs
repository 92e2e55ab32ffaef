//! The benchmark's peer (`scripts/bench.py`): what a team would write by hand for the three
//! benchmarked operations instead of running pasarela. Each handler builds the provider's
//! request with reqwest and serde, sends it, and maps the answer; no auth, validation,
//! metrics, audit, retries or idempotency. The Daviplata token is cached until it expires,
//! as any hand-written client would. Every other RPC is unimplemented.
//!
//! ```text
//! naive_proxy ADDR BCS_URL KIBAN_URL DAVIPLATA_URL CA_PEM CLIENT_PEM CLIENT_KEY_PEM
//! ```
//!
//! It prints `naive: gRPC on ADDR` once it listens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pasarela::bureau::v1 as bureau;
use pasarela::bureau::v1::bureau_service_server::{BureauService, BureauServiceServer};
use pasarela::google::r#type::Date;
use pasarela::recurring_payments::v1 as payments;
use pasarela::recurring_payments::v1::recurring_payments_service_server::{
    RecurringPaymentsService, RecurringPaymentsServiceServer,
};
use pasarela::security::v1 as security;
use pasarela::security::v1::security_service_server::{SecurityService, SecurityServiceServer};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

type Reply<T> = Result<Response<T>, Status>;

/// The sandbox's public dev credentials (docs/sandbox.md).
const BCS_CLIENT: (&str, &str) = ("sandbox-bcs-client", "sandbox-bcs-secret");
const BCS_TOKEN: &str = "naive-proxy-token";

/// The `X-Invoker-*` headers S1's header table lists (spec lines 46-94), with the values a
/// deployment fixes; the per-call ones are added by `invoker_headers`. The same set
/// pasarela sends, so that both put the same bytes on the wire.
const INVOKER: &[(&str, &str)] = &[
    ("X-Invoker-Channel", "007"),
    ("X-Invoker-SubChannel", "00"),
    ("X-Invoker-BranchId", "1102"),
    ("X-Invoker-UserIPAddress", "0.0.0.0"),
    ("X-Invoker-ServerIPAddress", "0.0.0.0"),
    ("X-Invoker-UserMACAddress", "00-00-00-00-00-00"),
    ("X-Invoker-ServerMACAddress", "00-00-00-00-00-00"),
    ("X-Invoker-Country", "CO"),
    ("X-Invoker-Network", "32"),
    ("X-Invoker-User", "PASARELA"),
    ("X-Invoker-Ally", "PASARELA"),
];
const KIBAN_API_KEY: &str = "sandbox-kiban-api-key";
const DAVIPLATA_CLIENT: (&str, &str) = ("sandbox-daviplata-client", "sandbox-daviplata-secret");

struct Naive {
    http: reqwest::Client,
    mtls: reqwest::Client,
    bcs: String,
    kiban: String,
    daviplata: String,
    token: Mutex<Option<(String, Instant)>>,
    tx_ids: std::sync::atomic::AtomicU64,
}

/// One `Naive` shared by the three services.
#[derive(Clone)]
struct Proxy(Arc<Naive>);

impl std::ops::Deref for Proxy {
    type Target = Naive;

    fn deref(&self) -> &Naive {
        &self.0
    }
}

/// The URL stays out: S1's carries the customer's document number.
fn unavailable(error: reqwest::Error) -> Status {
    Status::unavailable(error.without_url().to_string())
}

/// Sends `request` and reads its JSON answer; any failure is UNAVAILABLE.
async fn fetch<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, Status> {
    request
        .send()
        .await
        .map_err(unavailable)?
        .error_for_status()
        .map_err(unavailable)?
        .json()
        .await
        .map_err(unavailable)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusAnswer {
    cust_pswd_info: PasswordInfo,
    contact_info: Contact,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordInfo {
    pswd_status: String,
    desc: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    cell_phone: String,
    email_addr: String,
}

impl Naive {
    /// S1's invoker headers: the fixed ones, the Bogotá dates, a TxId and a session key.
    fn invoker_headers(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let now = chrono::Utc::now() - chrono::Duration::hours(5);
        let tx_id = format!(
            "APII{:016}",
            self.tx_ids
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let session = uuid::Uuid::new_v4().simple().to_string()[..30].to_owned();
        INVOKER
            .iter()
            .fold(request, |request, (name, value)| {
                request.header(*name, *value)
            })
            .header("X-Invoker-ProcessDate", now.format("%Y-%m-%d").to_string())
            .header(
                "X-Ident-TransactionDate",
                now.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
            )
            .header("X-Invoker-TxId", &tx_id)
            .header("X-Invoker-ProcessId", &tx_id)
            .header("X-Invoker-SessionKey", &session)
            .header("X-Invoker-RequestNumber", &session)
            .header("Accept", "application/json")
    }
}

#[tonic::async_trait]
impl SecurityService for Proxy {
    async fn get_password_status(
        &self,
        request: Request<security::GetPasswordStatusRequest>,
    ) -> Reply<security::GetPasswordStatusResponse> {
        let request = request.into_inner();
        let Some(security::get_password_status_request::Subject::Customer(customer)) =
            request.subject
        else {
            return Err(Status::invalid_argument("a customer"));
        };
        let answer: StatusAnswer = fetch(
            self.invoker_headers(self.http.get(format!("{}/user/password/status", self.bcs)))
                .header("X-Security-ClientID", BCS_CLIENT.0)
                .header("X-Security-ClientSecret", BCS_CLIENT.1)
                .header("X-Security-Token", BCS_TOKEN)
                .query(&[
                    ("transactionId", request.transaction_id.as_str()),
                    ("govIssueIdentType", "CC"),
                    ("identSerialNum", customer.number.as_str()),
                    ("nameAddrType", "N"),
                ]),
        )
        .await?;
        let status = match answer.cust_pswd_info.pswd_status.as_str() {
            "1" => security::PasswordStatus::Active,
            _ => security::PasswordStatus::Locked,
        };
        Ok(Response::new(security::GetPasswordStatusResponse {
            status: status.into(),
            status_description: answer.cust_pswd_info.desc,
            contact: Some(security::ContactInfo {
                cell_phone: answer.contact_info.cell_phone,
                email: answer.contact_info.email_addr,
            }),
        }))
    }

    async fn generate_otc(
        &self,
        _: Request<security::GenerateOtcRequest>,
    ) -> Reply<security::GenerateOtcResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn generate_otc_v3(
        &self,
        _: Request<security::GenerateOtcV3Request>,
    ) -> Reply<security::GenerateOtcV3Response> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn validate_otc(
        &self,
        _: Request<security::ValidateOtcRequest>,
    ) -> Reply<security::ValidateOtcResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn create_transaction_challenge(
        &self,
        _: Request<security::CreateTransactionChallengeRequest>,
    ) -> Reply<security::CreateTransactionChallengeResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn enroll_digital_user(
        &self,
        _: Request<security::EnrollDigitalUserRequest>,
    ) -> Reply<security::EnrollDigitalUserResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn validate_digital_enrollment(
        &self,
        _: Request<security::ValidateDigitalEnrollmentRequest>,
    ) -> Reply<security::ValidateDigitalEnrollmentResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn change_password(
        &self,
        _: Request<security::ChangePasswordRequest>,
    ) -> Reply<security::ChangePasswordResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn create_user(
        &self,
        _: Request<security::CreateUserRequest>,
    ) -> Reply<security::CreateUserResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn validate_enrollment_card(
        &self,
        _: Request<security::ValidateEnrollmentCardRequest>,
    ) -> Reply<security::ValidateEnrollmentCardResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn validate_password_recovery(
        &self,
        _: Request<security::ValidatePasswordRecoveryRequest>,
    ) -> Reply<security::ValidatePasswordRecoveryResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn request_withdrawal_otp(
        &self,
        _: Request<security::RequestWithdrawalOtpRequest>,
    ) -> Reply<security::RequestWithdrawalOtpResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn update_password_status(
        &self,
        _: Request<security::UpdatePasswordStatusRequest>,
    ) -> Reply<security::UpdatePasswordStatusResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn list_channel_holds(
        &self,
        _: Request<security::ListChannelHoldsRequest>,
    ) -> Reply<security::ListChannelHoldsResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn set_channel_hold(
        &self,
        _: Request<security::SetChannelHoldRequest>,
    ) -> Reply<security::SetChannelHoldResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn get_authentication_level(
        &self,
        _: Request<security::GetAuthenticationLevelRequest>,
    ) -> Reply<security::GetAuthenticationLevelResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn authenticate_channel(
        &self,
        _: Request<security::AuthenticateChannelRequest>,
    ) -> Reply<security::AuthenticateChannelResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn withdraw_with_otp(
        &self,
        _: Request<security::WithdrawWithOtpRequest>,
    ) -> Reply<security::WithdrawWithOtpResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn create_question_challenge(
        &self,
        _: Request<security::CreateQuestionChallengeRequest>,
    ) -> Reply<security::CreateQuestionChallengeResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExpiryAnswer {
    id: String,
    response: Expiry,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expiry {
    fecha_expiracion: String,
}

#[tonic::async_trait]
impl BureauService for Proxy {
    async fn get_password_expiration(
        &self,
        request: Request<bureau::GetPasswordExpirationRequest>,
    ) -> Reply<bureau::GetPasswordExpirationResponse> {
        let request = request.into_inner();
        let answer: ExpiryAnswer = fetch(
            self.http
                .post(format!("{}/api/v1/password-expiry-date-bc-pm", self.kiban))
                .header("x-api-key", KIBAN_API_KEY)
                .query(&[("testCaseId", request.test_case_id.as_str())])
                .json(&json!({ "clave": request.member_code, "contrasena": request.password })),
        )
        .await?;
        let mut parts = answer.response.fecha_expiracion.split('/');
        let mut next = || parts.next().and_then(|part| part.parse().ok()).unwrap_or(0);
        let (month, day, year) = (next(), next(), next());
        Ok(Response::new(bureau::GetPasswordExpirationResponse {
            expiration_date: Some(Date { year, month, day }),
            request_id: answer.id,
            provider_duration: None,
        }))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionAnswer {
    info_otp: InfoOtp,
}

#[derive(Deserialize)]
struct InfoOtp {
    #[serde(rename = "idSesionOTP")]
    id_sesion_otp: serde_json::Value,
    value: Option<String>,
}

impl Naive {
    /// The cached token, or a new one.
    async fn token(&self) -> Result<String, Status> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let answer: TokenAnswer = fetch(
            self.mtls
                .post(format!("{}/oauth2Provider/type1/v1/token", self.daviplata))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", DAVIPLATA_CLIENT.0),
                    ("client_secret", DAVIPLATA_CLIENT.1),
                    ("scope", "pg_recurrente"),
                ]),
        )
        .await?;
        let lifetime = Duration::from_secs(answer.expires_in.saturating_sub(1));
        *cached = Some((answer.access_token.clone(), Instant::now() + lifetime));
        Ok(answer.access_token)
    }
}

#[tonic::async_trait]
impl RecurringPaymentsService for Proxy {
    async fn request_subscription(
        &self,
        request: Request<payments::RequestSubscriptionRequest>,
    ) -> Reply<payments::RequestSubscriptionResponse> {
        let request = request.into_inner();
        let commerce = request.commerce.unwrap_or_default();
        let wallet = request.wallet.unwrap_or_default();
        let holder = wallet.holder.unwrap_or_default();
        let body = json!({
            "Consumer": { "paymentProviderId": "00000001" },
            "TransactionHeader": {
                "transactionId": uuid::Uuid::new_v4().to_string(),
                "transactionDate": "2023-04-14T22:33:45.070Z",
                "apiRulesVersion": "1.0",
                "commercelId": commerce.commerce_id,
                "commerceName": commerce.commerce_name,
                "category": commerce.category,
            },
            "TransactionDetail": {
                "identificationType": "CC",
                "identificationNumber": holder.number,
                "productCode": "DVP_CO",
                "productNumber": wallet.product_number,
            },
        });
        let answer: SubscriptionAnswer = fetch(
            self.mtls
                .post(format!(
                    "{}/v1/payments/subscriptions/request",
                    self.daviplata
                ))
                .header("client_id", DAVIPLATA_CLIENT.0)
                .bearer_auth(self.token().await?)
                .json(&body),
        )
        .await?;
        let session = match answer.info_otp.id_sesion_otp {
            serde_json::Value::String(session) => session,
            other => other.to_string(),
        };
        Ok(Response::new(payments::RequestSubscriptionResponse {
            otp_session_id: session,
            lab_otp_value: answer.info_otp.value.unwrap_or_default(),
            ..Default::default()
        }))
    }

    async fn activate_subscription(
        &self,
        _: Request<payments::ActivateSubscriptionRequest>,
    ) -> Reply<payments::ActivateSubscriptionResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn cancel_subscription(
        &self,
        _: Request<payments::CancelSubscriptionRequest>,
    ) -> Reply<payments::CancelSubscriptionResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
    async fn charge_subscription(
        &self,
        _: Request<payments::ChargeSubscriptionRequest>,
    ) -> Reply<payments::ChargeSubscriptionResponse> {
        Err(Status::unimplemented("not in the naive proxy"))
    }
}

fn mtls_client(ca: &str, cert: &str, key: &str) -> Result<reqwest::Client, String> {
    let read = |path: &str| std::fs::read(path).map_err(|error| format!("{path}: {error}"));
    let ca = reqwest::Certificate::from_pem(&read(ca)?).map_err(|error| error.to_string())?;
    let identity = reqwest::Identity::from_pem(&[read(cert)?, read(key)?].concat())
        .map_err(|error| error.to_string())?;
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(identity)
        .build()
        .map_err(|error| error.to_string())
}

async fn serve(args: &[String]) -> Result<(), String> {
    let [addr, bcs, kiban, daviplata, ca, cert, key] = args else {
        return Err("usage: naive_proxy ADDR BCS_URL KIBAN_URL DAVIPLATA_URL CA CERT KEY".into());
    };
    let naive = Proxy(Arc::new(Naive {
        http: reqwest::Client::new(),
        mtls: mtls_client(ca, cert, key)?,
        bcs: bcs.clone(),
        kiban: kiban.clone(),
        daviplata: daviplata.clone(),
        token: Mutex::new(None),
        tx_ids: std::sync::atomic::AtomicU64::new(1),
    }));
    let listener = tokio::net::TcpListener::bind(addr.as_str())
        .await
        .map_err(|error| format!("bind {addr}: {error}"))?;
    let local = listener.local_addr().map_err(|error| error.to_string())?;
    println!("naive: gRPC on {local}");
    tonic::transport::Server::builder()
        .add_service(SecurityServiceServer::new(naive.clone()))
        .add_service(BureauServiceServer::new(naive.clone()))
        .add_service(RecurringPaymentsServiceServer::new(naive))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await
        .map_err(|error| error.to_string())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match serve(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("naive_proxy: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
