//! A bounded soak under random faults: the process stays up and charges at most once per key.

use super::*;

// ---- 6. load and soak ----------------------------------------------------------------------

/// Concurrent callers of the soak.
const CONCURRENCY: usize = 64;
/// Distinct idempotency keys the soak's charges use.
const CHARGE_KEYS: usize = 200;

fn soak_duration() -> Duration {
    let seconds = std::env::var("PASARELA_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(seconds)
}

/// The process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmRSS");
    kib * 1024
}

/// A random fault on a random provider for the next few calls.
fn random_fault(rng: &mut impl rand::Rng) -> Value {
    let provider = ["bcs", "kiban", "daviplata"][rng.random_range(0..3)];
    let fault = match rng.random_range(0..8) {
        0 => json!({ "type": "latency", "ms": rng.random_range(10..400) }),
        1 => {
            let status = [500, 502, 503, 504][rng.random_range(0..4)];
            json!({ "type": "status", "status": status })
        }
        2 => {
            json!({ "type": "status", "status": 200, "body": "<html>oops</html>", "content_type": "text/html" })
        }
        3 => json!({ "type": "malformed" }),
        4 => json!({ "type": "drop" }),
        5 => json!({ "type": "drop", "after_handler": true }),
        6 => json!({ "type": "hang" }),
        _ => json!({ "type": "hang", "after_handler": true }),
    };
    json!({ "provider": provider, "fault": fault, "times": rng.random_range(1..4) })
}

/// What the soak saw of one charge key: the approval numbers it was answered with.
type Approvals = Arc<std::sync::Mutex<BTreeMap<usize, HashSet<String>>>>;

/// What the soak's callers were answered: counts by gRPC code, and every answer that was
/// not a mapped status.
#[derive(Default)]
struct Tally {
    codes: BTreeMap<String, usize>,
    unmapped: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (code, count) in other.codes {
            *self.codes.entry(code).or_default() += count;
        }
        self.unmapped.extend(other.unmapped);
    }
}

/// One call of a random RPC: its code, or `Err` describing an answer that is not a mapped
/// status.
async fn soak_call(app: &TestApp, approvals: &Approvals) -> Result<Code, String> {
    let which = rand::rng().random_range(0..6);
    let answer = match which {
        0 => bureau(app)
            .get_password_expiration(expiration())
            .await
            .map(drop),
        1 => security(app)
            .get_password_status(password_status())
            .await
            .map(drop),
        2 => security(app)
            .list_channel_holds(ListChannelHoldsRequest {
                customer: cc("38250250"),
                filter: HoldFilter::All.into(),
                page: Some(PageRequest {
                    page_size: 10,
                    page_number: 1,
                }),
                ..Default::default()
            })
            .await
            .map(drop),
        3 => payments(app)
            .request_subscription(subscription_request())
            .await
            .map(drop),
        _ => {
            let key = rand::rng().random_range(0..CHARGE_KEYS);
            charge_key(app, key, approvals).await
        }
    };
    match answer {
        Ok(()) => Ok(Code::Ok),
        Err(status) if is_mapped(&status) => Ok(status.code()),
        Err(status) => Err(format!("call {which}: {status:?}")),
    }
}

/// Sends the charge of `key` (always the same request) and records its approval.
async fn charge_key(app: &TestApp, key: usize, approvals: &Approvals) -> Result<(), Status> {
    let request = charge(&format!("soak-{key}"), 100 + key as i64);
    let answer = payments(app)
        .charge_subscription(request)
        .await?
        .into_inner();
    approvals
        .lock()
        .expect("approvals")
        .entry(key)
        .or_default()
        .insert(answer.approval_number);
    Ok(())
}

/// A status pasarela chose: a meaningful code with `ErrorInfo` or `BadRequest`.
fn is_mapped(status: &Status) -> bool {
    let details = status.get_error_details();
    !matches!(status.code(), Code::Unknown | Code::Ok)
        && (details.error_info().is_some() || details.bad_request().is_some())
}

#[tokio::test]
async fn a_soak_under_random_faults_stays_up_and_charges_at_most_once() {
    let app = Arc::new(
        spawn_app_with(|config| {
            roomy(config);
            // The sandbox deduplicates by transactionId, so lost charges may be re-sent and
            // every key ends with an outcome (docs/reliability.md).
            let payments = config.recurring_payments.as_mut().expect("payments");
            payments.resend_unknown_outcomes = true;
            let ceiling = Duration::from_secs(1);
            let open_for = Duration::from_millis(500);
            let security = &mut config.security.as_mut().expect("security").outbound;
            security.http.timeout = ceiling;
            security.breaker.open_for = open_for;
            let bureau = &mut config.bureau.as_mut().expect("bureau").outbound;
            bureau.http.timeout = ceiling;
            bureau.breaker.open_for = open_for;
            let payments = &mut config
                .recurring_payments
                .as_mut()
                .expect("payments")
                .outbound;
            payments.http.timeout = ceiling;
            payments.breaker.open_for = open_for;
        })
        .await,
    );
    subscribe(&app, 10_000_000).await;
    let approvals = Approvals::default();
    let duration = soak_duration();
    let started = Instant::now();
    let chaos = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            while started.elapsed() < duration {
                let rule = random_fault(&mut rand::rng());
                admin(&app.sandbox, reqwest::Method::POST, "/faults", Some(rule)).await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let app = Arc::clone(&app);
            let approvals = Arc::clone(&approvals);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while started.elapsed() < duration {
                    let call =
                        tokio::time::timeout(Duration::from_secs(30), soak_call(&app, &approvals));
                    match call.await {
                        Ok(Ok(code)) => *tally.codes.entry(format!("{code:?}")).or_default() += 1,
                        Ok(Err(problem)) => tally.unmapped.push(problem),
                        Err(_) => tally.unmapped.push("no answer within 30 s".to_owned()),
                    }
                }
                tally
            })
        })
        .collect();
    tokio::time::sleep(duration / 4).await;
    let steady_rss = resident_bytes();
    let mut tally = Tally::default();
    for worker in join_all(workers).await {
        tally.merge(worker.expect("worker"));
    }
    let end_rss = resident_bytes();
    chaos.await.expect("chaos");
    println!("soak answers by code: {:?}", tally.codes);
    assert!(
        tally.unmapped.is_empty(),
        "answers that are not mapped statuses: {:?}",
        tally.unmapped
    );
    assert!(
        tally.codes.len() > 1 && tally.codes.contains_key("Ok"),
        "both successes and injected failures: {:?}",
        tally.codes
    );
    let growth = end_rss.saturating_sub(steady_rss);
    assert!(
        growth < 200 * 1024 * 1024,
        "memory grew by {} MiB",
        growth >> 20
    );

    settle_charges(&app, &approvals).await;
}

/// With the faults gone, learns the outcome of every key the soak charged, then checks
/// that each was charged exactly once at the sandbox.
async fn settle_charges(app: &TestApp, approvals: &Approvals) {
    app.clear_faults().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let keys: Vec<usize> = (0..CHARGE_KEYS).collect();
    for key in &keys {
        let mut last = None;
        for _ in 0..5 {
            match charge_key(app, *key, approvals).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(status) => last = Some(status),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(last.is_none(), "key {key} has no outcome: {last:?}");
    }
    let approvals = approvals.lock().expect("approvals").clone();
    let mut seen = HashSet::new();
    for (key, numbers) in &approvals {
        assert_eq!(
            numbers.len(),
            1,
            "key {key} got several approvals: {numbers:?}"
        );
        assert!(
            seen.insert(numbers.iter().next().cloned()),
            "key {key} shares an approval"
        );
    }
    assert_eq!(
        app.daviplata_counter("payments_made").await,
        keys.len() as u64,
        "one payment per key, whatever the faults"
    );
}
