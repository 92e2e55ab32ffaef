//! The audit trail: one structured line per call (target `audit`) with the principal, the
//! method, the gRPC code, the latency and the request id; never a token or a body.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Code;

use crate::principal::Principal;
use crate::rejection::Reason;

/// Longest method path written; anything longer is a made-up path.
const MAX_METHOD_LEN: usize = 200;

/// `text` cut to at most `max` bytes, on a character boundary (a path may hold UTF-8).
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    &text[..end]
}

/// What is known about a call before its outcome.
#[derive(Debug, Clone)]
pub struct Call {
    method: String,
    request_id: String,
    peer: Option<String>,
    started: Instant,
}

impl Call {
    pub fn start<B>(request: &http::Request<B>, peer: Option<String>) -> Self {
        let path = request.uri().path();
        let method = cut(path, MAX_METHOD_LEN).to_owned();
        let request_id = crate::CallContext::of_http(request).request_id;
        Self {
            method,
            request_id,
            peer,
            started: Instant::now(),
        }
    }

    /// Writes the call's audit line.
    pub fn finish(&self, principal: Option<&Principal>, code: Code, reason: Option<Reason>) {
        tracing::info!(
            target: "audit",
            principal = principal.map_or("-", |p| p.subject.as_str()),
            source = principal.map_or_else(|| "-".to_owned(), |p| p.source.to_string()),
            client_id = principal.and_then(|p| p.client_id.as_deref()).unwrap_or("-"),
            peer = self.peer.as_deref().unwrap_or("-"),
            method = %self.method,
            code = pasarela_provider::grpc::code_name(code),
            reason = reason.map_or("-", Reason::name),
            latency_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            request_id = %self.request_id,
            "call"
        );
    }
}

/// A response body that writes the audit line once the call's status is known: at its
/// trailers, at its end, or when it is dropped unfinished (the caller went away).
pub struct AuditedBody {
    inner: tonic::body::Body,
    call: Option<(Call, Option<Principal>)>,
}

impl AuditedBody {
    pub fn new(inner: tonic::body::Body, call: Call, principal: Option<Principal>) -> Self {
        Self {
            inner,
            call: Some((call, principal)),
        }
    }

    fn finish(&mut self, code: Code) {
        if let Some((call, principal)) = self.call.take() {
            call.finish(principal.as_ref(), code, None);
        }
    }
}

impl Body for AuditedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame
                    .trailers_ref()
                    .and_then(pasarela_provider::grpc::status_code)
                {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.finish(status.code()),
            Poll::Ready(None) => self.finish(Code::Ok),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_method_path_is_cut_on_a_character_boundary() {
        let long = format!("/{}", "ñ".repeat(8_000));
        let cut_path = cut(&long, MAX_METHOD_LEN);
        assert!(cut_path.len() <= MAX_METHOD_LEN && cut_path.len() >= MAX_METHOD_LEN - 3);
        assert!(long.starts_with(cut_path));
        assert_eq!(cut("/short", MAX_METHOD_LEN), "/short");
        // http takes a path of UTF-8 bytes as a caller sends it.
        let uri =
            http::Uri::from_maybe_shared(bytes::Bytes::from(long.clone())).expect("a UTF-8 path");
        let request = http::Request::builder().uri(uri).body(()).unwrap();
        let call = Call::start(&request, None);
        assert!(call.method.len() <= MAX_METHOD_LEN, "{}", call.method.len());
    }
}
