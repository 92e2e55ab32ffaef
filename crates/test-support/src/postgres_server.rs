//! A PostgreSQL server of a test's own (Debian's `postgresql` package), in a temporary
//! directory on a free loopback port, killed on drop: TLS only for clients (a CA of its
//! own), a password role `pasarela` owning the database `pasarela`, and, when asked, a
//! synchronous standby that can be promoted once the primary is SIGKILLed. Run as root,
//! the server runs as the `postgres` user the package creates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The role pasarela logs in as, and its database.
pub const ROLE: &str = "pasarela";

/// A role that logs in with a client certificate instead of a password.
pub const CERTIFICATE_ROLE: &str = "pasarela_cert";

/// The `application_name` of the synchronous standby.
const STANDBY_NAME: &str = "standby1";

pub struct TestPostgres {
    child: Option<Child>,
    /// The server's processes [`TestPostgres::freeze`] stopped: killed with it.
    frozen: Vec<String>,
    pub port: u16,
    /// The data directory.
    data: PathBuf,
    /// Where the unix socket is.
    socket: PathBuf,
    /// This server's own files, removed on drop.
    root: PathBuf,
    /// What a primary and its standbys share, removed with the last of them.
    cluster: Arc<Cluster>,
}

/// The certificates and the password file of one primary and its standbys.
struct Cluster {
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestPostgres {
    /// A primary with no standby.
    pub async fn start() -> Self {
        let primary = Self::init().await;
        primary.create_role().await;
        primary
    }

    /// A primary whose every commit waits for a synchronous standby, and that standby.
    pub async fn start_with_standby() -> (Self, Self) {
        let primary = Self::start().await;
        let standby = primary.standby_on(free_port()).await;
        primary.synchronous().await;
        (primary, standby)
    }

    /// This server, dead or alive, is replaced on its port by a fresh synchronous standby
    /// of `primary` (the failed primary's host rejoining the new primary, as an operator
    /// or CloudNativePG would bring it back).
    pub async fn rejoin_as_standby_of(&mut self, primary: &TestPostgres) {
        self.kill();
        *self = primary.standby_on(self.port).await;
        primary.synchronous().await;
    }

    /// Makes every commit of this primary wait for [`STANDBY_NAME`].
    async fn synchronous(&self) {
        self.sql(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'"
        ));
        self.sql("SELECT pg_reload_conf()");
        let replication = "SELECT sync_state FROM pg_stat_replication";
        self.until(replication, "sync", "the standby became synchronous")
            .await;
    }

    /// Waits until `sql` answers `expected`, or fails the test saying `what` never happened.
    async fn until(&self, sql: &str, expected: &str, what: &str) {
        for _ in 0..200 {
            if self.sql(sql) == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never: {what}");
    }

    /// `postgresql://pasarela@localhost:<port>,...` over `servers`, looking for the one
    /// that takes writes.
    pub fn url(servers: &[&TestPostgres]) -> String {
        let hosts: Vec<String> = servers
            .iter()
            .map(|server| format!("localhost:{}", server.port))
            .collect();
        format!(
            "postgresql://{ROLE}@{}/{ROLE}?target_session_attrs=read-write",
            hosts.join(",")
        )
    }

    /// Kills the server at once (SIGKILL: no shutdown checkpoint, clients cut).
    pub fn kill(&mut self) {
        // Stopped backends would never notice their postmaster died.
        if !self.frozen.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&self.frozen)
                .status();
            self.frozen.clear();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Promotes this standby to a primary that takes writes.
    pub async fn promote(&self) {
        self.sql("SELECT pg_promote(true, 30)");
        self.until(
            "SELECT pg_is_in_recovery()",
            "f",
            "the standby was promoted",
        )
        .await;
    }

    /// The CA that signs the servers' certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.cluster.dir.join("ca.pem")
    }

    /// The password of [`ROLE`], in a file of its own.
    pub fn password_file(&self) -> PathBuf {
        self.cluster.dir.join("password")
    }

    /// The client certificate of [`CERTIFICATE_ROLE`], signed by the CA, and its key.
    pub fn client_cert_file(&self) -> PathBuf {
        self.cluster.dir.join("client.pem")
    }

    pub fn client_key_file(&self) -> PathBuf {
        self.cluster.dir.join("client-key.pem")
    }

    /// Stops the server's processes without ending them (SIGSTOP): its connections stay
    /// open and answer nothing, as a primary cut off by the network would.
    pub fn freeze(&mut self) {
        let Some(child) = &self.child else { return };
        let pid = child.id().to_string();
        let children = Command::new("pgrep")
            .args(["-P", &pid])
            .output()
            .expect("pgrep runs");
        let mut pids: Vec<String> = String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        pids.push(pid);
        let stopped = Command::new("kill").arg("-STOP").args(&pids).status();
        assert!(
            stopped.is_ok_and(|status| status.success()),
            "SIGSTOP {pids:?}"
        );
        self.frozen = pids;
    }

    /// Also accepts clients without TLS (`host` after the `hostssl` rules).
    pub fn allow_plaintext(&self) {
        let hba = self.data.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        rules.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
        std::fs::write(&hba, rules).expect("pg_hba.conf");
        self.sql("SELECT pg_reload_conf()");
    }

    /// Runs `sql` in the database `pasarela` as the superuser; its output, trimmed.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|error| panic!("psql {sql:?}: {error}"))
    }

    /// Runs `sql` as [`TestPostgres::sql`] does; what the server refused it with, if it did.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let output = Command::new(binary("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .arg("-h")
            .arg(&self.socket)
            .args(["-p", &self.port.to_string(), "-d", ROLE, "-c", sql])
            .output()
            .expect("psql runs");
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
            false => Err(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
        }
    }

    async fn init() -> Self {
        let cluster = Arc::new(Cluster {
            dir: own_dir("cluster"),
        });
        issue_certificates(&cluster.dir);
        give_to_postgres(&cluster.dir);
        let server = Self::on(free_port(), cluster);
        as_postgres(binary("initdb"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&server.data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb runs")
            .success()
            .then_some(())
            .expect("initdb succeeds");
        std::fs::write(
            server.data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all postgres 127.0.0.1/32 trust\n\
             hostssl replication postgres 127.0.0.1/32 trust\n\
             hostssl all pasarela_cert 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostssl all all ::1/128 scram-sha-256\n",
        )
        .expect("pg_hba.conf");
        let mut server = server;
        server.resume().await;
        server
    }

    /// A server of `cluster` on `port`, its directories made, not started.
    fn on(port: u16, cluster: Arc<Cluster>) -> Self {
        let root = own_dir(&port.to_string());
        let socket = root.join("socket");
        std::fs::create_dir_all(&socket).expect("postgres dirs");
        give_to_postgres(&root);
        Self {
            child: None,
            frozen: Vec::new(),
            port,
            data: root.join("data"),
            socket,
            root,
            cluster,
        }
    }

    /// A standby of this primary on `port`, streaming from it as [`STANDBY_NAME`].
    async fn standby_on(&self, port: u16) -> Self {
        let mut standby = Self::on(port, Arc::clone(&self.cluster));
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres sslmode=require application_name={STANDBY_NAME}",
            self.port
        );
        let copied = as_postgres(binary("pg_basebackup"))
            .args([
                "-X",
                "stream",
                "--checkpoint=fast",
                "-R",
                "-d",
                &conninfo,
                "-D",
            ])
            .arg(&standby.data)
            .status()
            .expect("pg_basebackup runs");
        assert!(copied.success(), "pg_basebackup failed");
        standby.resume().await;
        standby
    }

    /// Starts the server (again) on its port and data directory, and waits until it
    /// answers.
    pub async fn resume(&mut self) {
        let setting = |name: &str, value: &Path| format!("{name}={}", value.display());
        let child = as_postgres(binary("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-c", &format!("port={}", self.port)])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &setting("unix_socket_directories", &self.socket)])
            .args(["-c", "ssl=on"])
            .args([
                "-c",
                &setting("ssl_cert_file", &self.cluster.dir.join("server.pem")),
            ])
            .args([
                "-c",
                &setting("ssl_key_file", &self.cluster.dir.join("server-key.pem")),
            ])
            .args([
                "-c",
                &setting("ssl_ca_file", &self.cluster.dir.join("ca.pem")),
            ])
            .args(["-c", "wal_level=replica", "-c", "max_wal_senders=5"])
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=200"])
            .args(["-c", "logging_collector=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("postgres could not start ({e}): run scripts/install-test-tools.sh")
            });
        self.child = Some(child);
        for _ in 0..400 {
            let ready = Command::new(binary("pg_isready"))
                .arg("-h")
                .arg(&self.socket)
                .args(["-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("postgres did not start on port {}", self.port);
    }

    async fn create_role(&self) {
        let password = format!("pw-{:x}", unique());
        std::fs::write(self.password_file(), &password).expect("password file");
        let output = Command::new(binary("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .arg("-h")
            .arg(&self.socket)
            .args(["-p", &self.port.to_string()])
            .args([
                "-c",
                &format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'"),
                "-c",
                &format!("CREATE DATABASE {ROLE} OWNER {ROLE}"),
                "-c",
                &format!("CREATE ROLE {CERTIFICATE_ROLE} LOGIN"),
                "-c",
                &format!("GRANT CREATE, CONNECT ON DATABASE {ROLE} TO {CERTIFICATE_ROLE}"),
            ])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "creating the role: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A CA, a server certificate for `localhost` and `127.0.0.1`, and a client certificate
/// for [`CERTIFICATE_ROLE`], as PEM files.
fn issue_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client
        .distinguished_name
        .push(DnType::CommonName, CERTIFICATE_ROLE);
    let client = client
        .signed_by(&client_key, &issuer)
        .expect("client certificate");
    std::fs::write(dir.join("client.pem"), client.pem()).expect("client.pem");
    std::fs::write(dir.join("client-key.pem"), client_key.serialize_pem()).expect("client key");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("ca.pem");
    std::fs::write(dir.join("server.pem"), server.pem()).expect("server.pem");
    let key = dir.join("server-key.pem");
    std::fs::write(&key, server_key.serialize_pem()).expect("server-key.pem");
    set_mode(&key, 0o600);
}

/// A new directory of this test process's own, named after `what`.
fn own_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("pasarela-postgres-{}", std::process::id()))
        .join(format!("{what}-{:x}", unique()));
    std::fs::create_dir_all(&dir).expect("postgres dir");
    dir
}

/// Whether this process runs as root, which PostgreSQL refuses to run as.
static ROOT: LazyLock<bool> = LazyLock::new(|| {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
});

/// PostgreSQL's program `name`.
fn binary(name: &str) -> PathBuf {
    crate::tools::postgres_bin().join(name)
}

/// `program`, run as the `postgres` user when this process is root.
fn as_postgres(program: PathBuf) -> Command {
    if !*ROOT {
        return Command::new(program);
    }
    let mut command = Command::new("setpriv");
    // libpq looks for a client certificate under $HOME: root's is not the user's to read.
    command
        .env("HOME", "/var/lib/postgresql")
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg(program);
    command
}

/// Hands `dir` and what it holds to the `postgres` user when this process is root.
fn give_to_postgres(dir: &Path) {
    if *ROOT {
        let owned = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .expect("chown runs");
        assert!(owned.success(), "chown {}", dir.display());
        // The password file stays readable by the tests.
        set_mode(dir, 0o755);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A number unlikely to repeat within one test process.
fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}
