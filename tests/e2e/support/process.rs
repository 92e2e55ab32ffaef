//! `pasarela dev` as a real process on a free port, and the dev token its CLI mints.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::{pasarela_bin, tool};

/// A real `pasarela dev` process on a free port, killed on drop.
pub struct DevProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub banner: BTreeMap<String, String>,
    _dir: tempfile::TempDir,
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl DevProcess {
    pub fn start() -> DevProcess {
        DevProcess::start_with_env(&[])
    }

    /// Like [`DevProcess::start`], with extra environment variables (`PASARELA_*` keys).
    pub fn start_with_env(env: &[(&str, &str)]) -> DevProcess {
        DevProcess::start_in(tempfile::tempdir().expect("temp dir"), env)
    }

    /// Like [`DevProcess::start_with_env`], its files (the sandbox's PKI under `pki/`) in
    /// `dir`, so that `env` may name them.
    pub fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> DevProcess {
        let mut child = Command::new(pasarela_bin())
            .args(["dev", "--listen", "127.0.0.1:0"])
            .env("PASARELA_DEV_DIR", dir.path())
            .env("PASARELA_ADMIN_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("pasarela dev starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut banner = BTreeMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("banner line");
            if let Some((key, value)) = line.split_once(": ") {
                banner.insert(key.to_owned(), value.to_owned());
            }
            if line.starts_with("try:") {
                break;
            }
        }
        assert!(
            banner.keys().any(|k| k == "pasarela dev"),
            "pasarela dev printed no banner: {banner:?}"
        );
        // The port is the kernel's choice, read back from the banner: no other process can
        // take it between a probe and the bind.
        let addr = banner["pasarela dev"]
            .strip_prefix("gRPC on ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no gRPC address in the banner: {banner:?}"));
        DevProcess {
            child,
            addr,
            banner,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process' admin port exposes on `/metrics`.
    pub async fn metrics(&self) -> String {
        super::scrape(&self.banner["metrics"]).await
    }

    pub fn grpcurl(&self, args: &[&str]) -> String {
        let output = Command::new(tool("grpcurl"))
            .arg("-plaintext")
            .args(args)
            .output()
            .expect("grpcurl runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "grpcurl {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// `pasarela token` prints the token alone on its last line.
pub fn mint_with_cli(scope: &str) -> String {
    let output = Command::new(pasarela_bin())
        .args(["token", "--scope", scope])
        .output()
        .expect("pasarela token runs");
    assert!(output.status.success(), "pasarela token failed");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .last()
        .expect("a token line")
        .to_owned()
}

/// A child process (`pasarela probe`, a rendered pod), killed when dropped.
pub struct KilledOnDrop(pub std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The metrics text at `url` once `wanted` is in it; a failure with what there was after
/// 30 s.
pub async fn metrics_once(url: &str, wanted: &str) -> String {
    let mut last = String::new();
    for _ in 0..300 {
        if let Ok(answer) = reqwest::get(url).await
            && let Ok(text) = answer.text().await
        {
            if text.contains(wanted) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{wanted} never appeared at {url}:\n{last}");
}
