//! The gRPC handler of `BureauService`: validate, call Kiban within the caller's
//! deadline, answer.

use pasarela::bureau::v1::bureau_service_server::BureauService;
use pasarela::bureau::v1::{GetPasswordExpirationRequest, GetPasswordExpirationResponse};
use pasarela_auth::SecretAttempts;
use pasarela_provider::deadline;
use tonic::{Request, Response, Status};

use crate::config::{Config, Environment};
use crate::kiban::Kiban;
use crate::request;

pub struct Bureau {
    kiban: Kiban,
    environment: Environment,
    /// Budgets of the members whose passwords Kiban checks, across every caller.
    attempts: SecretAttempts,
}

/// Whose secrets these are: bureau members, in the holders' budgets.
const HOLDERS: &str = "kiban-member";

impl Bureau {
    /// Builds the Kiban client once; fails on an unusable URL, header or API key.
    /// `attempts` counts the checks of each member's password.
    pub fn new(config: &Config, attempts: SecretAttempts) -> anyhow::Result<Self> {
        Ok(Self {
            kiban: Kiban::new(config)?,
            environment: config.environment,
            attempts,
        })
    }
}

#[tonic::async_trait]
impl BureauService for Bureau {
    async fn get_password_expiration(
        &self,
        request: Request<GetPasswordExpirationRequest>,
    ) -> Result<Response<GetPasswordExpirationResponse>, Status> {
        let remaining = pasarela_auth::CallContext::of(&request).remaining();
        let budget = deadline::budget(remaining, self.kiban.ceiling());
        let query = request::validate(request.into_inner(), self.environment)?;
        // Each call tells a right password from a wrong one: past the member's budget
        // Kiban is not asked. Case does not make another member: one budget for every
        // spelling.
        let member = query.member_code.to_ascii_uppercase();
        self.attempts.check(HOLDERS, &member).await?;
        match self.kiban.password_expiry(&query, budget).await {
            Ok(response) => {
                // The caller has the request id in the answer and the audit line has the
                // call: a line of its own is for debugging only.
                tracing::debug!(kiban_request_id = %response.request_id, "password expiration read");
                Ok(Response::new(response))
            }
            Err(error) => {
                tracing::warn!(reason = %error.reason, code = ?error.code, "password expiration failed");
                Err(error.into())
            }
        }
    }
}
