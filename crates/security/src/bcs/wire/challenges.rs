//! Transaction challenges ("reto"): S5 and S19 (create, with question rounds), S16 (authentication level), S17 (authentication channel rounds).

use super::*;

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
    /// Optional in S19's mapping table: a multiple-choice answer may be its option alone.
    #[serde(serialize_with = "expose", skip_serializing_if = "no_secret")]
    value: SecretString,
}

fn no_secret(secret: &SecretString) -> bool {
    secret.expose_secret().is_empty()
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
        trace: request.trace.as_ref().map(|trace| Trace {
            iteration: wrapped(trace_text(
                v,
                "trace.iteration_text",
                &trace.iteration_text,
                trace.iteration,
            )),
            retry: wrapped(trace_text(
                v,
                "trace.retry_text",
                &trace.retry_text,
                trace.retry,
            )),
        }),
        question: (!question_list.is_empty()).then(|| Quantity {
            quantity: question_list.len().to_string(),
        }),
        question_list,
        ..challenge_of!(v, request)
    })
}

/// A counter of S19's trace, text on its wire (up to 20 characters, its table says): the
/// bank's own text when the caller sends it back, else the number.
fn trace_text(v: &mut Violations, field: &str, text: &str, number: i32) -> String {
    if text.is_empty() {
        number.to_string()
    } else {
        fields::text(v, field, text, 1, 20)
    }
}

/// A counter of S17's trace, a number on its wire.
fn trace_number(v: &mut Violations, field: &str, text: &str, number: i32) -> i32 {
    if text.is_empty() {
        return number;
    }
    text.trim().parse().unwrap_or_else(|_| {
        v.add(field, "AuthenticateChannel's trace counters are integers");
        0
    })
}

/// One answered question: lengths from S19's mapping table.
fn question_entry(v: &mut Violations, i: usize, answer: &pb::QuestionAnswer) -> QuestionEntry {
    let field = |name: &str| format!("answers[{i}].{name}");
    if answer.option_id.is_empty() && answer.answer.is_empty() {
        v.add(
            field("answer"),
            "an answer needs option_id, answer, or both",
        );
    }
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
                value: fields::optional_secret(v, &field("answer"), &answer.answer, 100).into(),
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
    /// S17's counters, numbers on its wire: anything else is an unreadable answer.
    fn read_numbers(&self) -> Result<pb::ChallengeTrace, Unreadable> {
        Ok(pb::ChallengeTrace {
            iteration: self.iteration.value.number()?,
            retry: self.retry.value.number()?,
            ..self.read()
        })
    }

    /// The counters as the bank wrote them, and as numbers when they are numbers: S19's
    /// table allows any text.
    fn read(&self) -> pb::ChallengeTrace {
        let iteration = self.iteration.value.as_str();
        let retry = self.retry.value.as_str();
        pb::ChallengeTrace {
            iteration: iteration.parse().unwrap_or_default(),
            retry: retry.parse().unwrap_or_default(),
            iteration_text: iteration.to_owned(),
            retry_text: retry.to_owned(),
        }
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
        let trace = answer.trace.as_ref().map(TraceAnswer::read);
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
    let trace = request.trace.clone().unwrap_or_default();
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
                iteration: wrapped(trace_number(
                    v,
                    "trace.iteration_text",
                    &trace.iteration_text,
                    trace.iteration,
                )),
                retry: wrapped(trace_number(
                    v,
                    "trace.retry_text",
                    &trace.retry_text,
                    trace.retry,
                )),
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
            .map(TraceAnswer::read_numbers)
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

// ---- the operations ----------------------------------------------------------------------

pub const TRANSACTION_CHALLENGE: Op<ChallengeAnswer> = Op {
    name: "create_transaction_challenge",
    method: Method::POST,
    path: Path {
        setting: "create_transaction_challenge",
        spec: "/retoManagement/v1/Customer",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Refusal,
    answer: PhantomData,
};

impl Operation for pb::CreateTransactionChallengeRequest {
    type Body = ChallengeRequest;
    type Answer = ChallengeAnswer;
    type Response = pb::CreateTransactionChallengeResponse;
    const OP: &'static Op<ChallengeAnswer> = &TRANSACTION_CHALLENGE;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        false
    }

    fn build(
        &self,
        _: &InvokerFields,
        _: &Readings,
        v: &mut Violations,
    ) -> Outgoing<ChallengeRequest> {
        create_transaction_challenge(self, v)
    }

    fn read(
        &self,
        answer: ChallengeAnswer,
    ) -> Result<pb::CreateTransactionChallengeResponse, Unreadable> {
        answer.try_into()
    }
}

pub const QUESTION_CHALLENGE: Op<ChallengeAnswer> = Op {
    name: "create_question_challenge",
    method: Method::POST,
    path: Path {
        setting: "create_question_challenge",
        spec: "/reto-management/v2/customer",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Gateway,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Refusal,
    answer: PhantomData,
};

impl Operation for pb::CreateQuestionChallengeRequest {
    type Body = ChallengeRequest;
    type Answer = ChallengeAnswer;
    type Response = pb::CreateQuestionChallengeResponse;
    const OP: &'static Op<ChallengeAnswer> = &QUESTION_CHALLENGE;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    /// The first round asks for questions; a round with answers checks them.
    fn checks_secret(&self) -> bool {
        !self.answers.is_empty()
    }

    fn build(
        &self,
        _: &InvokerFields,
        _: &Readings,
        v: &mut Violations,
    ) -> Outgoing<ChallengeRequest> {
        create_question_challenge(self, v)
    }

    fn read(
        &self,
        answer: ChallengeAnswer,
    ) -> Result<pb::CreateQuestionChallengeResponse, Unreadable> {
        answer.try_into()
    }
}

// A consultation sent as POST: repeating it changes nothing.
pub const AUTHENTICATION_LEVEL: Op<AuthLevelAnswer> = Op {
    name: "get_authentication_level",
    method: Method::POST,
    path: Path {
        setting: "get_authentication_level",
        spec: "/reto-management/v1/authentication-level",
    },
    retry: Retry::Safe,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::GetAuthenticationLevelRequest {
    type Body = AuthLevelRequest;
    type Answer = AuthLevelAnswer;
    type Response = pb::GetAuthenticationLevelResponse;
    const OP: &'static Op<AuthLevelAnswer> = &AUTHENTICATION_LEVEL;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        false
    }

    fn build(
        &self,
        _: &InvokerFields,
        _: &Readings,
        v: &mut Violations,
    ) -> Outgoing<AuthLevelRequest> {
        get_authentication_level(self, bank_now(), v)
    }

    fn read(
        &self,
        answer: AuthLevelAnswer,
    ) -> Result<pb::GetAuthenticationLevelResponse, Unreadable> {
        answer.try_into()
    }
}

pub const AUTHENTICATE_CHANNEL: Op<AuthChannelAnswer> = Op {
    name: "authenticate_channel",
    method: Method::POST,
    path: Path {
        setting: "authenticate_channel",
        spec: "/reto-management/v1/authentication-channel",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::MuleBearer,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::AuthenticateChannelRequest {
    type Body = AuthChannelRequest;
    type Answer = AuthChannelAnswer;
    type Response = pb::AuthenticateChannelResponse;
    const OP: &'static Op<AuthChannelAnswer> = &AUTHENTICATE_CHANNEL;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    /// The first round asks for questions; a round with answers checks them.
    fn checks_secret(&self) -> bool {
        !self.answers.is_empty()
    }

    fn build(
        &self,
        _: &InvokerFields,
        _: &Readings,
        v: &mut Violations,
    ) -> Outgoing<AuthChannelRequest> {
        authenticate_channel(self, v)
    }

    fn read(
        &self,
        answer: AuthChannelAnswer,
    ) -> Result<pb::AuthenticateChannelResponse, Unreadable> {
        answer.try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_counters_go_back_as_each_operation_writes_them() {
        let mut v = Violations::new();
        assert_eq!(trace_text(&mut v, "t", "IT-0002", 0), "IT-0002");
        assert_eq!(trace_text(&mut v, "t", "", 3), "3");
        assert_eq!(trace_number(&mut v, "t", " 4 ", 0), 4);
        assert_eq!(trace_number(&mut v, "t", "", 5), 5);
        assert!(v.is_empty());
        trace_number(&mut v, "trace.iteration_text", "IT-0002", 0);
        assert!(!v.is_empty(), "S17's counters are numbers");
        let mut long = Violations::new();
        trace_text(&mut long, "t", &"x".repeat(21), 0);
        assert!(!long.is_empty(), "S19's table: at most 20 characters");
    }
}
