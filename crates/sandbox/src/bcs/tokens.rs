//! Banco Caja Social's access tokens. The spec sends "a valid OAuth 2 access token" on
//! every operation but prints no operation that issues one, so the sandbox's token endpoint
//! ([`TOKEN_PATH`], OAuth2 client credentials, the client authenticated in the form or by
//! HTTP Basic) is its own. Tokens it issues expire after `token_ttl` and are refused once
//! expired (or after `/bcs/tokens/expire`); a token it never issued is taken as a fixed
//! one, as a lab hands out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine as _;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::Deserialize;
use serde_json::json;

use super::state::State;

/// Where the sandbox issues Banco Caja Social tokens.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// What every token the sandbox issued starts with.
const ISSUED: &str = "sbx-bcs-";

/// The tokens issued and when each expires.
#[derive(Clone)]
pub struct Tokens {
    book: Arc<Mutex<Book>>,
}

struct Book {
    ttl: Duration,
    issued: HashMap<String, Instant>,
    count: u64,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Self {
            book: Arc::new(Mutex::new(Book {
                ttl,
                issued: HashMap::new(),
                count: 0,
            })),
        }
    }

    fn issue(&self) -> (String, Duration) {
        let random: String = rand::rng()
            .sample_iter(Alphanumeric)
            .take(40)
            .map(char::from)
            .collect();
        let token = format!("{ISSUED}{random}");
        let mut book = self.book();
        let now = Instant::now();
        let ttl = book.ttl;
        book.issued.retain(|_, expires| *expires > now);
        // A lifetime past the clock is none: the token is expired at once.
        book.issued
            .insert(token.clone(), now.checked_add(ttl).unwrap_or(now));
        book.count += 1;
        (token, ttl)
    }

    /// Whether `token` may be used now: one the sandbox issued must be live.
    pub fn accepts(&self, token: &str) -> bool {
        if !token.starts_with(ISSUED) {
            return true;
        }
        self.book()
            .issued
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }

    /// Every token issued so far stops being accepted.
    pub fn expire_all(&self) {
        self.book().issued.clear();
    }

    /// How many tokens were issued since start.
    pub fn issued(&self) -> u64 {
        self.book().count
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The token endpoint: the client in the form or in HTTP Basic, then the grant type.
pub async fn token(Extract(state): Extract<State>, headers: HeaderMap, body: Bytes) -> Response {
    let form: TokenForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let (id, secret) = basic(&headers).unwrap_or_else(|| {
        (
            form.client_id.clone().unwrap_or_default(),
            form.client_secret.clone().unwrap_or_default(),
        )
    });
    if !state.accepts_client(&id, &secret) {
        let error = json!({ "error": "invalid_client" });
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    if form.grant_type.as_deref() != Some("client_credentials") {
        let error = json!({ "error": "unsupported_grant_type" });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let (access_token, ttl) = state.tokens().issue();
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    }))
    .into_response()
}

/// The client of an `Authorization: Basic` header (RFC 6749, 2.3.1).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}
