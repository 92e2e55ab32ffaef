//! The Kiban HTTP client: the API key header, the password-expiry call through the shared
//! outbound kit, and its answer turned into the typed response or a mapped error.

use std::time::Duration;

use anyhow::Context as _;
use pasarela::bureau::v1::GetPasswordExpirationResponse;
use pasarela_provider::outbound::{Operation, Outbound, RawResponse};
use pasarela_provider::{Credential, Delivery, ProviderError, reasons};
use reqwest::Url;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue, InvalidHeaderValue};
use secrecy::ExposeSecret as _;
use tonic::Code;

use super::errors::{self, DOMAIN};
use super::wire::{self, Envelope, ExpiryBody, FailureBody, Unusable};
use crate::config::Config;
use crate::request::ExpiryQuery;

/// Reading an expiration date changes nothing, so an unanswered call may be repeated.
const PASSWORD_EXPIRY: Operation = Operation {
    name: "password_expiry_date",
    safe_to_retry: true,
};

/// Query parameter selecting a test case in Kiban's sandbox.
const TEST_CASE_PARAM: &str = "testCaseId";

/// One Kiban client, built once at start.
#[derive(Debug)]
pub struct Kiban {
    outbound: Outbound,
    url: Url,
    api_key_header: HeaderName,
    /// Read again from its file when it changes (a rotated Secret).
    api_key: Credential,
}

impl Kiban {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let base = Url::parse(&config.base_url)
            .with_context(|| format!("bureau.base_url {:?} is not a URL", config.base_url))?;
        let url = base
            .join(&config.path)
            .with_context(|| format!("bureau.path {:?} is not a path", config.path))?;
        let api_key_header =
            HeaderName::try_from(config.api_key_header.as_str()).with_context(|| {
                format!(
                    "bureau.api_key_header {:?} is not a header name",
                    config.api_key_header
                )
            })?;
        api_key_value(&config.api_key).map_err(|_| {
            anyhow::anyhow!("bureau.api_key holds characters a header cannot carry")
        })?;
        let outbound = Outbound::new(DOMAIN, &config.outbound)?;
        outbound.expect_operations(&[PASSWORD_EXPIRY.name]);
        Ok(Self {
            outbound,
            url,
            api_key_header,
            api_key: config.api_key.clone(),
        })
    }

    /// The longest a call may take when the caller sets no deadline.
    pub fn ceiling(&self) -> Duration {
        self.outbound.ceiling()
    }

    /// The password's expiration date, within `budget`.
    pub async fn password_expiry(
        &self,
        query: &ExpiryQuery,
        budget: Duration,
    ) -> Result<GetPasswordExpirationResponse, ProviderError> {
        let api_key = api_key_value(&self.api_key).map_err(|_| {
            ProviderError::new(Code::Unavailable, reasons::PROVIDER_AUTH_FAILED, DOMAIN)
                .message("pasarela's Kiban API key cannot be sent")
                .delivery(Delivery::NotSent)
        })?;
        let mut request = self
            .outbound
            .client()
            .post(self.url.clone())
            .header(self.api_key_header.clone(), api_key)
            .header(ACCEPT, "application/json")
            .json(&ExpiryBody::from(query));
        if let Some(id) = &query.test_case_id {
            request = request.query(&[(TEST_CASE_PARAM, id)]);
        }
        let answer = self.outbound.send(PASSWORD_EXPIRY, request, budget).await?;
        read(answer, query)
    }
}

/// The API key as a header value marked sensitive: never printed, and kept out of HTTP/2
/// header compression tables. The error must not quote the key.
fn api_key_value(key: &Credential) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(key.current().expose_secret())?;
    value.set_sensitive(true);
    Ok(value)
}

/// The typed response from Kiban's answer, or the error it means. The body is parsed once
/// here and dropped: its echoed credentials never leave this function.
fn read(
    answer: RawResponse,
    query: &ExpiryQuery,
) -> Result<GetPasswordExpirationResponse, ProviderError> {
    let status = answer.status;
    if !status.is_success() {
        return Err(errors::failure(
            status,
            FailureBody::parse(&answer.body),
            query,
        ));
    }
    let envelope: Envelope = serde_json::from_slice(&answer.body)
        .map_err(|_| errors::unusable(status, Unusable::NotAnEnvelope))?;
    if envelope.status.as_deref() != Some(wire::SUCCESS) {
        return Err(errors::failure(
            status,
            FailureBody::Envelope(envelope),
            query,
        ));
    }
    wire::to_response(&envelope).map_err(|why| errors::unusable(status, why))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use reqwest::StatusCode;
    use tonic::{Code, Status};
    use tonic_types::StatusExt as _;

    use super::*;

    const PASSWORD: &str = "P4SSW0RD";

    fn query() -> ExpiryQuery {
        ExpiryQuery {
            member_code: "FF12345678".into(),
            password: PASSWORD.into(),
            test_case_id: None,
        }
    }

    fn answer(status: u16, body: &[u8]) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).expect("status"),
            headers: Default::default(),
            body: body.to_vec().into(),
        }
    }

    fn bad_response_reason(result: Result<GetPasswordExpirationResponse, ProviderError>) -> String {
        let status: Status = result.expect_err("not usable").into();
        assert_eq!(status.code(), Code::Internal);
        status
            .get_error_details()
            .error_info()
            .expect("info")
            .reason
            .clone()
    }

    #[test]
    fn malformed_success_bodies_are_bad_responses() {
        let bodies: [&[u8]; 8] = [
            b"<html><body>502 Bad Gateway</body></html>",
            b"",
            br#"{"id":"1","status":"SUCCESS","response":{"fechaExp"#,
            br#"{"id":1,"status":"SUCCESS","response":{"fechaExpiracion":"08/29/2022"}}"#,
            br#"{"status":"SUCCESS","duration":"fast","response":{"fechaExpiracion":"08/29/2022"}}"#,
            br#"{"status":"SUCCESS","response":{"fechaExpiracion":20220829}}"#,
            br#"{"status":"SUCCESS","response":{"fechaExpiracion":"29/08/2022"}}"#,
            br#"[{"status":"SUCCESS"}]"#,
        ];
        for body in bodies {
            assert_eq!(
                bad_response_reason(read(answer(200, body), &query())),
                "PROVIDER_BAD_RESPONSE",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_success_status_is_required() {
        let body = br#"{"status":"PENDING","response":{"fechaExpiracion":"08/29/2022"}}"#;
        assert_eq!(
            bad_response_reason(read(answer(200, body), &query())),
            "PROVIDER_BAD_RESPONSE"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_nor_succeed(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let result = read(answer(200, &body), &query());
            prop_assert!(result.is_err());
        }

        #[test]
        fn any_answer_keeps_the_password_out_of_the_error(
            status in 200u16..600,
            prefix in ".{0,40}",
            suffix in ".{0,40}",
        ) {
            let body = serde_json::json!({
                "status": "SERVICE_ERROR",
                "errorMessage": format!("{prefix}{PASSWORD}{suffix}"),
                "request": { "clave": "FF12345678", "contrasena": PASSWORD },
                "response": { "fechaExpiracion": format!("{prefix}{PASSWORD}") },
            });
            let result = read(answer(status, body.to_string().as_bytes()), &query());
            let rendered = match result {
                Ok(response) => format!("{response:?}"),
                Err(error) => format!("{:?}", Status::from(error)),
            };
            prop_assert!(!rendered.contains(PASSWORD));
        }

        #[test]
        fn dates_round_trip(year in 1i32..=9999, month in 1u32..=12, day in 1u32..=28) {
            let body = format!(
                r#"{{"status":"SUCCESS","response":{{"fechaExpiracion":"{month:02}/{day:02}/{year:04}"}}}}"#
            );
            let response = read(answer(200, body.as_bytes()), &query()).expect("usable");
            let date = response.expiration_date.expect("date");
            prop_assert_eq!((date.year, date.month, date.day), (year, month as i32, day as i32));
        }
    }
}
