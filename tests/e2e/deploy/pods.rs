//! The rendered pods run as real processes from their Secret files: dev against the sandbox and a ledger set up as the overlay's PostgreSQL is, prod against a loopback JWKS issuer.

use super::*;
use crate::support::process::{KilledOnDrop, free_port, metrics_once};

/// A container's Secret volumes written out under a temp folder, the way the kubelet mounts
/// them: each mount path with the folder standing for it.
pub(super) struct SecretMounts(Vec<(String, PathBuf)>);

impl SecretMounts {
    /// Where the pod's file `path` is here; `None` outside every Secret mount.
    pub(super) fn local(&self, path: &str) -> Option<PathBuf> {
        self.0.iter().find_map(|(mount, dir)| {
            let rest = path.strip_prefix(mount.as_str())?.strip_prefix('/')?;
            Some(dir.join(rest))
        })
    }

    /// `text` with every mount path replaced by the folder standing for it.
    pub(super) fn localize(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |text, (mount, dir)| {
            text.replace(mount.as_str(), &dir.display().to_string())
        })
    }

    fn folders(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(|(_, dir)| dir.as_path())
    }
}

/// The files `container` of `deployment` finds under its Secret volume mounts, decoded
/// from the Secrets of `manifests` and written under `root`. A Secret `manifests` has no
/// data for (prod's gRPC certificate) is an empty folder.
pub(super) fn mount_secrets(
    manifests: &Manifests,
    deployment: &Value,
    container: &Value,
    root: &Path,
) -> SecretMounts {
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"].as_str().expect("mount name");
        // A claim template's volume (a StatefulSet's data) is not among `volumes`.
        let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array();
        let secret = volumes
            .and_then(|volumes| volumes.iter().find(|v| v["name"] == name))
            .and_then(|volume| volume["secret"]["secretName"].as_str());
        let Some(secret) = secret else {
            continue;
        };
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("mount folder");
        for (file, encoded) in manifests.secrets.get(secret).into_iter().flatten() {
            let bytes = secret_bytes(encoded.as_str().expect("base64 text"));
            std::fs::write(dir.join(file), bytes).expect("secret file written");
        }
        let path = mount["mountPath"].as_str().expect("mount path").to_owned();
        mounts.push((path, dir));
    }
    SecretMounts(mounts)
}

/// The value of `key` in the Secret `name` (unhashed) of `manifests`.
pub(super) fn secret_value(manifests: &Manifests, name: &str, key: &str) -> Vec<u8> {
    let data = manifests
        .secrets
        .iter()
        .find(|(secret, _)| unhashed(secret) == name)
        .map(|(_, data)| data)
        .unwrap_or_else(|| panic!("the Secret {name}"));
    secret_bytes(
        data[key]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has {key}")),
    )
}

/// A Secret's `data` value (base64, which kubectl may wrap over several lines).
pub(super) fn secret_bytes(encoded: &str) -> Vec<u8> {
    use base64::Engine as _;
    let joined: String = encoded.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .expect("base64")
}

/// What an overlay gives one pod's `pasarela`: exactly its configuration file, its
/// variables and its Secret files, written out under a temp folder, with the addresses
/// outside this machine (the cluster's, the providers', the issuer's) swapped for loopback
/// ones.
pub(super) struct PodProcess {
    config: PathBuf,
    environment: BTreeMap<String, String>,
    _root: tempfile::TempDir,
}

impl PodProcess {
    /// `loopback` pairs an address the manifests name with the local one standing for it,
    /// swapped wherever it appears: variables, the TOML file, Secret files.
    pub(super) fn of(
        manifests: &Manifests,
        service: ServiceName,
        loopback: &[(String, String)],
    ) -> PodProcess {
        Self::of_deployment(
            manifests,
            manifests.of_service("Deployment", service),
            loopback,
        )
    }

    /// Like [`PodProcess::of`], for the pods of any of the overlay's Deployments.
    pub(super) fn of_deployment(
        manifests: &Manifests,
        deployment: &Value,
        loopback: &[(String, String)],
    ) -> PodProcess {
        let container = pasarela_container(deployment);
        let root = tempfile::tempdir().expect("temp dir");
        let mounts = mount_secrets(manifests, deployment, container, root.path());
        for folder in mounts.folders() {
            swap_in_files(folder, loopback);
        }
        let config = root.path().join("pasarela.toml");
        let file = mounts.localize(config_file(manifests, deployment));
        std::fs::write(&config, swap(&file, loopback)).expect("config written");
        let environment = pod_variables(manifests, container)
            .into_iter()
            .map(|(name, value)| (name, swap(&mounts.localize(&value), loopback)))
            .collect();
        PodProcess {
            config,
            environment,
            _root: root,
        }
    }

    /// `pasarela <subcommand>` with the pod's configuration and nothing else of this
    /// process's environment.
    pub(super) fn command(&self, subcommand: &str) -> Command {
        let mut command = Command::new(crate::support::pasarela_bin());
        command
            .arg(subcommand)
            .env_clear()
            .envs(&self.environment)
            .env("PASARELA_CONFIG", &self.config)
            .env("RUST_LOG", "warn");
        command
    }
}

/// `pasarela serve` started the way an overlay starts one pod ([`PodProcess`]), on free
/// loopback ports.
pub(super) struct Pod {
    child: std::process::Child,
    grpc: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    _process: PodProcess,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pod {
    fn start(manifests: &Manifests, service: ServiceName, loopback: &[(String, String)]) -> Pod {
        Self::start_with(manifests, service, loopback, &[])
    }

    /// Like [`Pod::start`], with `filled_in` variables: what the platform team adds to the
    /// overlay before its first apply.
    fn start_with(
        manifests: &Manifests,
        service: ServiceName,
        loopback: &[(String, String)],
        filled_in: &[(&str, &str)],
    ) -> Pod {
        let process = PodProcess::of(manifests, service, loopback);
        let grpc: std::net::SocketAddr =
            ([127, 0, 0, 1], crate::support::process::free_port()).into();
        let admin: std::net::SocketAddr =
            ([127, 0, 0, 1], crate::support::process::free_port()).into();
        let child = process
            .command("serve")
            .envs(filled_in.iter().copied())
            .env("PASARELA_LISTEN", grpc.to_string())
            .env("PASARELA_ADMIN_LISTEN", admin.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pasarela serve starts");
        Pod {
            child,
            grpc,
            admin,
            _process: process,
        }
    }

    async fn serving(&self, service: ServiceName) {
        let admin = self.admin;
        eventually("the pod's readiness probe passes", || async move {
            let Ok(endpoint) = Endpoint::from_shared(format!("http://{admin}")) else {
                return false;
            };
            let Ok(channel) = endpoint.connect().await else {
                return false;
            };
            let request = HealthCheckRequest {
                service: service.grpc_name().into(),
            };
            HealthClient::new(channel)
                .check(request)
                .await
                .is_ok_and(|answer| answer.into_inner().status() == ServingStatus::Serving)
        })
        .await;
    }

    async fn channel(&self) -> tonic::transport::Channel {
        Endpoint::from_shared(format!("http://{}", self.grpc))
            .expect("endpoint")
            .connect()
            .await
            .expect("the pod accepts a connection")
    }
}

pub(super) fn swap(text: &str, loopback: &[(String, String)]) -> String {
    loopback
        .iter()
        .fold(text.to_owned(), |text, (remote, local)| {
            text.replace(remote, local)
        })
}

pub(super) fn swap_in_files(folder: &Path, loopback: &[(String, String)]) {
    for entry in std::fs::read_dir(folder).expect("mount folder") {
        let path = entry.expect("mount entry").path();
        let text = std::fs::read_to_string(&path).expect("a text Secret");
        std::fs::write(&path, swap(&text, loopback)).expect("secret file written");
    }
}

/// Each service's provider URL, as the overlay configures it, with the sandbox's emulator
/// of that provider; and each service's Redis URL with `redis`'s.
pub(super) fn loopback_addresses(
    manifests: &Manifests,
    sandbox: &pasarela_sandbox::Sandbox,
    redis: &crate::support::TestRedis,
) -> Vec<(String, String)> {
    let mut pairs = provider_loopback(manifests, sandbox);
    pairs.extend(redis_loopback(manifests, redis));
    pairs
}

/// Each provider's base URL as the overlay configures it, with its emulator in `sandbox`.
fn provider_loopback(
    manifests: &Manifests,
    sandbox: &pasarela_sandbox::Sandbox,
) -> Vec<(String, String)> {
    let emulators = [
        (ServiceName::Security, &sandbox.bcs_url),
        (ServiceName::Bureau, &sandbox.kiban_url),
        (ServiceName::RecurringPayments, &sandbox.daviplata_url),
    ];
    emulators
        .into_iter()
        .map(|(service, emulator)| {
            let config = pod_config(manifests, manifests.of_service("Deployment", service));
            (provider_base_url(&config, service), emulator.clone())
        })
        .collect()
}

/// Each service's Redis URL as its pod reads it (its own ACL user), with `redis`'s host.
pub(super) fn redis_loopback(
    manifests: &Manifests,
    redis: &crate::support::TestRedis,
) -> Vec<(String, String)> {
    ServiceName::ALL
        .into_iter()
        .map(|service| {
            let redis_url = redis_url(manifests, service);
            // The host only: the URL keeps its ACL user and password, the CA the host's name.
            let swapped =
                redis_url.replacen("redis:6379", &format!("localhost:{}", redis.port()), 1);
            assert_ne!(
                swapped, redis_url,
                "{service:?}: the overlay's Redis URL names the redis Service"
            );
            (redis_url, swapped)
        })
        .collect()
}

/// The Redis URL `service`'s pod reads from its Secret file.
pub(super) fn redis_url(manifests: &Manifests, service: ServiceName) -> String {
    use secrecy::ExposeSecret as _;
    let config = pod_config(manifests, manifests.of_service("Deployment", service));
    let url = config.auth.rate_limit_redis_url.expect("a Redis URL");
    url.expose_secret().to_owned()
}

/// The dev overlay's own Redis, as its StatefulSet runs it: the rendered `redis.conf` and
/// certificate of its Secrets (TLS only, the ACL user, the append-only file, no eviction)
/// on a free loopback port; the folder lives as long as the returned guard.
pub(super) async fn overlay_redis(
    manifests: &Manifests,
) -> (crate::support::TestRedis, tempfile::TempDir) {
    let secret = |name: &str, key: &str| secret_value(manifests, name, key);
    let root = tempfile::tempdir().expect("temp dir");
    let (tls, data) = (root.path().join("tls"), root.path().join("data"));
    std::fs::create_dir_all(&tls).expect("tls dir");
    std::fs::create_dir_all(&data).expect("data dir");
    for file in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::write(tls.join(file), secret("pasarela-redis-tls", file)).expect("tls file");
    }
    let port = crate::support::TestRedis::free_port();
    let config = String::from_utf8(secret("pasarela-redis-server", "redis.conf")).expect("text");
    let config = config
        .replace("/etc/redis/tls/", &format!("{}/", tls.display()))
        .replace("dir /data", &format!("dir {}", data.display()))
        .replace("tls-port 6379", &format!("tls-port {port}"));
    let file = root.path().join("redis.conf");
    std::fs::write(&file, config).expect("redis.conf");
    let redis =
        crate::support::TestRedis::start_config(&file, port, format!("rediss://localhost:{port}/"))
            .await;
    (redis, root)
}

/// The sandbox on the dev overlay's throwaway PKI, as the sandbox pod mounts it; the folder
/// holding the PKI lives as long as the returned guard.
pub(super) async fn sandbox_on_the_overlay_pki(
    manifests: &Manifests,
) -> (pasarela_sandbox::Sandbox, tempfile::TempDir) {
    let sandbox_pod = manifests
        .named("Deployment", "pasarela-sandbox")
        .expect("the sandbox Deployment");
    let root = tempfile::tempdir().expect("temp dir");
    let container = &sandbox_pod["spec"]["template"]["spec"]["containers"][0];
    let pki = mount_secrets(manifests, sandbox_pod, container, root.path())
        .0
        .pop()
        .expect("the sandbox's PKI mount")
        .1;
    let sandbox = pasarela_sandbox::Sandbox::start(pasarela_sandbox::SandboxOptions {
        pki_dir: pki.clone(),
        ..pasarela_sandbox::SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts on the overlay's PKI");
    let mounted = std::fs::read(pki.join("server.pem")).expect("server.pem");
    assert_eq!(
        std::fs::read(&sandbox.pki.server_cert).expect("server cert"),
        mounted,
        "the sandbox serves the overlay's certificate rather than a new one"
    );
    (sandbox, root)
}

/// The dev overlay's pods, configured exactly as rendered, serve real calls against the
/// sandbox with the overlay's own Secrets read from files: the dev token issuer, the fake
/// credentials, Redis' URL, the ledger's URL and each role's password (against a
/// PostgreSQL set up as the overlay's is), and the throwaway PKI over Daviplata's mutual
/// TLS. A withdrawal lands in security's own schema, written by its own role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn dev_overlay_pods_serve_against_the_sandbox_with_their_secret_files() {
    if tools::lacking(&["kubectl", "redis-server", tools::POSTGRES]) {
        return;
    }
    let manifests = Manifests::of("dev");
    let (sandbox, _pki) = sandbox_on_the_overlay_pki(&manifests).await;
    let (redis, _redis_files) = overlay_redis(&manifests).await;
    let (ledger, _ledger_files) = overlay_ledger(&manifests).await;
    let mut loopback = loopback_addresses(&manifests, &sandbox, &redis);
    loopback.extend(ledger_loopback(&manifests, &ledger));

    let token = bearer_with(&mint_with_cli("*"));
    let pods: Vec<_> = ServiceName::ALL
        .into_iter()
        .map(|service| (service, Pod::start(&manifests, service, &loopback)))
        .collect();
    for (service, pod) in &pods {
        pod.serving(*service).await;
    }

    let security = &pods[0].1;
    let mut client =
        SecurityServiceClient::with_interceptor(security.channel().await, token.clone());
    let answer = client
        .get_password_status(password_status_request())
        .await
        .expect("security answers with the client credentials and token from files");
    assert_eq!(answer.into_inner().status(), PasswordStatus::Active);
    let otp = crate::support::security::withdrawal_otp(&mut client).await;
    client
        .withdraw_with_otp(crate::support::security::withdrawal(
            &otp,
            "deploy-dev-ledger",
        ))
        .await
        .expect("a withdrawal claimed in the ledger the overlay sets up");
    assert_eq!(
        ledger.sql("SELECT count(*) FROM security.transaction_ids"),
        "1",
        "the withdrawal's TxId is in security's schema"
    );

    let bureau = &pods[1].1;
    let mut client = BureauServiceClient::with_interceptor(bureau.channel().await, token.clone());
    let answer = client
        .get_password_expiration(kiban_success())
        .await
        .expect("bureau answers with the API key from its file");
    assert!(answer.into_inner().expiration_date.is_some());

    let payments = &pods[2].1;
    let mut client =
        RecurringPaymentsServiceClient::with_interceptor(payments.channel().await, token);
    let answer = client
        .request_subscription(subscription_request())
        .await
        .expect("recurring-payments reaches Daviplata's emulator over the overlay's mTLS");
    assert!(!answer.into_inner().otp_session_id.is_empty());

    // Each pod made its tables at start-up, logged in as its own role.
    for (schema, role) in [
        ("security", "pasarela_security"),
        ("recurring_payments", "pasarela_recurring_payments"),
    ] {
        let owners =
            format!("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = '{schema}'");
        assert_eq!(ledger.sql(&owners), role, "{schema}");
    }
}

/// The dev overlay's drift probes, run the way their pods run them (the service's
/// configuration, variables and provider credentials from files; no ledger, Redis or state
/// key), against the sandbox: each exports its provider's readings on its admin port, none
/// of them at odds with the overlay's configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn dev_overlay_drift_probes_export_readings_that_match_the_sandbox() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let manifests = Manifests::of("dev");
    let (sandbox, _pki) = sandbox_on_the_overlay_pki(&manifests).await;
    let loopback = provider_loopback(&manifests, &sandbox);
    for (service, provider) in [
        (ServiceName::Security, "security"),
        (ServiceName::RecurringPayments, "recurring_payments"),
    ] {
        let deployment = manifests
            .probe_of("Deployment", service)
            .expect("a drift probe");
        let process = PodProcess::of_deployment(&manifests, deployment, &loopback);
        let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let args = pod_args(deployment, metrics);
        let mut command = process.command(&args[0]);
        let child = command
            .args(&args[1..])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("pasarela probe starts");
        let _probe = KilledOnDrop(child);
        let url = format!("http://{metrics}/metrics");
        let text = metrics_once(&url, "pasarela_provider_reading{").await;
        let readings: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("pasarela_provider_reading{"))
            .filter(|line| line.contains(&format!(r#"provider="{provider}""#)))
            .collect();
        assert!(
            !readings.is_empty(),
            "{service:?} exports readings:\n{text}"
        );
        // A check the sandbox's data cannot settle reads `unknown`; none may read `no`.
        let mismatched: Vec<&&str> = readings
            .iter()
            .filter(|line| line.contains(r#"matches="no""#))
            .collect();
        assert!(mismatched.is_empty(), "{service:?}: {mismatched:?}");
        assert!(
            readings
                .iter()
                .any(|line| line.contains(r#"matches="yes""#)),
            "{service:?}: the overlay's configuration matches the sandbox:\n{text}"
        );
    }
}

/// The container's arguments, with `--metrics-listen` at `metrics`.
fn pod_args(deployment: &Value, metrics: std::net::SocketAddr) -> Vec<String> {
    let mut args: Vec<String> = pasarela_container(deployment)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|arg| arg.as_str().expect("text").to_owned())
        .collect();
    let at = args
        .iter()
        .position(|arg| arg == "--metrics-listen")
        .expect("--metrics-listen");
    args[at + 1] = metrics.to_string();
    args
}

/// The prod overlay's pods start and turn ready with exactly their rendered configuration:
/// its Secrets (created by the platform team there, dev's fake ones here) mounted as
/// files, the gRPC port's TLS, Redis, the ledger (each service's role and schema) and
/// Daviplata's mutual TLS, so every `*_FROM_FILE` variable and file path they name is
/// accepted by the real loader and used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn prod_overlay_pods_start_from_their_secret_files() {
    if tools::lacking(&["kubectl", "redis-server", tools::POSTGRES]) {
        return;
    }
    let manifests = Manifests::of("prod");
    let dev = Manifests::of(SECRETS_OVERLAY);
    let (sandbox, _pki) = sandbox_on_the_overlay_pki(&dev).await;
    let (redis, _redis_files) = overlay_redis(&dev).await;
    let (ledger, _ledger_files) = overlay_ledger(&dev).await;
    let issuer = Issuer::start().await;
    let mut loopback = loopback_addresses(&manifests, &sandbox, &redis);
    loopback.extend(ledger_loopback(&manifests, &ledger));
    let config = pod_config(
        &manifests,
        manifests.of_service("Deployment", ServiceName::Bureau),
    );
    let jwks_url = config
        .auth
        .jwks
        .and_then(|jwks| jwks.url)
        .expect("prod names its issuer's JWKS URL");
    loopback.push((jwks_url, issuer.jwks_url.clone()));

    // The bank's identity is the platform team's to fill in: left at pasarela's
    // placeholders, security refuses to start in front of the production bank, naming each
    // key.
    let refused = PodProcess::of(&manifests, ServiceName::Security, &loopback)
        .command("serve")
        .output()
        .expect("pasarela runs");
    assert!(!refused.status.success(), "started with placeholders");
    let said = String::from_utf8_lossy(&refused.stderr);
    for key in BANK_IDENTITY.map(|(_, _, key)| key) {
        assert!(said.contains(key), "{key} is not named: {said}");
    }
    let identity = BANK_IDENTITY.map(|(variable, value, _)| (variable, value));
    for service in ServiceName::ALL {
        let filled_in: &[(&str, &str)] = match service {
            ServiceName::Security => &identity,
            _ => &[],
        };
        Pod::start_with(&manifests, service, &loopback, filled_in)
            .serving(service)
            .await;
    }
}

/// The identity a bank assigns at onboarding, as the platform team fills it in: variable,
/// value, and the key start-up names while it is missing.
const BANK_IDENTITY: [(&str, &str, &str); 4] = [
    (
        "PASARELA_SECURITY__INVOKER__ALLY",
        "\"ALIADO-7\"",
        "security.invoker.ally",
    ),
    (
        "PASARELA_SECURITY__INVOKER__SUB_CHANNEL",
        "\"1\"",
        "security.invoker.sub_channel",
    ),
    (
        "PASARELA_SECURITY__INVOKER__USER_IP_ADDRESS",
        "\"10.20.30.40\"",
        "security.invoker.user_ip_address",
    ),
    (
        "PASARELA_SECURITY__INVOKER__SERVER_IP_ADDRESS",
        "\"10.20.30.41\"",
        "security.invoker.server_ip_address",
    ),
];

/// An identity provider on loopback publishing one public signing key (the P-256 key of
/// RFC 7515, appendix A.3), so that prod's pods can read their issuer's key set.
pub(super) struct Issuer {
    jwks_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port");
        let jwks_url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("address")
        );
        let body = json!({ "keys": [{
            "kty": "EC", "kid": "prod-test", "crv": "P-256", "alg": "ES256", "use": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }]})
        .to_string();
        let task = tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                tokio::spawn(answer_jwks(connection, body.clone()));
            }
        });
        Issuer { jwks_url, task }
    }
}

/// Answers one HTTP/1.1 request, whatever it asks, with the key set.
pub(super) async fn answer_jwks(mut connection: tokio::net::TcpStream, body: String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match connection.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = connection.write_all(answer.as_bytes()).await;
}

pub(super) fn password_status_request() -> GetPasswordStatusRequest {
    GetPasswordStatusRequest {
        transaction_id: "4835799410".into(),
        customer_type: CustomerType::Natural.into(),
        subject: Some(get_password_status_request::Subject::Customer(
            Identification {
                r#type: DocumentType::Cc.into(),
                number: "1007641".into(),
            },
        )),
        ..Default::default()
    }
}

pub(super) fn subscription_request() -> RequestSubscriptionRequest {
    let mut holder = Identification {
        number: "1000000001".into(),
        ..Default::default()
    };
    holder.set_type(DocumentType::Cc);
    RequestSubscriptionRequest {
        commerce: Some(Commerce {
            commerce_id: "3fa85f64-5717-4562-b3fc-2c963f66afa6".into(),
            commerce_name: "Comercializadora La Pradera".into(),
            category: "Vestuario".into(),
        }),
        wallet: Some(Wallet {
            holder: Some(holder),
            product_code: String::new(),
            product_number: "3000000001".into(),
        }),
        transaction: None,
    }
}
