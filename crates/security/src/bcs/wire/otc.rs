//! One-time codes: S2 and S3 (generate, V1 and V3), S4 (validate).

use super::*;

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

/// S2: V1 and V3 send the same fields.
pub fn generate_otc_v1(
    request: &pb::GenerateOtcRequest,
    v: &mut Violations,
) -> Outgoing<OtcRequest> {
    generate_otc(
        v,
        request.customer.as_ref(),
        &request.purpose,
        request.contact.as_ref(),
    )
}

/// S3: the same request as V1, on its own path.
pub fn generate_otc_v3(
    request: &pb::GenerateOtcV3Request,
    v: &mut Violations,
) -> Outgoing<OtcRequest> {
    generate_otc(
        v,
        request.customer.as_ref(),
        &request.purpose,
        request.contact.as_ref(),
    )
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
