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

const fn profile(
    casing: Casing,
    bad_request: Fault,
    unauthorized: Fault,
    business_status: Option<u16>,
    required_headers: &'static [&'static str],
) -> Profile {
    Profile {
        casing,
        bad_request,
        unauthorized,
        business_status,
        required_headers,
    }
}

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

/// Indexed by `Op as usize`.
static PROFILES: [Profile; 19] = [
    profile(Camel, APIKIT_BAD_REQUEST, APIKIT_UNAUTHORIZED, None, &[]),
    profile(Camel, BDA_BAD_REQUEST, BDA_UNAUTHORIZED, None, &[]),
    profile(Camel, BDA_BUSINESS, BDA_UNAUTHORIZED, Some(206), &[]),
    profile(Camel, BDA_BAD_REQUEST, BDA_UNAUTHORIZED, None, &[]),
    profile(Pascal, RETO_BAD_REQUEST, RETO_UNAUTHORIZED, Some(500), &[]),
    profile(Pascal, RETO_BAD_REQUEST, RETO_UNAUTHORIZED, None, &[]),
    profile(Pascal, RETO_BAD_REQUEST, RETO_UNAUTHORIZED, None, &[]),
    profile(Camel, APIKIT_BAD_REQUEST, APIKIT_UNAUTHORIZED, None, &[]),
    profile(Camel, APIKIT_BAD_REQUEST, APIKIT_UNAUTHORIZED, None, &[]),
    profile(Pascal, OUD_BAD_REQUEST, OUD_UNAUTHORIZED, None, &[]),
    profile(Pascal, OUD_BAD_REQUEST, OUD_UNAUTHORIZED, None, &[]),
    profile(
        Camel,
        OSB_BAD_REQUEST,
        APIKIT_UNAUTHORIZED,
        None,
        &["X-Invoker-Source", "X-Security-CustLoginId"],
    ),
    profile(Camel, APIKIT_BAD_REQUEST, APIKIT_UNAUTHORIZED, None, &[]),
    profile(Camel, APIKIT_BAD_REQUEST, APIKIT_UNAUTHORIZED, None, &[]),
    profile(Camel, APIKIT_BAD_REQUEST, APIKIT_UNAUTHORIZED, None, &[]),
    profile(
        Camel,
        APIKIT_BAD_REQUEST,
        APIKIT_UNAUTHORIZED,
        Some(206),
        &[],
    ),
    profile(
        Camel,
        APIKIT_BAD_REQUEST,
        APIKIT_UNAUTHORIZED,
        Some(206),
        &[],
    ),
    profile(
        Camel,
        APIKIT_BAD_REQUEST,
        APIKIT_UNAUTHORIZED,
        None,
        WITHDRAWAL_REQUIRED,
    ),
    profile(
        Pascal,
        RETO_BAD_REQUEST,
        RETO_UNAUTHORIZED,
        Some(500),
        CHALLENGE_V2_REQUIRED,
    ),
];

impl Op {
    pub fn profile(self) -> &'static Profile {
        &PROFILES[self as usize]
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
    BcsError::new(Camel, "ER", &row(404, "404", "OUD", "Not Found"))
}
