//! JSON log lines written straight into the line buffer: the shape of tracing-subscriber's
//! JSON format (`timestamp`, `level`, `fields`, `target`, `span`), without its serde
//! round trips (the generic formatter re-parses each span's fields for every line and
//! validates every chunk it writes as UTF-8, a tenth of a refused call's cost).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object per event, with the current span's fields and name under `span`.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Records of the `log` crate (rustls, reqwest) keep their own target and level.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
        let mut fields = Members::new(&mut writer);
        event.record(&mut fields);
        fields.result?;
        writer.write_str("},\"target\":")?;
        write_str(&mut writer, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            if let Some(recorded) = extensions.get::<FormattedFields<N>>()
                && !recorded.fields.is_empty()
            {
                writer.write_str(&recorded.fields)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            write_str(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// A span's fields kept as the members of a JSON object (`"a":1,"b":"x"`), ready to be
/// copied into each line written inside the span.
pub struct JsonMembers;

impl<'w> FormatFields<'w> for JsonMembers {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut members = Members::new(&mut writer);
        fields.record(&mut members);
        members.result
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let before = current.fields.len();
        let mut members = Members::new(&mut current.fields);
        members.first = before == 0;
        members.names = Some(Vec::new());
        fields.record(&mut members);
        let (result, names) = (members.result, members.names.unwrap_or_default());
        if result.is_err() {
            // A half-written member would break every later line of the span.
            current.fields.truncate(before);
            return result;
        }
        let recorded_again = names
            .iter()
            .any(|name| has_member(&current.fields[..before], name));
        if recorded_again {
            replace_earlier_values(&mut current.fields);
        }
        Ok(())
    }
}

/// Whether `members` (`"a":1,"b":"x"`) has a member named `name`. A quote inside a string
/// value is always escaped, so `"name":` at the start or after a comma is a member's key.
fn has_member(members: &str, name: &str) -> bool {
    let key = format!("\"{name}\":");
    members.starts_with(&key) || members.contains(&format!(",{key}"))
}

/// Keeps the last value of each member, as tracing-subscriber's format does when a span's
/// field is recorded again (rare: read back once and written anew).
fn replace_earlier_values(members: &mut String) {
    let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&format!(
        "{{{members}}}"
    )) else {
        return;
    };
    let object = serde_json::Value::Object(map).to_string();
    members.clear();
    members.push_str(&object[1..object.len() - 1]);
}

/// Writes each recorded field as a JSON member, comma-separated.
struct Members<'a, W: fmt::Write> {
    writer: &'a mut W,
    first: bool,
    result: fmt::Result,
    /// The names written, when the caller needs them.
    names: Option<Vec<&'static str>>,
}

impl<'a, W: fmt::Write> Members<'a, W> {
    fn new(writer: &'a mut W) -> Self {
        Self {
            writer,
            first: true,
            result: Ok(()),
            names: None,
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !self.first {
                self.writer.write_char(',')?;
            }
            self.first = false;
            if let Some(names) = &mut self.names {
                names.push(field.name());
            }
            write_str(self.writer, field.name())?;
            self.writer.write_char(':')?;
            value(self.writer)
        })();
    }
}

impl<W: fmt::Write> Visit for Members<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too. Debug keeps a
        // fraction (`1.0`), so a reader does not take the field for an integer.
        self.member(field, |w| {
            if value.is_finite() {
                write!(w, "{value:?}")
            } else {
                w.write_str("null")
            }
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| write_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `value` as a JSON string.
fn write_str(writer: &mut impl fmt::Write, value: &str) -> fmt::Result {
    writer.write_char('"')?;
    Escaped(writer).write_str(value)?;
    writer.write_char('"')
}

/// A writer that escapes what it is given for the inside of a JSON string.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = at + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, text).unwrap();
        out
    }

    #[test]
    fn strings_are_json_strings() {
        for text in [
            "plain",
            "a \"quote\"",
            "back\\slash",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}",
            "ñandú ✓",
            "",
        ] {
            let written = escaped(text);
            assert_eq!(
                serde_json::from_str::<String>(&written).unwrap(),
                text,
                "{written}"
            );
        }
    }

    /// The lines a subscriber with these formatters writes while `emit` runs.
    fn raw_lines_of(emit: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt as _;

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let written = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || written.clone())
            .fmt_fields(JsonMembers)
            .event_format(JsonLines);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    /// Each of those lines, parsed.
    fn lines_of(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        raw_lines_of(emit)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    #[test]
    fn a_line_has_the_fields_target_and_current_span() {
        let lines = lines_of(|| {
            let span = tracing::info_span!(
                "rpc",
                method = "/a.B/C",
                attempt = 2_u64,
                tx = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("tx", "T\\1");
            tracing::info!(target: "audit", code = %"OK", latency_ms = 1.5, ok = true, note = ?"q\"x", "call");
            tracing::warn!(n = -3_i64, nan = f64::NAN, "line\nbreak");
        });
        assert_eq!(lines.len(), 2);
        let call = &lines[0];
        assert_eq!(call["level"], "INFO");
        assert_eq!(call["target"], "audit");
        assert_eq!(call["fields"]["message"], "call");
        assert_eq!(call["fields"]["code"], "OK");
        assert_eq!(call["fields"]["latency_ms"], 1.5);
        assert_eq!(call["fields"]["ok"], true);
        assert_eq!(call["fields"]["note"], "\"q\\\"x\"");
        assert_eq!(call["span"]["name"], "rpc");
        assert_eq!(call["span"]["method"], "/a.B/C");
        assert_eq!(call["span"]["attempt"], 2);
        assert_eq!(call["span"]["tx"], "T\\1");
        let timestamp = call["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["fields"]["message"], "line\nbreak");
        assert_eq!(lines[1]["fields"]["n"], -3);
        assert!(lines[1]["fields"]["nan"].is_null());
    }

    #[test]
    fn a_span_without_fields_has_its_name_and_a_line_outside_spans_has_none() {
        let lines = lines_of(|| {
            let _empty = tracing::info_span!("quiet").entered();
            tracing::info!("inside");
        });
        assert_eq!(lines[0]["span"], serde_json::json!({ "name": "quiet" }));
        let lines = lines_of(|| tracing::info!("alone"));
        assert!(lines[0].get("span").is_none());
    }

    #[test]
    fn fields_recorded_later_keep_one_value_each() {
        let raw = raw_lines_of(|| {
            let span = tracing::info_span!(
                "call",
                tx = tracing::field::Empty,
                n = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("tx", "first");
            span.record("n", 1_u64);
            span.record("tx", "second");
            tracing::info!(took = 1.0, "done");
        });
        let line: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(line["span"]["tx"], "second");
        assert_eq!(line["span"]["n"], 1);
        assert_eq!(raw.matches("\"tx\":").count(), 1, "{raw}");
        assert!(raw.contains("\"took\":1.0"), "{raw}");
    }

    #[test]
    fn log_records_keep_their_target_and_level() {
        let lines = lines_of(|| {
            let record = log::Record::builder()
                .target("rustls::client")
                .level(log::Level::Warn)
                .args(format_args!("handshake"))
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
        assert_eq!(lines[0]["target"], "rustls::client");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["fields"]["message"], "handshake");
    }
}
