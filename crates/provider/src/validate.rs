//! Collects every bad field of a request before any provider call, so that the caller
//! gets one `BadRequest` listing them all instead of one error per attempt.

use regex::Regex;
use tonic::Status;

use crate::errors::bad_request;

/// Field violations found so far; `finish` turns them into `INVALID_ARGUMENT`.
#[derive(Debug, Default)]
pub struct Violations(Vec<(String, String)>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    /// Checks a required text field; returns whether it was present.
    pub fn required(&mut self, field: &str, value: &str) -> bool {
        if value.is_empty() {
            self.add(field, "is required");
            return false;
        }
        true
    }

    /// Checks the length in characters (not bytes) lies within `min..=max`.
    pub fn length(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min || len > max {
            let rule = if min == max {
                format!("must be exactly {min} characters")
            } else {
                format!("must be {min} to {max} characters")
            };
            self.add(field, format!("{rule}, got {len}"));
        }
    }

    /// Checks the value matches `pattern`; `expected` says in words what that means.
    pub fn pattern(&mut self, field: &str, value: &str, pattern: &Regex, expected: &str) {
        if !pattern.is_match(value) {
            self.add(field, format!("must be {expected}"));
        }
    }

    /// Rejects control characters, which no provider field accepts.
    pub fn printable(&mut self, field: &str, value: &str) {
        if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was found, else `INVALID_ARGUMENT` with every violation.
    pub fn finish(self) -> Result<(), Status> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(bad_request(self.0))
        }
    }

    /// Every violation at once; else `parsed`, the value the checks built. A check that
    /// leaves a part out adds its violation, so a missing value with none is pasarela's
    /// own fault, reported as such and never sent on.
    pub fn finish_with<T>(self, parsed: Option<T>) -> Result<T, Status> {
        self.finish()?;
        parsed.ok_or_else(|| Status::internal("a checked request lost a part it was checked for"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_all_violations() {
        let digits = Regex::new("^[0-9]+$").unwrap();
        let mut v = Violations::new();
        v.required("name", "");
        v.length("clave", "abc", 10, 10);
        v.pattern("number", "12a", &digits, "digits only");
        v.printable("note", "a\u{7}b");
        let status = v.finish().unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("name, clave, number, note"));
    }

    #[test]
    fn counts_characters_not_bytes() {
        let mut v = Violations::new();
        v.length("name", "ñandú", 5, 5);
        assert!(v.is_empty());
    }
}
