//! Digital enrollment and card secrets: S6 and S7 (enroll, validate enrollment), S10 and S11 (card PIN / CVV checks).

use super::*;

// ---- S6, S7: digital enrollment ------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentRequest {
    gov_issue_ident: GovIssueIdent,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_info: Option<ContactInfo>,
    info_password: InfoPassword,
}

/// `infoPassword`, shared by enrollment (S6) and user creation (S9).
#[derive(Serialize)]
pub struct InfoPassword {
    #[serde(serialize_with = "expose")]
    pub(super) password: SecretString,
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

/// S10: a card secret check before enrollment.
pub fn validate_enrollment_card(
    request: &pb::ValidateEnrollmentCardRequest,
    v: &mut Violations,
) -> Outgoing<NoBody> {
    card_check(
        v,
        request.customer.as_ref(),
        request.card_type,
        &request.card_secret,
        &request.card_last_digits,
    )
}

/// S11: the same check before a password recovery.
pub fn validate_password_recovery(
    request: &pb::ValidatePasswordRecoveryRequest,
    v: &mut Violations,
) -> Outgoing<NoBody> {
    card_check(
        v,
        request.customer.as_ref(),
        request.card_type,
        &request.card_secret,
        &request.card_last_digits,
    )
}

// ---- the operations ----------------------------------------------------------------------

pub const ENROLL_DIGITAL_USER: Op<Empty> = Op {
    name: "enroll_digital_user",
    method: Method::POST,
    path: Path {
        setting: "enroll_digital_user",
        spec: "/userManagement/v1/Customer",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Refusal,
    answer: PhantomData,
};

impl Operation for pb::EnrollDigitalUserRequest {
    type Body = EnrollmentRequest;
    type Answer = Empty;
    type Response = pb::EnrollDigitalUserResponse;
    const OP: &'static Op<Empty> = &ENROLL_DIGITAL_USER;

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
    ) -> Outgoing<EnrollmentRequest> {
        enroll_digital_user(self, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::EnrollDigitalUserResponse, Unreadable> {
        answer.try_into()
    }
}

pub const VALIDATE_DIGITAL_ENROLLMENT: Op<Empty> = Op {
    name: "validate_digital_enrollment",
    method: Method::GET,
    path: Path {
        setting: "validate_digital_enrollment",
        spec: "/userManagement/v1/Customer",
    },
    retry: Retry::Safe,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Refusal,
    answer: PhantomData,
};

impl Operation for pb::ValidateDigitalEnrollmentRequest {
    type Body = NoBody;
    type Answer = Empty;
    type Response = pb::ValidateDigitalEnrollmentResponse;
    const OP: &'static Op<Empty> = &VALIDATE_DIGITAL_ENROLLMENT;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        false
    }

    fn build(&self, _: &InvokerFields, _: &Readings, v: &mut Violations) -> Outgoing<NoBody> {
        validate_digital_enrollment(self, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::ValidateDigitalEnrollmentResponse, Unreadable> {
        answer.try_into()
    }
}

// Checks a card PIN / CVV: a repeat could count as a second wrong attempt.
pub const VALIDATE_ENROLLMENT_CARD: Op<Empty> = Op {
    name: "validate_enrollment_card",
    method: Method::GET,
    path: Path {
        setting: "validate_enrollment_card",
        spec: "/security-management/v1/customer/{identSerialNum}/validate",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::ValidateEnrollmentCardRequest {
    type Body = NoBody;
    type Answer = Empty;
    type Response = pb::ValidateEnrollmentCardResponse;
    const OP: &'static Op<Empty> = &VALIDATE_ENROLLMENT_CARD;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        true
    }

    fn build(&self, _: &InvokerFields, _: &Readings, v: &mut Violations) -> Outgoing<NoBody> {
        validate_enrollment_card(self, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::ValidateEnrollmentCardResponse, Unreadable> {
        answer.try_into()
    }
}

// Checks a card PIN / CVV: a repeat could count as a second wrong attempt.
pub const VALIDATE_PASSWORD_RECOVERY: Op<Empty> = Op {
    name: "validate_password_recovery",
    method: Method::GET,
    path: Path {
        setting: "validate_password_recovery",
        spec: "/security-management/v1/customer/{identSerialNum}/password",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::ValidatePasswordRecoveryRequest {
    type Body = NoBody;
    type Answer = Empty;
    type Response = pb::ValidatePasswordRecoveryResponse;
    const OP: &'static Op<Empty> = &VALIDATE_PASSWORD_RECOVERY;

    fn invoker(&self) -> Option<&InvokerContext> {
        self.invoker.as_ref()
    }

    fn customer(&self) -> Option<&Identification> {
        self.customer.as_ref()
    }

    fn checks_secret(&self) -> bool {
        true
    }

    fn build(&self, _: &InvokerFields, _: &Readings, v: &mut Violations) -> Outgoing<NoBody> {
        validate_password_recovery(self, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::ValidatePasswordRecoveryResponse, Unreadable> {
        answer.try_into()
    }
}
