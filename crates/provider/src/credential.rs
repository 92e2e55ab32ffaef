//! Credentials that rotate without a restart: a value written in the configuration, or a
//! file (a mounted Secret) looked at again at most once a second and taken as soon as its
//! content changes, so that a rotated Secret reaches every call without a rollout. Keys
//! that seal or sign (HMAC keys) are read as a [`Keyring`]: the first line signs, every
//! line verifies, and a key that leaves the file keeps verifying for an overlap window.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// How often a call looks whether a credential's file changed.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// A credential as the configuration gives it: its value, or `{ file = "..." }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Setting {
    Value(String),
    File { file: PathBuf },
}

/// A secret value, shared by every clone: fixed, or read again from its file when the
/// file changes. A file that cannot be read or is empty leaves the value in use (and is
/// counted in `pasarela_credential_reload_failures_total`).
#[derive(Clone, Deserialize)]
#[serde(try_from = "Setting")]
pub struct Credential {
    inner: Arc<Inner>,
}

struct Inner {
    file: Option<PathBuf>,
    state: Mutex<Loaded>,
}

struct Loaded {
    value: Arc<SecretString>,
    /// Counts the values taken; a [`Keyring`] rebuilds its keys when it moves.
    generation: u64,
    looked_at: Instant,
}

impl TryFrom<Setting> for Credential {
    type Error = String;

    fn try_from(setting: Setting) -> Result<Self, Self::Error> {
        match setting {
            Setting::Value(value) => Ok(Credential::fixed(value)),
            Setting::File { file } => Credential::from_file(file).map_err(|e| format!("{e:#}")),
        }
    }
}

impl From<&str> for Credential {
    fn from(value: &str) -> Self {
        Credential::fixed(value.to_owned())
    }
}

impl From<String> for Credential {
    fn from(value: String) -> Self {
        Credential::fixed(value)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.file {
            Some(file) => write!(f, "Credential(file {})", file.display()),
            None => f.write_str("Credential([REDACTED])"),
        }
    }
}

impl Credential {
    /// A value that never changes.
    pub fn fixed(value: String) -> Self {
        Self::with(None, value)
    }

    /// The content of `file` (one trailing newline dropped), read again when it changes.
    pub fn from_file(file: PathBuf) -> anyhow::Result<Self> {
        let value = read(&file)?;
        loaded(&file);
        Ok(Self::with(Some(file), value))
    }

    fn with(file: Option<PathBuf>, value: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                file,
                state: Mutex::new(Loaded {
                    value: Arc::new(SecretString::from(value)),
                    generation: 0,
                    looked_at: Instant::now(),
                }),
            }),
        }
    }

    /// The value to use now.
    pub fn current(&self) -> Arc<SecretString> {
        self.current_with_generation().1
    }

    /// Whether the value is empty (a configuration check; the file may change later).
    pub fn is_empty(&self) -> bool {
        self.current().expose_secret().is_empty()
    }

    /// The file it is read from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.inner.file.as_deref()
    }

    /// Makes the next call look at the file at once (the provider refused the value).
    pub fn look_again(&self) {
        let mut state = self.lock();
        state.looked_at = state
            .looked_at
            .checked_sub(LOOK_EVERY)
            .unwrap_or(state.looked_at);
    }

    fn current_with_generation(&self) -> (u64, Arc<SecretString>) {
        let Some(file) = &self.inner.file else {
            let state = self.lock();
            return (state.generation, Arc::clone(&state.value));
        };
        let mut state = self.lock();
        if state.looked_at.elapsed() >= LOOK_EVERY {
            state.looked_at = Instant::now();
            match read(file) {
                Ok(value) if value != state.value.expose_secret() => {
                    state.value = Arc::new(SecretString::from(value));
                    state.generation = state.generation.saturating_add(1);
                    tracing::info!(file = %file.display(), "credential reloaded");
                    loaded(file);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(
                        file = %file.display(),
                        error = %format!("{error:#}"),
                        "credential file not reloaded; keeping the value in use"
                    );
                    not_loaded(file);
                }
            }
        }
        (state.generation, Arc::clone(&state.value))
    }

    fn lock(&self) -> MutexGuard<'_, Loaded> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A credential file's content without its trailing newline; an empty one is refused (a
/// Secret caught half-written).
fn read(file: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    anyhow::ensure!(!value.trim().is_empty(), "{} is empty", file.display());
    Ok(value.to_owned())
}

/// The keys of an HMAC credential, one per line: the first signs and every one verifies;
/// a key that left the file keeps verifying for `overlap`, so that what one replica sealed
/// just before the rotation still opens on another that has not seen it yet.
pub struct Keyring<T> {
    credential: Credential,
    overlap: Duration,
    min_bytes: usize,
    /// Lines never taken, at start or on a reload (a secret published with pasarela).
    refused: Vec<Vec<u8>>,
    name: String,
    derive: fn(&[u8]) -> T,
    state: Mutex<RingState<T>>,
}

struct RingState<T> {
    generation: u64,
    keys: Arc<Keys<T>>,
    /// Keys no longer in the file, and until when they verify.
    retired: Vec<(Vec<u8>, Instant)>,
    listed: Vec<Vec<u8>>,
}

/// The keys derived from a keyring's lines at one moment.
pub struct Keys<T> {
    /// The key that signs (the file's first line).
    pub signing: T,
    /// Every key that verifies, the signing one first.
    pub verifying: Vec<T>,
}

impl<T> Keyring<T> {
    /// The keyring in `credential`; `derive` turns a line into a key. Every line must be
    /// at least `min_bytes` long.
    pub fn new(
        credential: Credential,
        overlap: Duration,
        min_bytes: usize,
        derive: fn(&[u8]) -> T,
        name: &str,
    ) -> anyhow::Result<Self> {
        let listed = lines(credential.current().expose_secret());
        check_lines(&listed, min_bytes, name)?;
        let keys = Arc::new(build(&listed, &[], derive));
        Ok(Self {
            state: Mutex::new(RingState {
                generation: credential.current_with_generation().0,
                keys,
                retired: Vec::new(),
                listed,
            }),
            credential,
            overlap,
            min_bytes,
            refused: Vec::new(),
            name: name.to_owned(),
            derive,
        })
    }

    /// The same keyring, refusing `lines` now and in every reload: a file that lists one
    /// is not taken, and the keys it replaced stay.
    pub fn refusing(mut self, lines: &[&str]) -> anyhow::Result<Self> {
        self.refused = lines.iter().map(|line| line.as_bytes().to_vec()).collect();
        let listed = &self
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .listed;
        check_refused(listed, &self.refused, &self.name)?;
        Ok(self)
    }

    /// The keys to use now.
    pub fn keys(&self) -> Arc<Keys<T>> {
        let (generation, value) = self.credential.current_with_generation();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let expired = state.retired.iter().any(|(_, until)| *until <= now);
        if generation == state.generation && !expired {
            return Arc::clone(&state.keys);
        }
        if generation != state.generation {
            let listed = lines(value.expose_secret());
            let checked = check_lines(&listed, self.min_bytes, &self.name)
                .and_then(|()| check_refused(&listed, &self.refused, &self.name));
            if let Err(error) = checked {
                tracing::warn!(error = %error, "a changed keyring is not taken; keeping its keys");
            } else {
                let until = now.checked_add(self.overlap).unwrap_or(now);
                let gone: Vec<Vec<u8>> = state
                    .listed
                    .iter()
                    .filter(|key| !listed.contains(key))
                    .cloned()
                    .collect();
                state
                    .retired
                    .extend(gone.into_iter().map(|key| (key, until)));
                // A key listed again verifies as listed, not twice.
                state.retired.retain(|(key, _)| !listed.contains(key));
                state.listed = listed;
            }
            state.generation = generation;
        }
        state.retired.retain(|(_, until)| *until > now);
        let retired: Vec<Vec<u8>> = state.retired.iter().map(|(k, _)| k.clone()).collect();
        state.keys = Arc::new(build(&state.listed, &retired, self.derive));
        Arc::clone(&state.keys)
    }
}

/// The keys of a keyring's text, each once, in order.
fn lines(text: &str) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if !keys.iter().any(|key| key == line.as_bytes()) {
            keys.push(line.as_bytes().to_vec());
        }
    }
    keys
}

fn check_lines(listed: &[Vec<u8>], min_bytes: usize, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(!listed.is_empty(), "{name} holds no key");
    anyhow::ensure!(
        listed.iter().all(|key| key.len() >= min_bytes),
        "{name} must be at least {min_bytes} bytes (each line of it)"
    );
    Ok(())
}

fn check_refused(listed: &[Vec<u8>], refused: &[Vec<u8>], name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !listed.iter().any(|key| refused.contains(key)),
        "{name} lists a key that is published with pasarela: anyone could use it"
    );
    Ok(())
}

fn build<T>(listed: &[Vec<u8>], retired: &[Vec<u8>], derive: fn(&[u8]) -> T) -> Keys<T> {
    let mut verifying: Vec<T> = listed.iter().map(|key| derive(key)).collect();
    verifying.extend(retired.iter().map(|key| derive(key)));
    Keys {
        signing: derive(&listed[0]),
        verifying,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileLabels {
    file: String,
}

fn labels(file: &Path) -> FileLabels {
    FileLabels {
        file: file.display().to_string(),
    }
}

struct CredentialMetrics {
    loaded: Family<FileLabels, Gauge>,
    failures: Family<FileLabels, Counter>,
}

static METRICS: LazyLock<CredentialMetrics> = LazyLock::new(|| CredentialMetrics {
    loaded: Family::default(),
    failures: Family::default(),
});

/// Stamps `file` (a credential, a certificate, a CA) as loaded now.
pub fn loaded(file: &Path) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    METRICS.loaded.get_or_create(&labels(file)).set(now);
}

/// Counts a changed `file` that could not be loaded (the one in use was kept).
pub fn not_loaded(file: &Path) {
    METRICS.failures.get_or_create(&labels(file)).inc();
}

/// Registers when each credential file was last loaded, and the reloads that failed.
pub fn register(registry: &mut Registry) {
    registry.register(
        "pasarela_credential_loaded_timestamp_seconds",
        "When each credential file was last loaded (Unix time)",
        METRICS.loaded.clone(),
    );
    registry.register(
        "pasarela_credential_reload_failures",
        "Looks at a changed credential file that could not be loaded (the value in use was kept)",
        METRICS.failures.clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aged(credential: &Credential) {
        credential.look_again();
    }

    #[test]
    fn a_file_credential_follows_its_file_and_keeps_its_value_when_the_file_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "first\n").unwrap();
        let credential = Credential::from_file(file.clone()).unwrap();
        let copy = credential.clone();
        assert_eq!(credential.current().expose_secret(), "first");

        std::fs::write(&file, "second\n").unwrap();
        assert_eq!(
            credential.current().expose_secret(),
            "first",
            "looked at once a second"
        );
        aged(&credential);
        assert_eq!(copy.current().expose_secret(), "second", "clones share it");

        std::fs::write(&file, "").unwrap();
        aged(&credential);
        assert_eq!(credential.current().expose_secret(), "second");
        std::fs::remove_file(&file).unwrap();
        aged(&credential);
        assert_eq!(credential.current().expose_secret(), "second");
    }

    #[test]
    fn a_setting_is_a_value_or_a_file() {
        let fixed: Credential = serde_json::from_str(r#""s3cr3t""#).unwrap();
        assert_eq!(fixed.current().expose_secret(), "s3cr3t");
        assert!(format!("{fixed:?}").contains("REDACTED"));
        let missing = serde_json::from_str::<Credential>(r#"{"file": "/no/such/secret"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("/no/such/secret"), "{missing}");
    }

    #[test]
    fn a_keyring_signs_with_its_first_line_and_keeps_a_removed_key_for_the_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "old-key-old-key\n").unwrap();
        let credential = Credential::from_file(file.clone()).unwrap();
        let derive = |key: &[u8]| String::from_utf8(key.to_vec()).unwrap();
        let long = Keyring::new(
            credential.clone(),
            Duration::from_secs(3600),
            8,
            derive,
            "k",
        )
        .unwrap();
        let short = Keyring::new(credential.clone(), Duration::ZERO, 8, derive, "k").unwrap();
        assert_eq!(long.keys().signing, "old-key-old-key");

        std::fs::write(&file, "new-key-new-key\n").unwrap();
        aged(&credential);
        let keys = long.keys();
        assert_eq!(keys.signing, "new-key-new-key");
        assert_eq!(keys.verifying, ["new-key-new-key", "old-key-old-key"]);
        assert_eq!(short.keys().verifying, ["new-key-new-key"], "no overlap");

        std::fs::write(&file, "newer-key-newer\nnew-key-new-key\n").unwrap();
        aged(&credential);
        let keys = long.keys();
        assert_eq!(keys.signing, "newer-key-newer");
        assert_eq!(
            keys.verifying,
            ["newer-key-newer", "new-key-new-key", "old-key-old-key"]
        );

        // Back to the old key, listed twice: each key verifies once.
        std::fs::write(&file, "old-key-old-key\nold-key-old-key\n").unwrap();
        aged(&credential);
        assert_eq!(
            long.keys().verifying,
            ["old-key-old-key", "newer-key-newer", "new-key-new-key"]
        );
    }

    #[test]
    fn a_refused_key_is_not_taken_at_start_nor_on_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "own-key-own-key\n").unwrap();
        let credential = Credential::from_file(file.clone()).unwrap();
        let derive = |key: &[u8]| String::from_utf8(key.to_vec()).unwrap();
        let ring = Keyring::new(credential.clone(), Duration::ZERO, 8, derive, "k")
            .unwrap()
            .refusing(&["published-secret"])
            .unwrap();
        std::fs::write(&file, "published-secret\nown-key-own-key\n").unwrap();
        aged(&credential);
        assert_eq!(
            ring.keys().verifying,
            ["own-key-own-key"],
            "the reload is refused"
        );
        let published = Credential::fixed("published-secret".into());
        let refused = Keyring::new(published, Duration::ZERO, 8, derive, "k")
            .unwrap()
            .refusing(&["published-secret"]);
        assert!(refused.is_err(), "refused at start");
    }

    #[test]
    fn a_short_key_is_refused_on_every_line() {
        let credential = Credential::fixed("long-enough-key\nshort".into());
        let refused = Keyring::new(credential, Duration::ZERO, 8, |k| k.len(), "auth.key")
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("auth.key"), "{refused}");
    }
}
