//! `pasarela.security.v1` end to end: a tonic client -> pasarela -> HTTP -> the Banco Caja
//! Social emulator, for each of the 19 RPCs, their business errors, validation without
//! provider calls, the bank's own failures, and no secret in any log.

use pasarela::common::v1::{DocumentType, Identification, InvokerContext, PageRequest};
use pasarela::security::v1::get_password_status_request::Subject;
use pasarela::security::v1::security_service_client::SecurityServiceClient;
use pasarela::security::v1::*;
use serde_json::json;
use tonic::Code;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::support::{TestApp, TestPostgres, cc, ledger, pesos, reason, spawn_app_with};

/// The sandbox accepts any non-empty token; the spec has no operation that issues one.
pub(crate) const TOKEN: &str = "e2e-bcs-token";

pub(crate) async fn app() -> TestApp {
    spawn_app_with(|config| {
        let security = config.security.as_mut().expect("dev config has security");
        security.access_token = Some(TOKEN.to_owned().into());
    })
    .await
}

pub(crate) fn client(
    app: &TestApp,
) -> SecurityServiceClient<InterceptedService<Channel, impl Interceptor + Clone>> {
    client_on(app, app.channel())
}

/// A client of `app`'s caller over `channel` (another replica).
pub(crate) fn client_on(
    app: &TestApp,
    channel: Channel,
) -> SecurityServiceClient<InterceptedService<Channel, impl Interceptor + Clone>> {
    SecurityServiceClient::with_interceptor(channel, app.bearer())
}

/// The `ErrorInfo.reason` of a failed call.
fn localized(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .localized_message()
        .map(|message| message.message.clone())
        .unwrap_or_default()
}

pub(crate) fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
pub(crate) fn assert_error(status: &tonic::Status, code: Code, expected_reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), expected_reason, "{status:?}");
}

/// The last code the bank "sent by SMS" to a customer.
async fn outbox(app: &TestApp, number: &str) -> String {
    let sent = app.admin_get(&format!("/bcs/otc/CC/{number}")).await;
    sent["otc"].as_str().expect("a code was sent").to_owned()
}

/// Every secret this module sends that is long enough not to turn up by chance inside an
/// id or a timestamp (PINs and CVVs of 3-4 digits would).
const SECRETS: &[&str] = &[
    TOKEN,
    "Sol2024mar",
    "Casa2024ab",
    "Nube2025xy",
    "Wrong2024x",
    "Rosa2025ab",
    "Otra2025cd",
    "Nueva2025ab",
    "not-the-secret",
];

// ---- S1, S13: password status -----------------------------------------------------------

/// A natural person's password status, asked under `transaction_id`.
pub(crate) fn status_request(transaction_id: &str, subject: Subject) -> GetPasswordStatusRequest {
    GetPasswordStatusRequest {
        transaction_id: transaction_id.into(),
        customer_type: CustomerType::Natural.into(),
        subject: Some(subject),
        ..Default::default()
    }
}

/// The holder of the CC `number`, as a password status subject.
pub(crate) fn customer(number: &str) -> Subject {
    Subject::Customer(cc(number).expect("an identification"))
}

#[tokio::test]
async fn password_status_by_document_and_alias() {
    let app = app().await;
    let mut client = client(&app);
    let by_document = client
        .get_password_status(status_request("4835799410", customer("1007641")))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(by_document.status(), PasswordStatus::Active);
    assert_eq!(by_document.contact.unwrap().cell_phone, "3175137626");

    let by_alias = client
        .get_password_status(status_request(
            "4835799411",
            Subject::UserAlias("ALIAS8985".into()),
        ))
        .await
        .expect("status by alias")
        .into_inner();
    assert_eq!(by_alias.status(), PasswordStatus::Active);

    let locked = client
        .get_password_status(status_request("1", customer("1030")))
        .await
        .expect("locked status")
        .into_inner();
    assert_eq!(locked.status(), PasswordStatus::Locked);

    let missing = client
        .get_password_status(status_request("2", customer("999999999")))
        .await
        .unwrap_err();
    assert_error(&missing, Code::NotFound, "USER_NOT_FOUND");
    assert!(localized(&missing).contains("no existe"), "{missing:?}");
}

#[tokio::test]
async fn locking_a_password_shows_in_its_status_and_twice_is_refused() {
    let app = app().await;
    let mut client = client(&app);
    let lock = || UpdatePasswordStatusRequest {
        customer: cc("1007641"),
        status: PasswordStatus::Locked.into(),
        ..Default::default()
    };
    let changed = client
        .update_password_status(lock())
        .await
        .expect("lock")
        .into_inner();
    assert!(!changed.description.is_empty());
    assert!(changed.effective_time.is_some());

    let status = client
        .get_password_status(status_request("3", customer("1007641")))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.status(), PasswordStatus::Locked);

    let again = client.update_password_status(lock()).await.unwrap_err();
    assert_error(
        &again,
        Code::FailedPrecondition,
        "PASSWORD_STATUS_UNCHANGED",
    );
}

// ---- S2, S3, S4: one-time codes -----------------------------------------------------------

#[tokio::test]
async fn a_one_time_code_validates_once() {
    let app = app().await;
    let mut client = client(&app);
    client
        .generate_otc(GenerateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            ..Default::default()
        })
        .await
        .expect("generate");
    let code = outbox(&app, "1007641").await;
    let validate = || ValidateOtcRequest {
        customer: cc("1007641"),
        purpose: "LOGIN".into(),
        code: code.clone(),
        ..Default::default()
    };
    client.validate_otc(validate()).await.expect("first use");
    let reused = client.validate_otc(validate()).await.unwrap_err();
    assert_error(&reused, Code::FailedPrecondition, "OTC_REJECTED");
    assert!(
        localized(&reused).contains("No existe Otc vigente"),
        "{reused:?}"
    );
    assert!(!reused.message().contains(&code));
    app.assert_not_logged(&[&code]);
}

#[tokio::test]
async fn an_expired_or_wrong_one_time_code_is_refused() {
    let app = app().await;
    let mut client = client(&app);
    app.admin_send(reqwest::Method::PUT, "/bcs/otc-ttl", json!({ "millis": 1 }))
        .await;
    client
        .generate_otc_v3(GenerateOtcV3Request {
            customer: cc("1007641"),
            purpose: "PAGO".into(),
            contact: Some(ContactInfo {
                cell_phone: "3175137626".into(),
                email: String::new(),
            }),
            ..Default::default()
        })
        .await
        .expect("generate v3");
    let code = outbox(&app, "1007641").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let expired = client
        .validate_otc(ValidateOtcRequest {
            customer: cc("1007641"),
            purpose: "PAGO".into(),
            code: code.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&expired, Code::FailedPrecondition, "OTC_REJECTED");
    assert!(localized(&expired).contains("vencida"), "{expired:?}");

    let unknown = client
        .generate_otc_v3(GenerateOtcV3Request {
            customer: cc("424242"),
            purpose: "PAGO".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    app.assert_not_logged(&[&code]);
}

// ---- S5, S16, S17, S19: challenges -----------------------------------------------------------

fn pse_data() -> Vec<TransactionData> {
    vec![
        TransactionData {
            name: "NOMBRE_COMERCIO".into(),
            value: "COLEGIO JONATHAN SWIFT".into(),
        },
        TransactionData {
            name: "CODIGO_CONVENIO".into(),
            value: "PSE".into(),
        },
    ]
}

#[tokio::test]
async fn a_transaction_challenge_v1_is_authorized_at_once() {
    let app = app().await;
    let mut client = client(&app);
    let challenge = |code: &str| CreateTransactionChallengeRequest {
        customer: cc("111111"),
        customer_type: CustomerType::Natural.into(),
        transaction_code: code.into(),
        data: pse_data(),
        amount: pesos(10_000),
        source_account: "222222".into(),
        ..Default::default()
    };
    let authorized = client
        .create_transaction_challenge(challenge("100090"))
        .await
        .expect("challenge")
        .into_inner();
    assert_eq!(authorized.result(), AuthorizationResult::Authorized);
    assert!(authorized.authorization_code.contains("100090"));

    let unknown = client
        .create_transaction_challenge(challenge("999999"))
        .await
        .unwrap_err();
    assert_error(
        &unknown,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    );
}

#[tokio::test]
async fn the_authentication_level_of_a_transaction() {
    let app = app().await;
    let mut client = client(&app);
    let level = |transaction: &str| GetAuthenticationLevelRequest {
        customer: cc("1030"),
        adviser: cc("1025"),
        request_number: "257896".into(),
        transaction_request_id: transaction.into(),
        auth_system: "SIEBEL".into(),
        ..Default::default()
    };
    let answer = client
        .get_authentication_level(level("101261"))
        .await
        .expect("level")
        .into_inner();
    assert_eq!(answer.level, 3);
    assert_eq!(answer.request_number, "257896");
    let unknown = client
        .get_authentication_level(level("424242"))
        .await
        .unwrap_err();
    assert_error(
        &unknown,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    );
}

fn channel_round(
    customer: &str,
    trace: Option<ChallengeTrace>,
    answered: Option<(&ChannelQuestion, &str)>,
) -> AuthenticateChannelRequest {
    AuthenticateChannelRequest {
        customer: cc(customer),
        person: Some(PersonInfo {
            first_name: "ROSA".into(),
            middle_name: "GRICELDA".into(),
            r#type: CustomerType::Natural.into(),
            ..Default::default()
        }),
        transaction_code: "API429".into(),
        transaction_request_id: "900006".into(),
        request_number: "1234".into(),
        trace,
        answers: answered
            .map(|(question, option)| {
                vec![ChannelQuestionAnswer {
                    r#type: question.r#type.clone(),
                    code: question.code.clone(),
                    text: question.text.clone(),
                    answer_length: question.answer_length,
                    format: question.format.clone(),
                    answers: vec![ChannelAnswer {
                        status_code: option.into(),
                        value: question
                            .options
                            .iter()
                            .find(|o| o.status_code == option)
                            .map(|o| o.text.clone())
                            .unwrap_or_else(|| "NO".into()),
                    }],
                    ..Default::default()
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// Opens a channel authentication for `customer` and gives `answer` to each of the two
/// question rounds that follow; answers the last round.
async fn answer_both_rounds<I: Interceptor>(
    client: &mut SecurityServiceClient<InterceptedService<Channel, I>>,
    customer: &str,
    answer: &str,
) -> AuthenticateChannelResponse {
    let mut round = client
        .authenticate_channel(channel_round(customer, None, None))
        .await
        .expect("open")
        .into_inner();
    for _ in 0..2 {
        assert_eq!(round.result(), AuthorizationResult::QuestionsPending);
        let question = round.questions[0].clone();
        round = client
            .authenticate_channel(channel_round(
                customer,
                round.trace,
                Some((&question, answer)),
            ))
            .await
            .expect("answer")
            .into_inner();
    }
    round
}

#[tokio::test]
async fn channel_authentication_rounds_reach_an_authorization_code() {
    let app = app().await;
    let round = answer_both_rounds(&mut client(&app), "51901591", "A").await;
    assert_eq!(round.result(), AuthorizationResult::Authorized);
    assert!(round.authorization_code.contains("900006"));
}

#[tokio::test]
async fn channel_authentication_is_denied_when_retries_run_out() {
    let app = app().await;
    // 111111 answers A to the first question; B is wrong, and two tries are allowed.
    let round = answer_both_rounds(&mut client(&app), "111111", "B").await;
    assert_eq!(round.result(), AuthorizationResult::Denied);
    assert!(round.authorization_code.is_empty());
}

fn question_round(
    round: ChallengeRound,
    trace: Option<ChallengeTrace>,
    answers: Vec<QuestionAnswer>,
) -> CreateQuestionChallengeRequest {
    CreateQuestionChallengeRequest {
        customer: cc("111111"),
        customer_type: CustomerType::Natural.into(),
        round: round.into(),
        transaction_code: "100090".into(),
        data: pse_data(),
        amount: pesos(10_000),
        source_account: "222222".into(),
        trace,
        answers,
        ..Default::default()
    }
}

fn answer_to(question: &ChallengeQuestion, option: &str, answer: &str) -> QuestionAnswer {
    QuestionAnswer {
        question_type: question.r#type.clone(),
        question_id: question.id.clone(),
        question_text: question.text.clone(),
        answer_length: question.answer_length.clone(),
        format: question.format.clone(),
        option_id: option.into(),
        answer: answer.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn question_challenge_rounds_reach_an_authorization_code() {
    let app = app().await;
    let mut client = client(&app);
    let opened = client
        .create_question_challenge(question_round(ChallengeRound::Initial, None, Vec::new()))
        .await
        .expect("open")
        .into_inner();
    assert_eq!(opened.result(), AuthorizationResult::QuestionsPending);
    let code_question = &opened.questions[0];
    assert_eq!(code_question.r#type, "M");
    let code = outbox(&app, "111111").await;

    let second = client
        .create_question_challenge(question_round(
            ChallengeRound::Answer,
            opened.trace,
            vec![answer_to(code_question, "", &code)],
        ))
        .await
        .expect("code round")
        .into_inner();
    assert_eq!(second.result(), AuthorizationResult::QuestionsPending);
    let card_question = &second.questions[0];
    assert_eq!(card_question.options.len(), 2);

    let done = client
        .create_question_challenge(question_round(
            ChallengeRound::Answer,
            second.trace,
            vec![answer_to(card_question, "A", "2580")],
        ))
        .await
        .expect("card round")
        .into_inner();
    assert_eq!(done.result(), AuthorizationResult::Authorized);
    assert!(done.authorization_code.contains("100090"));
    app.assert_not_logged(&[&code]);
}

#[tokio::test]
async fn question_challenge_is_denied_when_retries_run_out() {
    let app = app().await;
    let mut client = client(&app);
    let mut round = client
        .create_question_challenge(question_round(ChallengeRound::Initial, None, Vec::new()))
        .await
        .expect("open")
        .into_inner();
    for _ in 0..3 {
        assert_eq!(round.result(), AuthorizationResult::QuestionsPending);
        let question = round.questions[0].clone();
        round = client
            .create_question_challenge(question_round(
                ChallengeRound::Answer,
                round.trace,
                vec![answer_to(&question, "", "000000")],
            ))
            .await
            .expect("wrong answer")
            .into_inner();
    }
    assert_eq!(round.result(), AuthorizationResult::Denied);
}

// ---- S6, S7: digital enrollment ----------------------------------------------------------------

#[tokio::test]
async fn digital_enrollment_then_its_check_says_already_exists() {
    let app = app().await;
    let mut client = client(&app);
    let check = || ValidateDigitalEnrollmentRequest {
        customer: cc("51901591"),
        ..Default::default()
    };
    client
        .validate_digital_enrollment(check())
        .await
        .expect("may enroll");
    client
        .enroll_digital_user(EnrollDigitalUserRequest {
            customer: cc("51901591"),
            password: "Rosa2025ab".into(),
            ..Default::default()
        })
        .await
        .expect("enroll");
    let enrolled = client
        .validate_digital_enrollment(check())
        .await
        .unwrap_err();
    assert_error(&enrolled, Code::AlreadyExists, "USER_ALREADY_EXISTS");
    assert_eq!(
        enrolled.get_error_details().error_info().unwrap().metadata["provider_code"],
        "00068"
    );
    app.assert_not_logged(&["Rosa2025ab"]);
}

// ---- S8, S9: users and passwords ----------------------------------------------------------------

#[tokio::test]
async fn password_changes_follow_the_policy() {
    let app = app().await;
    let mut client = client(&app);
    let change = |current: &str, new: &str| ChangePasswordRequest {
        customer: cc("38250250"),
        current_password: current.into(),
        new_password: new.into(),
        ..Default::default()
    };
    let cases = [
        (
            "Casa2024ab",
            "38250250",
            Code::InvalidArgument,
            "PASSWORD_EQUALS_ID",
        ),
        (
            "Casa2024ab",
            "Casa2024ab",
            Code::FailedPrecondition,
            "PASSWORD_EQUALS_PREVIOUS",
        ),
        (
            "Casa2024ab",
            "abc",
            Code::InvalidArgument,
            "PASSWORD_LENGTH_INVALID",
        ),
        (
            "Casa2024ab",
            "Casa1234ab",
            Code::InvalidArgument,
            "PASSWORD_REPEATED_OR_CONSECUTIVE",
        ),
        (
            "Casa2024ab",
            "20252026",
            Code::InvalidArgument,
            "PASSWORD_ONLY_DIGITS",
        ),
        (
            "Wrong2024x",
            "Nube2025xy",
            Code::FailedPrecondition,
            "INVALID_CREDENTIALS",
        ),
    ];
    for (current, new, code, expected) in cases {
        let refused = client
            .change_password(change(current, new))
            .await
            .unwrap_err();
        assert_error(&refused, code, expected);
        assert!(!refused.message().contains(new));
    }
    client
        .change_password(change("Casa2024ab", "Nube2025xy"))
        .await
        .expect("a password within the policy");
    app.assert_not_logged(&["Casa2024ab", "Nube2025xy", "Wrong2024x"]);
}

#[tokio::test]
async fn users_are_created_once_and_never_for_unlinkable_customers() {
    let app = app().await;
    let mut client = client(&app);
    let create = |customer: &str| CreateUserRequest {
        customer: cc(customer),
        password: "Rosa2025ab".into(),
        ..Default::default()
    };
    client
        .create_user(create("51901591"))
        .await
        .expect("create");
    let again = client.create_user(create("51901591")).await.unwrap_err();
    assert_error(&again, Code::AlreadyExists, "USER_ALREADY_EXISTS");
    let unlinkable = client.create_user(create("80000001")).await.unwrap_err();
    assert_error(
        &unlinkable,
        Code::FailedPrecondition,
        "CUSTOMER_NOT_LINKABLE",
    );
    client
        .create_user(CreateUserRequest {
            customer: cc("1030"),
            password: "Otra2025cd".into(),
            recovery: true,
            ..Default::default()
        })
        .await
        .expect("recover a locked user's password");
    app.assert_not_logged(&["Rosa2025ab", "Otra2025cd"]);
}

// ---- S10, S11: card secrets ----------------------------------------------------------------------

/// A card check of either kind (enrollment or recovery): both send the same four fields.
macro_rules! card_check {
    ($request:ident: $customer:expr, $card_type:expr, $secret:expr, $last_digits:expr) => {
        $request {
            customer: cc($customer),
            card_type: $card_type.into(),
            card_secret: $secret.into(),
            card_last_digits: $last_digits.into(),
            ..Default::default()
        }
    };
}

#[tokio::test]
async fn card_secrets_are_checked_for_enrollment_and_recovery() {
    let app = app().await;
    let mut client = client(&app);
    client
        .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
            "51901591", CardType::Debit, "4321", "159101"))
        .await
        .expect("right PIN");
    let wrong = client
        .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
            "51901591", CardType::Credit, "999", "159102"))
        .await
        .unwrap_err();
    assert_error(&wrong, Code::FailedPrecondition, "CARD_SECRET_MISMATCH");

    client
        .validate_password_recovery(card_check!(ValidatePasswordRecoveryRequest:
            "1007641", CardType::Debit, "1234", "123456"))
        .await
        .expect("right PIN for recovery");
    let no_user = client
        .validate_password_recovery(card_check!(ValidatePasswordRecoveryRequest:
            "51901591", CardType::Debit, "4321", "159101"))
        .await
        .unwrap_err();
    assert_eq!(no_user.code(), Code::NotFound, "{no_user:?}");
}

// ---- S12, S18: withdrawals -------------------------------------------------------------------------

fn teller() -> Option<InvokerContext> {
    Some(InvokerContext {
        terminal_id: "PDS0059".into(),
        ..Default::default()
    })
}

pub(crate) fn withdrawal(otp: &str, key: &str) -> WithdrawWithOtpRequest {
    WithdrawWithOtpRequest {
        idempotency_key: key.into(),
        invoker: teller(),
        audit_number: "017269".into(),
        service_point_code: "0000000059".into(),
        service_point_name: "MI OFICINA BETTY".into(),
        city_code: "25386".into(),
        city_name: "LA MESA".into(),
        department_code: "25".into(),
        correspondent_account: "83000109863".into(),
        r#type: WithdrawalType::Normal.into(),
        amount: pesos(20_000),
        otp: otp.into(),
        customer_document_number: "1028780657".into(),
    }
}

/// Asks the bank for a withdrawal OTP of 20,000 pesos for the withdrawals customer.
pub(crate) async fn withdrawal_otp<I: Interceptor>(
    client: &mut SecurityServiceClient<InterceptedService<Channel, I>>,
) -> String {
    let issued = client
        .request_withdrawal_otp(RequestWithdrawalOtpRequest {
            invoker: Some(InvokerContext {
                source: "18".into(),
                cust_login_id: "CC1028780657".into(),
                ..Default::default()
            }),
            customer: cc("1028780657"),
            account_id: "26500084997".into(),
            amount: pesos(20_000),
            otc_id: "001".into(),
        })
        .await
        .expect("OTP issued")
        .into_inner();
    assert!(!issued.otp.is_empty());
    issued.otp
}

/// The sandbox's route of S18, as `GET /calls` names it.
const S18_ROUTE: &str = "POST /security-management/v3/withdrawal/otp";

/// How many S18 calls reached the sandbox.
async fn withdrawals_sent(app: &TestApp) -> u64 {
    app.admin_get("/calls").await["bcs"][S18_ROUTE]
        .as_u64()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_withdrawal_otp_is_cashed_once_at_a_correspondent() {
    let app = app().await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;

    let paid = client
        .withdraw_with_otp(withdrawal(&otp, "cash-1"))
        .await
        .expect("cashed")
        .into_inner();
    assert!(!paid.approval_id.is_empty());
    assert_eq!(paid.account_id, "26500084997");
    assert!(paid.tx_id.starts_with("APIF"), "{}", paid.tx_id);
    assert_eq!(paid.tx_id.len(), 20);

    let again = client
        .withdraw_with_otp(withdrawal(&otp, "cash-2"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(localized(&again).contains("UTILIZADA"), "{again:?}");
    app.assert_not_logged(&[&otp]);
}

#[tokio::test]
async fn one_key_withdraws_once_however_often_it_is_sent() {
    let app = app().await;
    let mut client = client(&app);
    let otp = withdrawal_otp(&mut client).await;
    let request = withdrawal(&otp, "withdrawal-42");

    let concurrent = (0..20).map(|_| {
        let mut client = client.clone();
        let request = request.clone();
        async move { client.withdraw_with_otp(request).await }
    });
    let mut answers: Vec<_> = futures::future::join_all(concurrent)
        .await
        .into_iter()
        .map(|answer| answer.expect("every duplicate is answered").into_inner())
        .collect();
    for _ in 0..20 {
        let answer = client.withdraw_with_otp(request.clone()).await;
        answers.push(answer.expect("a repeat replays").into_inner());
    }
    let first = &answers[0];
    assert!(!first.approval_id.is_empty());
    assert!(
        answers.iter().all(|answer| answer == first),
        "different answers under one key"
    );
    assert_eq!(
        withdrawals_sent(&app).await,
        1,
        "one withdrawal reached the bank"
    );

    let mut changed = request.clone();
    changed.audit_number = "017270".into();
    let refused = client.withdraw_with_otp(changed).await.unwrap_err();
    assert_error(&refused, Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(withdrawals_sent(&app).await, 1);
}

/// pasarela again, against `app`'s sandbox, its withdrawals recorded in the ledger `db`;
/// the caller shuts it down.
async fn second_replica(app: &TestApp, db: &TestPostgres) -> pasarela_server::app::Running {
    let mut config = pasarela_server::dev::config_for(&app.sandbox, None).expect("dev config");
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = None;
    shares_ledger(&mut config, db);
    pasarela_server::app::start(config)
        .await
        .expect("second replica starts")
}

/// The security section with the sandbox's token and its idempotency in the ledger `db`.
pub(crate) fn shares_ledger(config: &mut pasarela_server::config::Config, db: &TestPostgres) {
    let security = config.security.as_mut().expect("dev config has security");
    security.access_token = Some(TOKEN.to_owned().into());
    security.idempotency =
        serde_json::from_value(ledger(&[db], "security")).expect("idempotency section");
}

#[tokio::test]
async fn two_replicas_sharing_a_ledger_withdraw_once_with_distinct_tx_ids() {
    let db = TestPostgres::start().await;
    let app = spawn_app_with(|config| shares_ledger(config, &db)).await;
    let replica = second_replica(&app, &db).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", replica.grpc_addr))
        .expect("endpoint")
        .connect_lazy();
    let mut first = client_on(&app, app.channel());
    let second = client_on(&app, channel);

    let otp = withdrawal_otp(&mut first).await;
    let request = withdrawal(&otp, "shared-withdrawal");
    let sends = (0..20).map(|i| {
        let request = request.clone();
        let (mut first, mut second) = (first.clone(), second.clone());
        async move {
            match i % 2 {
                0 => first.withdraw_with_otp(request).await,
                _ => second.withdraw_with_otp(request).await,
            }
        }
    });
    let answers: Vec<_> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|answer| answer.expect("every duplicate is answered").into_inner())
        .collect();
    assert!(answers.iter().all(|answer| answer == &answers[0]));
    assert_eq!(
        withdrawals_sent(&app).await,
        1,
        "one withdrawal for two replicas"
    );

    // Each replica makes its own TxId for a new withdrawal: never the same one.
    let mut tx_ids = vec![answers[0].tx_id.clone()];
    for (i, mut client) in [first.clone(), second.clone()].into_iter().enumerate() {
        let otp = withdrawal_otp(&mut first).await;
        let paid = client
            .withdraw_with_otp(withdrawal(&otp, &format!("replica-{i}")))
            .await
            .expect("cashed")
            .into_inner();
        tx_ids.push(paid.tx_id);
    }
    let distinct: std::collections::HashSet<_> = tx_ids.iter().collect();
    assert_eq!(distinct.len(), tx_ids.len(), "{tx_ids:?}");
    replica.shutdown().await.expect("second replica stops");
}

#[tokio::test]
async fn a_withdrawal_without_an_idempotency_key_never_reaches_the_bank() {
    let app = app().await;
    let mut client = client(&app);
    for key in ["", "with space"] {
        let refused = client
            .withdraw_with_otp(withdrawal("otp-value", key))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            bad_fields(&refused).contains(&"idempotency_key".to_owned()),
            "{refused:?}"
        );
    }
    assert_eq!(withdrawals_sent(&app).await, 0);
}

#[tokio::test]
async fn a_withdrawal_otp_needs_the_source_and_login_headers() {
    let app = app().await;
    let mut client = client(&app);
    let refused = client
        .request_withdrawal_otp(RequestWithdrawalOtpRequest {
            customer: cc("1028780657"),
            account_id: "26500084997".into(),
            amount: pesos(20_000),
            otc_id: "001".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = bad_fields(&refused);
    assert!(fields.contains(&"invoker.source".to_owned()), "{fields:?}");
    assert!(
        fields.contains(&"invoker.cust_login_id".to_owned()),
        "{fields:?}"
    );
}

// ---- S14, S15: channel holds ---------------------------------------------------------------------

fn holds(
    customer: &str,
    filter: HoldFilter,
    page_number: i32,
    page_size: i32,
) -> ListChannelHoldsRequest {
    ListChannelHoldsRequest {
        customer: cc(customer),
        filter: filter.into(),
        page: Some(PageRequest {
            page_size,
            page_number,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn channel_holds_are_paginated_and_filtered() {
    let app = app().await;
    let mut client = client(&app);
    let mut seen = 0;
    for page_number in 1..=3 {
        let page = client
            .list_channel_holds(holds("38250250", HoldFilter::All, page_number, 10))
            .await
            .expect("page")
            .into_inner();
        let info = page.page.unwrap();
        assert_eq!(info.total_items, 25);
        assert_eq!(info.total_pages, 3);
        assert_eq!(info.has_next_page, page_number < 3);
        seen += page.holds.len();
    }
    assert_eq!(seen, 25);

    let locked = client
        .list_channel_holds(holds("38250250", HoldFilter::Locked, 1, 20))
        .await
        .expect("locked")
        .into_inner();
    assert_eq!(locked.page.unwrap().total_items, 13);
    assert!(
        locked
            .holds
            .iter()
            .all(|h| h.status() == HoldStatus::Locked)
    );
    assert!(locked.holds.iter().all(|h| h.hold_time.is_some()));

    let failing = client
        .list_channel_holds(holds("80000004", HoldFilter::All, 1, 20))
        .await
        .unwrap_err();
    assert_eq!(failing.code(), Code::Unavailable, "{failing:?}");
}

#[tokio::test]
async fn a_locked_channel_then_shows_in_the_holds() {
    let app = app().await;
    let mut client = client(&app);
    client
        .set_channel_hold(SetChannelHoldRequest {
            customer: cc("1007641"),
            action: HoldAction::Lock.into(),
            r#type: HoldType::User.into(),
            channel: "015".into(),
            sub_channel: "00".into(),
            ..Default::default()
        })
        .await
        .expect("lock");
    let listed = client
        .list_channel_holds(holds("1007641", HoldFilter::Locked, 1, 20))
        .await
        .expect("holds")
        .into_inner();
    let hold = listed
        .holds
        .iter()
        .find(|hold| hold.channel == "015")
        .expect("the new hold is listed");
    assert_eq!(hold.status(), HoldStatus::Locked);
    assert_eq!(hold.r#type(), HoldType::User);

    let both = client
        .set_channel_hold(SetChannelHoldRequest {
            customer: cc("1007641"),
            action: HoldAction::Lock.into(),
            r#type: HoldType::Product.into(),
            channel: "015".into(),
            sub_channel: "00".into(),
            pseudo_channel: "TODOS".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = bad_fields(&both);
    assert!(fields.contains(&"pseudo_channel".to_owned()), "{fields:?}");
    assert!(fields.contains(&"account_id".to_owned()), "{fields:?}");
}

// ---- validation, the bank's own failures ------------------------------------------------------

#[tokio::test]
async fn invalid_requests_list_every_field_and_never_reach_the_bank() {
    let app = app().await;
    let mut client = client(&app);
    let before = app.admin_get("/calls").await;
    let refused = client
        .change_password(ChangePasswordRequest {
            invoker: Some(InvokerContext {
                terminal_id: "0-7".into(),
                user_mac_address: "11-16-17-81-41-T7".into(),
                ..Default::default()
            }),
            customer: Some(Identification {
                r#type: DocumentType::Unspecified.into(),
                number: String::new(),
            }),
            current_password: String::new(),
            new_password: "Nueva2025ab".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields = bad_fields(&refused);
    for field in [
        "invoker.terminal_id",
        "invoker.user_mac_address",
        "customer.type",
        "customer.number",
        "current_password",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field}: {fields:?}");
    }
    let oversized = client
        .list_channel_holds(holds("38250250", HoldFilter::All, 1, 21))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&oversized), ["page.page_size"]);
    assert_eq!(
        app.admin_get("/calls").await,
        before,
        "no call reached the bank"
    );
    app.assert_not_logged(&["Nueva2025ab"]);
}

#[tokio::test]
async fn the_bank_refusing_pasarelas_credentials_is_not_the_callers_fault() {
    let app = spawn_app_with(|config| {
        let security = config.security.as_mut().expect("security");
        security.access_token = Some(TOKEN.to_owned().into());
        security.client_secret = "not-the-secret".to_owned().into();
    })
    .await;
    let refused = client(&app)
        .validate_digital_enrollment(ValidateDigitalEnrollmentRequest {
            customer: cc("51901591"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&refused, Code::Unavailable, "PROVIDER_AUTH_FAILED");
    assert!(!refused.message().contains("not-the-secret"));
    app.assert_not_logged(&["not-the-secret"]);
}

#[tokio::test]
async fn malformed_answers_are_bad_responses() {
    let app = app().await;
    let mut client = client(&app);
    let faults = [
        json!({ "type": "status", "status": 200, "body": "<html>maintenance</html>", "content_type": "text/html" }),
        json!({ "type": "status", "status": 200 }),
        json!({ "type": "malformed" }),
    ];
    for fault in faults {
        app.admin_send(reqwest::Method::POST,
            "/faults",
            json!({ "provider": "bcs", "path": "/userManagement/v1/Customer", "fault": fault, "times": 1 }),
        )
        .await;
        let refused = client
            .validate_digital_enrollment(ValidateDigitalEnrollmentRequest {
                customer: cc("51901591"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_error(&refused, Code::Internal, "PROVIDER_BAD_RESPONSE");
        assert!(!refused.message().contains("maintenance"));
    }
}

#[tokio::test]
async fn no_secret_sent_by_the_suite_reaches_the_logs() {
    let app = app().await;
    let mut client = client(&app);
    client
        .change_password(ChangePasswordRequest {
            customer: cc("1007641"),
            current_password: "Sol2024mar".into(),
            new_password: "Nube2025xy".into(),
            ..Default::default()
        })
        .await
        .expect("change");
    client
        .generate_otc(GenerateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            ..Default::default()
        })
        .await
        .expect("generate");
    let code = outbox(&app, "1007641").await;
    client
        .validate_otc(ValidateOtcRequest {
            customer: cc("1007641"),
            purpose: "LOGIN".into(),
            code: code.clone(),
            ..Default::default()
        })
        .await
        .expect("validate");
    let logs = app.logs();
    assert!(
        logs.contains("bank answered") && logs.contains("validate_otc"),
        "the bank calls were logged, with their operation"
    );
    let client_secret = app.sandbox.credentials.bcs_client_secret.clone();
    let mut secrets = SECRETS.to_vec();
    secrets.extend([code.as_str(), client_secret.as_str()]);
    app.assert_not_logged(&secrets);
}

/// A document number becomes a path segment of S10, S11 and S14: values that would move the
/// call to another path (dot segments, even percent-encoded, slashes, queries) are refused
/// before anything is sent; a plain one reaches exactly its path.
#[tokio::test]
async fn a_document_number_never_steers_the_banks_path() {
    let app = app().await;
    let mut client = client(&app);
    let hostile = [
        "..", ".", "%2e%2e", "%2E", "a/b", "../x", "..%2f", "a?b", "a#b", "a\\b", "1007641.",
    ];
    for number in hostile {
        app.clear_journal().await;
        let refused = client
            .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
                number, CardType::Debit, "4321", "159101"))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{number:?}");
        assert!(
            bad_fields(&refused).contains(&"customer.number".to_owned()),
            "{number:?}: {:?}",
            bad_fields(&refused)
        );
        let recovery = client
            .validate_password_recovery(card_check!(ValidatePasswordRecoveryRequest:
                number, CardType::Debit, "1234", "123456"))
            .await
            .unwrap_err();
        assert_eq!(recovery.code(), Code::InvalidArgument, "{number:?}");
        assert!(
            app.journal("bcs").await.is_empty(),
            "{number:?}: nothing sent"
        );
    }
    app.clear_journal().await;
    let _ = client
        .validate_enrollment_card(card_check!(ValidateEnrollmentCardRequest:
            "AB-1234", CardType::Debit, "4321", "159101"))
        .await;
    let sent = app.journal("bcs").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["path"],
        "/security-management/v1/customer/AB-1234/validate"
    );
}
