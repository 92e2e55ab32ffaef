//! How each operation answers a failure: the envelope's casing, the `value` it carries, the
//! HTTP status, and the operation's own "bad request" and "unauthorized" rows, as a table.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The real API mixes `responseType`/`errorCode` with `ResponseType`/`ErrorCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Casing {
    Camel,
    Pascal,
}

/// One row of an error table: HTTP status, error code, error type, description.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fault {
    pub status: u16,
    pub code: &'static str,
    pub kind: &'static str,
    pub desc: &'static str,
}

/// The 19 operations, in the order of `specs/README.md` (S1 first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    PasswordStatus,
    GenerateOtcV1,
    GenerateOtcV3,
    ValidateOtc,
    ChallengeV1,
    DigitalEnroll,
    DigitalEnrollmentCheck,
    ChangePassword,
    CreateUser,
    EnrollmentValidation,
    RecoveryValidation,
    WithdrawalOtp,
    SetPasswordStatus,
    ListChannelHolds,
    SetChannelHold,
    AuthenticationLevel,
    AuthenticationChannel,
    Withdrawal,
    ChallengeV2,
}

/// What an operation's error table says about failures common to every operation.
pub(crate) struct Profile {
    pub casing: Casing,
    /// Answer to malformed JSON, a missing field or a header that breaks the pattern table.
    pub bad_request: Fault,
    /// Answer to missing or wrong client credentials.
    pub unauthorized: Fault,
    /// Status a business rejection (a 400 row) travels with, where the operation says so:
    /// 206 for V3 OTC and the IVR reto operations, 500 for the challenge operations whose
    /// table encapsulates "all business validation errors" in 500.
    pub business_status: Option<u16>,
    /// Headers the operation marks as required, beyond the client credentials.
    pub required_headers: &'static [&'static str],
}

/// A row of an error table, in the order the spec prints its columns.
pub(crate) const fn row(
    status: u16,
    code: &'static str,
    kind: &'static str,
    desc: &'static str,
) -> Fault {
    Fault {
        status,
        code,
        kind,
        desc,
    }
}

const APIKIT_BAD_REQUEST: Fault = row(400, "400", "OUD", "Bad Request");
const APIKIT_UNAUTHORIZED: Fault = row(401, "401", "OUD", "Unauthorized");
const BDA_BAD_REQUEST: Fault = row(400, "1", "BDA", "BAD REQUEST.");
const BDA_BUSINESS: Fault = row(206, "1", "BDA", "BUSSINES MISTAKE");
const BDA_UNAUTHORIZED: Fault = row(401, "1004", "BDA", "UNATHORIZED");
const RETO_BAD_REQUEST: Fault = row(
    400,
    "BAD REQUEST",
    "BDA",
    "Indicates that there is a validation error at the input messaging level.",
);
const RETO_UNAUTHORIZED: Fault = row(
    401,
    "UNATHORIZED",
    "BDA",
    "Indicates that the API consumer is not authorized to consume the resource.",
);
const OUD_BAD_REQUEST: Fault = row(
    400,
    "00400",
    "OUD",
    "Bad Request Hay un error en la estructuración del JSON de entrada",
);
const OUD_UNAUTHORIZED: Fault = row(
    401,
    "00401",
    "OUD",
    "Unauthorized La solicitud no está autorizada. Las credenciales de autenticación incluidas con esta solicitud faltan o no son válidas.",
);
const OSB_BAD_REQUEST: Fault = row(
    400,
    "OSB-382505",
    "EXP",
    "OSB Validate action failed validationOtpProposito_PNN_EXP",
);

use Casing::{Camel, Pascal};

/// Headers S18's table marks "SI" (the client credentials are checked for every operation).
const WITHDRAWAL_REQUIRED: &[&str] = &[
    "Accept",
    "X-Invoker-Channel",
    "X-Invoker-BranchId",
    "X-Invoker-TerminalId",
    "X-Invoker-UserIPAddress",
    "X-Invoker-ServerIPAddress",
    "X-Invoker-ProcessDate",
    "X-Invoker-TxId",
    "X-Invoker-SessionKey",
    "X-Invoker-Country",
    "X-Invoker-ProcessId",
    "X-Invoker-subChannel",
    "X-Invoker-User",
    "X-Invoker-Action",
    "X-Invoker-ModifierUser",
    "X-Invoker-Ally",
];

/// Headers S19's table marks "SI".
const CHALLENGE_V2_REQUIRED: &[&str] = &[
    "Accept",
    "X-Invoker-Ally",
    "X-Invoker-UserIPAddress",
    "X-Invoker-ServerIPAddress",
    "X-Invoker-UserMACAddress",
    "X-Invoker-ServerMACAddress",
    "X-Invoker-ProcessDate",
    "X-Invoker-Country",
    "X-Invoker-ProcessId",
    "X-Invoker-User",
];

/// The error-table families; an operation's profile is its family's, with the rows its
/// own table changes.
const APIKIT: Profile = Profile {
    casing: Camel,
    bad_request: APIKIT_BAD_REQUEST,
    unauthorized: APIKIT_UNAUTHORIZED,
    business_status: None,
    required_headers: &[],
};
const BDA: Profile = Profile {
    bad_request: BDA_BAD_REQUEST,
    unauthorized: BDA_UNAUTHORIZED,
    ..APIKIT
};
const RETO: Profile = Profile {
    casing: Pascal,
    bad_request: RETO_BAD_REQUEST,
    unauthorized: RETO_UNAUTHORIZED,
    ..APIKIT
};
const OUD: Profile = Profile {
    casing: Pascal,
    bad_request: OUD_BAD_REQUEST,
    unauthorized: OUD_UNAUTHORIZED,
    ..APIKIT
};
const GENERATE_OTC_V3: Profile = Profile {
    bad_request: BDA_BUSINESS,
    business_status: Some(206),
    ..BDA
};
const CHALLENGE_V1: Profile = Profile {
    business_status: Some(500),
    ..RETO
};
const WITHDRAWAL_OTP: Profile = Profile {
    bad_request: OSB_BAD_REQUEST,
    required_headers: &["X-Invoker-Source", "X-Security-CustLoginId"],
    ..APIKIT
};
const IVR_RETO: Profile = Profile {
    business_status: Some(206),
    ..APIKIT
};
const WITHDRAWAL: Profile = Profile {
    required_headers: WITHDRAWAL_REQUIRED,
    ..APIKIT
};
const CHALLENGE_V2: Profile = Profile {
    business_status: Some(500),
    required_headers: CHALLENGE_V2_REQUIRED,
    ..RETO
};

impl Op {
    pub fn profile(self) -> &'static Profile {
        match self {
            Op::PasswordStatus => &APIKIT,
            Op::GenerateOtcV1 => &BDA,
            Op::GenerateOtcV3 => &GENERATE_OTC_V3,
            Op::ValidateOtc => &BDA,
            Op::ChallengeV1 => &CHALLENGE_V1,
            Op::DigitalEnroll => &RETO,
            Op::DigitalEnrollmentCheck => &RETO,
            Op::ChangePassword => &APIKIT,
            Op::CreateUser => &APIKIT,
            Op::EnrollmentValidation => &OUD,
            Op::RecoveryValidation => &OUD,
            Op::WithdrawalOtp => &WITHDRAWAL_OTP,
            Op::SetPasswordStatus => &APIKIT,
            Op::ListChannelHolds => &APIKIT,
            Op::SetChannelHold => &APIKIT,
            Op::AuthenticationLevel => &IVR_RETO,
            Op::AuthenticationChannel => &IVR_RETO,
            Op::Withdrawal => &WITHDRAWAL,
            Op::ChallengeV2 => &CHALLENGE_V2,
        }
    }

    /// A business rejection from an error table, with the operation's casing and status.
    pub fn reject(self, fault: &Fault) -> BcsError {
        let profile = self.profile();
        let status = match profile.business_status {
            Some(status) if fault.status == 400 => status,
            _ => fault.status,
        };
        BcsError::new(profile.casing, "ER", &Fault { status, ..*fault })
    }

    /// The operation's own bad-request row, saying which input was wrong (never its value).
    pub fn bad_request(self, what: impl AsRef<str>) -> BcsError {
        let profile = self.profile();
        let mut error = BcsError::new(profile.casing, "ER", &profile.bad_request);
        error.desc = format!("{}: {}", profile.bad_request.desc, what.as_ref());
        error
    }

    /// The gateway's own refusal of a request its API definition cannot read (MuleSoft
    /// APIKit, `400 400 OUD`), saying what it could not read.
    pub fn unreadable(self, what: impl AsRef<str>) -> BcsError {
        let mut error = BcsError::new(self.profile().casing, "ER", &APIKIT_BAD_REQUEST);
        error.desc = format!("{}: {}", APIKIT_BAD_REQUEST.desc, what.as_ref());
        error
    }

    pub fn unauthorized(self) -> BcsError {
        let profile = self.profile();
        BcsError::new(profile.casing, "ER", &profile.unauthorized)
    }

    /// The documented technical failure of the channel-holds backend: `ER500`, empty detail.
    pub fn backend_failure(self) -> BcsError {
        BcsError::new(self.profile().casing, "ER500", &row(500, "", "", ""))
    }
}

/// A success body: `responseType.value = OK` plus `extra`. Every success example of the
/// spec is camelCase, even where the operation's errors are PascalCase.
pub(crate) fn ok(status: StatusCode, extra: Value) -> Response {
    let mut body = json!({ "responseType": { "value": "OK" } });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// A failure as the provider writes it.
#[derive(Debug)]
pub(crate) struct BcsError {
    casing: Casing,
    status: u16,
    value: &'static str,
    code: String,
    desc: String,
    kind: String,
}

impl BcsError {
    fn new(casing: Casing, value: &'static str, fault: &Fault) -> Self {
        Self {
            casing,
            status: fault.status,
            value,
            code: fault.code.into(),
            desc: fault.desc.into(),
            kind: fault.kind.into(),
        }
    }

    fn body(&self) -> Value {
        match self.casing {
            Camel => json!({
                "responseType": { "value": self.value },
                "responseDetail": {
                    "errorCode": self.code,
                    "errorDesc": self.desc,
                    "errorType": self.kind,
                }
            }),
            Pascal => json!({
                "ResponseType": { "value": self.value },
                "ResponseDetail": {
                    "ErrorCode": self.code,
                    "ErrorDesc": self.desc,
                    "ErrorType": self.kind,
                }
            }),
        }
    }
}

impl IntoResponse for BcsError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// What every handler returns.
pub(crate) type Reply = Result<Response, BcsError>;

/// The APIKit answer to a path no operation has.
pub(crate) async fn not_found() -> BcsError {
    unknown_resource()
}

/// `404 404 OUD`: no resource at this path.
pub(crate) fn unknown_resource() -> BcsError {
    BcsError::new(Camel, "ER", &row(404, "404", "OUD", "Not Found"))
}
