//! Checks a `GetPasswordExpirationRequest` against Kiban's field table before any call,
//! and turns it into a [`ExpiryQuery`] whose password cannot be printed.

use std::sync::LazyLock;

use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela_provider::Violations;
use regex::Regex;
use secrecy::SecretString;
use tonic::Status;

use crate::config::Environment;

/// `clave`: exactly 10 alphanumerics (Kiban's field table).
pub const MEMBER_CODE_LEN: usize = 10;
/// `contrasena`: exactly 8 alphanumerics (Kiban's field table).
pub const PASSWORD_LEN: usize = 8;
/// Kiban's test case ids are 24-hex object ids; a little room is kept for ids of other shapes.
pub const TEST_CASE_ID_MAX: usize = 64;

static ALPHANUMERIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[A-Za-z0-9]*$").expect("valid pattern"));

/// A request that passed validation: what the Kiban client sends.
#[derive(Debug)]
pub struct ExpiryQuery {
    pub member_code: String,
    pub password: SecretString,
    /// Present only against Kiban's sandbox.
    pub test_case_id: Option<String>,
}

/// Every violation of `request` at once, or the query to send.
pub fn validate(
    request: GetPasswordExpirationRequest,
    environment: Environment,
) -> Result<ExpiryQuery, Status> {
    let mut violations = Violations::new();
    exact_alphanumeric(
        &mut violations,
        "member_code",
        &request.member_code,
        MEMBER_CODE_LEN,
    );
    exact_alphanumeric(&mut violations, "password", &request.password, PASSWORD_LEN);
    check_test_case(&mut violations, &request.test_case_id, environment);
    violations.finish()?;
    Ok(ExpiryQuery {
        member_code: request.member_code,
        password: request.password.into(),
        test_case_id: Some(request.test_case_id).filter(|id| !id.is_empty()),
    })
}

fn exact_alphanumeric(violations: &mut Violations, field: &str, value: &str, len: usize) {
    if violations.required(field, value) {
        violations.length(field, value, len, len);
        violations.pattern(field, value, &ALPHANUMERIC, "ASCII letters and digits only");
    }
}

fn check_test_case(violations: &mut Violations, id: &str, environment: Environment) {
    if id.is_empty() {
        return;
    }
    if environment == Environment::Production {
        violations.add(
            "test_case_id",
            "test cases exist only in Kiban's sandbox, and this deployment calls Kiban's production",
        );
        return;
    }
    violations.length("test_case_id", id, 1, TEST_CASE_ID_MAX);
    violations.pattern(
        "test_case_id",
        id,
        &ALPHANUMERIC,
        "ASCII letters and digits only",
    );
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;
    use tonic::Code;
    use tonic_types::StatusExt as _;

    use super::*;

    fn request(
        member_code: &str,
        password: &str,
        test_case_id: &str,
    ) -> GetPasswordExpirationRequest {
        GetPasswordExpirationRequest {
            member_code: member_code.into(),
            password: password.into(),
            test_case_id: test_case_id.into(),
        }
    }

    fn violated_fields(status: &Status) -> Vec<(String, String)> {
        status
            .get_error_details()
            .bad_request()
            .expect("bad request")
            .field_violations
            .iter()
            .map(|v| (v.field.clone(), v.description.clone()))
            .collect()
    }

    #[test]
    fn a_well_formed_request_passes() {
        let query = validate(
            request("FF12345678", "P4SSW0RD", ""),
            Environment::Production,
        )
        .expect("valid");
        assert_eq!(query.member_code, "FF12345678");
        assert_eq!(query.password.expose_secret(), "P4SSW0RD");
        assert_eq!(query.test_case_id, None);
    }

    #[test]
    fn every_violation_is_listed_at_once() {
        let status = validate(request("FF1234", "P4SS-W0RD", ""), Environment::Sandbox)
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<_> = violated_fields(&status)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, ["member_code", "password", "password"]);
    }

    #[test]
    fn missing_fields_are_required_not_short() {
        let status = validate(request("", "", ""), Environment::Sandbox).expect_err("invalid");
        let violations = violated_fields(&status);
        assert_eq!(violations.len(), 2);
        assert!(violations.iter().all(|(_, d)| d == "is required"));
    }

    #[test]
    fn non_ascii_letters_are_refused() {
        let status = validate(request("FFÑ2345678", "P4SSW0RD", ""), Environment::Sandbox)
            .expect_err("invalid");
        let violations = violated_fields(&status);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].0, "member_code");
    }

    #[test]
    fn test_cases_are_for_the_sandbox_only() {
        let id = "663567bb713cf2110a110679";
        let query = validate(request("FF12345678", "P4SSW0RD", id), Environment::Sandbox)
            .expect("valid in the sandbox");
        assert_eq!(query.test_case_id.as_deref(), Some(id));
        let status = validate(
            request("FF12345678", "P4SSW0RD", id),
            Environment::Production,
        )
        .expect_err("refused in production");
        let violations = violated_fields(&status);
        assert_eq!(violations[0].0, "test_case_id");
        assert!(violations[0].1.contains("sandbox"), "{}", violations[0].1);
    }

    #[test]
    fn violations_never_echo_the_password() {
        let status = validate(request("FF12345678", "S3CR3T!#", ""), Environment::Sandbox)
            .expect_err("invalid");
        assert!(!format!("{status:?}").contains("S3CR3T"));
    }
}
