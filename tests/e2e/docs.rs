//! Docs that run: every fenced `sh` block of README.md and docs/*.md that calls `grpcurl`
//! runs, as written, against a real `pasarela dev` (its address swapped in), with
//! `pasarela` on the PATH. A command must succeed, and a `# expect: TEXT` line after it says
//! what its output must hold (a failing command may be documented that way). A block that
//! cannot run here says why in a `<!-- not run: … -->` line above its fence.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::process::DevProcess;
use crate::support::tools;
use crate::support::{pasarela_bin, tool};

/// The address the docs use for `pasarela dev`, in both spellings.
const DOC_ADDRESSES: [&str; 2] = ["127.0.0.1:50051", "localhost:50051"];

const EXPECT: &str = "# expect: ";
const NOT_RUN: &str = "<!-- not run:";

/// A fenced block of a page: where it starts and its lines.
struct Block {
    page: PathBuf,
    line: usize,
    lines: Vec<String>,
}

fn pages() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The `sh` blocks of `page` that call grpcurl, and how many were marked not to run.
fn grpcurl_blocks(page: &Path) -> (Vec<Block>, usize) {
    let text = std::fs::read_to_string(page).expect("page");
    let lines: Vec<&str> = text.lines().collect();
    let (mut blocks, mut skipped) = (Vec::new(), 0);
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        if !fence.starts_with("```") || fence.len() == 3 && i + 1 >= lines.len() {
            i += 1;
            continue;
        }
        let indent = lines[i].len() - fence.len();
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .expect("a closed fence");
        let body: Vec<String> = lines[i + 1..end]
            .iter()
            .map(|line| line.get(indent..).unwrap_or(line.trim_start()).to_owned())
            .collect();
        let calls_grpcurl = body.iter().any(|line| line.contains("grpcurl "));
        let marked = i > 0 && lines[i - 1].trim_start().starts_with(NOT_RUN);
        if fence == "```sh" && calls_grpcurl {
            if marked {
                skipped += 1;
            } else {
                blocks.push(Block {
                    page: page.to_owned(),
                    line: i + 1,
                    lines: body,
                });
            }
        }
        i = end + 1;
    }
    (blocks, skipped)
}

/// The block as a bash script against `addr`: each command followed by an `# expect:` line
/// is run through `expect_out`, the rest under `set -e`.
fn script(block: &Block, addr: &str) -> String {
    let mut out = String::from(
        "set -eo pipefail\n\
         expect_out() { local want=\"$1\"; shift; local got; got=\"$(\"$@\" 2>&1)\" || true; \
         case \"$got\" in *\"$want\"*) printf '%s\\n' \"$got\";; \
         *) printf 'expected %s in:\\n%s\\n' \"$want\" \"$got\" >&2; return 1;; esac; }\n",
    );
    let lines = &block.lines;
    let mut i = 0;
    while i < lines.len() {
        // A command and its continuation lines, quoted newlines included.
        let start = i;
        let mut quote = None;
        while continues(&lines[i], &mut quote) && i + 1 < lines.len() {
            i += 1;
        }
        let expect = lines
            .get(i + 1)
            .and_then(|next| next.trim_start().strip_prefix(EXPECT));
        let mut command = lines[start..=i].join("\n");
        for doc_addr in DOC_ADDRESSES {
            command = command.replace(doc_addr, addr);
        }
        if let Some(want) = expect {
            let quoted = want.replace('\'', r"'\''");
            out.push_str(&format!("expect_out '{quoted}' {command}\n"));
            i += 1;
        } else {
            out.push_str(&command);
            out.push('\n');
        }
        i += 1;
    }
    out
}

/// Whether a shell command goes on past `line`: a trailing backslash, or a quote still open
/// (`quote` carries the open quote from line to line).
fn continues(line: &str, quote: &mut Option<char>) -> bool {
    let mut chars = line.chars().peekable();
    let mut escaped_newline = false;
    while let Some(c) = chars.next() {
        escaped_newline = false;
        match (*quote, c) {
            (Some('\''), '\'') => *quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped_newline = chars.next().is_none(),
            (Some('"'), '"') => *quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => *quote = Some(c),
            (None, _) => {}
        }
    }
    escaped_newline || quote.is_some()
}

#[test]
fn every_documented_grpcurl_command_runs_as_documented() {
    if tools::lacking(&["grpcurl"]) {
        return;
    }
    let (mut blocks, mut skipped) = (Vec::new(), 0);
    for page in pages() {
        let (found, marked) = grpcurl_blocks(&page);
        blocks.extend(found);
        skipped += marked;
    }
    assert!(
        blocks.len() >= 6,
        "the docs hold their grpcurl blocks: {}",
        blocks.len()
    );
    assert!(skipped <= 2, "most blocks run: {skipped} marked not to");
    let expects: usize = blocks
        .iter()
        .map(|b| {
            b.lines
                .iter()
                .filter(|l| l.trim_start().starts_with(EXPECT))
                .count()
        })
        .sum();
    assert!(
        expects >= 8,
        "the docs say what their commands print: {expects}"
    );

    let dev = DevProcess::start();
    let bin_dir = pasarela_bin().parent().expect("bin dir").to_owned();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir];
    dirs.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(dirs).expect("PATH");
    let mut failed = Vec::new();
    for block in &blocks {
        let output = Command::new(tool("bash"))
            .arg("-c")
            .arg(script(block, &dev.addr.to_string()))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", &path)
            .output()
            .expect("bash runs");
        if !output.status.success() {
            failed.push(format!(
                "{}:{}\n{}{}",
                block.page.display(),
                block.line,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "documented commands failed:\n{}",
        failed.join("\n\n")
    );
}
