//! The benchmark's floor (`scripts/bench.py`): the least a tonic server can do for
//! `BureauService/GetPasswordExpiration`, answering every call with one fixed refusal, so
//! that pasarela's own refusal of an invalid request (auth, validation, metrics, audit)
//! can be compared with bare tonic answering the same bytes.
//!
//! ```text
//! floor_server ADDR STATUS_FILE
//! ```
//!
//! `STATUS_FILE` holds the trailers of pasarela's refusal as `bench_frames check` wrote
//! them; the server prints `floor: gRPC on ADDR` once it listens.

use std::process::ExitCode;

use pasarela::bureau::v1::bureau_service_server::{BureauService, BureauServiceServer};
use pasarela::bureau::v1::{GetPasswordExpirationRequest, GetPasswordExpirationResponse};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codegen::http::{HeaderMap, HeaderName, HeaderValue};
use tonic::{Request, Response, Status};

struct Floor {
    refusal: Status,
}

#[tonic::async_trait]
impl BureauService for Floor {
    async fn get_password_expiration(
        &self,
        _request: Request<GetPasswordExpirationRequest>,
    ) -> Result<Response<GetPasswordExpirationResponse>, Status> {
        Err(self.refusal.clone())
    }
}

/// The status carried by `name: value` trailer lines.
fn refusal(lines: &str) -> Result<Status, String> {
    let mut headers = HeaderMap::new();
    for line in lines.lines().filter(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("not a trailer line: {line:?}"))?;
        headers.insert(
            HeaderName::try_from(name).map_err(|error| error.to_string())?,
            HeaderValue::try_from(value).map_err(|error| error.to_string())?,
        );
    }
    Status::from_header_map(&headers).ok_or_else(|| "no grpc-status in the file".into())
}

async fn serve(addr: &str, status_file: &str) -> Result<(), String> {
    let lines =
        std::fs::read_to_string(status_file).map_err(|error| format!("{status_file}: {error}"))?;
    let floor = Floor {
        refusal: refusal(&lines)?,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| format!("bind {addr}: {error}"))?;
    let local = listener.local_addr().map_err(|error| error.to_string())?;
    println!("floor: gRPC on {local}");
    tonic::transport::Server::builder()
        .add_service(BureauServiceServer::new(floor))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await
        .map_err(|error| error.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [addr, status_file] => serve(addr, status_file).await,
        _ => Err("usage: floor_server ADDR STATUS_FILE".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("floor_server: {error}");
            ExitCode::FAILURE
        }
    }
}
