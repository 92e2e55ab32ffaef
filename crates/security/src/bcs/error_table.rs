//! Every error code of the bank's tables (HTTP status, code, type, text), mapped to a gRPC
//! code and a stable `ErrorInfo.reason`. The mappings are data, one row a line, in
//! `fixtures/bcs_error_mappings.tsv` beside the spec's tables they are checked against;
//! rows come from the spec's tables in the order printed, rows taken from examples (no
//! HTTP status printed) last.
//!
//! The tables of S2-S13 are merged, duplicates removed; where one (code, type) pair carries
//! two meanings the HTTP status tells them apart (`1`/BDA: 400 vs 206; `00001`/BE: 400 vs
//! 500). `32`/RGN is "already in the requested state" as S13's table says, although S13's
//! example uses it for "user does not exist": that meaning is kept as an example row with
//! status 404, the status a missing user answers with (see docs/security.md).

use std::sync::LazyLock;

use pasarela_provider::Delivery;
use tonic::Code;

/// One row of the bank's error tables and what pasarela makes of it.
#[derive(Debug, Clone, Copy)]
pub struct ErrorRow {
    /// HTTP status printed with the row (for example rows: the status their meaning implies).
    pub http: u16,
    pub code: &'static str,
    pub kind: &'static str,
    pub grpc: Code,
    pub reason: &'static str,
    /// The bank's own text (Spanish), for `LocalizedMessage` when the answer has none.
    pub text: &'static str,
    /// Printed in an error table, or only seen in an example answer.
    pub source: Source,
    /// What this row tells of a state-changing call it answers: refused, declined by the
    /// gateway, or unknown (the bank may have acted). Never `NotSent`: the bank answered.
    pub acted: Delivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Table,
    Example,
}

/// The mapping file: HTTP status, errorCode, errorType, gRPC code, reason, text, source,
/// what the row tells of a state change.
const MAPPINGS: &str = include_str!("../../fixtures/bcs_error_mappings.tsv");

/// Every mapping, read once; a malformed line fails the first call (and the tests).
pub static ERROR_TABLE: LazyLock<Vec<ErrorRow>> = LazyLock::new(|| {
    parse(MAPPINGS).unwrap_or_else(|line| panic!("bcs_error_mappings.tsv: {line}"))
});

/// gRPC codes by the names the file uses.
const CODES: &[(&str, Code)] = &[
    ("Cancelled", Code::Cancelled),
    ("Unknown", Code::Unknown),
    ("InvalidArgument", Code::InvalidArgument),
    ("DeadlineExceeded", Code::DeadlineExceeded),
    ("NotFound", Code::NotFound),
    ("AlreadyExists", Code::AlreadyExists),
    ("PermissionDenied", Code::PermissionDenied),
    ("ResourceExhausted", Code::ResourceExhausted),
    ("FailedPrecondition", Code::FailedPrecondition),
    ("Aborted", Code::Aborted),
    ("OutOfRange", Code::OutOfRange),
    ("Unimplemented", Code::Unimplemented),
    ("Internal", Code::Internal),
    ("Unavailable", Code::Unavailable),
    ("DataLoss", Code::DataLoss),
    ("Unauthenticated", Code::Unauthenticated),
];

/// The rows of `text`, or the first line that is not one.
fn parse(text: &'static str) -> Result<Vec<ErrorRow>, &'static str> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| row(line).ok_or(line))
        .collect()
}

fn row(line: &'static str) -> Option<ErrorRow> {
    let mut fields = line.split('\t');
    let mut next = || fields.next();
    let http = next()?.parse().ok()?;
    let (code, kind) = (next()?, next()?);
    let grpc = next()
        .and_then(|name| CODES.iter().find(|(n, _)| *n == name))?
        .1;
    let (reason, text) = (next()?, next()?);
    let source = match next()? {
        "table" => Source::Table,
        "example" => Source::Example,
        _ => return None,
    };
    let acted = Delivery::parse(next()?).filter(|acted| *acted != Delivery::NotSent)?;
    next().is_none().then_some(ErrorRow {
        http,
        code,
        kind,
        grpc,
        reason,
        text,
        source,
        acted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's tables, verbatim.
    const SPEC_TABLES: &str = include_str!("../../fixtures/bcs_error_tables.txt");

    fn spec_rows() -> impl Iterator<Item = &'static str> {
        SPEC_TABLES
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
    }

    /// The row of `ERROR_TABLE` a printed line stands for: its HTTP status, code and type
    /// run together open the line, and a description follows.
    fn mapping_of(line: &str) -> Option<&'static ErrorRow> {
        ERROR_TABLE
            .iter()
            .filter(|row| row.source == Source::Table)
            .find(|row| {
                line.strip_prefix(&format!("{}{}{}", row.http, row.code, row.kind))
                    .is_some_and(|description| !description.trim().is_empty())
            })
    }

    #[test]
    fn the_mapping_file_is_read_whole() {
        let lines = MAPPINGS
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .count();
        assert_eq!(ERROR_TABLE.len(), lines);
        assert!(lines > 240, "{lines}");
        assert!(row("400\t1\tBDA\tNoSuchCode\tX\tY\ttable\trefused").is_none());
        assert!(row("400\t1\tBDA\tInternal\tX\tY\ttable\trefused\textra").is_none());
        assert!(
            row("400\t1\tBDA\tInternal\tX\tY\ttable").is_none(),
            "a row that does not say what it tells of a state change is refused"
        );
        assert!(row("400\t1\tBDA\tInternal\tX\tY\ttable\tnot_sent").is_none());
        assert!(row("400\t1\tBDA\tInternal\tX\tY\ttable\tmaybe").is_none());
    }

    #[test]
    fn every_code_of_the_spec_tables_has_a_mapping() {
        let unmapped: Vec<_> = spec_rows()
            .filter(|line| mapping_of(line).is_none())
            .collect();
        assert!(unmapped.is_empty(), "unmapped rows: {unmapped:#?}");
        assert!(
            spec_rows().count() > 400,
            "the fixture holds the spec's tables"
        );
    }

    #[test]
    fn every_table_row_is_printed_in_the_spec() {
        for row in ERROR_TABLE.iter().filter(|row| row.source == Source::Table) {
            let printed = format!("{}{}{}", row.http, row.code, row.kind);
            assert!(
                spec_rows().any(|line| line.starts_with(&printed)),
                "{printed} is not in the spec's tables"
            );
        }
    }

    #[test]
    fn every_mapping_names_a_failure_and_a_stable_reason() {
        for row in ERROR_TABLE.iter() {
            assert_ne!(row.grpc, Code::Ok, "{row:?}");
            assert!(
                !row.reason.is_empty()
                    && row
                        .reason
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_'),
                "{row:?}"
            );
        }
    }

    #[test]
    fn the_issue_examples_map_as_required() {
        let of = |http, code, kind| {
            let row = ERROR_TABLE
                .iter()
                .find(|row| row.http == http && row.code == code && row.kind == kind)
                .expect("row");
            (row.grpc, row.reason)
        };
        assert_eq!(
            of(400, "1008", "OUD"),
            (Code::InvalidArgument, "PASSWORD_EQUALS_ID")
        );
        assert_eq!(
            of(400, "00068", "OUD"),
            (Code::AlreadyExists, "USER_ALREADY_EXISTS")
        );
        assert_eq!(
            of(401, "401", "OUD"),
            (Code::Unavailable, "PROVIDER_AUTH_FAILED")
        );
        assert_eq!(
            of(400, "00201", "RGN"),
            (Code::FailedPrecondition, "CARD_SECRET_MISMATCH")
        );
    }
}
