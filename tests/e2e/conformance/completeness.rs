//! Completeness: every example block of the three specs has its fixture, and every fixture
//! still matches its spec's text.

use super::*;

// ---- completeness: every block of the specs has its fixture ---------------------------------

/// One row of INDEX.md's table 1: spec file, line range, fixture.
struct IndexRow {
    spec: String,
    lines: (usize, usize),
    fixture: String,
}

fn index_rows() -> Vec<IndexRow> {
    let index = std::fs::read_to_string(spec_dir().join("INDEX.md")).expect("INDEX.md");
    let table = index
        .split("## 1.")
        .nth(1)
        .and_then(|rest| rest.split("## 2.").next())
        .expect("INDEX.md has a table 1");
    table
        .lines()
        .filter(|line| line.starts_with("| 00"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (a, b) = cells[2].split_once('-').expect("a line range");
            IndexRow {
                spec: cells[1].to_owned(),
                lines: (
                    a.parse().expect("first line"),
                    b.parse().expect("last line"),
                ),
                fixture: cells[6].trim_matches('`').to_owned(),
            }
        })
        .collect()
}

/// The repairs of `repairs.tsv`, by fixture: (operation, line, found, replacement).
type Repair = (String, usize, String, String);

fn repairs() -> BTreeMap<String, Vec<Repair>> {
    let text = std::fs::read_to_string(spec_dir().join("repairs.tsv")).expect("repairs.tsv");
    let mut repairs: BTreeMap<String, Vec<Repair>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cells: Vec<&str> = line.split('\t').collect();
        let op = (
            cells[1].to_owned(),
            cells[2].parse().expect("a line number"),
            cells.get(3).unwrap_or(&"").to_string(),
            cells.get(4).unwrap_or(&"").to_string(),
        );
        repairs.entry(cells[0].to_owned()).or_default().push(op);
    }
    repairs
}

/// Lines `a..=b` of `spec` (numbered), with `ops` applied.
fn repaired_block(spec: &[String], (a, b): (usize, usize), ops: &[Repair]) -> String {
    let mut block: Vec<(usize, String)> = (a..=b).map(|n| (n, spec[n - 1].clone())).collect();
    for (op, n, found, replacement) in ops {
        let i = block
            .iter()
            .position(|(m, _)| m == n)
            .unwrap_or_else(|| panic!("repair of line {n}: not in {a}-{b}"));
        match op.as_str() {
            "drop" => {
                block.remove(i);
            }
            "sub" => {
                assert!(block[i].1.contains(found.as_str()), "line {n}: {found:?}");
                block[i].1 = block[i].1.replacen(found.as_str(), replacement, 1);
            }
            "join" => {
                let joined = block.remove(i).1;
                block[i - 1].1.push_str(joined.trim_start());
            }
            other => panic!("unknown repair {other}"),
        }
    }
    block
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a spec line looks like part of an example: a JSON object opening, a URL with a
/// query string, a Postman header row, a form-encoded body.
fn looks_like_example(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with('{')
        || trimmed.ends_with('{')
        || (trimmed.contains("://") && trimmed.contains('?'))
        || trimmed.starts_with("<input checked")
        || trimmed == "KEY\tVALUE"
        || (trimmed.contains('=') && trimmed.contains('&') && !trimmed.contains(' '))
}

#[test]
fn spec_fixtures_cover_every_example_block() {
    let rows = index_rows();
    assert!(
        rows.len() >= 60,
        "INDEX.md table 1 read: {} rows",
        rows.len()
    );
    let repairs = repairs();
    let mut problems = Vec::new();
    for row in &rows {
        let spec = spec_lines(&row.spec);
        if row.fixture.ends_with(".json") {
            let fx = fixture(&row.fixture);
            if (fx.spec.as_str(), fx.lines) != (row.spec.as_str(), row.lines) {
                problems.push(format!(
                    "{}: spec or lines differ from INDEX.md",
                    row.fixture
                ));
            }
            let ops = repairs.get(&row.fixture).cloned().unwrap_or_default();
            if fx.repaired == ops.is_empty() {
                problems.push(format!("{}: repair and repairs.tsv disagree", row.fixture));
            }
            let text = repaired_block(&spec, row.lines, &ops);
            match serde_json::from_str::<Value>(&text) {
                Ok(value) if value == fx.example => {}
                Ok(_) => problems.push(format!("{}: differs from its spec lines", row.fixture)),
                Err(e) => problems.push(format!("{}: spec lines do not parse: {e}", row.fixture)),
            }
        } else {
            let (spec_name, range, body) = text_fixture(&row.fixture);
            let expected: Vec<String> = spec[row.lines.0 - 1..row.lines.1].to_vec();
            if (spec_name.as_str(), range) != (row.spec.as_str(), row.lines) || body != expected {
                problems.push(format!("{}: not its spec lines verbatim", row.fixture));
            }
        }
    }
    // Every example-looking line of a spec lies in some fixture's range.
    for spec_name in rows.iter().map(|r| r.spec.clone()).collect::<BTreeSet<_>>() {
        let ranges: Vec<(usize, usize)> = rows
            .iter()
            .filter(|r| r.spec == spec_name)
            .map(|r| r.lines)
            .collect();
        for n in uncovered(&spec_lines(&spec_name), &ranges) {
            problems.push(format!("{spec_name} line {n}: an example with no fixture"));
        }
    }
    // Every fixture file is a row of the index, and no row names a missing one.
    let listed: BTreeSet<String> = rows.iter().map(|r| r.fixture.clone()).collect();
    for provider in ["bcs", "kiban", "daviplata"] {
        for entry in std::fs::read_dir(spec_dir().join(provider)).expect("fixture folder") {
            let name = format!(
                "{provider}/{}",
                entry.expect("entry").file_name().to_string_lossy()
            );
            if !listed.contains(&name) {
                problems.push(format!("{name}: not in INDEX.md"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The numbers of the example-looking lines of `spec` that no range covers.
fn uncovered(spec: &[String], ranges: &[(usize, usize)]) -> Vec<usize> {
    (1..=spec.len())
        .filter(|n| looks_like_example(&spec[n - 1]))
        .filter(|n| !ranges.iter().any(|(a, b)| (*a..=*b).contains(n)))
        .collect()
}

#[test]
fn the_completeness_check_can_fail() {
    // Without the S1 answer's fixture its block is reported; one line off, it no longer
    // parses as the fixture's example.
    let spec = spec_lines("000_6afe8551a274a285.txt");
    let others: Vec<(usize, usize)> = index_rows()
        .iter()
        .filter(|r| r.spec == "000_6afe8551a274a285.txt" && r.lines != (131, 143))
        .map(|r| r.lines)
        .collect();
    let lost = uncovered(&spec, &others);
    assert_eq!(lost.first(), Some(&131), "{lost:?}");
    assert!(lost.iter().all(|n| (131..=143).contains(n)), "{lost:?}");
    let shifted = repaired_block(&spec, (132, 143), &[]);
    assert!(serde_json::from_str::<Value>(&shifted).is_err());
}
