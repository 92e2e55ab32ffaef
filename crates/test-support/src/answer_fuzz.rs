//! What the provider parser fuzzers share: made-up answers (raw bytes, envelopes of a
//! provider's keys and words with any type in any place, envelopes cut short) and the check
//! every RPC's outcome must pass. Used by each provider's fuzz target.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Put into made-up bodies so that an echo of the raw body can be told.
pub const MARKER: &str = "RAWBODY";

/// The loopback provider's answer: `status` (200 when not a status) with `body` as JSON.
pub fn raw(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Serves `app` on a free loopback port; answers its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    url
}

/// JSON shaped like the provider's answers (its `keys`, its leaf `words`), with any type in
/// any place.
pub fn envelope(
    keys: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        proptest::sample::select(words).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(proptest::sample::select(keys), inner, 0..6).prop_map(
                |map| Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

/// Any body: raw bytes, an envelope, or an envelope cut short.
pub fn body(
    keys: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        envelope(keys, words).prop_map(|value| value.to_string().into_bytes()),
        (envelope(keys, words), any::<prop::sample::Index>()).prop_map(|(value, cut)| {
            let text = value.to_string().into_bytes();
            let at = cut.index(text.len().max(1));
            text[..at.min(text.len())].to_vec()
        }),
    ]
}

/// A failure must be a meaningful code with `ErrorInfo` or `BadRequest`, and its message
/// must not carry the body.
pub fn check(result: Result<(), Status>) -> Result<(), TestCaseError> {
    let Err(status) = result else {
        return Ok(());
    };
    let details = status.get_error_details();
    prop_assert!(
        !matches!(status.code(), Code::Unknown | Code::Ok),
        "{status:?}"
    );
    prop_assert!(
        details.error_info().is_some() || details.bad_request().is_some(),
        "unmapped: {status:?}"
    );
    prop_assert!(
        !status.message().contains(MARKER),
        "the body reached the message: {:?}",
        status.message()
    );
    Ok(())
}
