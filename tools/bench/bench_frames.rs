//! The benchmark's request side (`scripts/bench.py`): writes each benchmarked RPC as a
//! length-prefixed gRPC frame for h2load, and checks a frame against a running server with
//! a real tonic client, because h2load counts HTTP 200 as success whatever `grpc-status`
//! says.
//!
//! ```text
//! bench_frames write DIR                               # DIR/<case>.bin, one "case path" line each
//! bench_frames check ADDR TOKEN CASE_FILE PATH CODE [STATUS_FILE]
//! ```
//!
//! `check` exits non-zero unless the server answers gRPC code `CODE` (0 is OK); with
//! `STATUS_FILE`, a refusal's trailers (`grpc-status`, `grpc-message`,
//! `grpc-status-details-bin`) are written there for `floor_server` to replay byte for byte.

use std::path::Path;
use std::process::ExitCode;

use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::common::v1::{DocumentType, Identification};
use pasarela::recurring_payments::v1::{Commerce, RequestSubscriptionRequest, Wallet};
use pasarela::security::v1::{CustomerType, GetPasswordStatusRequest, get_password_status_request};
use prost::Message;
use prost::bytes::{Buf as _, BufMut as _, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;

/// Kiban sandbox test case "exitoso": the bureau checks the member's password.
const KIBAN_SUCCESS_CASE: &str = "663567bb713cf2110a110679";

/// One benchmarked request: a name for files and reports, its gRPC method, its message.
struct Case {
    name: &'static str,
    path: &'static str,
    message: fn() -> Vec<u8>,
}

/// Read-style calls of each service against seeded sandbox data, plus one call that
/// validation refuses before any provider is called (the floor).
const CASES: &[Case] = &[
    Case {
        name: "security_password_status",
        path: "/pasarela.security.v1.SecurityService/GetPasswordStatus",
        message: || {
            GetPasswordStatusRequest {
                transaction_id: "4835799410".into(),
                customer_type: CustomerType::Natural.into(),
                subject: Some(get_password_status_request::Subject::Customer(
                    identification(DocumentType::Cc, "1007641"),
                )),
                ..Default::default()
            }
            .encode_to_vec()
        },
    },
    Case {
        name: "bureau_password_expiration",
        path: "/pasarela.bureau.v1.BureauService/GetPasswordExpiration",
        message: || expiration("PM00000001").encode_to_vec(),
    },
    Case {
        name: "bureau_invalid_member",
        path: "/pasarela.bureau.v1.BureauService/GetPasswordExpiration",
        // Kiban member codes are 10 alphanumerics: refused by validation.
        message: || expiration("PM-1").encode_to_vec(),
    },
    Case {
        name: "payments_request_subscription",
        path: "/pasarela.recurring_payments.v1.RecurringPaymentsService/RequestSubscription",
        message: || {
            RequestSubscriptionRequest {
                commerce: Some(Commerce {
                    commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
                    commerce_name: "Comercializadora La Pradera".into(),
                    category: "Vestuario".into(),
                }),
                wallet: Some(Wallet {
                    holder: Some(identification(DocumentType::Cc, "1000000001")),
                    product_code: String::new(),
                    product_number: "3000000001".into(),
                }),
                transaction: None,
            }
            .encode_to_vec()
        },
    },
];

fn identification(kind: DocumentType, number: &str) -> Identification {
    Identification {
        r#type: kind.into(),
        number: number.into(),
    }
}

fn expiration(member_code: &str) -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: member_code.into(),
        password: "Abc12345".into(),
        test_case_id: KIBAN_SUCCESS_CASE.into(),
    }
}

/// A gRPC message on the wire: compressed flag 0, big-endian length, the message.
fn frame(message: &[u8]) -> Vec<u8> {
    let length = u32::try_from(message.len()).expect("a benchmark message fits in a frame");
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(length);
    framed.extend_from_slice(message);
    framed
}

fn write(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for case in CASES {
        std::fs::write(
            dir.join(format!("{}.bin", case.name)),
            frame(&(case.message)()),
        )?;
        println!("{} {}", case.name, case.path);
    }
    Ok(())
}

/// Passes message bytes through untouched, so that `check` sends exactly what h2load sends.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

struct Check {
    addr: String,
    token: String,
    frame: Vec<u8>,
    path: String,
    expected: i32,
    status_file: Option<String>,
}

impl Check {
    fn from_args(args: &[String]) -> Result<Self, String> {
        let [addr, token, frame_file, path, code, rest @ ..] = args else {
            return Err("check ADDR TOKEN CASE_FILE PATH CODE [STATUS_FILE]".into());
        };
        let frame = std::fs::read(frame_file).map_err(|error| format!("{frame_file}: {error}"))?;
        Ok(Self {
            addr: addr.clone(),
            token: token.clone(),
            frame,
            path: path.clone(),
            expected: code.parse().map_err(|_| format!("code {code:?}"))?,
            status_file: rest.first().cloned(),
        })
    }

    async fn run(self) -> Result<(), String> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .map_err(|error| error.to_string())?
            .connect()
            .await
            .map_err(|error| format!("connect {}: {error}", self.addr))?;
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.map_err(|error| error.to_string())?;
        let mut request = tonic::Request::new(Bytes::copy_from_slice(&self.frame[5..]));
        let bearer = MetadataValue::try_from(format!("Bearer {}", self.token))
            .map_err(|error| error.to_string())?;
        request.metadata_mut().insert("authorization", bearer);
        let path = PathAndQuery::try_from(self.path.as_str()).map_err(|error| error.to_string())?;
        let status = match client.unary(request, path, RawCodec).await {
            Ok(_) => tonic::Status::ok(""),
            Err(status) => status,
        };
        let code = i32::from(status.code());
        if code != self.expected {
            return Err(format!(
                "{} answered {:?} ({}), expected code {}",
                self.path,
                status.code(),
                status.message(),
                self.expected
            ));
        }
        if let Some(file) = &self.status_file {
            std::fs::write(file, trailers(&status)?).map_err(|error| error.to_string())?;
        }
        println!("{}: {:?}", self.path, status.code());
        Ok(())
    }
}

/// The status as the `name: value` lines of its trailers, its metadata included (so that a
/// replay has the same size), but for `date`, which every HTTP server adds on its own.
fn trailers(status: &tonic::Status) -> Result<String, String> {
    let mut headers = tonic::codegen::http::HeaderMap::new();
    status
        .add_header(&mut headers)
        .map_err(|error| error.to_string())?;
    headers.remove(tonic::codegen::http::header::DATE);
    let mut lines = String::new();
    for (name, value) in &headers {
        let value = value.to_str().map_err(|error| error.to_string())?;
        lines.push_str(&format!("{name}: {value}\n"));
    }
    Ok(lines)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.split_first() {
        Some((command, [dir])) if command == "write" => {
            write(Path::new(dir)).map_err(|error| error.to_string())
        }
        Some((command, rest)) if command == "check" => match Check::from_args(rest) {
            Ok(check) => check.run().await,
            Err(usage) => Err(usage),
        },
        _ => Err(
            "usage: bench_frames write DIR | check ADDR TOKEN CASE_FILE PATH CODE [STATUS_FILE]"
                .into(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_frames: {error}");
            ExitCode::FAILURE
        }
    }
}
