//! A `redis-server` of a test's own on a free loopback port, killed on drop: the one harness
//! of every test target with a real Redis. It can be stopped and started again on the same
//! port, with its append-only file when asked for one, with TLS, ACL users or any other
//! setting, as a replica; and `redis-sentinel`s watching one.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestRedis {
    child: Option<Child>,
    port: u16,
    storage: Storage,
    /// Settings besides the port and persistence, kept for a restart.
    args: Vec<String>,
    pub url: String,
}

/// Where a test Redis keeps its files, and whether they outlive a restart.
enum Storage {
    /// Started from a configuration file of its own: its persistence settings stand.
    OwnConfig,
    /// The append-only file, written before each answer and kept across restarts.
    Durable(PathBuf),
    /// No persistence; a directory of its own for what a replica receives, never the
    /// cwd (the checkout the tests run in).
    Scratch(PathBuf),
}

/// The certificate files of a TLS-only Redis.
pub struct TlsFiles<'a> {
    pub cert: &'a std::path::Path,
    pub key: &'a std::path::Path,
    pub ca: &'a std::path::Path,
}

impl TestRedis {
    /// Fails the test, saying how to install it, when `redis-server` is missing.
    pub async fn start() -> Self {
        Self::launch(false, Vec::new(), false).await
    }

    /// A server with `args` besides its port (`--maxmemory-policy allkeys-lru`, `--user`
    /// rules, `--replicaof`).
    pub async fn start_with(args: &[&str]) -> Self {
        Self::launch(false, owned(args), false).await
    }

    /// A server that speaks TLS only (`rediss://localhost:<port>/`), with `args` besides.
    pub async fn start_tls(tls: &TlsFiles<'_>, args: &[&str]) -> Self {
        let mut all = owned(&[
            "--tls-cert-file",
            &tls.cert.display().to_string(),
            "--tls-key-file",
            &tls.key.display().to_string(),
            "--tls-ca-cert-file",
            &tls.ca.display().to_string(),
            "--tls-auth-clients",
            "optional",
        ]);
        all.extend(owned(args));
        Self::launch(false, all, true).await
    }

    /// A replica of `primary`, with `args` besides.
    pub async fn start_replica(primary: &TestRedis, args: &[&str]) -> Self {
        let port = primary.port.to_string();
        let mut all = owned(&["--replicaof", "127.0.0.1", &port]);
        all.extend(owned(args));
        Self::launch(false, all, false).await
    }

    /// A server run from its own configuration `file` (a deploy's `redis.conf`), which
    /// listens on `port`; clients reach it at `url`.
    pub async fn start_config(file: &std::path::Path, port: u16, url: String) -> Self {
        let mut redis = Self {
            child: None,
            port,
            storage: Storage::OwnConfig,
            args: vec![file.display().to_string()],
            url,
        };
        redis.resume().await;
        redis
    }

    /// A free loopback port, for a configuration file to name.
    pub fn free_port() -> u16 {
        free_port()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A Redis that writes every change to its append-only file before answering
    /// (`appendfsync always`), so that a restart keeps everything it acknowledged.
    pub async fn start_durable() -> Self {
        Self::launch(true, Vec::new(), false).await
    }

    async fn launch(durable: bool, mut args: Vec<String>, tls: bool) -> Self {
        let port = free_port();
        let storage = match durable {
            true => Storage::Durable(own_dir("redis", port)),
            false => Storage::Scratch(own_dir("redis-scratch", port)),
        };
        let url = if tls {
            args.splice(
                0..0,
                owned(&["--port", "0", "--tls-port", &port.to_string()]),
            );
            format!("rediss://localhost:{port}/")
        } else {
            args.splice(0..0, owned(&["--port", &port.to_string()]));
            format!("redis://127.0.0.1:{port}/")
        };
        let mut redis = Self {
            child: None,
            port,
            storage,
            args,
            url,
        };
        redis.resume().await;
        redis
    }

    /// Runs `redis-cli` against this server, as an operator (or an intruder) would; its
    /// standard output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }

    /// Kills the server at once (SIGKILL: no last save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (and data directory).
    pub async fn resume(&mut self) {
        let mut command = Command::new("redis-server");
        command.args(&self.args).args(["--bind", "127.0.0.1"]);
        match &self.storage {
            Storage::OwnConfig => &mut command,
            Storage::Durable(dir) => command.arg("--dir").arg(dir).args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]),
            Storage::Scratch(dir) => {
                command
                    .arg("--dir")
                    .arg(dir)
                    .args(["--save", "", "--appendonly", "no"])
            }
        };
        let child = command.stdout(Stdio::null()).spawn().unwrap_or_else(|e| {
            panic!(
                "redis-server could not start ({e}): run scripts/install-test-tools.sh to install it"
            )
        });
        // Owned at once, so that every path below ends the child.
        self.child = Some(child);
        listening(self.port, "redis-server").await;
    }
}

/// A new directory of its own for a `kind` of server on `port` of this test process (a
/// random suffix: a port used again gets no earlier server's files).
fn own_dir(kind: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("pasarela-{kind}-{}", std::process::id()))
        .join(format!("{port}-{:x}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{kind} dir {}: {e}", dir.display()));
    dir
}

/// `redis-cli -p <port> --raw <args>`: its standard output, trimmed.
fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--raw"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("redis-cli could not run ({e}): run scripts/install-test-tools.sh")
        });
    assert!(output.status.success(), "redis-cli {args:?} failed");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

/// Waits until something accepts connections on `port`.
async fn listening(port: u16, what: &str) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on port {port}");
}

/// A number unlikely to repeat within one test process.
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
        if let Storage::Durable(dir) | Storage::Scratch(dir) = &self.storage {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
