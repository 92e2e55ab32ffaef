//! The edge refuses to be silently wrong or silently open: a policy naming a method nobody
//! serves stops start-up, every TOML example of the docs is a valid policy, `serve` refuses
//! the published dev credentials unless told it is insecure, and `pasarela dev` listens on
//! loopback only and fronts its own sandbox only.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use figment::Figment;
use figment::providers::{Format as _, Toml};

use crate::support::http2::*;
use crate::support::pasarela_bin;

/// Every contract a policy may name, as the server knows them.
fn contract_names() -> (
    std::collections::HashSet<String>,
    std::collections::HashSet<String>,
) {
    let contracts = pasarela_server::app::CONTRACTS;
    (
        pasarela_server::rpc_layer::known_services(contracts),
        pasarela_server::rpc_layer::known_methods(contracts),
    )
}

#[tokio::test]
async fn a_policy_naming_a_method_nobody_serves_stops_start_up() {
    let (sandbox, _pki) = crate::support::sandbox().await;
    let typos = [
        (
            "methods",
            "pasarela.recurring_payments.v1.RecurringPaymentsService/Charge",
        ),
        ("rate_limits", "pasarela.security.v1.SecurityServise"),
        ("exempt", "*"),
    ];
    for (key, name) in typos {
        let mut config = pasarela_server::dev::config_for(&sandbox, None).expect("dev config");
        config.listen = ([127, 0, 0, 1], 0).into();
        config.admin_listen = None;
        match key {
            "methods" => {
                config
                    .auth
                    .methods
                    .insert(name.into(), vec!["payments".into()]);
            }
            "rate_limits" => config.auth.rate_limits[0].methods.push(name.into()),
            _ => config.auth.exempt.push(name.into()),
        }
        let refused = pasarela_server::app::start(config).await.err();
        let message = format!("{:#}", refused.expect("start-up refused"));
        assert!(message.contains(name), "{key}: {message}");
    }
}

#[test]
fn every_toml_example_of_the_docs_is_a_policy_of_served_names() {
    let (services, methods) = contract_names();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut examples = 0;
    for page in [
        "README.md",
        "docs/auth.md",
        "docs/operations.md",
        "docs/deploy.md",
    ] {
        let text = std::fs::read_to_string(root.join(page)).expect("page");
        for block in text.split("```toml\n").skip(1) {
            let block = block.split("```").next().expect("a closed block");
            let figment = Figment::from(Toml::string(block));
            if let Ok(auth) = figment.extract_inner::<pasarela_auth::Config>("auth") {
                auth.check_names(&services, &methods)
                    .unwrap_or_else(|error| panic!("{page}: {error}"));
                examples += 1;
            } else {
                figment
                    .extract_inner::<pasarela_auth::TlsSettings>("tls")
                    .unwrap_or_else(|error| {
                        panic!("{page}: a TOML example that loads as nothing: {error}")
                    });
            }
        }
    }
    assert!(examples >= 2, "the docs' policies were read: {examples}");
}

/// Runs `pasarela` with `args` and `env`; it must exit by itself, unsuccessfully, within
/// 20 s. Answers what it printed.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(pasarela_bin())
        .args(args)
        .env("PASARELA_DEV_DIR", dir.path())
        .env("PASARELA_ADMIN_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pasarela runs");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("pasarela {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    assert!(!output.status.success(), "pasarela {args:?} started");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn dev_listens_on_loopback_only() {
    let port = crate::support::process::free_port().to_string();
    let printed = refused(&["dev", "--listen", &format!("0.0.0.0:{port}")], &[]);
    assert!(printed.contains("loopback"), "{printed}");
}

#[test]
fn dev_fronts_its_own_sandbox_only() {
    let listen = format!("127.0.0.1:{}", crate::support::process::free_port());
    for (variable, key) in [
        ("PASARELA_SECURITY__BASE_URL", "security.base_url"),
        ("PASARELA_BUREAU__BASE_URL", "bureau.base_url"),
        (
            "PASARELA_RECURRING_PAYMENTS__BASE_URL",
            "recurring_payments.base_url",
        ),
    ] {
        let printed = refused(
            &["dev", "--listen", &listen],
            &[(variable, "https://provider.invalid")],
        );
        assert!(printed.contains(key), "{variable}: {printed}");
        assert!(
            !printed.contains("provider.invalid"),
            "the URL is not echoed"
        );
    }
    // A path joined to the sandbox's base URL can lead elsewhere too.
    for (variable, path) in [
        (
            "PASARELA_SECURITY__PATHS__WITHDRAW_WITH_OTP",
            "@provider.invalid/x",
        ),
        ("PASARELA_BUREAU__PATH", "https://provider.invalid/x"),
        (
            "PASARELA_RECURRING_PAYMENTS__PATHS__PAYMENT",
            "//provider.invalid/x",
        ),
    ] {
        let printed = refused(&["dev", "--listen", &listen], &[(variable, path)]);
        assert!(printed.contains("operation paths"), "{variable}: {printed}");
    }
}

#[test]
fn serve_refuses_the_published_dev_credentials_unless_told_it_is_insecure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("pasarela.toml");
    std::fs::write(
        &config,
        "services = [\"bureau\"]\n\
         [auth]\nissuer = \"pasarela-dev\"\naudience = \"pasarela\"\nallow_hs256 = true\n\
         hs256_secret = \"pasarela-dev-only-hs256-secret-never-use-in-production\"\n\
         [auth.methods]\n\"*\" = [\"{method}\"]\n\
         [bureau]\nbase_url = \"http://127.0.0.1:1\"\napi_key = \"k\"\n",
    )
    .expect("config written");
    let config = config.to_str().expect("a UTF-8 path");
    let listen = format!("127.0.0.1:{}", crate::support::process::free_port());
    let env = [
        ("PASARELA_CONFIG", config),
        ("PASARELA_LISTEN", listen.as_str()),
    ];
    let printed = refused(&["serve"], &env);
    assert!(printed.contains("insecure_dev_credentials"), "{printed}");
    assert!(
        !printed.contains("never-use-in-production"),
        "the secret is not echoed"
    );
}

/// `serve` with `extra` appended to a configuration of the published dev credentials
/// (allowed when `insecure`) and a bureau section; what it printed on refusing.
fn serve_refused_with(insecure: bool, extra: &str, services: &str) -> String {
    serve_refused_with_env(insecure, extra, services, &[])
}

/// [`serve_refused_with`], with `env` besides.
fn serve_refused_with_env(
    insecure: bool,
    extra: &str,
    services: &str,
    env: &[(&str, &str)],
) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("pasarela.toml");
    std::fs::write(
        &config,
        format!(
            "services = {services}\n\
             [auth]\nissuer = \"pasarela-dev\"\naudience = \"pasarela\"\nallow_hs256 = true\n\
             hs256_secret = \"pasarela-dev-only-hs256-secret-never-use-in-production\"\n\
             insecure_dev_credentials = {insecure}\n\
             [auth.methods]\n\"*\" = [\"{{method}}\"]\n\
             [bureau]\nbase_url = \"http://127.0.0.1:1\"\napi_key = \"k\"\n{extra}"
        ),
    )
    .expect("config written");
    let config = config.to_str().expect("a UTF-8 path");
    let listen = format!("127.0.0.1:{}", crate::support::process::free_port());
    let mut all = vec![
        ("PASARELA_CONFIG", config),
        ("PASARELA_LISTEN", listen.as_str()),
    ];
    all.extend_from_slice(env);
    refused(&["serve"], &all)
}

#[test]
fn serve_refuses_dev_switches_in_front_of_a_production_provider() {
    // The bureau's environment is production by default.
    let printed = serve_refused_with(true, "", "[\"bureau\"]");
    assert!(printed.contains("insecure_dev_credentials"), "{printed}");
    assert!(printed.contains("production"), "{printed}");
    let lab = "environment = \"sandbox\"\n\
               [recurring_payments]\nbase_url = \"https://127.0.0.1:1\"\n\
               client_id = \"c\"\nclient_secret = \"s\"\npayment_provider_id = \"00000001\"\n\
               lab_otp_passthrough = true\n";
    let printed = serve_refused_with(false, lab, "[\"bureau\", \"recurring-payments\"]");
    assert!(printed.contains("lab_otp_passthrough"), "{printed}");
    assert!(printed.contains("production"), "{printed}");
    // A production provider's money records are never kept in the process alone.
    let memory = "[recurring_payments]\nbase_url = \"https://127.0.0.1:1\"\n\
                  client_id = \"c\"\nclient_secret = \"s\"\npayment_provider_id = \"00000001\"\n\
                  [recurring_payments.idempotency]\nstore = \"memory\"\n";
    let printed = serve_refused_with(false, memory, "[\"recurring-payments\"]");
    assert!(
        printed.contains("recurring_payments.idempotency.store = \"memory\" forgets every record"),
        "{printed}"
    );
    // Nor one operator's word for a production provider's money.
    let postgres = "[recurring_payments]\nbase_url = \"https://127.0.0.1:1\"\n\
                    client_id = \"c\"\nclient_secret = \"s\"\npayment_provider_id = \"00000001\"\n\
                    [recurring_payments.idempotency]\nstore = \"postgres\"\n";
    let env = [("PASARELA_OPERATIONS__APPROVALS", "1")];
    let printed = serve_refused_with_env(false, postgres, "[\"recurring-payments\"]", &env);
    assert!(
        printed.contains("operations.approvals = 1 lets one operator settle"),
        "{printed}"
    );
    // Nor a Redis reached without TLS: its password would cross the network in clear.
    let holder = (
        "PASARELA_AUTH__HOLDER_KEY",
        "a holder key of thirty-two bytes or more",
    );
    for (url, plain) in [
        ("redis://127.0.0.1:1/", true),
        ("redis+sentinel://127.0.0.1:1/pasarela", true),
        ("rediss://127.0.0.1:1/", false),
    ] {
        let env = [("PASARELA_AUTH__RATE_LIMIT_REDIS_URL", url), holder];
        let printed = serve_refused_with_env(false, "", "[\"bureau\"]", &env);
        let named = printed.contains("auth.rate_limit_redis_url is plain text");
        assert_eq!(named, plain, "{url}: {printed}");
    }
    // Nor sentinels anyone may ask, and so tell where to send the password.
    for (url, open) in [
        ("rediss+sentinel://127.0.0.1:1/pasarela", true),
        (
            "rediss+sentinel://127.0.0.1:1/pasarela?sentinel_password=s",
            false,
        ),
    ] {
        let env = [("PASARELA_AUTH__RATE_LIMIT_REDIS_URL", url), holder];
        let printed = serve_refused_with_env(false, "", "[\"bureau\"]", &env);
        let named = printed.contains("asks its Sentinels without credentials");
        assert_eq!(named, open, "{url}: {printed}");
    }
    // Nor callers acting for no tenant, nor a provider's method outside authentication or
    // tenancy.
    let untenanted = [("PASARELA_AUTH__UNTENANTED", "allow")];
    let printed = serve_refused_with_env(false, "", "[\"bureau\"]", &untenanted);
    assert!(printed.contains("auth.untenanted = \"allow\""), "{printed}");
    for key in ["PASARELA_AUTH__TENANT_FREE", "PASARELA_AUTH__EXEMPT"] {
        let opened = [(key, "[\"pasarela.bureau.v1.BureauService\"]")];
        let printed = serve_refused_with_env(false, "", "[\"bureau\"]", &opened);
        assert!(printed.contains("a provider's method"), "{key}: {printed}");
    }
}

// ---- HTTP/2 limits ---------------------------------------------------------------------------

const WATCH: &str = "/grpc.health.v1.Health/Watch";

#[tokio::test]
async fn streams_beyond_the_advertised_limit_are_refused_and_the_server_stays_up() {
    // Watch streams from one peer past its own bounds would be answered, not held.
    let app = crate::support::spawn_app_with(|config| {
        config.auth.max_exempt_streams_per_peer = 1_000;
        config.auth.exempt_per_peer.burst = 1_000;
    })
    .await;
    let limit = 200;
    let excess = 50;
    // Streams that stay open (no END_STREAM): the first `limit` are held, the rest refused.
    let frames: Vec<u8> = (0..limit + excess)
        .flat_map(|i| frame(HEADERS, END_HEADERS, 2 * i + 1, &call_headers(WATCH)))
        .collect();
    let heard = raw_http2(app.addr, frames, Duration::from_secs(2)).await;
    assert_eq!(heard.max_concurrent_streams, Some(limit), "{heard:?}");
    assert!(
        heard.refused >= excess as usize,
        "streams past the limit are refused: {heard:?}"
    );
    still_serving(app.addr).await;
}

#[tokio::test]
async fn a_rapid_reset_burst_closes_its_connection_and_leaves_the_process_up() {
    // A bound of its own, so that the test proves the setting, not h2's default of 20.
    let app = crate::support::spawn_app_with(|config| {
        config.http2.max_pending_accept_reset_streams = 5;
    })
    .await;
    let before = resident_kib(std::process::id());
    let frames: Vec<u8> = (0..5_000u32)
        .flat_map(|i| {
            let id = 2 * i + 1;
            let mut pair = frame(HEADERS, END_HEADERS, id, &call_headers(WATCH));
            pair.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
            pair
        })
        .collect();
    let heard = raw_http2(app.addr, frames, Duration::from_secs(5)).await;
    assert_eq!(
        heard.goaway,
        Some(ENHANCE_YOUR_CALM),
        "the connection is closed for its resets: {heard:?}"
    );
    // Streams 1, 3, ... 11: the connection ends at the configured 5 resets (h2's own
    // default of 20 would let it reach stream 41).
    assert!(
        heard.last_stream.is_some_and(|id| id <= 11),
        "closed after the configured bound: {heard:?}"
    );
    still_serving(app.addr).await;
    let grown = resident_kib(std::process::id()).saturating_sub(before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
}

/// A `grpc-timeout` no clock can add (20 digits where the spec allows 8): read as no
/// timeout, answered like any other call (here: no token), nothing reset, the process up.
#[tokio::test]
async fn a_grpc_timeout_past_any_clock_is_answered_not_a_panic() {
    let app = crate::support::spawn_app().await;
    let path = "/pasarela.bureau.v1.BureauService/GetPasswordExpiration";
    let frames: Vec<u8> = ["18446744073709551615S", "99999999999H", "+5S"]
        .iter()
        .enumerate()
        .flat_map(|(i, timeout)| {
            let stream = u32::try_from(2 * i + 1).expect("a few streams");
            let headers = call_headers_with(path, &[("grpc-timeout", timeout)]);
            let mut frames = frame(HEADERS, END_HEADERS, stream, &headers);
            // An empty gRPC message ends the request.
            frames.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
            frames
        })
        .collect();
    let heard = raw_http2(app.addr, frames, Duration::from_secs(2)).await;
    assert_eq!(heard.reset, 0, "no stream reset: {heard:?}");
    assert!(heard.answered >= 3, "every call answered: {heard:?}");
    assert!(!app.logs().contains("panicked"), "no panic");
    still_serving(app.addr).await;
}

// ---- Hostile metadata -------------------------------------------------------------------------

/// Seeds of the metadata fuzzer in CI: fixed, so that a failure names its input.
const METADATA_SEEDS: [u64; 4] = [1, 7, 42, 1_000_003];

/// A hostile value of one of the headers every call reads before its handler.
fn hostile(rng: &mut rand::rngs::StdRng, header: &str) -> String {
    use rand::Rng as _;
    const PIECES: &[&str] = &[
        "0",
        "9",
        "99999999",
        "18446744073709551615",
        "+",
        "-",
        " ",
        "H",
        "M",
        "S",
        "m",
        "u",
        "n",
        "x",
        "/",
        "..",
        ".",
        "%",
        "%2e",
        "%00",
        "?",
        "#",
        "\\",
        "Bearer ",
        "bearer",
        "=",
        "A",
        "\u{e9}",
        "\u{3000}",
        "\t",
        "pasarela.security.v1.SecurityService",
        "GetPasswordStatus",
        "/grpc.health.v1.Health/Check",
        ",",
        ";",
        "\"",
        "*",
    ];
    // Half the timeouts are well shaped but of any length: 1 to 22 digits and a real unit.
    if header == "grpc-timeout" && rng.random_bool(0.5) {
        let digits: String = (0..rng.random_range(1..=22))
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let unit = ["H", "M", "S", "m", "u", "n"][rng.random_range(0..6)];
        return format!("{digits}{unit}");
    }
    let parts = rng.random_range(0..8);
    let mut value: String = (0..parts)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect();
    if header == ":path" && rng.random_bool(0.5) {
        value.insert(0, '/');
    }
    // One length byte in the hand-written HPACK: values under 127 bytes.
    while value.len() > 120 {
        value.pop();
    }
    value
}

/// Hundreds of calls whose `grpc-timeout`, `:path`, `authorization` and `x-request-id` are
/// hostile: every one is answered, or refused by HTTP/2 for malformed headers; none is
/// dropped by a failing server, nothing panics, and the process serves on.
#[tokio::test]
async fn hostile_metadata_never_fails_the_server() {
    use rand::SeedableRng as _;
    let app = crate::support::spawn_app().await;
    for seed in METADATA_SEEDS {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let calls = 150u32;
        let frames: Vec<u8> = (0..calls)
            .flat_map(|i| {
                let path = hostile(&mut rng, ":path");
                let extra = [
                    ("grpc-timeout", hostile(&mut rng, "grpc-timeout")),
                    ("authorization", hostile(&mut rng, "authorization")),
                    ("x-request-id", hostile(&mut rng, "x-request-id")),
                ];
                let extra: Vec<(&str, &str)> =
                    extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let stream = 2 * i + 1;
                let mut frames = frame(
                    HEADERS,
                    END_HEADERS,
                    stream,
                    &call_headers_with(&path, &extra),
                );
                frames.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
                frames
            })
            .collect();
        let heard = raw_http2(app.addr, frames, Duration::from_secs(2)).await;
        println!("hostile metadata, seed {seed}: {heard:?}");
        // A stream may be refused for its malformed headers (PROTOCOL_ERROR), never
        // dropped by a server that failed while reading them (a panic resets with CANCEL).
        assert!(
            heard.reset_codes.keys().all(|code| *code == PROTOCOL_ERROR),
            "seed {seed}: {heard:?}"
        );
        assert!(
            heard.answered + heard.reset >= calls as usize || heard.goaway.is_some(),
            "seed {seed}: every call ended: {heard:?}"
        );
        still_serving(app.addr).await;
    }
    let logs = app.logs();
    assert!(
        !logs.contains("panicked") && !logs.contains("\"panic\""),
        "no panic"
    );
}
