//! What an SRE reads: `/metrics` on the admin port carries every family during a run, one
//! request id follows a call through the answer's metadata and the logs, and spans reach an
//! OTLP collector in the caller's trace.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use pasarela::bureau::v1::GetPasswordExpirationRequest;
use pasarela::bureau::v1::bureau_service_client::BureauServiceClient;
use tonic::Request;

use crate::support::process::{DevProcess, mint_with_cli};
use crate::support::{bearer_with, spawn_app};

/// Families this test's traffic (bureau calls, one retried through a 503) must fill.
const FAMILIES: [&str; 7] = [
    "pasarela_rpc_calls",
    "pasarela_rpc_duration_seconds",
    "pasarela_rpc_in_flight",
    "pasarela_provider_calls",
    "pasarela_provider_call_duration_seconds",
    "pasarela_provider_retries",
    "pasarela_provider_circuit_state",
];

fn bureau_request(password: &str) -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: "PM00000001".into(),
        password: password.into(),
        test_case_id: "663567bb713cf2110a110679".into(),
    }
}

#[tokio::test]
async fn metrics_describe_rpcs_and_provider_calls() {
    let app = spawn_app().await;
    let mut client = BureauServiceClient::with_interceptor(app.channel(), app.bearer());
    let fault = serde_json::json!({
        "provider": "kiban",
        "fault": { "type": "status", "status": 503 },
        "times": 1,
    });
    reqwest::Client::new()
        .post(format!("{}/faults", app.sandbox.admin_url))
        .json(&fault)
        .send()
        .await
        .expect("fault injected")
        .error_for_status()
        .expect("fault accepted");
    client
        .get_password_expiration(bureau_request("Abc12345"))
        .await
        .expect("a read retried through one 503");
    let refused = client
        .get_password_expiration(bureau_request("short"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let admin = app.admin_addr.expect("admin port");
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body");
    for family in FAMILIES {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from:\n{text}"
        );
    }
    let method = "/pasarela.bureau.v1.BureauService/GetPasswordExpiration";
    for code in ["OK", "INVALID_ARGUMENT"] {
        let series = format!("pasarela_rpc_calls_total{{method=\"{method}\",code=\"{code}\"}}");
        assert!(text.contains(&series), "{series} missing from:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("pasarela_provider_retries_total{")),
        "the retry through the 503 was not counted:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("pasarela_provider_calls_total{")
                && l.contains("outcome=\"ok\"")
                && l.contains("status=\"200\"")),
        "no successful provider call counted:\n{text}"
    );
    assert!(
        !text.contains("PM00000001") && !text.contains("Abc12345"),
        "a customer datum became a label"
    );
}

#[tokio::test]
async fn one_request_id_follows_the_call() {
    let app = spawn_app().await;
    let mut client = BureauServiceClient::with_interceptor(app.channel(), app.bearer());
    let id = format!("obs-{}", uuid::Uuid::new_v4().simple());
    let mut request = Request::new(bureau_request("Abc12345"));
    request
        .metadata_mut()
        .insert("x-request-id", id.parse().unwrap());
    let answer = client
        .get_password_expiration(request)
        .await
        .expect("a seeded member's date");
    assert_eq!(answer.metadata().get("x-request-id").unwrap(), id.as_str());
    let logs = app.logs();
    assert!(
        logs.lines().any(|line| line.contains(&id)),
        "no log line carries the request id {id}"
    );

    let made = client
        .get_password_expiration(bureau_request("Abc12345"))
        .await
        .expect("a seeded member's date");
    let made = made.metadata().get("x-request-id").expect("an id is made");
    assert_eq!(made.len(), 32);
}

/// A collector on loopback that keeps the trace ids of the spans it receives.
#[derive(Clone, Default)]
struct Collector(std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|span| span.trace_id);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// With `log.otlp_endpoint`, a real `pasarela dev` process exports the call's span to an
/// OTLP collector, in the caller's trace (W3C `traceparent`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_in_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut dev = DevProcess::start_with_env(&[("PASARELA_LOG__OTLP_ENDPOINT", &endpoint)]);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", dev.addr))
        .unwrap()
        .connect()
        .await
        .expect("pasarela dev answers");
    let mut client =
        BureauServiceClient::with_interceptor(channel, bearer_with(&mint_with_cli("*")));
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = Request::new(bureau_request("Abc12345"));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    client
        .get_password_expiration(request)
        .await
        .expect("a seeded member's date");
    drop(client);

    // SIGTERM: the process drains and flushes its spans on the way out.
    let pid = dev.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::task::block_in_place(|| dev.child.wait()).expect("pasarela exits");
    assert!(exit.success(), "{exit:?}");
    let received = collector.0.lock().unwrap().clone();
    let wanted: Vec<u8> = (0..trace_id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&trace_id[i..i + 2], 16).unwrap())
        .collect();
    assert!(
        received.contains(&wanted),
        "no span of trace {trace_id} among {} exported",
        received.len()
    );
}
