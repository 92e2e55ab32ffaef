//! One-time codes: S2 and S3 (generate, V1 and V3), S4 (validate).

use super::*;
use crate::config::{OtcCodeField, OtcContactInfo, OtcShape};

// ---- S2, S3, S4: one-time codes ----------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtcRequest {
    gov_issue_ident: GovIssueIdent,
    otc: Otc,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_info: Option<ContactInfo>,
}

/// `otc`: the purpose, and the code or the contact where `OtcShape` puts them here.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Otc {
    otc_issue: String,
    #[serde(
        serialize_with = "expose_optional",
        skip_serializing_if = "Option::is_none"
    )]
    otc_value: Option<SecretString>,
    #[serde(
        serialize_with = "expose_optional",
        skip_serializing_if = "Option::is_none"
    )]
    value: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_info: Option<ContactInfo>,
}

/// The OTC purpose (`otcIssue`): the spec gives no length; 50 keeps it a code, not prose.
const PURPOSE_MAX: usize = 50;

fn generate_otc(
    v: &mut Violations,
    customer: Option<&pasarela::common::v1::Identification>,
    (purpose, contact): (&str, Option<&pb::ContactInfo>),
    shape: OtcShape,
) -> Outgoing<OtcRequest> {
    let contact = contact_info(v, "contact", contact);
    let in_otc = shape.contact_info == OtcContactInfo::InOtc;
    let (top, inside) = if in_otc {
        (None, contact)
    } else {
        (contact, None)
    };
    Outgoing::body(OtcRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", customer),
        otc: Otc {
            otc_issue: fields::text(v, "purpose", purpose, 1, PURPOSE_MAX),
            otc_value: None,
            value: None,
            contact_info: inside,
        },
        contact_info: top,
    })
}

/// S2: V1 and V3 send the same fields.
pub fn generate_otc_v1(
    request: &pb::GenerateOtcRequest,
    shape: OtcShape,
    v: &mut Violations,
) -> Outgoing<OtcRequest> {
    let asked = (request.purpose.as_str(), request.contact.as_ref());
    generate_otc(v, request.customer.as_ref(), asked, shape)
}

/// S3: the same request as V1, on its own path.
pub fn generate_otc_v3(
    request: &pb::GenerateOtcV3Request,
    shape: OtcShape,
    v: &mut Violations,
) -> Outgoing<OtcRequest> {
    let asked = (request.purpose.as_str(), request.contact.as_ref());
    generate_otc(v, request.customer.as_ref(), asked, shape)
}

pub fn validate_otc(
    request: &pb::ValidateOtcRequest,
    shape: OtcShape,
    v: &mut Violations,
) -> Outgoing<OtcRequest> {
    let code: SecretString = fields::secret(v, "code", &request.code, 100).into();
    let (otc_value, value) = match shape.code_field {
        OtcCodeField::OtcValue => (Some(code), None),
        OtcCodeField::Value => (None, Some(code)),
    };
    Outgoing::body(OtcRequest {
        gov_issue_ident: gov_issue_ident(v, "customer", request.customer.as_ref()),
        otc: Otc {
            otc_issue: fields::text(v, "purpose", &request.purpose, 1, PURPOSE_MAX),
            otc_value,
            value,
            contact_info: None,
        },
        contact_info: None,
    })
}

// ---- the operations ----------------------------------------------------------------------

pub const GENERATE_OTC: Op<Empty> = Op {
    name: "generate_otc",
    method: Method::POST,
    path: Path {
        setting: "generate_otc",
        spec: "/securityManagement/V1/generateOTC",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::GenerateOtcRequest {
    type Body = OtcRequest;
    type Answer = Empty;
    type Response = pb::GenerateOtcResponse;
    const OP: &'static Op<Empty> = &GENERATE_OTC;

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
    ) -> Outgoing<OtcRequest> {
        generate_otc_v1(self, readings.otc_shape, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::GenerateOtcResponse, Unreadable> {
        answer.try_into()
    }
}

pub const GENERATE_OTC_V3: Op<Empty> = Op {
    name: "generate_otc_v3",
    method: Method::POST,
    path: Path {
        setting: "generate_otc_v3",
        spec: "/securityManagement/V3/generateOTC",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::GenerateOtcV3Request {
    type Body = OtcRequest;
    type Answer = Empty;
    type Response = pb::GenerateOtcV3Response;
    const OP: &'static Op<Empty> = &GENERATE_OTC_V3;

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
    ) -> Outgoing<OtcRequest> {
        generate_otc_v3(self, readings.otc_shape, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::GenerateOtcV3Response, Unreadable> {
        answer.try_into()
    }
}

pub const VALIDATE_OTC: Op<Empty> = Op {
    name: "validate_otc",
    method: Method::POST,
    path: Path {
        setting: "validate_otc",
        spec: "/securityManagement/V1/validateOTC",
    },
    retry: Retry::Never,
    credentials: CredentialFamily::Mule,
    channel: Channel::Api,
    required: &[],
    marker: Marker::Optional,
    codes_on_5xx: CodesOn5xx::Failure,
    answer: PhantomData,
};

impl Operation for pb::ValidateOtcRequest {
    type Body = OtcRequest;
    type Answer = Empty;
    type Response = pb::ValidateOtcResponse;
    const OP: &'static Op<Empty> = &VALIDATE_OTC;

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
        readings: &Readings,
        v: &mut Violations,
    ) -> Outgoing<OtcRequest> {
        validate_otc(self, readings.otc_shape, v)
    }

    fn read(&self, answer: Empty) -> Result<pb::ValidateOtcResponse, Unreadable> {
        answer.try_into()
    }
}
