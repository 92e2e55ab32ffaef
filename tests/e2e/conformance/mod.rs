//! Provider conformance: every example block of the three provider specs, copied verbatim
//! into `tests/fixtures/spec/`, against pasarela through its real interfaces (a tonic
//! client -> pasarela -> HTTP -> the sandbox). Response examples are served verbatim by the
//! sandbox and must arrive in the proto fields; request examples must have the shape of
//! what pasarela sends, read from the sandbox's request journal; error examples, served
//! with their documented (or table) status, must map to their documented gRPC code and
//! reason. A completeness test fails when a spec block has no fixture or a fixture no
//! longer matches its spec's text.

mod bcs_errors;
mod bcs_requests;
mod bcs_responses;
mod completeness;
mod daviplata;
mod kiban;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use pasarela::common::v1::{InvokerContext, PageRequest};
use pasarela::security::v1::get_password_status_request::Subject;
use pasarela::security::v1::*;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::support::recurring_payments as davi;
use crate::support::security::{self, assert_error};
use crate::support::{TestApp, body_of, cc, pesos, reason};

// ---- the fixtures --------------------------------------------------------------------------

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec")
}

/// A JSON fixture: where it comes from and the example itself.
struct Fixture {
    spec: String,
    lines: (usize, usize),
    http_status: Option<u16>,
    repaired: bool,
    example: Value,
}

fn fixture(rel: &str) -> Fixture {
    let path = spec_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let raw: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let line = |i: usize| raw["lines"][i].as_u64().expect("a line number") as usize;
    Fixture {
        spec: raw["spec"].as_str().expect("spec").to_owned(),
        lines: (line(0), line(1)),
        http_status: raw["http_status"].as_u64().map(|s| s as u16),
        repaired: !raw["repair"].is_null(),
        example: raw["example"].clone(),
    }
}

/// The example of a fixture.
fn example(rel: &str) -> Value {
    fixture(rel).example
}

/// A text fixture's header (`# spec: FILE lines A-B`) and its verbatim lines.
fn text_fixture(rel: &str) -> (String, (usize, usize), Vec<String>) {
    let text = std::fs::read_to_string(spec_dir().join(rel)).expect("text fixture");
    let mut lines = text.lines();
    let header = lines.next().expect("a header line");
    let rest = header.strip_prefix("# spec: ").expect("a # spec: header");
    let (spec, range) = rest.split_once(" lines ").expect("FILE lines A-B");
    let (a, b) = range.split_once('-').expect("A-B");
    let body = lines
        .filter(|line| !line.starts_with("# repair: "))
        .map(str::to_owned)
        .collect();
    let range = (a.parse().expect("A"), b.parse().expect("B"));
    (spec.to_owned(), range, body)
}

fn spec_lines(spec: &str) -> Vec<String> {
    let path = spec_dir().join("source").join(spec);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{spec}: {e}"));
    text.split('\n').map(str::to_owned).collect()
}

// ---- shapes ----------------------------------------------------------------------------------

/// A JSON value with every scalar replaced by its type, and arrays by the set of their
/// elements' shapes: what "structurally equal" compares.
fn shape(value: &Value) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("boolean"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => {
            let shapes: BTreeSet<String> = items.iter().map(|i| shape(i).to_string()).collect();
            Value::Array(
                shapes
                    .iter()
                    .map(|s| serde_json::from_str(s).expect("a shape"))
                    .collect(),
            )
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

#[track_caller]
fn assert_same_shape(sent: &Value, example: &Value, what: &str) {
    assert_eq!(
        shape(sent),
        shape(example),
        "{what}: pasarela sent {sent:#}\nthe spec's example is {example:#}"
    );
}

#[test]
fn shapes_tell_types_keys_and_nesting_apart() {
    let a = json!({"x": {"amt": 1}, "l": [{"n": "a"}, {"n": "b"}]});
    assert_eq!(
        shape(&a),
        shape(&json!({"x": {"amt": 9}, "l": [{"n": "z"}]}))
    );
    assert_ne!(shape(&a), shape(&json!({"x": {"amt": "1"}, "l": []})));
    assert_ne!(
        shape(&a),
        shape(&json!({"x": {"amt": 1, "more": 1}, "l": [{"n": "a"}]}))
    );
    assert_ne!(
        shape(&a),
        shape(&json!({"x": {"Amt": 1}, "l": [{"n": "a"}]}))
    );
}

// ---- the journal -------------------------------------------------------------------------------

/// The names of a query string (`a=1&b=2` -> a, b), as sent.
fn query_names(query: &str) -> BTreeSet<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split('=').next().unwrap_or_default().to_owned())
        .collect()
}

/// The header names of a call, lower case.
fn header_names(call: &Value) -> BTreeSet<String> {
    call["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| pair[0].as_str().expect("a name").to_ascii_lowercase())
        .collect()
}

/// The header names of a Postman header list fixture (`<input ...>\tNAME\tVALUE` rows, or
/// `<input ...> NAME\tVALUE`), lower case.
fn fixture_header_names(rel: &str) -> BTreeSet<String> {
    let (_, _, body) = text_fixture(rel);
    body.iter()
        .filter_map(|line| line.strip_prefix("<input checked=\"\" type=\"checkbox\"/>"))
        .map(|row| {
            let row = row.trim_start();
            row.split('\t')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .collect()
}

// ---- Banco Caja Social: the operations --------------------------------------------------------

/// The sandbox paths of S1-S19, by operation, for serving an example on one.
const BCS_PATHS: &[(&str, &str)] = &[
    ("s1", "/user/password/status"),
    ("s2", "/securityManagement/V1/generateOTC"),
    ("s3", "/securityManagement/V3/generateOTC"),
    ("s4", "/securityManagement/V1/validateOTC"),
    ("s5", "/retoManagement/v1/Customer"),
    ("s6", "/userManagement/v1/Customer"),
    ("s7", "/userManagement/v1/Customer"),
    ("s8", "/user-management/v1/customer"),
    ("s9", "/security-management/v1/customer"),
    ("s10", "/security-management/v1/customer/51901591/validate"),
    ("s11", "/security-management/v1/customer/1007641/password"),
    ("s12", "/security-management/v1/withdrawal/otp"),
    ("s13", "/security-management/v1/customer/password/status"),
    ("s14", "/security-management/v1/channelholds/38250250"),
    ("s15", "/security-management/v1/channelholds"),
    ("s16", "/reto-management/v1/authentication-level"),
    ("s17", "/reto-management/v1/authentication-channel"),
    ("s18", "/security-management/v3/withdrawal/otp"),
    ("s19", "/reto-management/v2/customer"),
];

fn bcs_path(op: &str) -> &'static str {
    BCS_PATHS
        .iter()
        .find(|(name, _)| *name == op)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no operation {op}"))
}

/// The next call of `op` is answered with `status` and `body`, verbatim.
async fn serve(app: &TestApp, op: &str, status: u16, body: &Value) {
    app.inject_once(
        "bcs",
        bcs_path(op),
        json!({ "type": "status", "status": status, "body": body }),
    )
    .await;
}

fn transaction_data() -> Vec<TransactionData> {
    [
        ("NOMBRE_COMERCIO", "COLEGIO JONATHAN SWIFT"),
        ("TERMINAL_COMERCIO", "5555555555555"),
        ("CODIGO_CONVENIO", "PSE"),
    ]
    .into_iter()
    .map(|(name, value)| TransactionData {
        name: name.into(),
        value: value.into(),
    })
    .collect()
}

fn password_status() -> GetPasswordStatusRequest {
    GetPasswordStatusRequest {
        transaction_id: "4835799410".into(),
        customer_type: CustomerType::Natural.into(),
        subject: Some(Subject::Customer(cc("1007641").expect("a document"))),
        ..Default::default()
    }
}

fn withdrawal_otp_request() -> RequestWithdrawalOtpRequest {
    RequestWithdrawalOtpRequest {
        invoker: Some(InvokerContext {
            source: "18".into(),
            cust_login_id: "CC1028780657".into(),
            ..Default::default()
        }),
        customer: cc("1028780657"),
        account_id: "26500084997".into(),
        amount: pesos(20_000),
        otc_id: "001".into(),
    }
}

fn password_status_update() -> UpdatePasswordStatusRequest {
    UpdatePasswordStatusRequest {
        customer: cc("1007641"),
        user: "JPEREZ".into(),
        status: PasswordStatus::Active.into(),
        ..Default::default()
    }
}

fn holds_page() -> ListChannelHoldsRequest {
    ListChannelHoldsRequest {
        customer: cc("38250250"),
        filter: HoldFilter::All.into(),
        page: Some(PageRequest {
            page_size: 20,
            page_number: 1,
        }),
        ..Default::default()
    }
}

fn hold_change() -> SetChannelHoldRequest {
    SetChannelHoldRequest {
        customer: cc("38250250"),
        action: HoldAction::Unlock.into(),
        r#type: HoldType::Product.into(),
        channel: "007".into(),
        sub_channel: "00".into(),
        account_id: "1354164141".into(),
        // The auditing user and branch are the identity's (the example's `INTERNET`,
        // `321102` would be another's): left empty, the wire takes them from it.
        ..Default::default()
    }
}

fn authentication_level() -> GetAuthenticationLevelRequest {
    GetAuthenticationLevelRequest {
        customer: cc("1030"),
        adviser: cc("1025"),
        request_number: "257896".into(),
        transaction_request_id: "101261".into(),
        auth_system: "SIEBEL".into(),
        working_day_frame: "N".into(),
        ..Default::default()
    }
}

fn channel_round() -> AuthenticateChannelRequest {
    AuthenticateChannelRequest {
        customer: cc("51901591"),
        person: Some(PersonInfo {
            first_name: "ROSA".into(),
            middle_name: "GRICELDA".into(),
            last_name: "PEREZ".into(),
            second_last_name: "GOMEZ".into(),
            r#type: CustomerType::Natural.into(),
        }),
        transaction_code: "API429".into(),
        transaction_request_id: "900006".into(),
        request_number: "1234".into(),
        request_type: "1".into(),
        working_day_frame: "N".into(),
        city_id: "25386".into(),
        product_id: "1".into(),
        r#type: "R".into(),
        trace: Some(ChallengeTrace {
            iteration: 4,
            retry: 1,
            ..Default::default()
        }),
        answers: vec![ChannelQuestionAnswer {
            r#type: "S".into(),
            code: "202010081614324767771".into(),
            text: "Usted como titular de su tarjeta debito tiene asignada una tarjeta".into(),
            help: "AYUDA".into(),
            answer_length: 2,
            format: "N".into(),
            answers: vec![ChannelAnswer {
                status_code: "A".into(),
                value: "SI".into(),
            }],
        }],
        ..Default::default()
    }
}

fn question_round(
    round: ChallengeRound,
    answer: Option<QuestionAnswer>,
) -> CreateQuestionChallengeRequest {
    CreateQuestionChallengeRequest {
        customer: cc("111111"),
        customer_type: CustomerType::Natural.into(),
        round: round.into(),
        transaction_code: "100090".into(),
        data: transaction_data(),
        amount: pesos(10_000),
        source_account: "222222".into(),
        trace: answer.is_some().then_some(ChallengeTrace {
            iteration: 2,
            retry: 1,
            ..Default::default()
        }),
        answers: answer.into_iter().collect(),
        ..Default::default()
    }
}

fn code_answer() -> QuestionAnswer {
    QuestionAnswer {
        question_type: "M".into(),
        question_id: "202410181111029014581".into(),
        question_text: "Por favor ingrese el código de 6 dígitos".into(),
        answer_length: "6".into(),
        answer: "5F306FE167BF6FB2F805B0BFF3E8C020".into(),
        ..Default::default()
    }
}

fn card_answer() -> QuestionAnswer {
    QuestionAnswer {
        question_type: "SM".into(),
        question_id: "202410181112571944582".into(),
        question_text: "¿Usted tiene tarjeta débito y es titular de la tarjeta?".into(),
        answer_length: "4".into(),
        option_id: "A".into(),
        answer: "A8E6803C466D8F68B9856C0EE817D595".into(),
        ..Default::default()
    }
}

/// Calls `op` with a valid request; only its outcome matters (the error examples).
async fn call_bcs(app: &TestApp, op: &str) -> Result<(), tonic::Status> {
    let mut client = security::client(app);
    let customer = || cc("1007641");
    match op {
        "s1" => client
            .get_password_status(password_status())
            .await
            .map(drop),
        "s2" => client
            .generate_otc(GenerateOtcRequest {
                customer: customer(),
                purpose: "LOGIN".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s3" => client
            .generate_otc_v3(GenerateOtcV3Request {
                customer: customer(),
                purpose: "LOGIN".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s4" => client
            .validate_otc(ValidateOtcRequest {
                customer: customer(),
                purpose: "LOGIN".into(),
                code: "123456".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s5" => client
            .create_transaction_challenge(CreateTransactionChallengeRequest {
                customer: cc("111111"),
                customer_type: CustomerType::Natural.into(),
                transaction_code: "100090".into(),
                data: transaction_data(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s6" => client
            .enroll_digital_user(EnrollDigitalUserRequest {
                customer: cc("51901591"),
                password: "Rosa2025ab".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s7" => client
            .validate_digital_enrollment(ValidateDigitalEnrollmentRequest {
                customer: cc("51901591"),
                ..Default::default()
            })
            .await
            .map(drop),
        "s8" => client
            .change_password(ChangePasswordRequest {
                customer: cc("38250250"),
                current_password: "Casa2024ab".into(),
                new_password: "Nube2025xy".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s9" => client
            .create_user(CreateUserRequest {
                customer: cc("51901591"),
                password: "Rosa2025ab".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s10" => client
            .validate_enrollment_card(ValidateEnrollmentCardRequest {
                customer: cc("51901591"),
                card_type: CardType::Debit.into(),
                card_secret: "4321".into(),
                card_last_digits: "159101".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s11" => client
            .validate_password_recovery(ValidatePasswordRecoveryRequest {
                customer: customer(),
                card_type: CardType::Debit.into(),
                card_secret: "1234".into(),
                card_last_digits: "123456".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "s12" => client
            .request_withdrawal_otp(withdrawal_otp_request())
            .await
            .map(drop),
        "s13" => client
            .update_password_status(password_status_update())
            .await
            .map(drop),
        "s14" => client.list_channel_holds(holds_page()).await.map(drop),
        "s15" => client.set_channel_hold(hold_change()).await.map(drop),
        "s16" => client
            .get_authentication_level(authentication_level())
            .await
            .map(drop),
        "s17" => client.authenticate_channel(channel_round()).await.map(drop),
        "s18" => client
            .withdraw_with_otp(security::withdrawal(
                "455667",
                &uuid::Uuid::new_v4().to_string(),
            ))
            .await
            .map(drop),
        "s19" => client
            .create_question_challenge(question_round(ChallengeRound::Initial, None))
            .await
            .map(drop),
        other => panic!("no operation {other}"),
    }
}
