//! Least privilege between services: each Deployment mounts its own Secrets and nothing of another service's (bureau no record key, no ledger login and no route to the ledger), the docs say who mounts what, and each service's Redis ACL user, on a real Redis run from the dev overlay's own configuration, reads and writes its own keys only.

use secrecy::ExposeSecret as _;

use super::ledger::{LEDGER_SERVICES, prod_with_cloudnative_pg};
use super::manifests::assert_network_policy;
use super::pods::{overlay_redis, redis_loopback, redis_url, swap};
use super::state::{admits, peer_selects, reaches_postgres};
use super::*;
use crate::support::tools;

/// The Secrets more than one service mounts, with the services that do: the CAs of Redis'
/// and the ledger's certificates (public), dev's published HS256 secret, and the gRPC port's
/// one certificate for the three Services. None of them lets one service read or write
/// another's state.
const SHARED: [(&str, &[ServiceName]); 4] = [
    ("pasarela-redis-ca", &ServiceName::ALL),
    ("pasarela-ledger-ca", &LEDGER_SERVICES),
    ("pasarela-dev-auth", &ServiceName::ALL),
    ("pasarela-grpc-tls", &ServiceName::ALL),
];

/// Where the dev overlay's Redis keeps its configuration, its users among it.
const REDIS_SERVER: (&str, &str) = ("pasarela-redis-server", "redis.conf");

/// Every Secret the pods of `deployment` can read, named without kustomize's hash: Secret
/// volumes (projected ones too) and, in any container, `envFrom` and `secretKeyRef`.
fn secrets_read(deployment: &Value) -> BTreeSet<String> {
    let pod = &deployment["spec"]["template"]["spec"];
    let mut names = Vec::new();
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        names.push(&volume["secret"]["secretName"]);
        let projected = volume["projected"]["sources"].as_array();
        names.extend(
            projected
                .into_iter()
                .flatten()
                .map(|s| &s["secret"]["name"]),
        );
    }
    let containers = pod["containers"].as_array().into_iter().flatten();
    let init = pod["initContainers"].as_array().into_iter().flatten();
    for container in containers.chain(init) {
        let sources = container["envFrom"].as_array().into_iter().flatten();
        names.extend(sources.map(|source| &source["secretRef"]["name"]));
        let variables = container["env"].as_array().into_iter().flatten();
        names.extend(variables.map(|v| &v["valueFrom"]["secretKeyRef"]["name"]));
    }
    names
        .into_iter()
        .filter_map(Value::as_str)
        .map(|name| unhashed(name).to_owned())
        .collect()
}

/// The service a Secret belongs to by its name, `pasarela-<service>-...`.
fn owner(secret: &str) -> Option<ServiceName> {
    ServiceName::ALL
        .into_iter()
        .find(|service| secret.starts_with(&format!("pasarela-{}-", component(*service))))
}

/// The keys and values of the Secret `name` (unhashed), as the pods would read them
/// (prod's stood in for by dev's of the same name).
fn secret_entries(manifests: &Manifests, name: &str) -> Vec<(String, Vec<u8>)> {
    let (_, data) = manifests
        .secrets
        .iter()
        .find(|(secret, _)| unhashed(secret) == name)
        .unwrap_or_else(|| panic!("{}: no data for the Secret {name}", manifests.overlay));
    data.iter()
        .map(|(key, encoded)| {
            let encoded = encoded.as_str().expect("base64 text");
            (key.clone(), secret_bytes(encoded))
        })
        .collect()
}

/// The ACL user a Redis URL logs in as: `rediss://<user>:<password>@...`.
fn url_user(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(credentials, _)| credentials.split_once(':'))
        .map(|(user, _)| user)
        .unwrap_or_else(|| panic!("the URL names an ACL user"))
}

/// What each service's pods hold of their own.
struct Holdings {
    /// (service, Secret, key, value) of every Secret named after a service.
    values: Vec<(ServiceName, String, String, Vec<u8>)>,
}

impl Holdings {
    fn of(manifests: &Manifests) -> Holdings {
        let mut values = Vec::new();
        for service in ServiceName::ALL {
            let deployment = manifests.of_service("Deployment", service);
            for secret in secrets_read(deployment) {
                if owner(&secret) != Some(service) {
                    continue;
                }
                for (key, value) in secret_entries(manifests, &secret) {
                    values.push((service, secret.clone(), key, value));
                }
            }
        }
        Holdings { values }
    }
}

/// In each overlay (and prod with components/cloudnative-pg), each Deployment reads no
/// Secret but its own (`pasarela-<service>-...`) and the shared public ones; its own hold
/// values no other service's hold (its own holder key, record key, Redis password); bureau
/// reads no record key, no ledger Secret, no ledger CA, has no egress to PostgreSQL, and no
/// ledger's NetworkPolicy admits it.
#[test]
pub(super) fn each_deployment_reads_its_own_secrets_only_and_bureau_nothing_of_the_money() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let renders = [
        Manifests::of("dev"),
        Manifests::of("prod"),
        Manifests::rendered("prod", parse(&prod_with_cloudnative_pg())),
    ];
    for manifests in &renders {
        let overlay = manifests.overlay;
        let mut holder_keys = BTreeSet::new();
        let mut redis_users = BTreeSet::new();
        let mut record_keys = BTreeSet::new();
        for service in ServiceName::ALL {
            let context = format!("{overlay} {service:?}");
            let deployment = manifests.of_service("Deployment", service);
            for secret in secrets_read(deployment) {
                let allowed = match owner(&secret) {
                    Some(owner) => owner == service,
                    None => SHARED
                        .iter()
                        .any(|(name, services)| *name == secret && services.contains(&service)),
                };
                assert!(allowed, "{context} reads {secret}, which is not its own");
            }

            let config = pod_config(manifests, deployment);
            let holder_key = config.auth.holder_key.as_ref().expect("a holder key");
            holder_keys.insert(holder_key.current().expose_secret().to_owned());
            redis_users.insert(url_user(&redis_url(manifests, service)).to_owned());
            if let Some(store) = idempotency(&config, service) {
                let record_key = store.record_key.as_ref().expect("a record key");
                record_keys.insert(record_key.current().expose_secret().to_owned());
            }
        }
        assert_eq!(holder_keys.len(), 3, "{overlay}: a holder key per service");
        assert_eq!(redis_users.len(), 3, "{overlay}: a Redis user per service");
        assert_eq!(record_keys.len(), 2, "{overlay}: a record key per ledger");

        let holdings = Holdings::of(manifests);
        for (service, secret, key, value) in &holdings.values {
            let shared_with = holdings
                .values
                .iter()
                .find(|(other, _, _, theirs)| other != service && theirs == value);
            assert!(
                shared_with.is_none(),
                "{overlay}: {key} of {secret} is also held by {shared_with:?}"
            );
        }

        let bureau = manifests.of_service("Deployment", ServiceName::Bureau);
        let context = format!("{overlay} bureau");
        for (service, secret, key, value) in &holdings.values {
            if *service != ServiceName::Bureau {
                continue;
            }
            assert_ne!(key, "record-key", "{context}: {secret} holds a record key");
            assert!(
                key != "password" && !value.starts_with(b"postgres"),
                "{context}: {secret} holds a ledger login"
            );
        }
        let variables = pod_variables(manifests, pasarela_container(bureau));
        assert!(
            variables.keys().all(|name| !name.contains("IDEMPOTENCY")),
            "{context}: no ledger settings"
        );
        let policy = manifests.of_service("NetworkPolicy", ServiceName::Bureau);
        assert!(
            !reaches_postgres(policy),
            "{context}: no egress to the ledger"
        );
        let labels = &bureau["spec"]["template"]["metadata"]["labels"];
        for ledger in ["postgres", "pasarela-ledger"] {
            if let Some(ledger) = manifests.named("NetworkPolicy", ledger) {
                assert!(!admits(ledger, labels), "{context}: the ledger admits it");
            }
        }
    }
}

/// The rows of the table "which pods mount each Secret" in `docs/deploy.md`: each Secret,
/// the overlay it is limited to (`(dev)`, `(prod)`), and the services that mount it.
fn documented_mounts() -> Vec<(String, Option<String>, BTreeSet<String>)> {
    let doc = deploy_doc();
    let mut lines = doc
        .lines()
        .skip_while(|line| !line.starts_with("| Secret | mounted by |"))
        .skip(2);
    let mut rows = Vec::new();
    for line in lines.by_ref().take_while(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let secret = cells[1].split('`').nth(1).expect("a Secret").to_owned();
        let only = ["dev", "prod"]
            .into_iter()
            .find(|overlay| cells[1].ends_with(&format!("({overlay})")))
            .map(str::to_owned);
        let services = cells[2].split(", ").map(str::to_owned).collect();
        rows.push((secret, only, services));
    }
    assert!(rows.len() > 10, "the table of mounts is found: {rows:?}");
    rows
}

/// The Secret names listed in the prod overlay's comment for the platform team: the
/// paragraph of `kustomization.yaml` that starts "# Secrets to create".
fn prod_secrets_to_create() -> BTreeSet<String> {
    let file = overlay_dir("prod").join("kustomization.yaml");
    let text = std::fs::read_to_string(&file).expect("the prod kustomization");
    text.lines()
        .skip_while(|line| !line.starts_with("# Secrets to create"))
        .skip(1)
        .take_while(|line| line.starts_with('#'))
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
        .filter(|word| word.starts_with("pasarela-"))
        .map(str::to_owned)
        .collect()
}

/// docs/deploy.md's table of which pods mount each Secret is what every overlay renders,
/// and the prod overlay lists for the platform team the Secrets its Deployments mount.
#[test]
pub(super) fn the_docs_name_the_secrets_each_deployment_mounts() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let documented = documented_mounts();
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        if overlay == "prod" {
            let mounted: BTreeSet<String> = ServiceName::ALL
                .into_iter()
                .flat_map(|service| secrets_read(manifests.of_service("Deployment", service)))
                .collect();
            assert_eq!(
                prod_secrets_to_create(),
                mounted,
                "overlays/prod/kustomization.yaml lists the Secrets to create"
            );
        }
        for service in ServiceName::ALL {
            let name = component(service);
            let expected: BTreeSet<String> = documented
                .iter()
                .filter(|(_, only, _)| only.as_deref().is_none_or(|only| only == overlay))
                .filter(|(_, _, services)| services.contains(&name))
                .map(|(secret, _, _)| secret.clone())
                .collect();
            let deployment = manifests.of_service("Deployment", service);
            assert_eq!(
                secrets_read(deployment),
                expected,
                "{overlay} {name}: the Secrets it mounts against docs/deploy.md"
            );
        }
    }
}

/// One `user` line of a Redis configuration.
struct AclUser {
    name: String,
    rules: Vec<String>,
}

fn acl_users(config: &str) -> Vec<AclUser> {
    config
        .lines()
        .filter_map(|line| line.trim().strip_prefix("user "))
        .map(|line| {
            let mut words = line.split_whitespace().map(str::to_owned);
            AclUser {
                name: words.next().expect("a user name"),
                rules: words.collect(),
            }
        })
        .collect()
}

/// `redis-cli` against the test's Redis over TLS, logged in with `url` (or as nobody): its
/// answer, errors included (redis-cli prints them and exits 0).
fn redis_cli(
    ca: &Path,
    redis: &crate::support::TestRedis,
    url: Option<&str>,
    args: &[&str],
) -> String {
    let mut command = Command::new(tool("redis-cli"));
    command
        .args(["--tls", "--cacert"])
        .arg(ca)
        .arg("--no-auth-warning");
    match url {
        Some(url) => command.args(["-u", url]),
        None => command.args(["-h", "localhost", "-p", &redis.port().to_string()]),
    };
    let output = command.args(args).output().expect("redis-cli runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
    .trim()
    .to_owned()
}

/// The dev overlay's Redis, run from its own `redis.conf` (TLS only): the default user is
/// off, and there is one user per service, the one its URL names, whose key pattern is its
/// own prefix (`~pasarela:<service>:*`, what its pods' buckets start with) and whose
/// commands are the buckets' only, as docs/deploy.md shows them. Logged in with each
/// service's URL, `redis-cli` reads and writes that service's keys, directly and through a
/// script, and is refused (`NOPERM`) every other service's keys, the keys all services
/// shared before, and any other command; without credentials nothing is answered. And a
/// real bureau pod told to keep its buckets under security's prefix does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn each_services_redis_user_reaches_its_own_keys_only() {
    if tools::lacking(&["kubectl", "redis-server", "redis-cli"]) {
        return;
    }
    let manifests = Manifests::of("dev");
    let config = String::from_utf8(secret_value(&manifests, REDIS_SERVER.0, REDIS_SERVER.1))
        .expect("redis.conf");
    let users = acl_users(&config);
    let default = users
        .iter()
        .find(|user| user.name == "default")
        .expect("the default user is set");
    assert!(
        default.rules.contains(&"off".to_owned()) && !default.rules.contains(&"on".to_owned()),
        "the default user is off: {:?}",
        default.rules
    );
    let doc = deploy_doc();
    let mut logins = Vec::new();
    for service in ServiceName::ALL {
        let url = redis_url(&manifests, service);
        let user = users
            .iter()
            .find(|user| user.name == url_user(&url))
            .unwrap_or_else(|| panic!("{service:?}: redis.conf has the user its URL names"));
        let prefix = format!("pasarela:{}", component(service));
        let patterns: Vec<&String> = user
            .rules
            .iter()
            .filter(|rule| rule.starts_with(['~', '%']) || *rule == "allkeys")
            .collect();
        assert_eq!(
            patterns,
            [&format!("~{prefix}:*")],
            "{service:?}: its own keys"
        );
        assert!(
            user.rules.iter().any(|rule| rule == "-@all")
                && user.rules.iter().all(|rule| !rule.starts_with("+@")),
            "{service:?}: named commands only: {:?}",
            user.rules
        );
        let documented = format!(
            "user {} {}",
            user.name,
            user.rules
                .iter()
                .map(|rule| if rule.starts_with('>') {
                    ">..."
                } else {
                    rule.as_str()
                })
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(
            doc.contains(&documented),
            "docs/deploy.md shows {documented}"
        );
        logins.push((service, prefix, url));
    }
    let enabled: BTreeSet<&str> = users
        .iter()
        .filter(|user| user.rules.iter().any(|rule| rule == "on"))
        .map(|user| user.name.as_str())
        .collect();
    let named: BTreeSet<&str> = logins.iter().map(|(_, _, url)| url_user(url)).collect();
    assert_eq!(enabled, named, "the services' users, and no other, are on");
    assert_eq!(named.len(), 3, "each service logs in as a user of its own");

    let (redis, _files) = overlay_redis(&manifests).await;
    let loopback = redis_loopback(&manifests, &redis);
    // The CA the pods trust Redis' certificate with, from the Secret they mount it from.
    let bureau = manifests.of_service("Deployment", ServiceName::Bureau);
    let tls = pod_config(&manifests, bureau).auth.rate_limit_redis_tls;
    let ca_file = tls.and_then(|tls| tls.ca_file).expect("a Redis CA file");
    let mounts_dir = tempfile::tempdir().expect("temp dir");
    let mounts = mount_secrets(
        &manifests,
        bureau,
        pasarela_container(bureau),
        mounts_dir.path(),
    );
    let ca = mounts
        .local(ca_file.to_str().expect("a path"))
        .expect("the CA is a Secret's file");
    let logins: Vec<(ServiceName, String, String)> = logins
        .into_iter()
        .map(|(service, prefix, url)| (service, prefix, swap(&url, &loopback)))
        .collect();
    let cli = |url: Option<&str>, args: &[&str]| redis_cli(&ca, &redis, url, args);

    let read = "return redis.call('GET', KEYS[1])";
    let reach_past_keys = "return redis.call('GET', ARGV[1])";
    for (service, prefix, url) in &logins {
        let key = format!("{prefix}:probe");
        let mine = component(*service);
        assert_eq!(cli(Some(url), &["SET", &key, &mine]), "OK", "{service:?}");
        assert_eq!(cli(Some(url), &["GET", &key]), mine, "{service:?}");
        let sha = cli(Some(url), &["SCRIPT", "LOAD", read]);
        assert_eq!(sha.len(), 40, "{service:?}: SCRIPT LOAD: {sha}");
        assert_eq!(cli(Some(url), &["EVALSHA", &sha, "1", &key]), mine);
    }
    for (service, prefix, url) in &logins {
        let own = format!("{prefix}:probe");
        let read_sha = cli(Some(url), &["SCRIPT", "LOAD", read]);
        let past_sha = cli(Some(url), &["SCRIPT", "LOAD", reach_past_keys]);
        let mut refused: Vec<Vec<String>> = Vec::new();
        for (_, other, _) in logins.iter().filter(|(other, _, _)| other != service) {
            let theirs = format!("{other}:probe");
            refused.extend([
                vec!["GET".into(), theirs.clone()],
                vec!["SET".into(), theirs.clone(), "forged".into()],
                vec![
                    "EVALSHA".into(),
                    read_sha.clone(),
                    "1".into(),
                    theirs.clone(),
                ],
            ]);
            let past = ["EVALSHA", &past_sha, "1", &own, &theirs];
            let answer = cli(Some(url), &past);
            assert!(
                answer.contains("can't access") && !answer.contains(":probe"),
                "{service:?}: a script reaches {theirs}: {answer}"
            );
        }
        for command in [
            // The keys every service shared before each had its own prefix.
            &["GET", "pasarela:rate:default:jwt:caller"][..],
            &["SET", "pasarela:rate:secret-attempts:holder", "0"],
            &["KEYS", "*"],
            &["SCAN", "0"],
            &["DEL", own.as_str()],
            &["FLUSHALL"],
            &["CONFIG", "GET", "dir"],
            &["ACL", "LIST"],
            &["EVAL", "return 1", "0"],
        ] {
            refused.push(command.iter().map(|word| (*word).to_owned()).collect());
        }
        for command in refused {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            let answer = cli(Some(url), &args);
            assert!(
                answer.starts_with("NOPERM"),
                "{service:?}: {command:?} must be refused: {answer}"
            );
        }
    }
    for (service, prefix, url) in &logins {
        let key = format!("{prefix}:probe");
        assert_eq!(
            cli(Some(url), &["GET", &key]),
            component(*service),
            "{service:?}: its key is as it wrote it"
        );
    }
    let nobody = cli(None, &["GET", "pasarela:security:probe"]);
    assert!(nobody.starts_with("NOAUTH"), "no login: {nobody}");
    let port = redis.port();
    let as_default = format!("rediss://default:anything@localhost:{port}/0");
    let default = cli(Some(&as_default), &["GET", "pasarela:security:probe"]);
    assert!(default.contains("WRONGPASS"), "the default user: {default}");

    // pasarela is held to its prefix too: a bureau pod, with its own Redis login and
    // security's prefix, is refused at start rather than counting in its own replica.
    let bureau = PodProcess::of(&manifests, ServiceName::Bureau, &loopback);
    let mut serve = bureau
        .command("serve")
        .env(
            "PASARELA_AUTH__RATE_LIMIT_REDIS_PREFIX",
            "pasarela:security",
        )
        .env("PASARELA_LISTEN", "127.0.0.1:0")
        .env("PASARELA_ADMIN_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pasarela serve runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.try_wait().expect("the process") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("bureau started with security's prefix");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().expect("stderr"), &mut printed)
        .expect("stderr read");
    assert!(
        !status.success() && printed.contains("pasarela:security:*") && printed.contains("NOPERM"),
        "bureau with security's prefix must stop at start: {printed}"
    );
}

/// Each drift probe (security's and recurring-payments'; Kiban's calls are billed, so
/// bureau has none) is one pod at a time that reads its provider's credentials and nothing
/// else of its service's Secrets (no ledger, Redis, state key or gRPC certificate), runs
/// `pasarela probe --every`, and is left out of the service's Service, disruption budget,
/// Deployment and NetworkPolicy. Its own NetworkPolicy admits scrapes of its admin port and
/// lets it reach DNS and its provider only, as narrowed as the service's own rules to them:
/// no ledger, no Redis, and no ledger's or Redis's policy admits it.
#[test]
pub(super) fn each_drift_probe_reads_its_providers_credentials_only_and_serves_nothing() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let expected = [
        (
            ServiceName::Security,
            &["pasarela-security-credentials"][..],
        ),
        (
            ServiceName::RecurringPayments,
            &[
                "pasarela-recurring-payments-credentials",
                "pasarela-recurring-payments-mtls",
            ][..],
        ),
    ];
    for overlay in OVERLAYS {
        let manifests = Manifests::of(overlay);
        assert!(
            manifests
                .probe_of("Deployment", ServiceName::Bureau)
                .is_none(),
            "{overlay}: bureau"
        );
        for (service, credentials) in expected {
            let context = format!("{overlay} {service:?}");
            let probe = manifests
                .probe_of("Deployment", service)
                .expect("a drift probe");
            assert_eq!(probe["spec"]["replicas"], 1, "{context}: one prober");
            assert_eq!(probe["spec"]["strategy"]["type"], "Recreate", "{context}");
            let read = secrets_read(probe);
            let wanted: BTreeSet<String> = credentials.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(
                read, wanted,
                "{context} reads its provider's credentials only"
            );
            let server = manifests.of_service("Deployment", service);
            assert!(read.is_subset(&secrets_read(server)), "{context}");
            let container = pasarela_container(probe);
            assert_eq!(container["args"][0], "probe", "{context}");
            assert_eq!(container["args"][1], "--every", "{context}");
            assert!(
                container["ports"]
                    .as_array()
                    .is_some_and(|ports| ports.iter().any(|p| p["name"] == "admin")),
                "{context}: scraped on its admin port"
            );

            let annotations = &probe["spec"]["template"]["metadata"]["annotations"];
            assert_eq!(annotations["prometheus.io/scrape"], "true", "{context}");
            let labels = &probe["spec"]["template"]["metadata"]["labels"];
            assert_probes_network(&manifests, service, labels, &context);
            let served = manifests.of_service("Service", service);
            let by_service = json!({ "matchLabels": served["spec"]["selector"] });
            assert!(
                !peer_selects(&by_service, labels),
                "{context}: no gRPC traffic"
            );
            let budget = manifests.of_service("PodDisruptionBudget", service);
            assert!(
                !peer_selects(&budget["spec"]["selector"], labels),
                "{context}"
            );
            assert!(
                !peer_selects(&server["spec"]["selector"], labels),
                "{context}"
            );
            let server_labels = &server["spec"]["template"]["metadata"]["labels"];
            assert!(
                !peer_selects(&probe["spec"]["selector"], server_labels),
                "{context}"
            );
        }
    }
}

/// The drift probe's network: its own policy selects it and the service's does not; the
/// scrapers may reach its admin port and nothing else; it reaches DNS and the provider as
/// the service's first two egress rules do, and nothing more; no database's or Redis's
/// policy admits it.
fn assert_probes_network(
    manifests: &Manifests,
    service: ServiceName,
    labels: &Value,
    context: &str,
) {
    let server = manifests.of_service("NetworkPolicy", service);
    assert!(
        !peer_selects(&server["spec"]["podSelector"], labels),
        "{context}: the service's policy, with the ledger and Redis, is not the probe's"
    );
    let own = manifests
        .probe_of("NetworkPolicy", service)
        .expect("the drift probe's NetworkPolicy");
    assert_network_policy(own, labels, context);
    let ingress = own["spec"]["ingress"].as_array().expect("ingress rules");
    let ports: Vec<&Value> = ingress
        .iter()
        .flat_map(|rule| rule["ports"].as_array().into_iter().flatten())
        .map(|port| &port["port"])
        .collect();
    assert_eq!(ports, [&json!("admin")], "{context}: scrapes only");
    let egress = own["spec"]["egress"].as_array().expect("egress rules");
    let served = server["spec"]["egress"].as_array().expect("egress rules");
    assert_eq!(
        egress.as_slice(),
        &served[..2],
        "{context}: DNS and the provider, as the service reaches them"
    );
    for peer in ["postgres", "pasarela-ledger", "redis"] {
        if let Some(policy) = manifests.named("NetworkPolicy", peer) {
            assert!(!admits(policy, labels), "{context}: {peer} admits it");
        }
    }
}
