//! The edge refuses to be silently wrong or silently open: a policy naming a method nobody
//! serves stops start-up, every TOML example of the docs is a valid policy, `serve` refuses
//! the published dev credentials unless told it is insecure, and `pasarela dev` listens on
//! loopback only and fronts its own sandbox only.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use figment::Figment;
use figment::providers::{Format as _, Toml};

use crate::support::pasarela_bin;

/// Every contract a policy may name, as the server knows them.
fn contract_names() -> (
    std::collections::HashSet<String>,
    std::collections::HashSet<String>,
) {
    let sets: &[&[u8]] = &[
        pasarela::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    ];
    (
        pasarela_server::rpc_layer::known_services(sets),
        pasarela_server::rpc_layer::known_methods(sets),
    )
}

#[tokio::test]
async fn a_policy_naming_a_method_nobody_serves_stops_start_up() {
    let sandbox = pasarela_sandbox::Sandbox::start(pasarela_server::dev::sandbox_options(
        &tempfile::tempdir().expect("temp dir").keep(),
    ))
    .await
    .expect("sandbox starts");
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
    let port = crate::foundation::free_port().to_string();
    let printed = refused(&["dev", "--listen", &format!("0.0.0.0:{port}")], &[]);
    assert!(printed.contains("loopback"), "{printed}");
}

#[test]
fn dev_fronts_its_own_sandbox_only() {
    let listen = format!("127.0.0.1:{}", crate::foundation::free_port());
    for (variable, key) in [
        ("PASARELA_SECURITY__BASE_URL", "security.base_url"),
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
    let listen = format!("127.0.0.1:{}", crate::foundation::free_port());
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
