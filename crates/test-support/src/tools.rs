//! The programs some tests need besides the Rust toolchain (Redis, PostgreSQL, kubectl,
//! promtool, grpcurl, buf, Python, Node): a test that needs one this machine lacks is
//! skipped, saying so, so that a plain `cargo test` runs the rest green; `./scripts/test`
//! installs them all and sets [`SWITCH`], under which a missing one fails the test.

use std::path::PathBuf;
use std::sync::LazyLock;

/// The environment variable that makes every tool required: `./scripts/test` sets it to
/// `required`, so that CI never passes by skipping.
pub const SWITCH: &str = "PASARELA_TEST_TOOLS";

/// What installs every tool.
pub const INSTALLER: &str = "scripts/install-test-tools.sh";

/// The name under which [`lacking`] and [`path`] know PostgreSQL's programs, which Debian
/// keeps off the PATH.
pub const POSTGRES: &str = "postgres";

/// Whether this test must be skipped because the machine lacks one of `names`: it says
/// which on stderr (shown by `cargo test -- --nocapture`, and counted nowhere else). Under
/// [`SWITCH`]` = required` a missing tool fails the test instead.
///
/// ```ignore
/// if tools::lacking(&["redis-server"]) {
///     return;
/// }
/// ```
pub fn lacking(names: &[&str]) -> bool {
    lacking_when(required(), names)
}

/// Like [`lacking`] for something else the installer puts in place (the example clients'
/// generated stubs and packages): whether to skip this test because `what` is absent.
pub fn not_installed(what: &str, present: bool) -> bool {
    skip_when(required(), what, present)
}

fn lacking_when(required: bool, names: &[&str]) -> bool {
    match names.iter().find(|name| find(name).is_none()) {
        Some(missing) => skip_when(required, &format!("`{missing}`"), false),
        None => false,
    }
}

fn skip_when(required: bool, what: &str, present: bool) -> bool {
    if present {
        return false;
    }
    assert!(
        !required,
        "not installed: {what}; run {INSTALLER} ({SWITCH}=required needs every tool)"
    );
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    eprintln!("skipped {test}: not installed: {what} (run {INSTALLER})");
    true
}

/// The path of the program `name`; a failure naming the installer when it is absent (a
/// test calls [`lacking`] first).
pub fn path(name: &str) -> PathBuf {
    find(name).unwrap_or_else(|| panic!("`{name}` is not installed: run {INSTALLER}"))
}

/// The directory of PostgreSQL's programs (`initdb`, `postgres`, `pg_ctl`, `psql`).
pub fn postgres_bin() -> PathBuf {
    POSTGRES_BIN
        .clone()
        .unwrap_or_else(|| panic!("PostgreSQL is not installed: run {INSTALLER}"))
}

/// Whether [`SWITCH`] requires every tool: `required`, or unset; any other value is a
/// mistake that would let tests pass by skipping, and fails.
fn required() -> bool {
    match std::env::var(SWITCH) {
        Ok(value) if value == "required" => true,
        Ok(value) => panic!("{SWITCH}={value:?}: the only value is `required`"),
        Err(_) => false,
    }
}

fn find(name: &str) -> Option<PathBuf> {
    if name == POSTGRES {
        return POSTGRES_BIN.clone();
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// PostgreSQL's programs: `PASARELA_POSTGRES_BIN` where they are installed elsewhere, or
/// the newest of Debian's `/usr/lib/postgresql/<version>/bin`.
static POSTGRES_BIN: LazyLock<Option<PathBuf>> = LazyLock::new(|| {
    if let Some(dir) = std::env::var_os("PASARELA_POSTGRES_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_tool_runs_the_test_and_an_absent_one_skips_it_unless_required() {
        for required in [false, true] {
            assert!(
                !lacking_when(required, &["sh"]),
                "sh is on every Debian machine"
            );
        }
        assert!(lacking_when(false, &["sh", "no-such-tool-pasarela"]));
        let missing = std::panic::catch_unwind(|| lacking_when(true, &["no-such-tool-pasarela"]));
        assert!(
            missing.is_err(),
            "a required tool that is absent fails the test"
        );
    }
}
