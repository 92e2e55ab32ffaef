//! Passwords and their status: S1 (status and contact data), S8 (change), S9 (create or recover a user), S13 (lock or activate a password).

use super::*;

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
        // A status no table names is UNSPECIFIED, its description and the contact data
        // kept: the caller still learns how to reach the customer.
        let status = PASSWORD_STATUSES
            .iter()
            .find(|(code, _)| code.eq_ignore_ascii_case(&answer.cust_pswd_info.pswd_status.0))
            .map_or(pb::PasswordStatus::Unspecified, |(_, status)| *status);
        Ok(Self {
            status: status.into(),
            status_description: answer.cust_pswd_info.desc.into_string(),
            contact: Some(answer.contact_info.into()),
        })
    }
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

// ---- S13: password status ----------------------------------------------------------------------

/// `custPswd.status` as the spec's example sends it: the English words.
const PASSWORD_STATUS_WORDS: &[(pb::PasswordStatus, &str)] = &[
    (pb::PasswordStatus::Active, "Active"),
    (pb::PasswordStatus::Locked, "Locked"),
];

/// `custPswd.status` as its prose numbers the words, and as S1 answers.
const PASSWORD_STATUS_DIGITS: &[(pb::PasswordStatus, &str)] = &[
    (pb::PasswordStatus::Active, "1"),
    (pb::PasswordStatus::Locked, "3"),
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
    values: PasswordStatusValues,
    v: &mut Violations,
) -> Outgoing<UpdatePasswordStatusRequest> {
    let values = match values {
        PasswordStatusValues::Words => PASSWORD_STATUS_WORDS,
        PasswordStatusValues::Digits => PASSWORD_STATUS_DIGITS,
    };
    Outgoing::body(UpdatePasswordStatusRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        person_name: PersonName {
            user: fields::alphanumeric(v, "user", &request.user, 0, 30),
        },
        cust_pswd: StatusBody {
            status: fields::choice(v, "status", request.status, values, "ACTIVE or LOCKED"),
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

/// `endDt`: "2023-06-23-12:57:48.941" (line 1837), in bank time; the other spellings a
/// gateway may turn it into are read too.
const END_DT_FORMATS: &[&str] = &[
    "%Y-%m-%d-%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%d/%m/%Y %H:%M:%S%.f",
];

impl TryFrom<PasswordStatusChange> for pb::UpdatePasswordStatusResponse {
    type Error = Unreadable;

    /// The change is the bank's success whatever its `endDt` says: a date in no known
    /// spelling leaves `effective_time` unset (and is logged) rather than report a change
    /// that was made as a failure.
    fn try_from(answer: PasswordStatusChange) -> Result<Self, Unreadable> {
        let end_dt = &answer.status.end_dt.0;
        let effective_time = instant(end_dt).unwrap_or_else(|why| {
            tracing::warn!(
                why,
                "S13's endDt is in no known spelling: the change is made, its time unknown"
            );
            None
        });
        Ok(Self {
            description: answer.status.status_desc.into_string(),
            effective_time,
        })
    }
}

/// An `endDt` with its own offset (RFC 3339), or in bank time in one of the spellings above.
fn instant(text: &str) -> Result<Option<prost_types::Timestamp>, Unreadable> {
    match chrono::DateTime::parse_from_rfc3339(text.trim()) {
        Ok(instant) => Ok(Some(prost_types::Timestamp {
            seconds: instant.timestamp(),
            nanos: i32::try_from(instant.timestamp_subsec_nanos()).unwrap_or_default(),
        })),
        Err(_) => bank_time(text.trim(), END_DT_FORMATS, bank_offset()),
    }
}

// ---- the operations ----------------------------------------------------------------------

pub const PASSWORD_STATUS: Op<PasswordStatusAnswer> = Op {
    name: "get_password_status",
    method: Method::GET,
    path: Path {
        setting: "get_password_status",
        spec: "/user/password/status",
    },
    retry: Retry::Safe,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::GetPasswordStatusRequest {
    type Body = NoBody;
    type Answer = PasswordStatusAnswer;
    type Response = pb::GetPasswordStatusResponse;
    const OP: &'static Op<PasswordStatusAnswer> = &PASSWORD_STATUS;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        // Asked by alias, the customer is not known here: a tenant binding end users
        // refuses it.
        match &self.subject {
            Some(pb::get_password_status_request::Subject::Customer(customer)) => Some(customer),
            _ => None,
        }
    }

    fn checks_secret(&self) -> bool {
        false
    }

    fn build(&self, _: &InvokerFields, _: &Readings, v: &mut Violations) -> Outgoing<NoBody> {
        get_password_status(self, v)
    }

    fn read(
        &self,
        answer: PasswordStatusAnswer,
    ) -> Result<pb::GetPasswordStatusResponse, Unreadable> {
        answer.try_into()
    }
}

pub const CHANGE_PASSWORD: Op<Empty> = Op {
    name: "change_password",
    method: Method::PUT,
    path: Path {
        setting: "change_password",
        spec: "/user-management/v1/customer",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::ChangePasswordRequest {
    type Body = ChangePasswordRequest;
    type Answer = Empty;
    type Response = pb::ChangePasswordResponse;
    const OP: &'static Op<Empty> = &CHANGE_PASSWORD;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        true
    }

    fn build(
        &self,
        _: &InvokerFields,
        _: &Readings,
        v: &mut Violations,
    ) -> Outgoing<ChangePasswordRequest> {
        change_password(self, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::ChangePasswordResponse, Unreadable> {
        answer.try_into()
    }
}

pub const CREATE_USER: Op<Empty> = Op {
    name: "create_user",
    method: Method::POST,
    path: Path {
        setting: "create_user",
        spec: "/security-management/v1/customer",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::CreateUserRequest {
    type Body = CreateUserRequest;
    type Answer = Empty;
    type Response = pb::CreateUserResponse;
    const OP: &'static Op<Empty> = &CREATE_USER;

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
    ) -> Outgoing<CreateUserRequest> {
        create_user(self, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::CreateUserResponse, Unreadable> {
        answer.try_into()
    }
}

pub const UPDATE_PASSWORD_STATUS: Op<PasswordStatusChange> = Op {
    name: "update_password_status",
    method: Method::POST,
    path: Path {
        setting: "update_password_status",
        spec: "/security-management/v1/customer/password/status",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::UpdatePasswordStatusRequest {
    type Body = UpdatePasswordStatusRequest;
    type Answer = PasswordStatusChange;
    type Response = pb::UpdatePasswordStatusResponse;
    const OP: &'static Op<PasswordStatusChange> = &UPDATE_PASSWORD_STATUS;

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
        readings: &Readings,
        v: &mut Violations,
    ) -> Outgoing<UpdatePasswordStatusRequest> {
        update_password_status(self, readings.password_status_values, v)
    }

    fn read(
        &self,
        answer: PasswordStatusChange,
    ) -> Result<pb::UpdatePasswordStatusResponse, Unreadable> {
        answer.try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(end_dt: &str) -> pb::UpdatePasswordStatusResponse {
        let answer: PasswordStatusChange = serde_json::from_value(serde_json::json!({
            "status": { "statusDesc": "Active", "endDt": end_dt }
        }))
        .expect("an answer");
        pb::UpdatePasswordStatusResponse::try_from(answer).expect("a success")
    }

    #[test]
    fn an_end_date_is_read_in_any_spelling_and_a_made_change_is_never_a_failure() {
        let printed = changed("2023-06-23-12:57:48.941")
            .effective_time
            .expect("a time");
        // 12:57:48 in Colombia (UTC-5) is 17:57:48 UTC.
        assert_eq!(printed.seconds, 1_687_543_068);
        for spelling in [
            "2023-06-23 12:57:48.941",
            "2023-06-23T12:57:48",
            "23/06/2023 12:57:48",
            "2023-06-23T17:57:48.941Z",
            "2023-06-23T12:57:48.941-05:00",
        ] {
            let read = changed(spelling).effective_time.expect(spelling);
            assert_eq!(read.seconds, printed.seconds, "{spelling}");
        }
        let unknown = changed("junio 23");
        assert_eq!(unknown.description, "Active");
        assert_eq!(unknown.effective_time, None, "made, its time unknown");
    }
}
