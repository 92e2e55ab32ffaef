//! Banco Caja Social's wire format, one section per operation: the request each RPC becomes
//! (checking every field as the spec's tables and prose say) and the typed answer turned
//! back into the proto response. Field names and casing follow the spec's examples; answers
//! are read after the envelope layer lowered every key's first letter.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone};
use pasarela::common::v1::PageInfo;
use pasarela::security::v1 as pb;
use pasarela_provider::Violations;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fields::{self, SECRET_MAX};

/// What one call sends: a path parameter, query parameters and a JSON body, each optional.
pub struct Outgoing<B> {
    pub path_id: Option<String>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<B>,
}

impl<B> Outgoing<B> {
    fn body(body: B) -> Self {
        Self {
            path_id: None,
            query: Vec::new(),
            body: Some(body),
        }
    }
}

/// The body of operations that send none (GET).
#[derive(Serialize)]
pub enum NoBody {}

impl Outgoing<NoBody> {
    fn query(path_id: Option<String>, query: Vec<(&'static str, String)>) -> Self {
        Self {
            path_id,
            query,
            body: None,
        }
    }
}

/// A wire answer that cannot be turned into the proto response; says which field, never
/// its value.
pub type Unreadable = &'static str;

// ---- shared pieces ----------------------------------------------------------------------

/// `CustomerType` <-> `nameAddrType` / `clientType.value` / `personType`.
const CUSTOMER_TYPES: &[(pb::CustomerType, &str)] = &[
    (pb::CustomerType::Natural, "N"),
    (pb::CustomerType::Juridical, "J"),
];

/// Authorization results of the risk engine (`authorization.value`).
const AUTHORIZATION_RESULTS: &[(&str, pb::AuthorizationResult)] = &[
    ("SI", pb::AuthorizationResult::Authorized),
    ("TV", pb::AuthorizationResult::QuestionsPending),
    ("NO", pb::AuthorizationResult::Denied),
];

const CUSTOMER_TYPE_EXPECTED: &str = "NATURAL or JURIDICAL";

fn expose<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn is_empty(text: &str) -> bool {
    text.is_empty()
}

/// A JSON string, number, boolean or null read as text: the bank prints counters, amounts
/// and codes every way.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Text(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => text.trim().to_owned(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => String::new(),
        }))
    }
}

impl Text {
    fn into_string(self) -> String {
        self.0
    }

    /// A counter; an empty value is zero.
    fn number(&self) -> Result<i32, Unreadable> {
        if self.0.is_empty() {
            return Ok(0);
        }
        self.0.parse().map_err(|_| "a counter that is not a number")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GovIssueIdent {
    gov_issue_ident_type: String,
    ident_serial_num: String,
}

fn gov_issue_ident(
    violations: &mut Violations,
    field: &str,
    value: Option<&pasarela::common::v1::Identification>,
) -> GovIssueIdent {
    let (kind, number) = fields::identification(violations, field, value);
    GovIssueIdent {
        gov_issue_ident_type: kind,
        ident_serial_num: number,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    #[serde(skip_serializing_if = "is_empty")]
    cell_phone: String,
    #[serde(skip_serializing_if = "is_empty")]
    email_addr: String,
}

/// Colombian mobile numbers have 10 digits (`cellPhone: "3175137626"`).
fn contact_info(
    violations: &mut Violations,
    field: &str,
    value: Option<&pb::ContactInfo>,
) -> Option<ContactInfo> {
    let value = value?;
    Some(ContactInfo {
        cell_phone: fields::digits(
            violations,
            &format!("{field}.cell_phone"),
            &value.cell_phone,
            0,
            10,
        ),
        email_addr: fields::email(violations, &format!("{field}.email"), &value.email),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContactInfoAnswer {
    cell_phone: Text,
    email_addr: Text,
}

impl From<ContactInfoAnswer> for pb::ContactInfo {
    fn from(answer: ContactInfoAnswer) -> Self {
        Self {
            cell_phone: answer.cell_phone.into_string(),
            email: answer.email_addr.into_string(),
        }
    }
}

#[derive(Serialize)]
pub struct Wrapped<T> {
    value: T,
}

fn wrapped<T>(value: T) -> Wrapped<T> {
    Wrapped { value }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WrappedAnswer {
    value: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Authorization {
    value: Text,
    code: Text,
}

impl Authorization {
    /// (result, value as sent, code).
    fn read(self) -> (pb::AuthorizationResult, String, String) {
        let value = self.value.into_string();
        let result = AUTHORIZATION_RESULTS
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(&value))
            .map(|(_, result)| *result)
            .unwrap_or(pb::AuthorizationResult::Other);
        (result, value, self.code.into_string())
    }
}

/// An answer whose envelope said OK and that carries nothing else pasarela needs.
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

/// Responses that carry nothing but the bank's success.
macro_rules! acknowledged {
    ($($response:ident),* $(,)?) => {$(
        impl TryFrom<Empty> for pb::$response {
            type Error = Unreadable;

            fn try_from(_: Empty) -> Result<Self, Unreadable> {
                Ok(Self::default())
            }
        }
    )*};
}

acknowledged!(
    GenerateOtcResponse,
    GenerateOtcV3Response,
    ValidateOtcResponse,
    EnrollDigitalUserResponse,
    ValidateDigitalEnrollmentResponse,
    ChangePasswordResponse,
    CreateUserResponse,
    ValidateEnrollmentCardResponse,
    ValidatePasswordRecoveryResponse,
    SetChannelHoldResponse,
);

/// A timestamp in the bank's local time (UTC-5) in one of `formats`.
fn bank_time(
    text: &str,
    formats: &[&str],
    now_offset: FixedOffset,
) -> Result<Option<prost_types::Timestamp>, Unreadable> {
    if text.is_empty() {
        return Ok(None);
    }
    let naive = formats
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .ok_or("a date in an unknown format")?;
    let instant: DateTime<FixedOffset> = now_offset
        .from_local_datetime(&naive)
        .single()
        .ok_or("a date that does not exist")?;
    Ok(Some(prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or_default(),
    }))
}

fn bank_offset() -> FixedOffset {
    super::invoker::bank_now().offset().to_owned()
}

// ---- S1: password status -----------------------------------------------------------------

pub fn get_password_status(
    request: &pb::GetPasswordStatusRequest,
    v: &mut Violations,
) -> Outgoing<NoBody> {
    let mut query = vec![
        (
            "transactionId",
            fields::alphanumeric(v, "transaction_id", &request.transaction_id, 1, 30),
        ),
        (
            "nameAddrType",
            fields::choice(
                v,
                "customer_type",
                request.customer_type,
                CUSTOMER_TYPES,
                CUSTOMER_TYPE_EXPECTED,
            )
            .into(),
        ),
    ];
    match &request.subject {
        Some(pb::get_password_status_request::Subject::Customer(customer)) => {
            let ident = gov_issue_ident(v, "customer", Some(customer));
            query.push(("govIssueIdentType", ident.gov_issue_ident_type));
            query.push(("identSerialNum", ident.ident_serial_num));
        }
        Some(pb::get_password_status_request::Subject::UserAlias(alias)) => {
            query.push((
                "SPName",
                fields::alphanumeric(v, "user_alias", alias, 1, 30),
            ));
        }
        None => v.add("subject", "customer or user_alias is required"),
    }
    Outgoing::query(None, query)
}

/// `pswdStatus` as S1 prints it ("1") and as S13 names it ("Active").
const PASSWORD_STATUSES: &[(&str, pb::PasswordStatus)] = &[
    ("1", pb::PasswordStatus::Active),
    ("Active", pb::PasswordStatus::Active),
    ("3", pb::PasswordStatus::Locked),
    ("Locked", pb::PasswordStatus::Locked),
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordStatusAnswer {
    cust_pswd_info: PasswordInfo,
    contact_info: ContactInfoAnswer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordInfo {
    pswd_status: Text,
    desc: Text,
}

impl TryFrom<PasswordStatusAnswer> for pb::GetPasswordStatusResponse {
    type Error = Unreadable;

    fn try_from(answer: PasswordStatusAnswer) -> Result<Self, Unreadable> {
        let status = PASSWORD_STATUSES
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(&answer.cust_pswd_info.pswd_status.0))
            .map(|(_, status)| *status)
            .ok_or("a password status that is neither 1 (active) nor 3 (locked)")?;
        Ok(Self {
            status: status.into(),
            status_description: answer.cust_pswd_info.desc.into_string(),
            contact: Some(answer.contact_info.into()),
        })
    }
}

// ---- S2, S3, S4: one-time codes ----------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtcRequest {
    gov_issue_ident: GovIssueIdent,
    otc: Otc,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_info: Option<ContactInfo>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Otc {
    otc_issue: String,
    #[serde(
        serialize_with = "expose_optional",
        skip_serializing_if = "Option::is_none"
    )]
    otc_value: Option<SecretString>,
}

fn expose_optional<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => expose(secret, serializer),
        None => serializer.serialize_none(),
    }
}

/// The OTC purpose (`otcIssue`): the spec gives no length; 50 keeps it a code, not prose.
const PURPOSE_MAX: usize = 50;

fn generate_otc(
    v: &mut Violations,
    customer: Option<&pasarela::common::v1::Identification>,
    purpose: &str,
    contact: Option<&pb::ContactInfo>,
) -> Outgoing<OtcRequest> {
    Outgoing::body(OtcRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", customer),
        otc: Otc {
            otc_issue: fields::text(v, "purpose", purpose, 1, PURPOSE_MAX),
            otc_value: None,
        },
        contact_info: contact_info(v, "contact", contact),
    })
}

/// Requests of two RPCs whose fields are the same become one wire request: declares a
/// translation per RPC that reads those fields and hands them to the shared one.
macro_rules! same_fields {
    ($($name:ident($request:ident) -> $body:ty = $shared:ident($($field:ident),*);)*) => {$(
        pub fn $name(request: &pb::$request, v: &mut Violations) -> $body {
            $shared(v, $(same_fields!(@read request.$field)),*)
        }
    )*};
    (@read $request:ident.customer) => { $request.customer.as_ref() };
    (@read $request:ident.contact) => { $request.contact.as_ref() };
    (@read $request:ident.card_type) => { $request.card_type };
    (@read $request:ident.$field:ident) => { &$request.$field };
}

same_fields! {
    generate_otc_v1(GenerateOtcRequest) -> Outgoing<OtcRequest>
        = generate_otc(customer, purpose, contact);
    generate_otc_v3(GenerateOtcV3Request) -> Outgoing<OtcRequest>
        = generate_otc(customer, purpose, contact);
}

pub fn validate_otc(request: &pb::ValidateOtcRequest, v: &mut Violations) -> Outgoing<OtcRequest> {
    Outgoing::body(OtcRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        otc: Otc {
            otc_issue: fields::text(v, "purpose", &request.purpose, 1, PURPOSE_MAX),
            otc_value: Some(fields::secret(v, "code", &request.code, 100).into()),
        },
        contact_info: None,
    })
}

// ---- S5, S19: transaction challenges ------------------------------------------------------

/// `requestType.value` of S19.
const CHALLENGE_ROUNDS: &[(pb::ChallengeRound, &str)] = &[
    (pb::ChallengeRound::Initial, "P"),
    (pb::ChallengeRound::Answer, "R"),
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRequest {
    client_type: Wrapped<String>,
    gov_issue_ident: GovIssueIdent,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_type: Option<Wrapped<String>>,
    tx: Tx,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<Trace<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    question: Option<Quantity<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    question_list: Vec<QuestionEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tx {
    id: String,
    tx_data: Vec<TxData>,
    #[serde(skip_serializing_if = "is_empty")]
    amt: String,
    #[serde(skip_serializing_if = "is_empty")]
    source_account_number: String,
    #[serde(skip_serializing_if = "is_empty")]
    destination_account_number: String,
}

#[derive(Serialize)]
pub struct TxData {
    name: String,
    value: String,
}

#[derive(Serialize)]
pub struct Trace<T> {
    iteration: Wrapped<T>,
    retry: Wrapped<T>,
}

#[derive(Serialize)]
pub struct Quantity<T> {
    quantity: T,
}

#[derive(Serialize)]
pub struct QuestionEntry {
    question: AnsweredQuestion,
}

#[derive(Serialize)]
pub struct AnsweredQuestion {
    r#type: String,
    id: String,
    value: String,
    #[serde(skip_serializing_if = "is_empty")]
    desc: String,
    #[serde(skip_serializing_if = "is_empty")]
    length: String,
    #[serde(skip_serializing_if = "is_empty")]
    format: String,
    answer: AnswerValue,
}

#[derive(Serialize)]
pub struct AnswerValue {
    #[serde(skip_serializing_if = "is_empty")]
    id: String,
    #[serde(serialize_with = "expose")]
    value: SecretString,
}

struct TxFields<'a> {
    code: &'a str,
    data: &'a [pb::TransactionData],
    amount: Option<&'a pasarela::common::v1::Money>,
    source: &'a str,
    destination: &'a str,
}

/// `tx`: id 1-6, at least one datum (name 1-30, value 1-50), amount at most 14 digits,
/// accounts at most 30 characters.
fn tx(v: &mut Violations, fields_: TxFields<'_>) -> Tx {
    if fields_.data.is_empty() {
        v.add("data", "at least one datum is required");
    }
    let data = fields_
        .data
        .iter()
        .enumerate()
        .map(|(i, datum)| TxData {
            name: fields::text(v, &format!("data[{i}].name"), &datum.name, 1, 30),
            value: fields::text(v, &format!("data[{i}].value"), &datum.value, 1, 50),
        })
        .collect();
    Tx {
        id: fields::text(v, "transaction_code", fields_.code, 1, 6),
        tx_data: data,
        amt: fields::pesos(v, "amount", fields_.amount, false, 14)
            .map(|pesos| pesos.to_string())
            .unwrap_or_default(),
        source_account_number: fields::text(v, "source_account", fields_.source, 0, 30),
        destination_account_number: fields::text(
            v,
            "destination_account",
            fields_.destination,
            0,
            30,
        ),
    }
}

/// What S5 and S19 share: who is challenged, for which transaction; no rounds.
fn challenge(
    v: &mut Violations,
    customer_type: i32,
    customer: Option<&pasarela::common::v1::Identification>,
    transaction: TxFields<'_>,
) -> ChallengeRequest {
    ChallengeRequest {
        client_type: wrapped(
            fields::choice(
                v,
                "customer_type",
                customer_type,
                CUSTOMER_TYPES,
                CUSTOMER_TYPE_EXPECTED,
            )
            .into(),
        ),
        gov_issue_ident: gov_issue_ident(v, "customer", customer),
        request_type: None,
        tx: tx(v, transaction),
        trace: None,
        question: None,
        question_list: Vec::new(),
    }
}

/// S5 and S19 name their transaction's fields alike.
macro_rules! challenge_of {
    ($v:ident, $request:ident) => {
        challenge(
            $v,
            $request.customer_type,
            $request.customer.as_ref(),
            TxFields {
                code: &$request.transaction_code,
                data: &$request.data,
                amount: $request.amount.as_ref(),
                source: &$request.source_account,
                destination: &$request.destination_account,
            },
        )
    };
}

pub fn create_transaction_challenge(
    request: &pb::CreateTransactionChallengeRequest,
    v: &mut Violations,
) -> Outgoing<ChallengeRequest> {
    Outgoing::body(challenge_of!(v, request))
}

pub fn create_question_challenge(
    request: &pb::CreateQuestionChallengeRequest,
    v: &mut Violations,
) -> Outgoing<ChallengeRequest> {
    let round = fields::choice(
        v,
        "round",
        request.round,
        CHALLENGE_ROUNDS,
        "INITIAL or ANSWER",
    );
    if round == "R" && request.answers.is_empty() {
        v.add("answers", "an ANSWER round needs at least one answer");
    }
    let question_list: Vec<_> = request
        .answers
        .iter()
        .enumerate()
        .map(|(i, answer)| question_entry(v, i, answer))
        .collect();
    Outgoing::body(ChallengeRequest {
        request_type: Some(wrapped(round.into())),
        trace: request.trace.map(|trace| Trace {
            iteration: wrapped(trace.iteration.to_string()),
            retry: wrapped(trace.retry.to_string()),
        }),
        question: (!question_list.is_empty()).then(|| Quantity {
            quantity: question_list.len().to_string(),
        }),
        question_list,
        ..challenge_of!(v, request)
    })
}

/// One answered question: lengths from S19's mapping table.
fn question_entry(v: &mut Violations, i: usize, answer: &pb::QuestionAnswer) -> QuestionEntry {
    let field = |name: &str| format!("answers[{i}].{name}");
    QuestionEntry {
        question: AnsweredQuestion {
            r#type: fields::text(v, &field("question_type"), &answer.question_type, 1, 30),
            id: fields::text(v, &field("question_id"), &answer.question_id, 1, 30),
            value: fields::text(v, &field("question_text"), &answer.question_text, 1, 500),
            desc: fields::text(v, &field("help"), &answer.help, 0, 10),
            length: fields::text(v, &field("answer_length"), &answer.answer_length, 0, 18),
            format: fields::text(v, &field("format"), &answer.format, 0, 20),
            answer: AnswerValue {
                id: fields::text(v, &field("option_id"), &answer.option_id, 0, 2),
                value: fields::secret(v, &field("answer"), &answer.answer, 100).into(),
            },
        },
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TraceAnswer {
    iteration: WrappedAnswer,
    retry: WrappedAnswer,
}

impl TraceAnswer {
    fn read(&self) -> Result<pb::ChallengeTrace, Unreadable> {
        Ok(pb::ChallengeTrace {
            iteration: self.iteration.value.number()?,
            retry: self.retry.value.number()?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChallengeAnswer {
    authorization: Authorization,
    trace: Option<TraceAnswer>,
    question_list: Vec<QuestionAnswerEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuestionAnswerEntry {
    question: QuestionAsked,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QuestionAsked {
    r#type: Text,
    id: Text,
    value: Text,
    desc: Text,
    length: Text,
    format: Text,
    answer_list: Vec<OptionEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OptionEntry {
    answer: OptionAnswer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OptionAnswer {
    id: Text,
    value: Text,
}

impl From<QuestionAsked> for pb::ChallengeQuestion {
    fn from(question: QuestionAsked) -> Self {
        Self {
            r#type: question.r#type.into_string(),
            id: question.id.into_string(),
            text: question.value.into_string(),
            help: question.desc.into_string(),
            answer_length: question.length.into_string(),
            format: question.format.into_string(),
            // Open questions carry one placeholder option with neither id nor text.
            options: question
                .answer_list
                .into_iter()
                .filter(|entry| !(entry.answer.id.0.is_empty() && entry.answer.value.0.is_empty()))
                .map(|entry| pb::AnswerOption {
                    id: entry.answer.id.into_string(),
                    text: entry.answer.value.into_string(),
                })
                .collect(),
        }
    }
}

impl TryFrom<ChallengeAnswer> for pb::CreateQuestionChallengeResponse {
    type Error = Unreadable;

    fn try_from(answer: ChallengeAnswer) -> Result<Self, Unreadable> {
        let trace = answer.trace.as_ref().map(TraceAnswer::read).transpose()?;
        let (result, authorization_value, authorization_code) = answer.authorization.read();
        Ok(Self {
            result: result.into(),
            authorization_value,
            authorization_code,
            trace,
            questions: answer
                .question_list
                .into_iter()
                .map(|entry| entry.question.into())
                .collect(),
        })
    }
}

impl TryFrom<ChallengeAnswer> for pb::CreateTransactionChallengeResponse {
    type Error = Unreadable;

    fn try_from(answer: ChallengeAnswer) -> Result<Self, Unreadable> {
        let (result, authorization_value, authorization_code) = answer.authorization.read();
        Ok(Self {
            result: result.into(),
            authorization_value,
            authorization_code,
        })
    }
}

// ---- S6, S7: digital enrollment ------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentRequest {
    gov_issue_ident: GovIssueIdent,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_info: Option<ContactInfo>,
    info_password: InfoPassword,
}

#[derive(Serialize)]
pub struct InfoPassword {
    #[serde(serialize_with = "expose")]
    password: SecretString,
}

pub fn enroll_digital_user(
    request: &pb::EnrollDigitalUserRequest,
    v: &mut Violations,
) -> Outgoing<EnrollmentRequest> {
    Outgoing::body(EnrollmentRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        contact_info: contact_info(v, "contact", request.contact.as_ref()),
        info_password: InfoPassword {
            password: fields::secret(v, "password", &request.password, SECRET_MAX).into(),
        },
    })
}

pub fn validate_digital_enrollment(
    request: &pb::ValidateDigitalEnrollmentRequest,
    v: &mut Violations,
) -> Outgoing<NoBody> {
    let ident = gov_issue_ident(v, "customer", request.customer.as_ref());
    Outgoing::query(
        None,
        vec![
            ("govIssueIdentType", ident.gov_issue_ident_type),
            ("identSerialNum", ident.ident_serial_num),
        ],
    )
}

// ---- S8, S9: passwords ---------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    gov_issue_ident: GovIssueIdent,
    cust_pswd: CryptPswd,
    subject_pswd: CryptPswd,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptPswd {
    #[serde(serialize_with = "expose")]
    crypt_pswd: SecretString,
}

pub fn change_password(
    request: &pb::ChangePasswordRequest,
    v: &mut Violations,
) -> Outgoing<ChangePasswordRequest> {
    Outgoing::body(ChangePasswordRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        cust_pswd: CryptPswd {
            crypt_pswd: fields::secret(
                v,
                "current_password",
                &request.current_password,
                SECRET_MAX,
            )
            .into(),
        },
        subject_pswd: CryptPswd {
            crypt_pswd: fields::secret(v, "new_password", &request.new_password, SECRET_MAX).into(),
        },
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserRequest {
    recuperation_flag: Wrapped<&'static str>,
    gov_issue_ident: GovIssueIdent,
    info_password: InfoPassword,
}

pub fn create_user(
    request: &pb::CreateUserRequest,
    v: &mut Violations,
) -> Outgoing<CreateUserRequest> {
    Outgoing::body(CreateUserRequest {
        recuperation_flag: wrapped(if request.recovery { "S" } else { "N" }),
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        info_password: InfoPassword {
            password: fields::secret(v, "password", &request.password, SECRET_MAX).into(),
        },
    })
}

// ---- S10, S11: card secret checks ------------------------------------------------------------

/// `acctType`: CCA (credit card, CVV) and DBC (debit card, PIN).
const CARD_TYPES: &[(pb::CardType, &str)] =
    &[(pb::CardType::Credit, "CCA"), (pb::CardType::Debit, "DBC")];

fn card_check(
    v: &mut Violations,
    customer: Option<&pasarela::common::v1::Identification>,
    card_type: i32,
    secret: &str,
    last_digits: &str,
) -> Outgoing<NoBody> {
    let ident = gov_issue_ident(v, "customer", customer);
    let last_digits = fields::digits(v, "card_last_digits", last_digits, 6, 6);
    Outgoing::query(
        Some(ident.ident_serial_num),
        vec![
            ("govIssueIdentType", ident.gov_issue_ident_type),
            (
                "acctType",
                fields::choice(v, "card_type", card_type, CARD_TYPES, "CREDIT or DEBIT").into(),
            ),
            (
                "secretId",
                fields::secret(v, "card_secret", secret, SECRET_MAX),
            ),
            ("acctId", last_digits),
        ],
    )
}

same_fields! {
    validate_enrollment_card(ValidateEnrollmentCardRequest) -> Outgoing<NoBody>
        = card_check(customer, card_type, card_secret, card_last_digits);
    validate_password_recovery(ValidatePasswordRecoveryRequest) -> Outgoing<NoBody>
        = card_check(customer, card_type, card_secret, card_last_digits);
}

// ---- S12: withdrawal OTP ---------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalOtpRequest {
    gov_issue_ident: GovIssueIdent,
    x_fer_info: XFerInfo,
    otc: IdOtc,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct XFerInfo {
    dep_acct_id_from: AcctId,
    cur_amt: CurAmt,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcctId {
    acct_id: String,
}

#[derive(Serialize)]
pub struct CurAmt {
    amt: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdOtc {
    id_otc: String,
}

pub fn request_withdrawal_otp(
    request: &pb::RequestWithdrawalOtpRequest,
    v: &mut Violations,
) -> Outgoing<WithdrawalOtpRequest> {
    Outgoing::body(WithdrawalOtpRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        x_fer_info: XFerInfo {
            dep_acct_id_from: AcctId {
                acct_id: fields::digits(v, "account_id", &request.account_id, 1, 30),
            },
            cur_amt: CurAmt {
                amt: fields::pesos(v, "amount", request.amount.as_ref(), true, 14)
                    .unwrap_or_default(),
            },
        },
        otc: IdOtc {
            id_otc: fields::alphanumeric(v, "otc_id", &request.otc_id, 1, 30),
        },
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WithdrawalOtpAnswer {
    otp_info: Option<OtpInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpInfo {
    otp_value: SecretString,
}

impl TryFrom<WithdrawalOtpAnswer> for pb::RequestWithdrawalOtpResponse {
    type Error = Unreadable;

    fn try_from(answer: WithdrawalOtpAnswer) -> Result<Self, Unreadable> {
        let info = answer.otp_info.ok_or("no otpInfo.otpValue")?;
        Ok(Self {
            otp: info.otp_value.expose_secret().to_owned(),
        })
    }
}

// ---- S13: password status ----------------------------------------------------------------------

/// `custPswd.status`: the spec's example sends the English words.
const PASSWORD_STATUS_WORDS: &[(pb::PasswordStatus, &str)] = &[
    (pb::PasswordStatus::Active, "Active"),
    (pb::PasswordStatus::Locked, "Locked"),
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePasswordStatusRequest {
    gov_issue_ident: GovIssueIdent,
    person_name: PersonName,
    cust_pswd: StatusBody,
}

#[derive(Serialize)]
pub struct PersonName {
    user: String,
}

#[derive(Serialize)]
pub struct StatusBody {
    status: &'static str,
}

pub fn update_password_status(
    request: &pb::UpdatePasswordStatusRequest,
    v: &mut Violations,
) -> Outgoing<UpdatePasswordStatusRequest> {
    Outgoing::body(UpdatePasswordStatusRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        person_name: PersonName {
            user: fields::alphanumeric(v, "user", &request.user, 0, 30),
        },
        cust_pswd: StatusBody {
            status: fields::choice(
                v,
                "status",
                request.status,
                PASSWORD_STATUS_WORDS,
                "ACTIVE or LOCKED",
            ),
        },
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordStatusChange {
    status: StatusChange,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusChange {
    status_desc: Text,
    end_dt: Text,
}

/// `endDt`: "2023-06-23-12:57:48.941".
const END_DT_FORMATS: &[&str] = &[
    "%Y-%m-%d-%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
];

impl TryFrom<PasswordStatusChange> for pb::UpdatePasswordStatusResponse {
    type Error = Unreadable;

    fn try_from(answer: PasswordStatusChange) -> Result<Self, Unreadable> {
        Ok(Self {
            description: answer.status.status_desc.into_string(),
            effective_time: bank_time(&answer.status.end_dt.0, END_DT_FORMATS, bank_offset())?,
        })
    }
}

// ---- S14, S15: channel holds -------------------------------------------------------------------

/// The most records the bank returns in a page.
pub const MAX_PAGE_SIZE: i32 = 20;

const HOLD_FILTERS: &[(pb::HoldFilter, &str)] = &[
    (pb::HoldFilter::All, "All"),
    (pb::HoldFilter::Locked, "Locked"),
];
const HOLD_ACTIONS: &[(pb::HoldAction, &str)] = &[
    (pb::HoldAction::Lock, "Lock"),
    (pb::HoldAction::Unlock, "Unlock"),
];
const HOLD_TYPES: &[(pb::HoldType, &str)] = &[
    (pb::HoldType::User, "User"),
    (pb::HoldType::Product, "Product"),
];

/// Words (and the bank's letters) of a hold's `type` and `status`. The spec's example swaps
/// the two fields ("type": "Unlock", "status": "Product"), so each record is read by value.
const HOLD_TYPE_WORDS: &[(&str, pb::HoldType)] = &[
    ("User", pb::HoldType::User),
    ("C", pb::HoldType::User),
    ("Product", pb::HoldType::Product),
    ("P", pb::HoldType::Product),
];
const HOLD_STATUS_WORDS: &[(&str, pb::HoldStatus)] = &[
    ("Lock", pb::HoldStatus::Locked),
    ("S", pb::HoldStatus::Locked),
    ("Unlock", pb::HoldStatus::Unlocked),
    ("N", pb::HoldStatus::Unlocked),
];

/// `establishDt`: "2024-05-20 11.24.21 AM".
const ESTABLISH_DT_FORMATS: &[&str] = &[
    "%Y-%m-%d %I.%M.%S %p",
    "%Y-%m-%d %H.%M.%S",
    "%Y-%m-%d %H:%M:%S",
];

/// The page asked for: `(page_number, page_size)`, defaults 1 and 20.
pub fn page(v: &mut Violations, page: Option<&pasarela::common::v1::PageRequest>) -> (i32, i32) {
    let (number, size) = page.map_or((0, 0), |page| (page.page_number, page.page_size));
    if !(0..=MAX_PAGE_SIZE).contains(&size) {
        v.add(
            "page.page_size",
            format!("must be 1 to {MAX_PAGE_SIZE} (0 takes {MAX_PAGE_SIZE})"),
        );
    }
    if number < 0 {
        v.add("page.page_number", "must not be negative");
    }
    let size = if size <= 0 {
        MAX_PAGE_SIZE
    } else {
        size.min(MAX_PAGE_SIZE)
    };
    (number.max(1), size)
}

pub fn list_channel_holds(
    request: &pb::ListChannelHoldsRequest,
    v: &mut Violations,
) -> Outgoing<NoBody> {
    let ident = gov_issue_ident(v, "customer", request.customer.as_ref());
    let (number, size) = page(v, request.page.as_ref());
    let first = i64::from(number - 1) * i64::from(size) + 1;
    Outgoing::query(
        Some(ident.ident_serial_num),
        vec![
            ("GovIssueIdentType", ident.gov_issue_ident_type),
            (
                "status",
                fields::choice(v, "filter", request.filter, HOLD_FILTERS, "ALL or LOCKED").into(),
            ),
            ("initialRecord", first.to_string()),
            ("RecordsXPage", size.to_string()),
        ],
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HoldsAnswer {
    trn_src_info: HoldsInfo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HoldsInfo {
    results_pages_generic: ResultsPages,
    blocking_info: Vec<HoldRecord>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResultsPages {
    total_records: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HoldRecord {
    channel: Text,
    sub_channel: Text,
    r#type: Text,
    status: Text,
    acct_id: Text,
    user: Text,
    branch_id: Text,
    establish_dt: Text,
    unblocking_info: Option<Unblocking>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Unblocking {
    user: Text,
    branch_id: Text,
    establish_dt: Text,
}

fn word<T: Copy>(table: &[(&str, T)], value: &str) -> Option<T> {
    table
        .iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(value))
        .map(|(_, item)| *item)
}

impl HoldRecord {
    fn read(self, offset: FixedOffset) -> Result<pb::ChannelHold, Unreadable> {
        let (a, b) = (self.r#type.0.as_str(), self.status.0.as_str());
        let kind = word(HOLD_TYPE_WORDS, a).or_else(|| word(HOLD_TYPE_WORDS, b));
        let status = word(HOLD_STATUS_WORDS, b).or_else(|| word(HOLD_STATUS_WORDS, a));
        let (Some(kind), Some(status)) = (kind, status) else {
            return Err("a hold whose type or status is unknown");
        };
        let release = match self.unblocking_info {
            Some(info) if !(info.user.0.is_empty() && info.establish_dt.0.is_empty()) => {
                Some(pb::HoldRelease {
                    user: info.user.into_string(),
                    branch_id: info.branch_id.into_string(),
                    release_time: bank_time(&info.establish_dt.0, ESTABLISH_DT_FORMATS, offset)?,
                })
            }
            _ => None,
        };
        Ok(pb::ChannelHold {
            channel: self.channel.into_string(),
            sub_channel: self.sub_channel.into_string(),
            r#type: kind.into(),
            status: status.into(),
            account_id: self.acct_id.into_string(),
            user: self.user.into_string(),
            branch_id: self.branch_id.into_string(),
            hold_time: bank_time(&self.establish_dt.0, ESTABLISH_DT_FORMATS, offset)?,
            release,
        })
    }
}

impl HoldsAnswer {
    /// The proto response for the page `(number, size)` that was asked for.
    pub fn into_response(
        self,
        number: i32,
        size: i32,
    ) -> Result<pb::ListChannelHoldsResponse, Unreadable> {
        let offset = bank_offset();
        let info = self.trn_src_info;
        let total = info.results_pages_generic.total_records.number()?;
        let holds = info
            .blocking_info
            .into_iter()
            .map(|record| record.read(offset))
            .collect::<Result<Vec<_>, _>>()?;
        let total_pages = if total == 0 {
            0
        } else {
            (total + size - 1) / size
        };
        Ok(pb::ListChannelHoldsResponse {
            holds,
            page: Some(PageInfo {
                page_number: number,
                page_size: size,
                total_items: total,
                total_pages,
                has_next_page: i64::from(number) * i64::from(size) < i64::from(total),
            }),
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetHoldRequest {
    trn_src_info: SetHoldInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetHoldInfo {
    blocking_info: BlockingInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockingInfo {
    ident_serial_num: String,
    gov_issue_ident_type: String,
    channel: String,
    sub_channel: String,
    acct_id: String,
    channel_desc: String,
    action: &'static str,
    r#type: &'static str,
    user: String,
    branch_id: String,
}

/// Defaults of the auditing user and branch: the call's invoker values.
pub struct Audit<'a> {
    pub user: &'a str,
    pub branch_id: &'a str,
}

pub fn set_channel_hold(
    request: &pb::SetChannelHoldRequest,
    audit: Audit<'_>,
    v: &mut Violations,
) -> Outgoing<SetHoldRequest> {
    let ident = gov_issue_ident(v, "customer", request.customer.as_ref());
    let kind = fields::choice(v, "type", request.r#type, HOLD_TYPES, "USER or PRODUCT");
    let channel = fields::alphanumeric(v, "channel", &request.channel, 0, 20);
    let sub_channel = fields::alphanumeric(v, "sub_channel", &request.sub_channel, 0, 4);
    let pseudo = fields::text(v, "pseudo_channel", &request.pseudo_channel, 0, 50);
    // Either channel and sub-channel, or a pseudo channel: "si se envia pseudoCanal este
    // campo al igual que el SubCanal deben ir vacios".
    match (
        channel.is_empty(),
        sub_channel.is_empty(),
        pseudo.is_empty(),
    ) {
        (false, false, true) | (true, true, false) => {}
        (_, _, false) => v.add(
            "pseudo_channel",
            "must be empty when channel or sub_channel is given",
        ),
        _ => v.add(
            "channel",
            "channel and sub_channel, or pseudo_channel, are required",
        ),
    }
    let account = fields::alphanumeric(v, "account_id", &request.account_id, 0, 30);
    if kind == "Product" && account.is_empty() {
        v.add("account_id", "is required for a PRODUCT hold");
    }
    let user = fields::alphanumeric(v, "user", &request.user, 0, 20);
    let branch = fields::alphanumeric(v, "branch_id", &request.branch_id, 0, 20);
    Outgoing::body(SetHoldRequest {
        trn_src_info: SetHoldInfo {
            blocking_info: BlockingInfo {
                ident_serial_num: ident.ident_serial_num,
                gov_issue_ident_type: ident.gov_issue_ident_type,
                channel,
                sub_channel,
                acct_id: account,
                channel_desc: pseudo,
                action: fields::choice(v, "action", request.action, HOLD_ACTIONS, "LOCK or UNLOCK"),
                r#type: kind,
                user: if user.is_empty() {
                    audit.user.to_owned()
                } else {
                    user
                },
                branch_id: if branch.is_empty() {
                    audit.branch_id.to_owned()
                } else {
                    branch
                },
            },
        },
    })
}

// ---- S16: authentication level -------------------------------------------------------------------

#[derive(Serialize)]
pub struct AuthLevelRequest {
    transaction: AuthLevelTransaction,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthLevelTransaction {
    process_date: String,
    working_day_frame: String,
    gov_issue_ident: GovIssueIdent,
    request_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    adviser: Option<GovIssueIdent>,
    #[serde(rename = "trnRqUID")]
    trn_rq_uid: String,
    auth_system: String,
}

/// `workingDayFrame` when the caller sends none (the spec's examples).
const WORKING_DAY_FRAME: &str = "N";

fn one_letter(v: &mut Violations, field: &str, value: &str, default: &str) -> String {
    let value = fields::alphanumeric(v, field, value, 0, 1);
    if value.is_empty() {
        default.to_owned()
    } else {
        value
    }
}

pub fn get_authentication_level(
    request: &pb::GetAuthenticationLevelRequest,
    now: DateTime<FixedOffset>,
    v: &mut Violations,
) -> Outgoing<AuthLevelRequest> {
    Outgoing::body(AuthLevelRequest {
        transaction: AuthLevelTransaction {
            process_date: now.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            working_day_frame: one_letter(
                v,
                "working_day_frame",
                &request.working_day_frame,
                WORKING_DAY_FRAME,
            ),
            gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
            request_number: fields::text(v, "request_number", &request.request_number, 1, 30),
            adviser: request
                .adviser
                .as_ref()
                .map(|adviser| gov_issue_ident(v, "adviser", Some(adviser))),
            trn_rq_uid: fields::text(
                v,
                "transaction_request_id",
                &request.transaction_request_id,
                1,
                30,
            ),
            auth_system: fields::text(v, "auth_system", &request.auth_system, 1, 30),
        },
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthLevelAnswer {
    transaction: AuthLevelResult,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthLevelResult {
    request_number: Text,
    desc: Text,
    #[serde(rename = "trnRqUID")]
    trn_rq_uid: Text,
    auth_level: Text,
}

impl TryFrom<AuthLevelAnswer> for pb::GetAuthenticationLevelResponse {
    type Error = Unreadable;

    fn try_from(answer: AuthLevelAnswer) -> Result<Self, Unreadable> {
        let transaction = answer.transaction;
        if transaction.auth_level.0.is_empty() {
            return Err("no transaction.authLevel");
        }
        Ok(Self {
            level: transaction.auth_level.number()?,
            description: transaction.desc.into_string(),
            request_number: transaction.request_number.into_string(),
            transaction_request_id: transaction.trn_rq_uid.into_string(),
        })
    }
}

// ---- S17: authentication channel -------------------------------------------------------------------

#[derive(Serialize)]
pub struct AuthChannelRequest {
    transaction: AuthChannelTransaction,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthChannelTransaction {
    working_day_frame: String,
    city_id: String,
    r#type: String,
    #[serde(rename = "trnRqUID")]
    trn_rq_uid: String,
    product_id: String,
    tx_id: String,
    gov_issue_ident: GovIssueIdent,
    trn_src_info: TrnSrcInfo,
    person_info: PersonInfo,
    question: Quantity<usize>,
    trace: Trace<i32>,
    question_list: Vec<ChannelQuestion>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrnSrcInfo {
    request_number: String,
    request_type: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonInfo {
    first_name: String,
    middle_name: String,
    last_name: String,
    second_last_name: String,
    person_type: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelQuestion {
    r#type: String,
    code: String,
    value: String,
    desc: String,
    length: i32,
    format: String,
    answer_list: Vec<ChannelAnswer>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAnswer {
    status_code: String,
    #[serde(serialize_with = "expose")]
    value: SecretString,
}

/// `transaction.type` when the caller sends none (the spec's example).
const AUTH_CHANNEL_TYPE: &str = "R";

pub fn authenticate_channel(
    request: &pb::AuthenticateChannelRequest,
    v: &mut Violations,
) -> Outgoing<AuthChannelRequest> {
    let person = request.person.clone().unwrap_or_default();
    let person_type = match person.r#type {
        0 => "N",
        given => fields::choice(
            v,
            "person.type",
            given,
            CUSTOMER_TYPES,
            CUSTOMER_TYPE_EXPECTED,
        ),
    };
    let question_list: Vec<_> = request
        .answers
        .iter()
        .enumerate()
        .map(|(i, question)| channel_question(v, i, question))
        .collect();
    let trace = request.trace.unwrap_or_default();
    Outgoing::body(AuthChannelRequest {
        transaction: AuthChannelTransaction {
            working_day_frame: one_letter(
                v,
                "working_day_frame",
                &request.working_day_frame,
                WORKING_DAY_FRAME,
            ),
            city_id: fields::text(v, "city_id", &request.city_id, 0, 10),
            r#type: one_letter(v, "type", &request.r#type, AUTH_CHANNEL_TYPE),
            trn_rq_uid: fields::text(
                v,
                "transaction_request_id",
                &request.transaction_request_id,
                1,
                30,
            ),
            product_id: fields::text(v, "product_id", &request.product_id, 0, 30),
            tx_id: fields::text(v, "transaction_code", &request.transaction_code, 1, 30),
            gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
            trn_src_info: TrnSrcInfo {
                request_number: fields::text(v, "request_number", &request.request_number, 1, 30),
                request_type: fields::text(v, "request_type", &request.request_type, 0, 10),
            },
            person_info: PersonInfo {
                first_name: fields::text(v, "person.first_name", &person.first_name, 0, 60),
                middle_name: fields::text(v, "person.middle_name", &person.middle_name, 0, 60),
                last_name: fields::text(v, "person.last_name", &person.last_name, 0, 60),
                second_last_name: fields::text(
                    v,
                    "person.second_last_name",
                    &person.second_last_name,
                    0,
                    60,
                ),
                person_type: person_type.into(),
            },
            question: Quantity {
                quantity: question_list.len(),
            },
            trace: Trace {
                iteration: wrapped(trace.iteration),
                retry: wrapped(trace.retry),
            },
            question_list,
        },
    })
}

fn channel_question(
    v: &mut Violations,
    i: usize,
    question: &pb::ChannelQuestionAnswer,
) -> ChannelQuestion {
    let field = |name: &str| format!("answers[{i}].{name}");
    if question.answers.is_empty() {
        v.add(field("answers"), "at least one answer is required");
    }
    ChannelQuestion {
        r#type: fields::text(v, &field("type"), &question.r#type, 1, 30),
        code: fields::text(v, &field("code"), &question.code, 1, 30),
        value: fields::text(v, &field("text"), &question.text, 1, 500),
        desc: fields::text(v, &field("help"), &question.help, 0, 100),
        length: question.answer_length,
        format: fields::text(v, &field("format"), &question.format, 0, 20),
        answer_list: question
            .answers
            .iter()
            .enumerate()
            .map(|(j, answer)| ChannelAnswer {
                status_code: fields::text(
                    v,
                    &field(&format!("answers[{j}].status_code")),
                    &answer.status_code,
                    0,
                    2,
                ),
                value: fields::secret(
                    v,
                    &field(&format!("answers[{j}].value")),
                    &answer.value,
                    100,
                )
                .into(),
            })
            .collect(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthChannelAnswer {
    transaction: AuthChannelResult,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthChannelResult {
    authorization: Authorization,
    reason: Text,
    trace: Option<TraceAnswer>,
    question_list: Vec<ChannelQuestionAsked>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChannelQuestionAsked {
    r#type: Text,
    code: Text,
    value: Text,
    desc: Text,
    length: Text,
    format: Text,
    answer_list: Vec<ChannelOption>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChannelOption {
    status_code: Text,
    value: Text,
}

impl TryFrom<AuthChannelAnswer> for pb::AuthenticateChannelResponse {
    type Error = Unreadable;

    fn try_from(answer: AuthChannelAnswer) -> Result<Self, Unreadable> {
        let transaction = answer.transaction;
        let trace = transaction
            .trace
            .as_ref()
            .map(TraceAnswer::read)
            .transpose()?;
        let (result, authorization_value, authorization_code) = transaction.authorization.read();
        let questions = transaction
            .question_list
            .into_iter()
            .map(|question| {
                Ok(pb::ChannelQuestion {
                    r#type: question.r#type.into_string(),
                    code: question.code.into_string(),
                    text: question.value.into_string(),
                    help: question.desc.into_string(),
                    answer_length: question.length.number()?,
                    format: question.format.into_string(),
                    options: question
                        .answer_list
                        .into_iter()
                        .map(|option| pb::ChannelAnswerOption {
                            status_code: option.status_code.into_string(),
                            text: option.value.into_string(),
                        })
                        .collect(),
                })
            })
            .collect::<Result<_, Unreadable>>()?;
        Ok(Self {
            result: result.into(),
            authorization_value,
            authorization_code,
            reason: transaction.reason.into_string(),
            trace,
            questions,
        })
    }
}

// ---- S18: OTP withdrawal -------------------------------------------------------------------------

const WITHDRAWAL_TYPES: &[(pb::WithdrawalType, &str)] = &[
    (pb::WithdrawalType::Normal, "Normal"),
    (pb::WithdrawalType::Reverse, "Reverse"),
];

#[derive(Serialize)]
pub struct WithdrawalRequest {
    trn: WithdrawalTrn,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalTrn {
    transaction_hour: String,
    #[serde(rename = "trnRqUID")]
    trn_rq_uid: String,
    code: String,
    branch_name: String,
    city_id: String,
    city: String,
    state_prov: String,
    dep_acct_id_from: AcctId,
    otp: WithdrawalOtp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalOtp {
    r#type: &'static str,
    cur_amt: CurAmt,
    #[serde(serialize_with = "expose")]
    otp_value: SecretString,
    gov_issue_ident: SerialOnly,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SerialOnly {
    ident_serial_num: String,
}

pub fn withdraw_with_otp(
    request: &pb::WithdrawWithOtpRequest,
    now: DateTime<FixedOffset>,
    v: &mut Violations,
) -> Outgoing<WithdrawalRequest> {
    Outgoing::body(WithdrawalRequest {
        trn: WithdrawalTrn {
            transaction_hour: now.format("%H:%M:%S").to_string(),
            trn_rq_uid: fields::digits(v, "audit_number", &request.audit_number, 1, 30),
            code: fields::alphanumeric(v, "service_point_code", &request.service_point_code, 1, 30),
            branch_name: fields::text(v, "service_point_name", &request.service_point_name, 1, 100),
            city_id: fields::digits(v, "city_code", &request.city_code, 5, 5),
            city: fields::text(v, "city_name", &request.city_name, 1, 100),
            state_prov: fields::digits(v, "department_code", &request.department_code, 2, 2),
            dep_acct_id_from: AcctId {
                acct_id: fields::digits(
                    v,
                    "correspondent_account",
                    &request.correspondent_account,
                    1,
                    30,
                ),
            },
            otp: WithdrawalOtp {
                r#type: fields::choice(
                    v,
                    "type",
                    request.r#type,
                    WITHDRAWAL_TYPES,
                    "NORMAL or REVERSE",
                ),
                cur_amt: CurAmt {
                    amt: fields::pesos(v, "amount", request.amount.as_ref(), true, 14)
                        .unwrap_or_default(),
                },
                otp_value: fields::secret(v, "otp", &request.otp, SECRET_MAX).into(),
                gov_issue_ident: SerialOnly {
                    ident_serial_num: fields::text(
                        v,
                        "customer_document_number",
                        &request.customer_document_number,
                        1,
                        30,
                    ),
                },
            },
        },
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WithdrawalAnswer {
    trn: WithdrawalResult,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WithdrawalResult {
    approval_id: Text,
    dep_acct_id: DepAcctId,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DepAcctId {
    acct_id: Text,
    acct_type: Text,
}

impl WithdrawalAnswer {
    pub fn into_response(self, tx_id: String) -> Result<pb::WithdrawWithOtpResponse, Unreadable> {
        if self.trn.approval_id.0.is_empty() {
            return Err("no trn.approvalId");
        }
        Ok(pb::WithdrawWithOtpResponse {
            approval_id: self.trn.approval_id.into_string(),
            account_id: self.trn.dep_acct_id.acct_id.into_string(),
            account_type: self.trn.dep_acct_id.acct_type.into_string(),
            tx_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pasarela::common::v1::{DocumentType, Identification, Money};
    use serde_json::json;

    fn customer() -> Option<Identification> {
        Some(Identification {
            r#type: DocumentType::Cc.into(),
            number: "1007641".into(),
        })
    }

    #[test]
    fn secrets_reach_the_wire_body_and_nowhere_else() {
        let mut v = Violations::new();
        let outgoing = change_password(
            &pb::ChangePasswordRequest {
                customer: customer(),
                current_password: "Old2024ab".into(),
                new_password: "New2025cd".into(),
                ..Default::default()
            },
            &mut v,
        );
        assert!(v.is_empty());
        let body = outgoing.body.expect("a body");
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({
                "govIssueIdent": { "govIssueIdentType": "CC", "identSerialNum": "1007641" },
                "custPswd": { "cryptPswd": "Old2024ab" },
                "subjectPswd": { "cryptPswd": "New2025cd" },
            })
        );
    }

    #[test]
    fn holds_are_read_whichever_field_carries_type_and_status() {
        let answer: HoldsAnswer = serde_json::from_value(json!({
            "trnSrcInfo": {
                "resultsPagesGeneric": { "totalRecords": "0002", "recordsXPage": "02" },
                "blockingInfo": [
                    { "channel": "007", "type": "Unlock", "status": "Product",
                      "establishDt": "2024-05-20 11.24.21 PM",
                      "unblockingInfo": { "user": "", "branchId": "", "establishDt": "" } },
                    { "channel": "015", "type": "C", "status": "S", "establishDt": "" }
                ]
            }
        }))
        .unwrap();
        let response = answer.into_response(1, 20).unwrap();
        let first = &response.holds[0];
        assert_eq!(first.r#type(), pb::HoldType::Product);
        assert_eq!(first.status(), pb::HoldStatus::Unlocked);
        assert!(first.release.is_none());
        // 23:24:21 in Bogotá is 04:24:21 UTC the next day.
        let seconds = first.hold_time.as_ref().unwrap().seconds;
        assert_eq!(seconds % 86_400, 4 * 3600 + 24 * 60 + 21);
        assert_eq!(response.holds[1].r#type(), pb::HoldType::User);
        let page = response.page.unwrap();
        assert_eq!(
            (page.total_items, page.total_pages, page.has_next_page),
            (2, 1, false)
        );
    }

    #[test]
    fn a_page_larger_than_twenty_is_refused() {
        let mut v = Violations::new();
        let asked = pasarela::common::v1::PageRequest {
            page_size: 21,
            page_number: 2,
        };
        assert_eq!(page(&mut v, Some(&asked)), (2, 20));
        assert!(!v.is_empty());
        let mut v = Violations::new();
        assert_eq!(page(&mut v, None), (1, 20));
        assert!(v.is_empty());
    }

    #[test]
    fn list_queries_ask_for_the_right_records() {
        let mut v = Violations::new();
        let outgoing = list_channel_holds(
            &pb::ListChannelHoldsRequest {
                customer: customer(),
                filter: pb::HoldFilter::Locked.into(),
                page: Some(pasarela::common::v1::PageRequest {
                    page_size: 10,
                    page_number: 3,
                }),
                ..Default::default()
            },
            &mut v,
        );
        assert!(v.is_empty());
        assert_eq!(outgoing.path_id.as_deref(), Some("1007641"));
        assert_eq!(
            outgoing.query,
            [
                ("GovIssueIdentType", "CC".to_owned()),
                ("status", "Locked".to_owned()),
                ("initialRecord", "21".to_owned()),
                ("RecordsXPage", "10".to_owned()),
            ]
        );
    }

    #[test]
    fn challenge_answers_read_the_spec_examples() {
        let answer: ChallengeAnswer = serde_json::from_value(json!({
            "authorization": { "value": "TV", "code": null },
            "trace": { "iteration": { "value": "3" }, "retry": { "value": "1" } },
            "questionList": [{ "question": {
                "type": "SM", "id": "202410181112571944582", "value": "¿Usted tiene tarjeta débito?",
                "desc": null, "length": "4", "format": "N",
                "answerList": [
                    { "answer": { "id": "A", "value": " Sí tengo tarjeta débito " } },
                    { "answer": { "id": "B", "value": " No tengo tarjeta débito" } }
                ]
            }}]
        }))
        .unwrap();
        let response = pb::CreateQuestionChallengeResponse::try_from(answer).unwrap();
        assert_eq!(response.result(), pb::AuthorizationResult::QuestionsPending);
        assert_eq!(response.trace.unwrap().iteration, 3);
        assert_eq!(response.questions[0].options.len(), 2);

        let open: ChallengeAnswer = serde_json::from_value(json!({
            "authorization": { "value": "TV", "code": null },
            "questionList": [{ "question": { "type": "M", "id": "1", "value": "código",
                "answerList": [{ "answer": { "id": null, "value": null } }] } }]
        }))
        .unwrap();
        let response = pb::CreateQuestionChallengeResponse::try_from(open).unwrap();
        assert!(response.questions[0].options.is_empty());
    }

    #[test]
    fn amounts_travel_as_whole_pesos() {
        let mut v = Violations::new();
        let outgoing = request_withdrawal_otp(
            &pb::RequestWithdrawalOtpRequest {
                customer: customer(),
                account_id: "2343454353".into(),
                amount: Some(Money {
                    currency_code: "COP".into(),
                    minor_units: 2_000_000,
                }),
                otc_id: "001".into(),
                ..Default::default()
            },
            &mut v,
        );
        assert!(v.is_empty());
        let body = serde_json::to_value(outgoing.body.unwrap()).unwrap();
        assert_eq!(body["xFerInfo"]["curAmt"]["amt"], 20_000);
        assert_eq!(body["otc"]["idOtc"], "001");
    }
}
