//! Banco Caja Social's wire format: the request bodies of the 19 operations (every field
//! optional, so that a missing one gets the operation's own error row rather than a parser
//! error) and the response bodies, with the field names and casing of the spec's examples.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// `govIssueIdent`; S12's prose spells the fields in lower case, its example in camel case.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GovIssueIdent {
    #[serde(alias = "govissueidenttype", alias = "GovIssueIdentType")]
    pub gov_issue_ident_type: String,
    #[serde(alias = "identserialnum", alias = "IdentSerialNum")]
    pub ident_serial_num: String,
}

impl GovIssueIdent {
    /// Either the document type or its number is missing.
    pub fn is_incomplete(&self) -> bool {
        self.gov_issue_ident_type.is_empty() || self.ident_serial_num.is_empty()
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ContactInfo {
    pub cell_phone: String,
    pub email_addr: String,
}

/// A JSON string or number read as text: the spec prints counters and amounts both ways.
#[derive(Default, Clone)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(serde_json::Number),
        }
        Ok(Text(match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Number(number) => number.to_string(),
        }))
    }
}

impl Text {
    /// An amount in cents, from "20000", 20000 or "15000.50"; `None` unless positive.
    pub fn cents(&self) -> Option<u128> {
        crate::amount::cents(self.0.trim()).filter(|cents| *cents > 0)
    }

    pub fn counter(&self) -> Option<u32> {
        self.0.trim().parse().ok()
    }
}

/// `{ "value": ... }`, the spec's wrapper for single values.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct Wrapped {
    pub value: Text,
}

// ---- S2, S3, S4: one-time codes -------------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OtcRequest {
    pub gov_issue_ident: GovIssueIdent,
    pub otc: OtcBody,
    pub contact_info: Option<ContactInfo>,
}

/// `otc`: the purpose (`otcIssue`) and, to validate, the code (`otcValue` or `value`: the
/// spec names no field for it); a contact may sit here too (the spec's S2/S3 body is
/// printed flat). Which of them a bank reads is its readings' business.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OtcBody {
    pub otc_issue: String,
    pub otc_value: Option<SecretString>,
    pub value: Option<SecretString>,
    pub contact_info: Option<ContactInfo>,
}

// ---- S6, S7: digital enrollment --------------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct EnrollmentRequest {
    pub gov_issue_ident: GovIssueIdent,
}

// ---- S8, S9, S13: passwords -----------------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CryptPswd {
    pub crypt_pswd: Option<SecretString>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ChangePasswordRequest {
    pub gov_issue_ident: GovIssueIdent,
    pub cust_pswd: CryptPswd,
    pub subject_pswd: CryptPswd,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct InfoPassword {
    pub password: Option<SecretString>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CreateUserRequest {
    pub recuperation_flag: Wrapped,
    pub gov_issue_ident: GovIssueIdent,
    pub info_password: InfoPassword,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PasswordStatusBody {
    pub status: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SetPasswordStatusRequest {
    pub gov_issue_ident: GovIssueIdent,
    pub cust_pswd: PasswordStatusBody,
}

// ---- S12, S18: withdrawal OTPs --------------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AcctRef {
    pub acct_id: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CurAmt {
    pub amt: Text,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct XFerInfo {
    pub dep_acct_id_from: AcctRef,
    pub cur_amt: CurAmt,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct IdOtc {
    pub id_otc: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WithdrawalOtpRequest {
    pub gov_issue_ident: GovIssueIdent,
    pub x_fer_info: XFerInfo,
    pub otc: IdOtc,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WithdrawalOtp {
    pub r#type: String,
    pub cur_amt: CurAmt,
    pub otp_value: Option<SecretString>,
    pub gov_issue_ident: GovIssueIdent,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WithdrawalTrn {
    pub transaction_hour: String,
    #[serde(rename = "trnRqUID")]
    pub trn_rq_uid: String,
    pub dep_acct_id_from: AcctRef,
    pub otp: WithdrawalOtp,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct WithdrawalRequest {
    pub trn: WithdrawalTrn,
}

pub(crate) fn withdrawal_otp_issued(otp_value: &str) -> Value {
    json!({ "otpInfo": { "otpValue": otp_value } })
}

pub(crate) fn withdrawal_paid(approval_id: &str, acct_id: &str, acct_type: &str) -> Value {
    json!({
        "responseType": { "value": "OK" },
        "trn": {
            "approvalId": approval_id,
            "depAcctId": { "acctId": acct_id, "acctType": acct_type }
        }
    })
}

// ---- S14, S15: channel holds ----------------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct BlockingInfoRequest {
    #[serde(alias = "IdentSerialNum")]
    pub ident_serial_num: String,
    #[serde(alias = "GovIssueIdentType")]
    pub gov_issue_ident_type: String,
    #[serde(alias = "Channel")]
    pub channel: String,
    #[serde(alias = "SubChannel")]
    pub sub_channel: String,
    #[serde(alias = "AcctId")]
    pub acct_id: String,
    #[serde(alias = "ChannelDesc")]
    pub channel_desc: String,
    #[serde(alias = "Action")]
    pub action: String,
    #[serde(alias = "Type")]
    pub r#type: String,
    #[serde(alias = "User")]
    pub user: String,
    #[serde(alias = "BranchId")]
    pub branch_id: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct TrnSrcInfoRequest {
    #[serde(alias = "BlockingInfo")]
    pub blocking_info: BlockingInfoRequest,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SetHoldRequest {
    #[serde(alias = "TrnSrcInfo")]
    pub trn_src_info: TrnSrcInfoRequest,
}

// ---- S16, S17: reto by authentication level / channel ---------------------------------

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AuthLevelTransaction {
    pub gov_issue_ident: GovIssueIdent,
    pub request_number: String,
    #[serde(rename = "trnRqUID")]
    pub trn_rq_uid: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthLevelRequest {
    pub transaction: AuthLevelTransaction,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RequestNumber {
    pub request_number: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct Trace {
    pub iteration: Wrapped,
    pub retry: Wrapped,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ChannelAnswer {
    pub status_code: String,
    pub value: Option<SecretString>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ChannelQuestion {
    pub code: String,
    pub answer_list: Vec<ChannelAnswer>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AuthChannelTransaction {
    #[serde(rename = "trnRqUID")]
    pub trn_rq_uid: String,
    pub tx_id: String,
    pub gov_issue_ident: GovIssueIdent,
    pub trn_src_info: RequestNumber,
    pub trace: Trace,
    pub question_list: Vec<ChannelQuestion>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuthChannelRequest {
    pub transaction: AuthChannelTransaction,
}

// ---- S5, S19: transaction challenge ----------------------------------------------------

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct TxData {
    pub name: String,
    pub value: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Tx {
    pub id: String,
    pub tx_data: Vec<TxData>,
    pub amt: Option<Text>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct Answer {
    pub id: Option<String>,
    pub value: Option<SecretString>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct AnsweredQuestion {
    pub id: String,
    pub answer: Answer,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct QuestionEntry {
    pub question: AnsweredQuestion,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ChallengeRequest {
    pub gov_issue_ident: GovIssueIdent,
    pub request_type: Wrapped,
    pub tx: Tx,
    pub trace: Option<Trace>,
    pub question_list: Vec<QuestionEntry>,
}
