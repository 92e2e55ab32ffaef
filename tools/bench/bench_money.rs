//! The benchmark's money calls (`scripts/bench.py`): charges under fresh idempotency keys,
//! each one a claim in the ledger, against a `pasarela serve` of recurring payments; and
//! the PostgreSQL ledger they are measured on (the tests' own harness: a TLS-only primary
//! with a synchronous standby on loopback).
//!
//! ```text
//! bench_money ledger                                  # prints `ledger {json}`, runs until SIGTERM
//! bench_money subscribe ADDR TOKEN                    # the sandbox wallet charged below
//! bench_money load ADDR TOKEN CONCURRENCY SECONDS     # prints `load {json}`
//! ```
//!
//! `load` prints calls, failures, calls per second and latency percentiles in ms; a call
//! answered with anything but OK counts as a failure.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pasarela::common::v1::{DocumentType, Identification, Money};
use pasarela::recurring_payments::v1::recurring_payments_service_client::RecurringPaymentsServiceClient;
use pasarela::recurring_payments::v1::{
    ActivateSubscriptionRequest, ChargeSubscriptionRequest, Commerce, RequestSubscriptionRequest,
    Wallet,
};
use pasarela_test_support::postgres_server::TestPostgres;
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// A seeded active wallet of the sandbox and the merchant it is charged for.
const WALLET: (&str, &str) = ("1000000001", "3000000001");
const COMMERCE_ID: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

type Client = RecurringPaymentsServiceClient<InterceptedService<Channel, Bearer>>;

#[derive(Clone)]
struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

fn client(addr: &str, token: &str) -> Result<Client, String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|error| error.to_string())?
        .connect_lazy();
    let bearer =
        MetadataValue::try_from(format!("Bearer {token}")).map_err(|error| error.to_string())?;
    Ok(RecurringPaymentsServiceClient::with_interceptor(
        channel,
        Bearer(bearer),
    ))
}

fn commerce() -> Option<Commerce> {
    Some(Commerce {
        commerce_id: COMMERCE_ID.into(),
        commerce_name: "Comercializadora La Pradera".into(),
        category: "Vestuario".into(),
    })
}

fn wallet() -> Option<Wallet> {
    let mut holder = Identification {
        number: WALLET.0.into(),
        ..Default::default()
    };
    holder.set_type(DocumentType::Cc);
    Some(Wallet {
        holder: Some(holder),
        product_code: String::new(),
        product_number: WALLET.1.into(),
    })
}

fn cop(minor_units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "COP".into(),
        minor_units,
    })
}

/// Subscribes the wallet (the lab OTP passed on by `lab_otp_passthrough`).
async fn subscribe(mut client: Client) -> Result<(), String> {
    let requested = client
        .request_subscription(RequestSubscriptionRequest {
            commerce: commerce(),
            wallet: wallet(),
            transaction: None,
        })
        .await
        .map_err(|status| format!("request: {status:?}"))?
        .into_inner();
    client
        .activate_subscription(ActivateSubscriptionRequest {
            idempotency_key: format!("bench-activate-{}", uuid::Uuid::new_v4()),
            commerce: commerce(),
            wallet: wallet(),
            otp_value: requested.lab_otp_value,
            otp_session_id: requested.otp_session_id,
            maximum_amount: cop(1_000_000_000),
            transaction: None,
        })
        .await
        .map_err(|status| format!("activate: {status:?}"))?;
    Ok(())
}

fn charge(key: String) -> ChargeSubscriptionRequest {
    ChargeSubscriptionRequest {
        idempotency_key: key,
        commerce: commerce(),
        wallet: wallet(),
        amount: cop(100),
        invoice_id: "AB12345678".into(),
        invoice_description: "BENCH".into(),
        general_info: Vec::new(),
        transaction: None,
    }
}

/// `concurrency` callers charging under fresh keys for `seconds`.
async fn load(client: Client, concurrency: usize, seconds: u64) -> serde_json::Value {
    let run = uuid::Uuid::new_v4();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let callers: Vec<_> = (0..concurrency)
        .map(|caller| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut latencies_us = Vec::new();
                let mut failures = 0_u64;
                let mut n = 0_u64;
                while Instant::now() < until {
                    n += 1;
                    let sent = Instant::now();
                    let answer = client
                        .charge_subscription(charge(format!("bench-{run}-{caller}-{n}")))
                        .await;
                    let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                    match answer {
                        Ok(_) => latencies_us.push(micros),
                        Err(_) => failures += 1,
                    }
                }
                (latencies_us, failures)
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    let mut failures = 0;
    for caller in callers {
        if let Ok((latencies, failed)) = caller.await {
            latencies_us.extend(latencies);
            failures += failed;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let percentile = |p: f64| -> f64 {
        let last = latencies_us.len().saturating_sub(1);
        // p is a fraction in [0, 1]: the index stays within the sorted latencies.
        let index = ((last as f64) * p).round() as usize;
        latencies_us
            .get(index)
            .map_or(0.0, |us| *us as f64 / 1000.0)
    };
    json!({
        "calls": latencies_us.len(),
        "failures": failures,
        "rps": latencies_us.len() as f64 / elapsed,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
    })
}

/// A primary and its synchronous standby until SIGTERM; their settings on one line.
async fn ledger() -> Result<(), String> {
    let (primary, standby) = TestPostgres::start_with_standby().await;
    let settings = json!({
        "url": TestPostgres::url(&[&primary, &standby]),
        "ca_file": primary.ca_file(),
        "password_file": primary.password_file(),
    });
    println!("ledger {settings}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| error.to_string())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // Dropped here: both servers are stopped and their files removed.
    drop((primary, standby));
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["ledger"] => ledger().await,
        ["subscribe", addr, token] => match client(addr, token) {
            Ok(client) => subscribe(client).await,
            Err(error) => Err(error),
        },
        ["load", addr, token, concurrency, seconds] => {
            match (client(addr, token), concurrency.parse(), seconds.parse()) {
                (Ok(client), Ok(concurrency), Ok(seconds)) => {
                    println!("load {}", load(client, concurrency, seconds).await);
                    Ok(())
                }
                _ => Err("load ADDR TOKEN CONCURRENCY SECONDS".into()),
            }
        }
        _ => Err(
            "usage: bench_money ledger | subscribe ADDR TOKEN | load ADDR TOKEN CONCURRENCY SECONDS"
                .into(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_money: {error}");
            ExitCode::FAILURE
        }
    }
}
