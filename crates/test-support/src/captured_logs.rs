//! Every log line of a test process, as JSON, kept in memory: tests read what was logged
//! and prove that no secret was. Each test harness captures with its own filter, and the
//! end-to-end harness with the formatter `pasarela serve` writes with.

use std::io::Write;
use std::sync::{Mutex, Once};

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static CAPTURE: Once = Once::new();

/// Appends what it is given to the captured lines.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line that `filter` admits into [`LOGS`], in tracing-subscriber's JSON
/// format; the process's first capture wins.
pub fn capture(filter: &str) {
    capture_with(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// Runs `install` (which sets a global subscriber writing to [`LogWriter`]) unless the
/// process already captures.
pub fn capture_with(install: impl FnOnce()) {
    CAPTURE.call_once(install);
}

/// Everything logged in this process so far.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}
