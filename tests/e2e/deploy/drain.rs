//! A real process on SIGTERM: health turns NOT_SERVING, the call in flight finishes, the drain is bounded.

use super::*;

/// A member and test case the Kiban emulator answers with an expiration date.
pub(super) fn kiban_success() -> GetPasswordExpirationRequest {
    GetPasswordExpirationRequest {
        member_code: "PM00000001".into(),
        password: "Abc12345".into(),
        test_case_id: "663567bb713cf2110a110679".into(),
    }
}

pub(super) const KIBAN_ROUTE: &str = "POST /api/v1/password-expiry-date-bc-pm";

/// A running `pasarela dev` and what its banner says about it.
pub(super) struct Draining {
    dev: DevProcess,
    /// The plaintext admin port (probes).
    admin: String,
    /// The sandbox's admin API (faults, call counts).
    sandbox_admin: String,
    http: reqwest::Client,
}

impl Draining {
    fn start(env: &[(&str, &str)]) -> Draining {
        let dev = DevProcess::start_with_env(env);
        let admin = dev.banner["metrics"]
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .to_owned();
        let sandbox_admin = dev.banner["sandbox"]
            .rsplit_once("admin ")
            .map(|(_, url)| url.trim().to_owned())
            .expect("the sandbox's admin URL in the banner");
        Draining {
            dev,
            admin,
            sandbox_admin,
            http: reqwest::Client::new(),
        }
    }

    /// The next Kiban call meets `fault` (the sandbox's fault-injection rule syntax).
    async fn inject(&self, fault: Value) {
        let rule = json!({
            "provider": "kiban",
            "path": "/api/v1/password-expiry-date-bc-pm",
            "fault": fault,
            "times": 1,
        });
        let answer = self
            .http
            .post(format!("{}/faults", self.sandbox_admin))
            .json(&rule)
            .send()
            .await
            .expect("sandbox admin answers");
        assert_eq!(
            answer.status(),
            reqwest::StatusCode::CREATED,
            "fault rule accepted"
        );
    }

    /// Starts a Kiban-backed call and returns once the sandbox has received it.
    async fn call_in_flight(
        &self,
    ) -> tokio::task::JoinHandle<
        Result<tonic::Response<GetPasswordExpirationResponse>, tonic::Status>,
    > {
        let channel = Endpoint::from_shared(format!("http://{}", self.dev.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("pasarela accepts a connection");
        let mut client =
            BureauServiceClient::with_interceptor(channel, bearer_with(&mint_with_cli("*")));
        let call =
            tokio::spawn(async move { client.get_password_expiration(kiban_success()).await });
        eventually("the call reaches the sandbox", || async {
            self.kiban_calls().await >= 1
        })
        .await;
        call
    }

    async fn kiban_calls(&self) -> u64 {
        let calls: Value = self
            .http
            .get(format!("{}/calls", self.sandbox_admin))
            .send()
            .await
            .expect("sandbox admin answers")
            .json()
            .await
            .expect("call counts");
        calls["kiban"][KIBAN_ROUTE].as_u64().unwrap_or(0)
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.dev.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM sent");
    }

    /// The bureau's health on the admin port, as the kubelet's probe asks it; `None` when
    /// the port does not answer.
    async fn health(&self) -> Option<ServingStatus> {
        let channel = Endpoint::from_shared(format!("http://{}", self.admin))
            .ok()?
            .connect()
            .await
            .ok()?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: ServiceName::Bureau.grpc_name().into(),
            })
            .await
            .ok()?;
        Some(answer.into_inner().status())
    }

    /// Waits for the process to end, at most `limit`.
    fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.dev.child.try_wait().expect("process status") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pasarela still runs {limit:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn refuses_connections(&self) -> bool {
        std::net::TcpStream::connect(self.dev.addr).is_err()
    }
}

/// Polls `probe` until it holds (20 s at most: a guard against hanging, not a timing).
pub(super) async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn sigterm_turns_health_not_serving_finishes_the_call_in_flight_and_exits_cleanly()
{
    // drain_delay as in the manifests' order of events, long enough to watch NOT_SERVING.
    let mut process = Draining::start(&[
        ("PASARELA_SHUTDOWN__DRAIN_DELAY", "1s"),
        ("PASARELA_SHUTDOWN__DRAIN_TIMEOUT", "15s"),
    ]);
    assert_eq!(process.health().await, Some(ServingStatus::Serving));
    process
        .inject(json!({ "type": "latency", "ms": 5000 }))
        .await;
    let call = process.call_in_flight().await;

    process.terminate();
    eventually("health turns NOT_SERVING on the admin port", || async {
        process.health().await == Some(ServingStatus::NotServing)
    })
    .await;
    eventually(
        "new connections are refused once the drain starts",
        || async { process.refuses_connections() },
    )
    .await;
    assert!(
        !call.is_finished(),
        "the slow call is still in flight while new ones are refused"
    );

    let answer = call
        .await
        .expect("call task")
        .expect("the call in flight completes OK");
    assert!(
        answer.into_inner().expiration_date.is_some(),
        "a real answer"
    );
    let status = process.exit_status(Duration::from_secs(16 + 10));
    assert!(status.success(), "exit status {status:?}");
    assert!(process.refuses_connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn sigterm_bounds_the_drain_even_when_a_call_never_ends() {
    // The provider never answers and pasarela would wait for it for two minutes: only the
    // drain bound (0 s + 2 s) can end the process soon after SIGTERM.
    let mut process = Draining::start(&[
        ("PASARELA_SHUTDOWN__DRAIN_DELAY", "0s"),
        ("PASARELA_SHUTDOWN__DRAIN_TIMEOUT", "2s"),
        ("PASARELA_BUREAU__OUTBOUND__HTTP__TIMEOUT", "120s"),
    ]);
    process.inject(json!({ "type": "hang" })).await;
    let call = process.call_in_flight().await;

    process.terminate();
    let status = process.exit_status(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");
    let cut = call.await.expect("call task");
    assert!(cut.is_err(), "the stuck call is cut, not answered: {cut:?}");
}
