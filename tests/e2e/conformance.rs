//! Provider conformance: every example block of the three provider specs, copied verbatim
//! into `tests/fixtures/spec/`, against pasarela through its real interfaces (a tonic
//! client -> pasarela -> HTTP -> the sandbox). Response examples are served verbatim by the
//! sandbox and must arrive in the proto fields; request examples must have the shape of
//! what pasarela sends, read from the sandbox's request journal; error examples, served
//! with their documented (or table) status, must map to their documented gRPC code and
//! reason. A completeness test fails when a spec block has no fixture or a fixture no
//! longer matches its spec's text.

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

use crate::recurring_payments as davi;
use crate::security::{self, assert_error};
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

// ---- completeness: every block of the specs has its fixture ---------------------------------

/// One row of INDEX.md's table 1: spec file, line range, fixture.
struct IndexRow {
    spec: String,
    lines: (usize, usize),
    fixture: String,
}

fn index_rows() -> Vec<IndexRow> {
    let index = std::fs::read_to_string(spec_dir().join("INDEX.md")).expect("INDEX.md");
    let table = index
        .split("## 1.")
        .nth(1)
        .and_then(|rest| rest.split("## 2.").next())
        .expect("INDEX.md has a table 1");
    table
        .lines()
        .filter(|line| line.starts_with("| 00"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (a, b) = cells[2].split_once('-').expect("a line range");
            IndexRow {
                spec: cells[1].to_owned(),
                lines: (
                    a.parse().expect("first line"),
                    b.parse().expect("last line"),
                ),
                fixture: cells[6].trim_matches('`').to_owned(),
            }
        })
        .collect()
}

/// The repairs of `repairs.tsv`, by fixture: (operation, line, found, replacement).
type Repair = (String, usize, String, String);

fn repairs() -> BTreeMap<String, Vec<Repair>> {
    let text = std::fs::read_to_string(spec_dir().join("repairs.tsv")).expect("repairs.tsv");
    let mut repairs: BTreeMap<String, Vec<Repair>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cells: Vec<&str> = line.split('\t').collect();
        let op = (
            cells[1].to_owned(),
            cells[2].parse().expect("a line number"),
            cells.get(3).unwrap_or(&"").to_string(),
            cells.get(4).unwrap_or(&"").to_string(),
        );
        repairs.entry(cells[0].to_owned()).or_default().push(op);
    }
    repairs
}

/// Lines `a..=b` of `spec` (numbered), with `ops` applied.
fn repaired_block(spec: &[String], (a, b): (usize, usize), ops: &[Repair]) -> String {
    let mut block: Vec<(usize, String)> = (a..=b).map(|n| (n, spec[n - 1].clone())).collect();
    for (op, n, found, replacement) in ops {
        let i = block
            .iter()
            .position(|(m, _)| m == n)
            .unwrap_or_else(|| panic!("repair of line {n}: not in {a}-{b}"));
        match op.as_str() {
            "drop" => {
                block.remove(i);
            }
            "sub" => {
                assert!(block[i].1.contains(found.as_str()), "line {n}: {found:?}");
                block[i].1 = block[i].1.replacen(found.as_str(), replacement, 1);
            }
            "join" => {
                let joined = block.remove(i).1;
                block[i - 1].1.push_str(joined.trim_start());
            }
            other => panic!("unknown repair {other}"),
        }
    }
    block
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a spec line looks like part of an example: a JSON object opening, a URL with a
/// query string, a Postman header row, a form-encoded body.
fn looks_like_example(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with('{')
        || trimmed.ends_with('{')
        || (trimmed.contains("://") && trimmed.contains('?'))
        || trimmed.starts_with("<input checked")
        || trimmed == "KEY\tVALUE"
        || (trimmed.contains('=') && trimmed.contains('&') && !trimmed.contains(' '))
}

#[test]
fn spec_fixtures_cover_every_example_block() {
    let rows = index_rows();
    assert!(
        rows.len() >= 60,
        "INDEX.md table 1 read: {} rows",
        rows.len()
    );
    let repairs = repairs();
    let mut problems = Vec::new();
    for row in &rows {
        let spec = spec_lines(&row.spec);
        if row.fixture.ends_with(".json") {
            let fx = fixture(&row.fixture);
            if (fx.spec.as_str(), fx.lines) != (row.spec.as_str(), row.lines) {
                problems.push(format!(
                    "{}: spec or lines differ from INDEX.md",
                    row.fixture
                ));
            }
            let ops = repairs.get(&row.fixture).cloned().unwrap_or_default();
            if fx.repaired == ops.is_empty() {
                problems.push(format!("{}: repair and repairs.tsv disagree", row.fixture));
            }
            let text = repaired_block(&spec, row.lines, &ops);
            match serde_json::from_str::<Value>(&text) {
                Ok(value) if value == fx.example => {}
                Ok(_) => problems.push(format!("{}: differs from its spec lines", row.fixture)),
                Err(e) => problems.push(format!("{}: spec lines do not parse: {e}", row.fixture)),
            }
        } else {
            let (spec_name, range, body) = text_fixture(&row.fixture);
            let expected: Vec<String> = spec[row.lines.0 - 1..row.lines.1].to_vec();
            if (spec_name.as_str(), range) != (row.spec.as_str(), row.lines) || body != expected {
                problems.push(format!("{}: not its spec lines verbatim", row.fixture));
            }
        }
    }
    // Every example-looking line of a spec lies in some fixture's range.
    for spec_name in rows.iter().map(|r| r.spec.clone()).collect::<BTreeSet<_>>() {
        let ranges: Vec<(usize, usize)> = rows
            .iter()
            .filter(|r| r.spec == spec_name)
            .map(|r| r.lines)
            .collect();
        for n in uncovered(&spec_lines(&spec_name), &ranges) {
            problems.push(format!("{spec_name} line {n}: an example with no fixture"));
        }
    }
    // Every fixture file is a row of the index, and no row names a missing one.
    let listed: BTreeSet<String> = rows.iter().map(|r| r.fixture.clone()).collect();
    for provider in ["bcs", "kiban", "daviplata"] {
        for entry in std::fs::read_dir(spec_dir().join(provider)).expect("fixture folder") {
            let name = format!(
                "{provider}/{}",
                entry.expect("entry").file_name().to_string_lossy()
            );
            if !listed.contains(&name) {
                problems.push(format!("{name}: not in INDEX.md"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The numbers of the example-looking lines of `spec` that no range covers.
fn uncovered(spec: &[String], ranges: &[(usize, usize)]) -> Vec<usize> {
    (1..=spec.len())
        .filter(|n| looks_like_example(&spec[n - 1]))
        .filter(|n| !ranges.iter().any(|(a, b)| (*a..=*b).contains(n)))
        .collect()
}

#[test]
fn the_completeness_check_can_fail() {
    // Without the S1 answer's fixture its block is reported; one line off, it no longer
    // parses as the fixture's example.
    let spec = spec_lines("000_6afe8551a274a285.txt");
    let others: Vec<(usize, usize)> = index_rows()
        .iter()
        .filter(|r| r.spec == "000_6afe8551a274a285.txt" && r.lines != (131, 143))
        .map(|r| r.lines)
        .collect();
    let lost = uncovered(&spec, &others);
    assert_eq!(lost.first(), Some(&131), "{lost:?}");
    assert!(lost.iter().all(|n| (131..=143).contains(n)), "{lost:?}");
    let shifted = repaired_block(&spec, (132, 143), &[]);
    assert!(serde_json::from_str::<Value>(&shifted).is_err());
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

// ---- Banco Caja Social: response examples --------------------------------------------------------

/// The HTTP status an example is served with: its own, else 200 (the spec prints none for
/// S14, S15, S18, S19; any 2xx is a success to pasarela).
fn success_status(rel: &str) -> u16 {
    fixture(rel).http_status.unwrap_or(200)
}

async fn serve_example(app: &TestApp, op: &str, rel: &str) {
    serve(app, op, success_status(rel), &example(rel)).await;
}

#[tokio::test]
async fn bcs_response_examples_reach_the_proto_fields() {
    let app = security::app().await;
    let mut client = security::client(&app);

    serve_example(&app, "s1", "bcs/s1-password-status-response.json").await;
    let s1 = client
        .get_password_status(password_status())
        .await
        .expect("S1")
        .into_inner();
    assert_eq!(s1.status(), PasswordStatus::Active);
    assert_eq!(s1.status_description, "Activo");
    let contact = s1.contact.expect("contact data");
    assert_eq!(
        (contact.cell_phone.as_str(), contact.email.as_str()),
        ("3175137626", "s9m3b9o7@bancocajasocial.com")
    );

    for (op, rel) in [
        ("s8", "bcs/s8-change-password-response.json"),
        ("s9", "bcs/s9-create-user-response.json"),
        ("s10", "bcs/s10-user-validation-response.json"),
        ("s11", "bcs/s11-recover-password-validation-response.json"),
        ("s15", "bcs/s15-lock-unlock-channel-response.json"),
    ] {
        serve_example(&app, op, rel).await;
        call_bcs(&app, op)
            .await
            .unwrap_or_else(|e| panic!("{rel}: {e:?}"));
    }

    serve_example(&app, "s12", "bcs/s12-withdrawal-otp-response.json").await;
    let s12 = client
        .request_withdrawal_otp(withdrawal_otp_request())
        .await
        .expect("S12")
        .into_inner();
    assert_eq!(s12.otp, "455667");

    serve_example(&app, "s13", "bcs/s13-password-status-update-response.json").await;
    let s13 = client
        .update_password_status(password_status_update())
        .await
        .expect("S13")
        .into_inner();
    assert_eq!(s13.description, "Cambio estado clave de usuario Exitosa.");
    // 2023-06-23 12:57:48.941 in Bogotá (UTC-5).
    let effective = s13.effective_time.expect("endDt");
    assert_eq!(
        (effective.seconds, effective.nanos),
        (1_687_543_068, 941_000_000)
    );

    serve_example(&app, "s16", "bcs/s16-authentication-level-response.json").await;
    let s16 = client
        .get_authentication_level(authentication_level())
        .await
        .expect("S16")
        .into_inner();
    assert_eq!(s16.level, 3);
    assert_eq!(s16.description, "CANCELACI¿¿N TARJETA CR¿¿DITO");
    assert_eq!(
        (
            s16.request_number.as_str(),
            s16.transaction_request_id.as_str()
        ),
        ("257896", "101261")
    );

    serve_example(&app, "s17", "bcs/s17-authentication-channel-response.json").await;
    let s17 = client
        .authenticate_channel(channel_round())
        .await
        .expect("S17")
        .into_inner();
    assert_eq!(s17.result(), AuthorizationResult::Authorized);
    assert_eq!(s17.authorization_value, "SI");
    assert!(
        s17.authorization_code
            .starts_with("23F3D2C7BE98187C6D8F417AE243D0DCCE2DFBF0900006API429")
    );
    assert_eq!(s17.trace, Some(trace_of(0, 0)));
    let question = &s17.questions[0];
    assert_eq!(
        (question.r#type.as_str(), question.code.as_str()),
        ("S", "202007161835353254834")
    );
    assert_eq!((question.answer_length, question.format.as_str()), (2, "N"));
    assert_eq!(
        question.options[0],
        ChannelAnswerOption {
            status_code: "A".into(),
            text: "SI".into()
        }
    );

    serve_example(&app, "s18", "bcs/s18-retiro-otp-response.json").await;
    let s18 = client
        .withdraw_with_otp(security::withdrawal("455667", "conformance-s18"))
        .await
        .expect("S18")
        .into_inner();
    assert_eq!(s18.approval_id, "224671");
    assert_eq!(
        (s18.account_id.as_str(), s18.account_type.as_str()),
        ("26500084997", "AHORROS")
    );
}

#[tokio::test]
async fn the_s14_example_lists_both_holds_whatever_its_total_says() {
    let app = security::app().await;
    serve_example(&app, "s14", "bcs/s14-consult-channel-response.json").await;
    let page = security::client(&app)
        .list_channel_holds(holds_page())
        .await
        .expect("S14")
        .into_inner();
    assert_eq!(page.holds.len(), 2);
    let info = page.page.expect("page info");
    assert_eq!(
        info.total_items, 2,
        "totalRecords \"0000\" with two records: {info:?}"
    );
    assert!(!info.has_next_page);
    let first = &page.holds[0];
    assert_eq!(
        (first.channel.as_str(), first.sub_channel.as_str()),
        ("007", "00")
    );
    // The example swaps type and status against the table: Product is the type.
    assert_eq!(
        (first.r#type(), first.status()),
        (HoldType::Product, HoldStatus::Unlocked)
    );
    assert_eq!(
        (
            first.account_id.as_str(),
            first.user.as_str(),
            first.branch_id.as_str()
        ),
        ("1354164141", "INTERNET", "321102")
    );
    // 2024-05-20 11.24.21 AM in Bogotá (UTC-5).
    assert_eq!(
        first.hold_time.as_ref().map(|t| t.seconds),
        Some(1_716_222_261)
    );
    let release = first.release.as_ref().expect("released");
    assert_eq!(release.user, "INTERNET");
    assert!(
        page.holds[1].release.is_none(),
        "an empty unblockingInfo is no release"
    );
    assert_eq!(page.holds[1].channel, "015");
}

#[tokio::test]
async fn one_odd_hold_does_not_fail_an_s14_page() {
    let app = security::app().await;
    let mut odd = example("bcs/s14-consult-channel-response.json");
    odd["trnSrcInfo"]["blockingInfo"][0]["type"] = json!("Suspended");
    odd["trnSrcInfo"]["blockingInfo"][0]["status"] = json!("Pending");
    odd["trnSrcInfo"]["blockingInfo"][1]["establishDt"] = json!("07/05/2024 08:44");
    serve(&app, "s14", 200, &odd).await;
    let page = security::client(&app)
        .list_channel_holds(holds_page())
        .await
        .expect("S14")
        .into_inner();
    assert_eq!(page.holds.len(), 2);
    assert_eq!(
        (page.holds[0].r#type(), page.holds[0].status()),
        (HoldType::Unspecified, HoldStatus::Unspecified)
    );
    assert_eq!(
        page.holds[0].channel, "007",
        "the rest of the odd hold is kept"
    );
    assert!(
        page.holds[1].hold_time.is_none(),
        "an unreadable date is left out"
    );
    assert_eq!(
        (page.holds[1].r#type(), page.holds[1].status()),
        (HoldType::Product, HoldStatus::Unlocked)
    );
}

#[tokio::test]
async fn an_unknown_s1_status_keeps_the_contact_data() {
    let app = security::app().await;
    let mut odd = example("bcs/s1-password-status-response.json");
    odd["custPswdInfo"] = json!({ "pswdStatus": "7", "desc": "Pendiente" });
    serve(&app, "s1", 200, &odd).await;
    let s1 = security::client(&app)
        .get_password_status(password_status())
        .await
        .expect("S1")
        .into_inner();
    assert_eq!(s1.status(), PasswordStatus::Unspecified);
    assert_eq!(s1.status_description, "Pendiente");
    assert_eq!(s1.contact.expect("contact").cell_phone, "3175137626");
}

#[tokio::test]
async fn s19_response_examples_reach_the_proto_fields() {
    let app = security::app().await;
    let first = s19_round(&app, "bcs/s19-create-challenge-v2-response.json").await;
    assert_eq!(first.result(), AuthorizationResult::QuestionsPending);
    assert_eq!(
        (
            first.authorization_value.as_str(),
            first.authorization_code.as_str()
        ),
        ("TV", "")
    );
    assert_eq!(first.trace, Some(trace_of(2, 1)));
    let code = &first.questions[0];
    assert_eq!(
        (code.r#type.as_str(), code.id.as_str()),
        ("M", "202410181111029014581")
    );
    assert!(
        code.text
            .starts_with("Por favor ingrese el código de 6 dígitos")
    );
    assert_eq!(
        (
            code.answer_length.as_str(),
            code.format.as_str(),
            code.help.as_str()
        ),
        ("6", "N", "")
    );
    assert!(
        code.options.is_empty(),
        "an open question's placeholder option is no option"
    );

    let second = s19_round(&app, "bcs/s19-create-challenge-v2-response-2.json").await;
    assert_eq!(second.trace, Some(trace_of(3, 1)));
    let card = &second.questions[0];
    assert_eq!(card.r#type, "SM");
    let options: Vec<(&str, &str)> = card
        .options
        .iter()
        .map(|o| (o.id.as_str(), o.text.as_str()))
        .collect();
    assert_eq!(
        options,
        [
            ("A", "Sí tengo tarjeta débito"),
            ("B", "No tengo tarjeta débito")
        ]
    );

    let third = s19_round(&app, "bcs/s19-create-challenge-v2-response-3.json").await;
    assert_eq!(third.result(), AuthorizationResult::Authorized);
    assert_eq!(
        third.authorization_code,
        "13581DA3A42EF77CA4ED35BA7BD022E8D6B480F5100090APII427032263281789 20241018111456456"
    );
    assert!(third.trace.is_none() && third.questions.is_empty());
}

/// A trace as the bank wrote it in digits: the numbers and the same text.
fn trace_of(iteration: i32, retry: i32) -> ChallengeTrace {
    ChallengeTrace {
        iteration,
        retry,
        iteration_text: iteration.to_string(),
        retry_text: retry.to_string(),
    }
}

#[tokio::test]
async fn s19_trace_values_are_text_kept_and_sent_back_as_written() {
    // S19's table: trace.*.value is a String of up to 20 characters, not a counter.
    let app = security::app().await;
    let mut body = example("bcs/s19-create-challenge-v2-response.json");
    body["trace"]["iteration"]["value"] = json!("IT-0002");
    body["trace"]["retry"]["value"] = json!("R1");
    serve(&app, "s19", 200, &body).await;
    let first = security::client(&app)
        .create_question_challenge(question_round(ChallengeRound::Initial, None))
        .await
        .expect("a trace that is no number is still an answer")
        .into_inner();
    let trace = first.trace.expect("a trace");
    assert_eq!(
        (trace.iteration_text.as_str(), trace.retry_text.as_str()),
        ("IT-0002", "R1")
    );
    assert_eq!((trace.iteration, trace.retry), (0, 0), "not numbers");

    let mut next = question_round(ChallengeRound::Answer, Some(code_answer()));
    next.trace = Some(trace);
    let _ = security::client(&app).create_question_challenge(next).await;
    let sent = body_of(&app.last_call("bcs", "POST", bcs_path("s19")).await);
    assert_eq!(sent["trace"]["iteration"]["value"], "IT-0002", "{sent}");
    assert_eq!(sent["trace"]["retry"]["value"], "R1", "{sent}");
}

/// An initial S19 round answered with the example `rel`, verbatim.
async fn s19_round(app: &TestApp, rel: &str) -> CreateQuestionChallengeResponse {
    serve_example(app, "s19", rel).await;
    security::client(app)
        .create_question_challenge(question_round(ChallengeRound::Initial, None))
        .await
        .unwrap_or_else(|e| panic!("{rel}: {e:?}"))
        .into_inner()
}

// ---- Banco Caja Social: request examples ------------------------------------------------------

#[tokio::test]
async fn bcs_query_examples_have_the_names_pasarela_sends() {
    let app = security::app().await;
    let mut client = security::client(&app);
    let by_alias = GetPasswordStatusRequest {
        subject: Some(Subject::UserAlias("ALIAS8985".into())),
        ..password_status()
    };
    for (rel, request) in [
        ("bcs/s1-password-status-request.txt", password_status()),
        ("bcs/s1-password-status-request-2.txt", by_alias),
    ] {
        let _ = client.get_password_status(request).await;
        let call = app.last_call("bcs", "GET", bcs_path("s1")).await;
        let (_, _, body) = text_fixture(rel);
        let url = &body[0];
        let query = url.split_once('?').expect("a query string").1;
        assert_eq!(
            query_names(call["query"].as_str().expect("query")),
            query_names(query),
            "{rel}"
        );
    }
}

#[tokio::test]
async fn bcs_request_examples_have_the_shape_pasarela_sends() {
    let app = security::app().await;
    for (op, rel) in [
        ("s12", "bcs/s12-withdrawal-otp-request.json"),
        ("s13", "bcs/s13-password-status-update-request.json"),
        ("s15", "bcs/s15-lock-unlock-channel-request.json"),
        ("s16", "bcs/s16-authentication-level-request.json"),
        ("s17", "bcs/s17-authentication-channel-request.json"),
        ("s18", "bcs/s18-retiro-otp-request.json"),
    ] {
        let _ = call_bcs(&app, op).await;
        let call = app.last_call("bcs", "POST", bcs_path(op)).await;
        assert_same_shape(&body_of(&call), &example(rel), rel);
    }
}

#[tokio::test]
async fn s19_request_examples_have_the_shape_pasarela_sends() {
    let app = security::app().await;
    let mut client = security::client(&app);
    for (rel, request) in [
        (
            "bcs/s19-create-challenge-v2-request.json",
            question_round(ChallengeRound::Initial, None),
        ),
        (
            "bcs/s19-create-challenge-v2-request-2.json",
            question_round(ChallengeRound::Answer, Some(code_answer())),
        ),
        (
            "bcs/s19-create-challenge-v2-request-3.json",
            question_round(ChallengeRound::Answer, Some(card_answer())),
        ),
    ] {
        let _ = client.create_question_challenge(request).await;
        let call = app.last_call("bcs", "POST", bcs_path("s19")).await;
        assert_same_shape(&body_of(&call), &example(rel), rel);
    }
}

#[tokio::test]
async fn an_s19_answer_may_leave_its_value_out() {
    let app = security::app().await;
    let open_option = QuestionAnswer {
        answer: String::new(),
        option_id: "B".into(),
        ..card_answer()
    };
    let _ = security::client(&app)
        .create_question_challenge(question_round(ChallengeRound::Answer, Some(open_option)))
        .await;
    let call = app.last_call("bcs", "POST", bcs_path("s19")).await;
    let answer = &body_of(&call)["questionList"][0]["question"]["answer"];
    assert_eq!(
        answer,
        &json!({ "id": "B" }),
        "the table's answer.value is optional"
    );
}

// ---- Banco Caja Social: error examples -----------------------------------------------------------

/// Each error example: fixture, operation, the status it is served with when the fixture
/// has none (and why), the gRPC code and reason pasarela documents for it.
const BCS_ERRORS: &[(&str, &str, u16, Code, &str)] = &[
    // S1 prints no error table; a missing user answers 404 (docs/spec-decisions.md).
    (
        "bcs/s1-password-status-error-32-oud.json",
        "s1",
        404,
        Code::NotFound,
        "USER_NOT_FOUND",
    ),
    // S2 and S4: code 10 is in no table; their tables (lines 261, 459) give 400 to BDA refusals.
    (
        "bcs/s2-generate-otc-v1-error-10-bda.json",
        "s2",
        400,
        Code::FailedPrecondition,
        "OTC_REJECTED",
    ),
    // S3: business errors travel with 206 (table line 366).
    (
        "bcs/s3-generate-otc-v3-error-10-bda.json",
        "s3",
        206,
        Code::FailedPrecondition,
        "OTC_REJECTED",
    ),
    (
        "bcs/s4-validate-otc-error-10-bda.json",
        "s4",
        400,
        Code::FailedPrecondition,
        "OTC_REJECTED",
    ),
    // S5-S7: "All business validation errors ... in this code" is 500 (lines 563, 662, 761).
    (
        "bcs/s5-create-challenge-error-20005-rgn.json",
        "s5",
        500,
        Code::InvalidArgument,
        "TRANSACTION_DATA_INVALID",
    ),
    (
        "bcs/s6-digital-enrollment-error-hv-sta.json",
        "s6",
        500,
        Code::FailedPrecondition,
        "HASH_VALIDATION_FAILED",
    ),
    (
        "bcs/s7-validate-digital-enrollment-error-00068-oud.json",
        "s7",
        500,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    // S8: 1005 is in no table; the table's password refusals are 400 (lines 850-856).
    (
        "bcs/s8-change-password-error-1005-oud.json",
        "s8",
        400,
        Code::FailedPrecondition,
        "PASSWORD_LOCKED",
    ),
    (
        "bcs/s9-create-user-error-400-00068-oud.json",
        "s9",
        400,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    (
        "bcs/s10-user-validation-error-400-00068-oud.json",
        "s10",
        400,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    (
        "bcs/s11-recover-password-validation-error-400-00068-oud.json",
        "s11",
        400,
        Code::AlreadyExists,
        "USER_ALREADY_EXISTS",
    ),
    // S12: the only table row (line 1724) is OSB's; "no such loan" is a 404.
    (
        "bcs/s12-withdrawal-otp-error-00001-rgn.json",
        "s12",
        404,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    ),
    // S13: "El usuario no existe" is 404; the table's 401 32/RGN (line 1869) is the other meaning.
    (
        "bcs/s13-password-status-update-error-32-rgn.json",
        "s13",
        404,
        Code::NotFound,
        "USER_NOT_FOUND",
    ),
    // S14/S15: ER500 arrives on HTTP 200 (no status printed): the bank failed.
    (
        "bcs/s14-consult-channel-error-er500.json",
        "s14",
        200,
        Code::Unavailable,
        "PROVIDER_UNAVAILABLE",
    ),
    (
        "bcs/s15-lock-unlock-channel-error-er500.json",
        "s15",
        200,
        Code::Unavailable,
        "PROVIDER_UNAVAILABLE",
    ),
    (
        "bcs/s16-authentication-level-error-206-100.json",
        "s16",
        206,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    ),
    (
        "bcs/s17-authentication-channel-error-206-100.json",
        "s17",
        206,
        Code::FailedPrecondition,
        "TRANSACTION_NOT_CONFIGURED",
    ),
    // S18 prints no table; the refusal of an unknown account is a 400 and not ambiguous.
    (
        "bcs/s18-retiro-otp-error-05620-rgn.json",
        "s18",
        400,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    ),
];

#[tokio::test]
async fn bcs_error_examples_map_to_their_documented_codes() {
    let app = security::app().await;
    let mut failures = Vec::new();
    for (rel, op, status, code, expected) in BCS_ERRORS {
        let fx = fixture(rel);
        serve(&app, op, fx.http_status.unwrap_or(*status), &fx.example).await;
        match call_bcs(&app, op).await {
            Ok(()) => failures.push(format!("{rel}: answered Ok")),
            Err(e) if (e.code(), reason(&e).as_str()) != (*code, *expected) => {
                failures.push(format!(
                    "{rel}: {:?} {} (expected {code:?} {expected})",
                    e.code(),
                    reason(&e)
                ));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn er500_on_http_200_and_500_is_the_bank_failing() {
    let app = security::app().await;
    let body = example("bcs/s14-consult-channel-error-er500.json");
    for status in [200, 500] {
        serve(&app, "s14", status, &body).await;
        let failed = call_bcs(&app, "s14").await.unwrap_err();
        assert_error(&failed, Code::Unavailable, "PROVIDER_UNAVAILABLE");
        assert!(
            failed.get_details_retry_info().is_some(),
            "{status}: a failure worth retrying"
        );
    }
}

#[tokio::test]
async fn the_bank_unable_to_parse_pasarelas_json_is_internal() {
    let app = security::app().await;
    for (code, desc) in [
        (
            "00400",
            "Bad Request Hay un error en la estructuración del JSON de entrada",
        ),
        ("400", "Bad Request"),
    ] {
        let body = json!({
            "responseType": { "value": "ER" },
            "responseDetail": { "errorCode": code, "errorDesc": desc, "errorType": "OUD" }
        });
        serve(&app, "s13", 400, &body).await;
        let failed = call_bcs(&app, "s13").await.unwrap_err();
        assert_eq!(failed.code(), Code::Internal, "{code}: {failed:?}");
        assert_eq!(reason(&failed), "PROVIDER_REQUEST_MALFORMED", "{code}");
    }
}

#[tokio::test]
async fn unlisted_codes_of_the_500_tables_are_rejections_not_retries() {
    let app = security::app().await;
    let body = json!({
        "ResponseType": { "value": "ER" },
        "ResponseDetail": { "ErrorCode": "77777", "ErrorDesc": "REGLA DE NEGOCIO", "ErrorType": "RGN" }
    });
    // S19 answers its business refusals on 500 as well: a counted challenge answer is
    // never invited to be sent again.
    for op in ["s5", "s6", "s7", "s19"] {
        serve(&app, op, 500, &body).await;
        let failed = call_bcs(&app, op).await.unwrap_err();
        assert_error(&failed, Code::FailedPrecondition, "PROVIDER_REJECTED");
        assert!(
            failed.get_details_retry_info().is_none(),
            "{op}: no retry of a rejection"
        );
    }
    // Elsewhere an unlisted code on 500 stays the bank failing.
    serve(&app, "s8", 500, &body).await;
    let failed = call_bcs(&app, "s8").await.unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
}

#[tokio::test]
async fn s13_32_rgn_is_told_apart_by_its_http_status() {
    let app = security::app().await;
    let body = |desc: &str| {
        json!({
            "responseType": { "value": "ER" },
            "responseDetail": { "errorCode": "32", "errorDesc": desc, "errorType": "RGN" }
        })
    };
    let cases = [
        (
            401,
            "La clave ya se encuentra en el estado solicitado",
            Code::FailedPrecondition,
            "PASSWORD_STATUS_UNCHANGED",
        ),
        (
            404,
            "El usuario no existe",
            Code::NotFound,
            "USER_NOT_FOUND",
        ),
        // Neither documented status: neither meaning is assumed.
        (
            400,
            "El usuario no existe",
            Code::FailedPrecondition,
            "PROVIDER_REJECTED",
        ),
        (
            500,
            "El usuario no existe",
            Code::Unavailable,
            "PROVIDER_UNAVAILABLE",
        ),
    ];
    for (status, desc, code, expected) in cases {
        serve(&app, "s13", status, &body(desc)).await;
        let failed = call_bcs(&app, "s13").await.unwrap_err();
        assert_eq!(
            (failed.code(), reason(&failed).as_str()),
            (code, expected),
            "{status}"
        );
    }
}

// ---- Kiban ---------------------------------------------------------------------------------------

const KIBAN_PATH: &str = "/api/v1/password-expiry-date-bc-pm";

fn expiration_request() -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: "FF12345678".into(),
        password: "P4SSW0RD".into(),
        test_case_id: "663567bb713cf2110a110679".into(),
    }
}

async fn kiban_call(
    app: &TestApp,
    status: u16,
    body: &Value,
) -> Result<pasarela::bureau::v1::GetPasswordExpirationResponse, tonic::Status> {
    app.inject_once(
        "kiban",
        KIBAN_PATH,
        json!({ "type": "status", "status": status, "body": body }),
    )
    .await;
    BureauServiceClient::with_interceptor(app.channel(), app.bearer())
        .get_password_expiration(expiration_request())
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn the_kiban_examples_map_to_the_proto() {
    let app = crate::support::spawn_app().await;
    let rel = "kiban/k1-password-expiry-response.json";
    let answer = kiban_call(&app, 200, &example(rel)).await.expect("K1");
    let date = answer.expiration_date.expect("a date");
    assert_eq!(
        (date.year, date.month, date.day),
        (2022, 8, 29),
        "fechaExpiracion 08/29/2022"
    );
    assert_eq!(answer.request_id, "6699c0090e17d41228c1e799");
    let duration = answer.provider_duration.expect("a duration");
    assert_eq!((duration.seconds, duration.nanos), (0, 232_000_000));

    for (rel, code, expected) in [
        (
            "kiban/k1-password-expiry-error-400-length-error.json",
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
        ),
        (
            "kiban/k1-password-expiry-error-400-empty-error.json",
            Code::InvalidArgument,
            "PROVIDER_REJECTED_REQUEST",
        ),
        (
            "kiban/k1-password-expiry-error-400-test-case-not-found.json",
            Code::InvalidArgument,
            "TEST_CASE_NOT_FOUND",
        ),
        (
            "kiban/k1-password-expiry-error-401-service-error.json",
            Code::FailedPrecondition,
            "BUREAU_CREDENTIALS_REJECTED",
        ),
    ] {
        let fx = fixture(rel);
        let status = fx.http_status.expect("every Kiban error prints its status");
        let failed = kiban_call(&app, status, &fx.example).await.unwrap_err();
        assert_eq!(
            (failed.code(), reason(&failed).as_str()),
            (code, expected),
            "{rel}"
        );
    }
}

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
