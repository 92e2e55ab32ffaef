//! Bad input, generated from the contracts, never reaches a provider.

use super::*;
use crate::support::corpus::{Contracts, Rpc, mutations, raw_call, request_with};

#[tokio::test]
async fn a_generated_corpus_of_bad_input_never_reaches_a_provider() {
    let app = app().await;
    let token = app.bearer();
    let contracts = Contracts::load();
    // The operators' service calls no provider, and an empty listing request is valid.
    let provider_rpcs: Vec<&Rpc> = contracts
        .rpcs
        .iter()
        .filter(|rpc| !rpc.path.starts_with("/pasarela.operations."))
        .collect();
    assert_eq!(provider_rpcs.len(), 24, "every RPC of the three services");
    let mut wrong = Vec::new();
    let mut cases = 0;
    for rpc in provider_rpcs {
        let before = app.calls().await;
        // Every field empty: whatever each RPC requires is missing.
        let empty = raw_call(&app, &token, &rpc.path, Vec::new()).await;
        if !matches!(&empty, Err(s) if s.code() == Code::InvalidArgument) {
            wrong.push(format!("{} empty request: {empty:?}", rpc.path));
        }
        for field in contracts.string_fields(&rpc.input) {
            for (kind, value) in mutations(&field) {
                cases += 1;
                let answer = raw_call(
                    &app,
                    &token,
                    &rpc.path,
                    request_with(&field.numbers, &value),
                )
                .await;
                if let Some(problem) = refusal_problem(&answer, &field.name) {
                    wrong.push(format!("{} {} ({kind}): {problem}", rpc.path, field.name));
                }
            }
        }
        if app.calls().await != before {
            wrong.push(format!("{}: a provider was called", rpc.path));
        }
    }
    assert!(
        cases > 300,
        "the contracts hold many string fields: {cases}"
    );
    assert!(
        wrong.is_empty(),
        "{} of {cases} bad inputs were not refused as expected:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// What is wrong with the answer to a request whose `field` holds a bad value: it must be
/// `INVALID_ARGUMENT` with a `BadRequest` naming the field, or, for a bank identity field
/// the caller does not own, `PERMISSION_DENIED` naming it (whatever its value).
fn refusal_problem(answer: &Result<(), Status>, field: &str) -> Option<String> {
    let status = match answer {
        Ok(()) => return Some("accepted".into()),
        Err(status) => status,
    };
    let not_callers = status.code() == Code::PermissionDenied
        && crate::support::reason(status) == "BANK_IDENTITY_NOT_CALLERS";
    if not_callers {
        let named = crate::support::error_metadata(status, "fields");
        return (named != field).then(|| format!("the refusal names {named:?}"));
    }
    if status.code() != Code::InvalidArgument {
        return Some(format!("{:?} {:?}", status.code(), status.message()));
    }
    let named = violated_fields(status);
    (!named.iter().any(|f| f == field)).then(|| format!("the violations do not name it: {named:?}"))
}

/// Bytes 0xFF 0xFE inside a protobuf string: prost refuses to decode the request before
/// any handler runs. The caller sent bad input, so the answer must say so.
#[tokio::test]
async fn invalid_utf8_in_any_string_field_is_invalid_argument() {
    let app = app().await;
    let token = app.bearer();
    let contracts = Contracts::load();
    let before = app.calls().await;
    let mut wrong = Vec::new();
    for rpc in &contracts.rpcs {
        for field in contracts.string_fields(&rpc.input) {
            let request = request_with(&field.numbers, &[b'a', 0xFF, 0xFE, b'b']);
            let answer = raw_call(&app, &token, &rpc.path, request).await;
            match answer {
                Err(status) if status.code() == Code::InvalidArgument => {}
                other => wrong.push(format!("{} {}: {other:?}", rpc.path, field.name)),
            }
        }
    }
    assert_eq!(app.calls().await, before, "no provider was called");
    assert!(
        wrong.is_empty(),
        "{} string fields answered otherwise, first: {}",
        wrong.len(),
        wrong[0]
    );
}

#[tokio::test]
async fn a_message_above_the_size_limit_is_refused_unread() {
    let app = app().await;
    let token = app.bearer();
    let contracts = Contracts::load();
    let before = app.calls().await;
    let huge = vec![b'7'; 300 * 1024];
    for rpc in &contracts.rpcs {
        let field = contracts.string_fields(&rpc.input).remove(0);
        let status = raw_call(&app, &token, &rpc.path, request_with(&field.numbers, &huge))
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{}: {status:?}",
            rpc.path
        );
    }
    assert_eq!(app.calls().await, before, "no provider was called");
}
