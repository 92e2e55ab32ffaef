//! Withdrawals at a banking correspondent: S12 (request an OTP for an amount), S18 (cash or reverse it).

use super::*;

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
    /// The customer's code: a create's, never a consulta's unless configured.
    #[serde(
        serialize_with = "expose_optional",
        skip_serializing_if = "Option::is_none"
    )]
    otp_value: Option<SecretString>,
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
                otp_value: Some(fields::secret(v, "otp", &request.otp, SECRET_MAX).into()),
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

/// S18 as a consulta (`X-Invoker-Action: R`) of the withdrawal `request` asks for: the
/// create's body, without the customer's code unless `body` says the bank wants it. Without
/// it, a consulta that reaches the bank as a create (a gateway dropping `R`) is refused as
/// incomplete instead of paying, and the code travels once.
pub fn withdrawal_query(
    request: &pb::WithdrawWithOtpRequest,
    now: DateTime<FixedOffset>,
    body: ConsultaBody,
    v: &mut Violations,
) -> Outgoing<WithdrawalRequest> {
    let mut outgoing = withdraw_with_otp(request, now, v);
    if let (ConsultaBody::Identifying, Some(sent)) = (body, &mut outgoing.body) {
        sent.trn.otp.otp_value = None;
    }
    outgoing
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

/// S12: "X-Invoker-Source ... (Required)", "X-Security-CustLoginId ... (Required)".
const WITHDRAWAL_OTP_REQUIRED: &[Field] = &[field::source, field::cust_login_id];

/// S18: every header its table marks "SI".
const WITHDRAWAL_REQUIRED: &[Field] = &[
    field::channel,
    field::branch_id,
    field::terminal_id,
    field::tx_id,
    field::session_key,
    field::sub_channel,
    field::action,
    field::modifier_user,
];

pub const WITHDRAW_WITH_OTP: Op<WithdrawalAnswer> = Op {
    name: "withdraw_with_otp",
    method: Method::POST,
    path: Path {
        setting: "withdraw_with_otp",
        spec: "/security-management/v3/withdrawal/otp",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Gateway,
    channel: Channel::Correspondent,
    required: WITHDRAWAL_REQUIRED,
    marker: Marker::OkOnly,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};
/// S18 as a consulta (`X-Invoker-Action: R`, the same TxId): what became of a withdrawal
/// whose answer was lost. Sent once, like the create: it carries the create's body, and a
/// gateway that ignored `R` would make each repeat a withdrawal; a failed consulta leaves
/// the key unknown, and the caller's next retry asks again.
pub const WITHDRAWAL_QUERY: Op<WithdrawalAnswer> = Op {
    name: "withdrawal_query",
    ..WITHDRAW_WITH_OTP
};

// ---- the operations ----------------------------------------------------------------------

pub const REQUEST_WITHDRAWAL_OTP: Op<WithdrawalOtpAnswer> = Op {
    name: "request_withdrawal_otp",
    method: Method::POST,
    path: Path {
        setting: "request_withdrawal_otp",
        spec: "/security-management/v1/withdrawal/otp",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: WITHDRAWAL_OTP_REQUIRED,
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::RequestWithdrawalOtpRequest {
    type Body = WithdrawalOtpRequest;
    type Answer = WithdrawalOtpAnswer;
    type Response = pb::RequestWithdrawalOtpResponse;
    const OP: &'static Op<WithdrawalOtpAnswer> = &REQUEST_WITHDRAWAL_OTP;

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
    ) -> Outgoing<WithdrawalOtpRequest> {
        request_withdrawal_otp(self, v)
    }

    fn read(
        &self,
        answer: WithdrawalOtpAnswer,
    ) -> Result<pb::RequestWithdrawalOtpResponse, Unreadable> {
        answer.try_into()
    }
}
