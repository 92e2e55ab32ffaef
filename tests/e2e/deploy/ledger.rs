//! The ledger's database: each money-moving service's role touches its own schema only, the dev PostgreSQL speaks TLS only and sets itself up at its first start, and components/cloudnative-pg renders a synchronously replicated Cluster with the same roles.

use std::ffi::OsStr;

use secrecy::ExposeSecret as _;

use super::*;
use crate::support::TestPostgres;
use crate::support::tools;

/// The services that move money, each with its ledger.
pub(super) const LEDGER_SERVICES: [ServiceName; 2] =
    [ServiceName::Security, ServiceName::RecurringPayments];

/// Where the image runs a new database's set-up files from, in name order.
const FIRST_START: &str = "/docker-entrypoint-initdb.d";

/// The dev overlay's PostgreSQL.
fn database(manifests: &Manifests) -> &Value {
    manifests
        .named("StatefulSet", "postgres")
        .expect("the dev overlay's PostgreSQL StatefulSet")
}

fn first_container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

/// The files the dev database runs at its first start: what its StatefulSet projects into
/// [`FIRST_START`], as (file name, text), in the order the image runs them.
fn first_start_scripts(manifests: &Manifests) -> Vec<(String, String)> {
    let database = database(manifests);
    let mount = first_container(database)["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"] == FIRST_START)
        .unwrap_or_else(|| panic!("nothing is mounted at {FIRST_START}"));
    let volume = volume(database, mount["name"].as_str().expect("mount name"));
    let mut scripts: Vec<(String, String)> = volume["projected"]["sources"]
        .as_array()
        .expect("a projected volume")
        .iter()
        .flat_map(|source| {
            let map = source["configMap"]["name"].as_str().expect("a ConfigMap");
            let data = manifests.config_map(map);
            source["configMap"]["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|item| {
                    let key = item["key"].as_str().expect("key");
                    let text = data[key].as_str().unwrap_or_else(|| panic!("{map}: {key}"));
                    let path = item["path"].as_str().expect("path");
                    (path.to_owned(), text.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    scripts.sort();
    scripts
}

/// A PostgreSQL of the test's own (TLS only, a CA of its own), set up the way the dev
/// overlay's database sets itself up at its first start: each of
/// [`first_start_scripts`] run by psql as the superuser in the database, reading the Secret
/// files the StatefulSet mounts (each role's password from its service's ledger Secret).
/// `manifests` is dev's: only dev runs a database. The folder lives as long as the guard.
pub(super) async fn overlay_ledger(manifests: &Manifests) -> (TestPostgres, tempfile::TempDir) {
    let postgres = TestPostgres::start().await;
    let database = database(manifests);
    let root = tempfile::tempdir().expect("temp dir");
    let mounts = mount_secrets(manifests, database, first_container(database), root.path());
    let scripts = first_start_scripts(manifests);
    assert!(!scripts.is_empty(), "the database sets itself up");
    for (name, text) in scripts {
        let file = root.path().join(&name);
        std::fs::write(&file, mounts.localize(&text)).expect("script written");
        let ran = psql(
            &postgres,
            &Login::Superuser,
            &[OsStr::new("-f"), file.as_os_str()],
        );
        assert!(ran.status.success(), "{name}: {}", stderr(&ran));
    }
    (postgres, root)
}

/// Each money-moving service's ledger URL as rendered, with the test's server for the
/// `postgres` Service (the role and database kept), and the overlay's CA of the database
/// with the server's: the pods log in as their own roles with their own passwords.
pub(super) fn ledger_loopback(
    manifests: &Manifests,
    postgres: &TestPostgres,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = LEDGER_SERVICES
        .into_iter()
        .map(|service| {
            let url = ledger_url(manifests, service);
            let swapped = url.replacen(
                "@postgres:5432/",
                &format!("@localhost:{}/", postgres.port),
                1,
            );
            assert_ne!(
                swapped, url,
                "{service:?}: the ledger URL names the postgres Service"
            );
            (url, swapped)
        })
        .collect();
    let overlay_ca = String::from_utf8(secret_value(manifests, "pasarela-ledger-ca", "ca.crt"))
        .expect("a PEM CA");
    let ca = std::fs::read_to_string(postgres.ca_file()).expect("the server's CA");
    pairs.push((overlay_ca, ca));
    pairs
}

/// The service's `idempotency.postgres` settings as its pod loads them.
fn ledger_settings(
    manifests: &Manifests,
    service: ServiceName,
) -> pasarela_idempotency::PostgresConfig {
    let config = pod_config(manifests, manifests.of_service("Deployment", service));
    idempotency(&config, service)
        .unwrap_or_else(|| panic!("{service:?} moves money"))
        .postgres
        .clone()
}

fn ledger_url(manifests: &Manifests, service: ServiceName) -> String {
    let settings = ledger_settings(manifests, service);
    let url = settings.url.expect("a ledger URL");
    url.expose_secret().to_owned()
}

/// The role a ledger URL logs in as: `postgresql://<role>@...`.
fn url_role(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(user, _)| user.split(':').next().unwrap_or(user))
        .unwrap_or_else(|| panic!("the URL names its role: {url}"))
}

/// The volume `deployment` mounts where the pod finds its file `path`.
fn secret_volume_of<'d>(deployment: &'d Value, path: &Path) -> &'d Value {
    let container = pasarela_container(deployment);
    let (dir, _) = path
        .to_str()
        .and_then(|p| p.rsplit_once('/'))
        .expect("a path");
    let mount = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("nothing is mounted at {dir}"));
    volume(deployment, mount["name"].as_str().expect("mount name"))
}

/// Who psql logs in as.
enum Login<'a> {
    /// Trusted on loopback by the test's server, over TLS.
    Superuser,
    /// A role with its password, over TLS (the pods verify the server's certificate).
    Role { name: &'a str, password: &'a str },
}

fn psql(postgres: &TestPostgres, login: &Login<'_>, args: &[&OsStr]) -> std::process::Output {
    let mut command = Command::new(tools::postgres_bin().join("psql"));
    command.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"]);
    let port = postgres.port;
    match login {
        Login::Superuser => {
            command.arg(format!(
                "host=127.0.0.1 port={port} dbname=pasarela user=postgres sslmode=require"
            ));
        }
        Login::Role { name, password } => {
            command
                .arg(format!(
                    "host=127.0.0.1 port={port} dbname=pasarela user={name} sslmode=require"
                ))
                .env("PGPASSWORD", password);
        }
    }
    command.args(args).output().expect("psql runs")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What a service's pod logs in as, and where its tables are.
struct ServiceLogin {
    service: ServiceName,
    schema: String,
    role: String,
    password: String,
}

/// The dev overlay's database set up as at its first start; each money-moving service's
/// pod runs `pasarela migrate` with its own configuration and Secret files, logging in as
/// its own role; then each role, logged in with its password over TLS, reads and writes its
/// own schema, and is refused everything else: the other service's schema, the public
/// schema, a schema of its own making, temporary tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(super) async fn each_services_ledger_role_touches_its_own_schema_only() {
    if tools::lacking(&["kubectl", tools::POSTGRES]) {
        return;
    }
    let manifests = Manifests::of("dev");
    let (postgres, _files) = overlay_ledger(&manifests).await;
    let loopback = ledger_loopback(&manifests, &postgres);

    let mut logins = Vec::new();
    for service in LEDGER_SERVICES {
        let settings = ledger_settings(&manifests, service);
        let schema = settings.schema.clone();
        let migrated = PodProcess::of(&manifests, service, &loopback)
            .command("migrate")
            .output()
            .expect("pasarela migrate runs");
        let printed = String::from_utf8_lossy(&migrated.stdout);
        assert!(
            migrated.status.success() && printed.contains(&format!("schema {schema} at version")),
            "{service:?}: pasarela migrate: {printed}{}",
            stderr(&migrated)
        );
        let deployment = manifests.of_service("Deployment", service);
        let password_file = settings.password_file.expect("a password file");
        let root = tempfile::tempdir().expect("temp dir");
        let mounts = mount_secrets(
            &manifests,
            deployment,
            pasarela_container(deployment),
            root.path(),
        );
        let local = mounts
            .local(password_file.to_str().expect("a path"))
            .expect("the password is a Secret's");
        let password = std::fs::read_to_string(local).expect("the password");
        logins.push(ServiceLogin {
            service,
            schema,
            role: url_role(&ledger_url(&manifests, service)).to_owned(),
            password: file_value(&password).to_owned(),
        });
    }
    assert!(
        logins[0].schema != logins[1].schema && logins[0].role != logins[1].role,
        "each service has a schema and a role of its own"
    );

    for login in &logins {
        let (schema, role) = (&login.schema, &login.role);
        let context = format!("{:?} as {role}", login.service);
        let owners =
            format!("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = '{schema}'");
        assert_eq!(
            postgres.sql(&owners),
            *role,
            "{context}: its tables are its own"
        );
        let as_role = |sql: &str| {
            let role = Login::Role {
                name: role,
                password: &login.password,
            };
            psql(&postgres, &role, &[OsStr::new("-c"), OsStr::new(sql)])
        };
        for sql in [
            format!("SELECT count(*) FROM {schema}.records"),
            format!("INSERT INTO {schema}.counters (name, last) VALUES ('deploy-probe', 1)"),
        ] {
            let done = as_role(&sql);
            assert!(done.status.success(), "{context}: {sql}: {}", stderr(&done));
        }
        let others = logins.iter().filter(|other| other.schema != *schema);
        let mut refusals: Vec<(String, String)> = others
            .flat_map(|other| {
                let other = &other.schema;
                let refusal = format!("permission denied for schema {other}");
                [
                    format!("SELECT count(*) FROM {other}.records"),
                    format!("INSERT INTO {other}.counters (name, last) VALUES ('x', 1)"),
                    format!("DELETE FROM {other}.transaction_ids"),
                    format!("CREATE TABLE {other}.planted (a int)"),
                ]
                .map(|sql| (sql, refusal.clone()))
            })
            .collect();
        refusals.extend(
            [
                (
                    "CREATE TABLE public.planted (a int)",
                    "permission denied for schema public",
                ),
                ("CREATE SCHEMA planted", "permission denied for database"),
                (
                    "CREATE TEMP TABLE planted (a int)",
                    "permission denied to create temporary tables",
                ),
            ]
            .map(|(sql, refusal)| (sql.to_owned(), refusal.to_owned())),
        );
        assert!(refusals.len() > 3, "{context}: the other schema is tried");
        for (sql, refusal) in refusals {
            let refused = as_role(&sql);
            assert!(
                !refused.status.success() && stderr(&refused).contains(&refusal),
                "{context}: {sql} must be refused with {refusal:?}: {}",
                stderr(&refused)
            );
        }
    }
}

/// The dev database accepts TLS only: every client rule of its `pg_hba.conf` is `local` or
/// `hostssl` (a `host` rule would take a connection without TLS too), the server runs with
/// `ssl=on` and the certificate of its Secret, and its roles' passwords come from the very
/// Secrets the services' pods read theirs from.
#[test]
pub(super) fn dev_postgres_speaks_tls_only_and_shares_each_password_with_its_service() {
    if tools::lacking(&["kubectl", tools::POSTGRES]) {
        return;
    }
    let manifests = Manifests::of("dev");
    let database = database(&manifests);
    let container = first_container(database);
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("server settings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let setting = |name: &str| {
        args.windows(2)
            .filter(|pair| pair[0] == "-c")
            .find_map(|pair| pair[1].strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("the server sets {name}"))
    };
    assert_eq!(setting("ssl"), "on");
    let root = tempfile::tempdir().expect("temp dir");
    let mounts = mount_secrets(&manifests, database, container, root.path());
    for file in ["ssl_cert_file", "ssl_key_file"] {
        let local = mounts.local(setting(file)).expect("a Secret's file");
        assert!(local.is_file(), "{file}: {}", setting(file));
    }

    let hba_path = setting("hba_file");
    let (dir, file) = hba_path.rsplit_once('/').expect("a path");
    let mount = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"] == dir)
        .expect("pg_hba.conf is mounted");
    let map = volume(database, mount["name"].as_str().expect("name"))["configMap"]["name"]
        .as_str()
        .expect("a ConfigMap");
    let hba = manifests.config_map(map)[file]
        .as_str()
        .expect("pg_hba.conf");
    let rules: Vec<&str> = hba
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    assert!(!rules.is_empty(), "pg_hba.conf has rules");
    for rule in &rules {
        let kind = rule.split_whitespace().next().unwrap_or_default();
        assert!(
            kind == "local" || kind == "hostssl",
            "a connection without TLS would be let in: {rule}"
        );
    }

    for service in LEDGER_SERVICES {
        let settings = ledger_settings(&manifests, service);
        let deployment = manifests.of_service("Deployment", service);
        let password = settings.password_file.expect("a password file");
        let secret = &secret_volume_of(deployment, &password)["secret"]["secretName"];
        let role = url_role(&ledger_url(&manifests, service)).to_owned();
        let set_up = first_start_scripts(&manifests)
            .into_iter()
            .any(|(_, text)| text.contains(&format!("ALTER ROLE {role} LOGIN PASSWORD")));
        assert!(
            set_up,
            "{service:?}: {role} gets its password at the first start"
        );
        let database_reads = database["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| &v["secret"]["secretName"] == secret);
        assert!(database_reads, "{service:?}: the database reads {secret}");
    }
}

/// What a platform team running the ledger in the cluster applies: the prod overlay with
/// components/cloudnative-pg over it, in an overlay of its own (docs/deploy.md).
pub(super) fn prod_with_cloudnative_pg() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let here = dir.path().canonicalize().expect("temp dir path");
    let k8s = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/k8s")
        .canonicalize()
        .expect("deploy/k8s");
    // kustomize takes relative paths only.
    let up = "../".repeat(here.components().count() - 1);
    let k8s = format!("{up}{}", k8s.strip_prefix("/").expect("absolute").display());
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         namespace: pasarela\nresources: [{k8s}/overlays/prod]\n\
         components: [{k8s}/components/cloudnative-pg]\n"
    );
    std::fs::write(here.join("kustomization.yaml"), kustomization).expect("kustomization");
    render_dir(&here)
}

/// `kubernetes-validate` knows no CloudNativePG schema: it skips a `Cluster` with a
/// warning. So the render must pass strict validation with the `Cluster` as the only
/// object skipped, and the `Cluster` is checked here for what pasarela relies on: three
/// instances, every commit on a synchronous standby (`dataDurability: required`), failover
/// only to an instance holding every commit (`failoverQuorum`), no connection without TLS,
/// the ledger's roles made at bootstrap from the rendered `roles.sql`, each managed role
/// the one a service's URL logs in as with the Secret its pods read the password from, and
/// the CA the pods mount being the operator's (its `ca.crt` alone). The money-moving
/// services' egress reaches the Cluster's pods, whose policy admits them and not bureau.
#[test]
pub(super) fn cloudnative_pg_component_renders_a_synchronous_cluster_with_the_ledger_roles() {
    if tools::lacking(&["kubectl"]) {
        return;
    }
    let yaml = prod_with_cloudnative_pg();
    let (valid, report) = super::manifests::validate("prod-cloudnative-pg", &yaml);
    assert!(valid, "validation fails:\n{report}");
    assert_eq!(
        unvalidated_kinds(&report),
        BTreeSet::from([("Cluster".to_owned(), "postgresql.cnpg.io/v1".to_owned())]),
        "only CloudNativePG's Cluster goes unvalidated:\n{report}"
    );

    let manifests = Manifests::rendered("prod+cloudnative-pg", parse(&yaml));
    let clusters: Vec<_> = manifests.all("Cluster").collect();
    assert_eq!(clusters.len(), 1, "one Cluster");
    let cluster = clusters[0];
    let name = cluster["metadata"]["name"].as_str().expect("a name");
    let spec = &cluster["spec"];
    assert_eq!(cluster["apiVersion"], "postgresql.cnpg.io/v1");
    assert!(int(&spec["instances"]) >= 3, "a primary and two standbys");
    let synchronous = &spec["postgresql"]["synchronous"];
    assert!(
        synchronous["method"] == "any" || synchronous["method"] == "first",
        "synchronous replication: {synchronous}"
    );
    assert!(int(&synchronous["number"]) >= 1, "{synchronous}");
    assert!(
        int(&synchronous["number"]) < int(&spec["instances"]) - 1,
        "a standby can be lost without stopping writes: {synchronous}"
    );
    assert_eq!(synchronous["dataDurability"], "required", "{synchronous}");
    assert_eq!(synchronous["failoverQuorum"], true, "{synchronous}");
    assert!(
        spec["postgresql"]["pg_hba"]
            .as_array()
            .is_some_and(|rules| rules.contains(&json!("hostnossl all all all reject"))),
        "no connection without TLS: {}",
        spec["postgresql"]["pg_hba"]
    );
    assert_ne!(spec["enableSuperuserAccess"], true);

    let initdb = &spec["bootstrap"]["initdb"];
    let database = initdb["database"].as_str().expect("the database");
    let reference = &initdb["postInitApplicationSQLRefs"]["configMapRefs"][0];
    let (map, key) = (
        reference["name"].as_str().expect("a ConfigMap"),
        reference["key"].as_str().expect("a key"),
    );
    let roles_sql = manifests.config_map(map)[key].as_str().expect("roles.sql");
    let managed = spec["managed"]["roles"].as_array().expect("managed roles");

    for service in LEDGER_SERVICES {
        let context = format!("{service:?}");
        let deployment = manifests.of_service("Deployment", service);
        let settings = ledger_settings(&manifests, service);
        let role = url_role(&ledger_url(&manifests, service)).to_owned();
        assert!(
            roles_sql.contains(&format!(
                "CREATE SCHEMA {} AUTHORIZATION {role};",
                settings.schema
            )),
            "{context}: bootstrap gives {role} its schema {}",
            settings.schema
        );
        let password = settings.password_file.expect("a password file");
        let secret = &secret_volume_of(deployment, &password)["secret"]["secretName"];
        assert!(
            managed.iter().any(|r| r["name"] == role.as_str()
                && r["login"] == true
                && &r["passwordSecret"]["name"] == secret),
            "{context}: {role} logs in with the password of {secret}"
        );
        let ca = settings.ca_file.expect("a CA file");
        let ca_volume = &secret_volume_of(deployment, &ca)["secret"];
        assert_eq!(ca_volume["secretName"], format!("{name}-ca"), "{context}");
        assert_eq!(
            ca_volume["items"],
            json!([{"key": "ca.crt", "path": "ca.crt"}]),
            "{context}: the CA's key stays out of the pod"
        );
        assert!(ledger_url(&manifests, service).contains(&format!("/{database}")));

        let policy = manifests.of_service("NetworkPolicy", service);
        let instance = json!({ "cnpg.io/cluster": name });
        let reaches = policy["spec"]["egress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|rule| {
                rule["ports"]
                    .as_array()
                    .is_some_and(|ports| ports.iter().any(|p| p["port"] == 5432))
            })
            .flat_map(|rule| rule["to"].as_array().into_iter().flatten())
            .any(|peer| peer_selects(&peer["podSelector"], &instance));
        assert!(reaches, "{context}: egress reaches the Cluster's pods");
        let pods = &deployment["spec"]["template"]["metadata"]["labels"];
        let ledger_policy = manifests
            .all("NetworkPolicy")
            .find(|p| peer_selects(&p["spec"]["podSelector"], &instance))
            .expect("a NetworkPolicy of the Cluster's pods");
        assert!(
            admits(ledger_policy, pods),
            "{context}: the Cluster admits it"
        );
        let bureau = manifests.of_service("Deployment", ServiceName::Bureau);
        let bureau = &bureau["spec"]["template"]["metadata"]["labels"];
        assert!(!admits(ledger_policy, bureau), "bureau moves no money");
    }
}

/// The (kind, apiVersion) of every object kubernetes-validate skipped for want of a schema.
pub(super) fn unvalidated_kinds(report: &str) -> BTreeSet<(String, String)> {
    report
        .lines()
        .filter_map(|line| {
            let rest = line.split_once("Couldn't find schema for kind ")?.1;
            let (kind, rest) = rest.split_once(" with api version ")?;
            let (version, _) = rest.split_once(" for kubernetes version")?;
            Some((kind.to_owned(), version.to_owned()))
        })
        .collect()
}
