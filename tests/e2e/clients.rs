//! Callers in other languages: the Python (`grpcio`) and Node (`@grpc/grpc-js`) example
//! clients under `examples/clients/` run against a real `pasarela dev` process. Each script
//! checks codes, reasons, details and values itself and exits non-zero at the first
//! surprise; these tests want its exit 0 and its closing line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::process::DevProcess;
use crate::support::tools;
use crate::support::{pasarela_bin, tool};

/// The repository's root (the root package's manifest lives there).
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sandbox's admin URL, from the banner line `sandbox: bcs … admin URL`.
fn sandbox_admin(dev: &DevProcess) -> String {
    let line = &dev.banner["sandbox"];
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "admin")
        .expect("admin URL in the banner");
    words[at + 1].to_owned()
}

/// Runs `script` with `interpreter` against `dev`, `pasarela` on its PATH for tokens.
fn run_client(dev: &DevProcess, interpreter: &Path, script: &Path, done: &str) {
    let bin_dir = pasarela_bin().parent().expect("bin dir").to_owned();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir];
    dirs.extend(std::env::split_paths(&path));
    let output = Command::new(interpreter)
        .arg(script)
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .env("PASARELA_ADDR", dev.addr.to_string())
        .env("SANDBOX_ADMIN", sandbox_admin(dev))
        .output()
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(done),
        "{} failed:\n{stdout}\n{stderr}",
        script.display()
    );
    assert!(!stdout.contains("skipped"), "every check ran:\n{stdout}");
}

#[test]
fn the_python_client_calls_every_service() {
    let generated = repo().join("examples/clients/python/generated/pasarela");
    if tools::lacking(&["python3"])
        || tools::not_installed("the Python client's generated stubs", generated.is_dir())
    {
        return;
    }
    let dev = DevProcess::start();
    run_client(
        &dev,
        &tool("python3"),
        &repo().join("examples/clients/python/client.py"),
        "python client: all checks passed",
    );
}

#[test]
fn the_node_client_calls_every_service() {
    let packages = repo().join("examples/clients/node/node_modules/@grpc/grpc-js");
    if tools::lacking(&["node"])
        || tools::not_installed("the Node client's packages", packages.is_dir())
    {
        return;
    }
    let dev = DevProcess::start();
    run_client(
        &dev,
        &tool("node"),
        &repo().join("examples/clients/node/client.js"),
        "node client: all checks passed",
    );
}
