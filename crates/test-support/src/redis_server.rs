//! A `redis-server` of a test's own on a free loopback port, killed on drop: the one harness
//! of every test target with a real Redis. It can be stopped and started again on the same
//! port, with its append-only file when asked for one.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestRedis {
    child: Option<Child>,
    port: u16,
    /// Where the append-only file lives, for a Redis that keeps its data across restarts.
    dir: Option<PathBuf>,
    pub url: String,
}

impl TestRedis {
    /// Fails the test, saying how to install it, when `redis-server` is missing.
    pub async fn start() -> Self {
        Self::launch(None).await
    }

    /// A Redis that writes every change to its append-only file before answering
    /// (`appendfsync always`), so that a restart keeps everything it acknowledged.
    pub async fn start_durable() -> Self {
        let dir = std::env::temp_dir().join(format!("pasarela-redis-{}", std::process::id()));
        let dir = dir.join(format!("{:x}", rand_suffix()));
        std::fs::create_dir_all(&dir).expect("redis data dir");
        Self::launch(Some(dir)).await
    }

    async fn launch(dir: Option<PathBuf>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        redis.resume().await;
        redis
    }

    /// Runs `redis-cli` against this server, as an operator (or an intruder) would; its
    /// standard output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("redis-cli could not run ({e}): run scripts/install-test-tools.sh")
            });
        assert!(output.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
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
        command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"]);
        match &self.dir {
            Some(dir) => command.arg("--dir").arg(dir).args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]),
            None => command.args(["--save", "", "--appendonly", "no"]),
        };
        let child = command.stdout(Stdio::null()).spawn().unwrap_or_else(|e| {
            panic!(
                "redis-server could not start ({e}): run scripts/install-test-tools.sh to install it"
            )
        });
        // Owned at once, so that every path below ends the child.
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on port {}", self.port);
    }
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
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
