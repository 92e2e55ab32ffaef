//! A request body that must arrive within a bound. A call that sends one message (unary,
//! server streaming) must end its request within the bound from its start: tonic waits for
//! the end of the body even after the message. A client-streaming call must bring each
//! message whole within the bound, the first from the call's start, each later one from its
//! first byte; it may idle between messages. A caller that stalls gets `DEADLINE_EXCEEDED`
//! and the buffer reserved for its message is freed.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// The length-prefix of a gRPC message: a compression flag and a 4-byte length.
const PREFIX: usize = 5;

/// Where the body stands in its messages' framing.
#[derive(Debug, Default, PartialEq, Eq)]
struct Framing {
    /// Bytes of the current message's prefix seen so far.
    prefix: [u8; PREFIX],
    prefix_seen: usize,
    /// Bytes of the current message's payload still to come.
    remaining: u64,
}

impl Framing {
    /// Whether a message has begun and not yet ended.
    fn within_message(&self) -> bool {
        self.prefix_seen > 0 || self.remaining > 0
    }

    /// Follows `chunk`; answers whether a message ended in it.
    fn advance(&mut self, mut chunk: &[u8]) -> bool {
        let mut ended = false;
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                self.remaining = self.remaining.saturating_sub(take as u64);
                chunk = &chunk[take..];
                ended |= self.remaining == 0;
                continue;
            }
            let take = (PREFIX - self.prefix_seen).min(chunk.len());
            self.prefix[self.prefix_seen..self.prefix_seen + take].copy_from_slice(&chunk[..take]);
            self.prefix_seen += take;
            chunk = &chunk[take..];
            if self.prefix_seen == PREFIX {
                let [_, a, b, c, d] = self.prefix;
                self.remaining = u64::from(u32::from_be_bytes([a, b, c, d]));
                self.prefix_seen = 0;
                ended |= self.remaining == 0;
            }
        }
        ended
    }
}

/// What the bound of a request body applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// The whole body, from the call's start to its end.
    WholeBody,
    /// Each message, from its first byte (the first from the call's start) to its last.
    EachMessage,
}

/// The request body of one call, timed by its [`Pace`].
pub struct MessageClock {
    body: tonic::body::Body,
    limit: Duration,
    pace: Pace,
    framing: Framing,
    /// Running while a message is awaited: from the call's start, then from a message's
    /// first byte until its last.
    timer: Option<Pin<Box<Sleep>>>,
}

impl MessageClock {
    pub fn new(body: tonic::body::Body, limit: Duration, pace: Pace) -> Self {
        Self {
            body,
            limit,
            pace,
            framing: Framing::default(),
            timer: Some(Box::pin(tokio::time::sleep(limit))),
        }
    }

    /// Starts, restarts or stops a message's timer after a chunk, by where the framing
    /// now stands; the whole body's timer runs on.
    fn rearm(&mut self, ended_a_message: bool) {
        if self.pace == Pace::WholeBody {
            return;
        }
        // A bound past any clock bounds nothing.
        let Some(deadline) = tokio::time::Instant::now().checked_add(self.limit) else {
            self.timer = None;
            return;
        };
        match (
            self.framing.within_message(),
            ended_a_message,
            &mut self.timer,
        ) {
            (false, _, timer) => *timer = None,
            (true, true, Some(timer)) => timer.as_mut().reset(deadline),
            (true, _, timer @ None) => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            (true, false, Some(_)) => {}
        }
    }

    fn too_slow(&self) -> tonic::Status {
        tonic::Status::deadline_exceeded(format!(
            "the request message did not arrive within {:?}",
            self.limit
        ))
    }
}

impl Body for MessageClock {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let ended = self.framing.advance(data);
                    self.rearm(ended);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                self.timer = None;
                Poll::Ready(other)
            }
            Poll::Pending => {
                let expired = self
                    .timer
                    .as_mut()
                    .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
                if expired {
                    self.timer = None;
                    return Poll::Ready(Some(Err(self.too_slow())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut framed = vec![0];
        let length = u32::try_from(payload.len()).expect("a short message");
        framed.extend(length.to_be_bytes());
        framed.extend(payload);
        framed
    }

    #[test]
    fn framing_follows_messages_split_anywhere() {
        let mut framing = Framing::default();
        let mut two = message(b"hello");
        two.extend(message(b""));
        two.extend(message(b"world!"));
        let (head, tail) = two.split_at(3);
        assert!(!framing.advance(head), "inside the first prefix");
        assert!(framing.within_message());
        let (middle, last) = tail.split_at(tail.len() - 2);
        assert!(framing.advance(middle), "two messages ended");
        assert!(framing.within_message(), "the third has begun");
        assert!(framing.advance(last));
        assert!(!framing.within_message());
    }

    #[test]
    fn a_declared_length_past_any_buffer_does_not_overflow() {
        let mut framing = Framing::default();
        assert!(!framing.advance(&[0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
        assert_eq!(framing.remaining, u64::from(u32::MAX) - 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_message_is_cut_and_an_idle_stream_is_not() {
        use futures::StreamExt as _;
        use http_body_util::BodyExt as _;
        let (sender, chunks) = tokio::sync::mpsc::channel(4);
        let frames = tokio_stream::wrappers::ReceiverStream::new(chunks)
            .map(|chunk: Vec<u8>| Ok::<_, tonic::Status>(Frame::data(Bytes::from(chunk))));
        let body = tonic::body::Body::new(http_body_util::StreamBody::new(frames));
        let mut clock = MessageClock::new(body, Duration::from_secs(10), Pace::EachMessage);
        sender.send(message(b"one")).await.unwrap();
        assert!(clock.frame().await.unwrap().is_ok(), "a whole message");
        tokio::time::sleep(Duration::from_secs(60)).await;
        let mut half = message(b"a message that stalls");
        half.truncate(8);
        sender.send(half).await.unwrap();
        assert!(clock.frame().await.unwrap().is_ok(), "idle, then begun");
        let cut = clock
            .frame()
            .await
            .unwrap()
            .expect_err("stalled past the bound");
        assert_eq!(cut.code(), tonic::Code::DeadlineExceeded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_single_message_call_must_also_end_its_request() {
        use futures::StreamExt as _;
        use http_body_util::BodyExt as _;
        let (sender, chunks) = tokio::sync::mpsc::channel(4);
        let frames = tokio_stream::wrappers::ReceiverStream::new(chunks)
            .map(|chunk: Vec<u8>| Ok::<_, tonic::Status>(Frame::data(Bytes::from(chunk))));
        let body = tonic::body::Body::new(http_body_util::StreamBody::new(frames));
        let mut clock = MessageClock::new(body, Duration::from_secs(10), Pace::WholeBody);
        sender.send(message(b"whole")).await.unwrap();
        assert!(clock.frame().await.unwrap().is_ok(), "a whole message");
        let cut = clock.frame().await.unwrap().expect_err("no end in time");
        assert_eq!(cut.code(), tonic::Code::DeadlineExceeded);
    }
}
