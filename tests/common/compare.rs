//! One conformance check: build a case with the stock builder and with checkpoint-builder
//! and list every difference (success, exit code, phase order, normalised NARs). On a NAR
//! difference both NARs are kept in a temporary directory, unpacked, and `diff -r`'d.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{HarnessError, IoContext};
use crate::nar;
use crate::nix::{self, BuildResult};

/// How the two builds of a case must relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// Same status, exit code, phases and normalised outputs.
    Identical,
    /// A difference the design documents (the reason says which); it is reported, not
    /// failed.
    Divergent(&'static str),
}

/// What the stock build of a case must do (checks the case itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The build succeeds.
    Success,
    /// The builder fails with this exit code.
    ExitCode(i32),
    /// The builder exits 0 but Nix fails the build (e.g. a missing output).
    NixFailure,
}

impl Outcome {
    fn of(result: &BuildResult) -> Outcome {
        match (result.success, result.exit_code) {
            (true, _) => Outcome::Success,
            (false, Some(code)) => Outcome::ExitCode(code),
            (false, None) => Outcome::NixFailure,
        }
    }
}

/// Environment variable: when set to 1, a difference in the build logs (after
/// normalisation) fails the check instead of being reported as a note.
pub const STRICT_LOG_ENV: &str = "CHECKPOINT_STRICT_LOG";

/// The result of comparing two builds.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Differences that fail the check.
    pub differences: Vec<String>,
    /// Differences only reported (build log lines, unless strict).
    pub notes: Vec<String>,
    /// The directories that keep both NARs of a differing output for inspection (the
    /// differences name them).
    pub kept: Vec<PathBuf>,
}

/// Most lines of `diff -r` output shown in a report.
const DIFF_LINES: usize = 200;
/// Log lines of a build shown when its status differs.
const LOG_TAIL: usize = 40;

/// Every difference between the stock build and ours.
pub fn compare_builds(stock: &BuildResult, ours: &BuildResult) -> Result<Comparison, HarnessError> {
    let mut diffs = Vec::new();
    if stock.success != ours.success {
        diffs.push(format!(
            "status: stock {}, ours {}\n--- stock log (tail)\n{}\n--- our log (tail)\n{}\n--- our errors\n{}",
            status(stock),
            status(ours),
            stock.log_tail(LOG_TAIL),
            ours.log_tail(LOG_TAIL),
            ours.errors.join("\n"),
        ));
    } else if stock.exit_code != ours.exit_code {
        diffs.push(format!(
            "exit code: stock {:?}, ours {:?}\n--- our log (tail)\n{}",
            stock.exit_code,
            ours.exit_code,
            ours.log_tail(LOG_TAIL)
        ));
    }
    if stock.phases != ours.phases {
        diffs.push(format!(
            "phases:\n  stock: {}\n  ours:  {}",
            stock.phases.join(" "),
            ours.phases.join(" ")
        ));
    }
    let mut kept = Vec::new();
    if stock.success && ours.success {
        for (diff, dir) in compare_outputs(stock, ours)? {
            diffs.push(diff);
            kept.extend(dir);
        }
    }
    let mut notes = Vec::new();
    if let Some(log_diff) = compare_logs(stock, ours) {
        if std::env::var(STRICT_LOG_ENV).is_ok_and(|v| v == "1") {
            diffs.push(log_diff);
        } else {
            notes.push(log_diff);
        }
    }
    Ok(Comparison {
        differences: diffs,
        notes,
        kept,
    })
}

/// The first differing line of the two build logs, each normalised with its own build's
/// store-path rewrites.
fn compare_logs(stock: &BuildResult, ours: &BuildResult) -> Option<String> {
    let normalised = |r: &BuildResult| -> Vec<String> {
        let rewrites = nar::rewrites_for(
            r.closure_outputs
                .iter()
                .map(String::as_str)
                .chain(r.out_paths.iter().filter_map(|p| p.to_str())),
        );
        r.log_lines
            .iter()
            .map(|l| String::from_utf8_lossy(&nar::normalise(l.as_bytes(), &rewrites)).into_owned())
            .collect()
    };
    let (a, b) = (normalised(stock), normalised(ours));
    if a == b {
        return None;
    }
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let context = |v: &[String]| {
        v[first..]
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    Some(format!(
        "build log differs from line {} ({} vs {} lines):\n  stock:\n    {}\n  ours:\n    {}",
        first + 1,
        a.len(),
        b.len(),
        context(&a),
        context(&b)
    ))
}

/// What a failed build printed from stdenv's `Running phase: PHASE` header (its last one)
/// to the end of its log, without checkpoint-builder's own report lines (`checkpoint-builder:
/// …`), and with the location prefix of bash's messages (`FILE: line N: `) replaced by
/// `BASH_LOCATION: `: inside functions bash names the file the function was defined in,
/// which for the builder is its restore file (the divergence case 04c documents). Empty
/// when the log has no such header.
pub fn failure_output(result: &BuildResult, phase: &str) -> Vec<String> {
    let header = format!("Running phase: {phase}");
    let Some(start) = result.log_lines.iter().rposition(|l| l.trim() == header) else {
        return Vec::new();
    };
    result.log_lines[start + 1..]
        .iter()
        .filter(|l| !l.starts_with("checkpoint-builder:"))
        .map(|l| without_bash_location(l))
        .collect()
}

/// `line` with a leading `FILE: line N: ` (FILE without blanks) replaced by
/// `BASH_LOCATION: `; other lines as they are.
fn without_bash_location(line: &str) -> String {
    let located = line.split_once(": line ").and_then(|(file, rest)| {
        let (number, message) = rest.split_once(": ")?;
        let plausible = !file.is_empty()
            && !file.contains(char::is_whitespace)
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit());
        plausible.then(|| format!("BASH_LOCATION: {message}"))
    });
    located.unwrap_or_else(|| line.to_owned())
}

fn status(result: &BuildResult) -> String {
    match (result.success, result.exit_code) {
        (true, _) => "succeeded".to_owned(),
        (false, Some(code)) => format!("failed with exit code {code}"),
        (false, None) => format!("failed ({})", result.errors.join("; ")),
    }
}

/// Each difference between the outputs, with the directory that keeps the output's NARs
/// when it has one.
fn compare_outputs(
    stock: &BuildResult,
    ours: &BuildResult,
) -> Result<Vec<(String, Option<PathBuf>)>, HarnessError> {
    let stock_nars = nix::nar_normalised(stock)?;
    let our_nars = nix::nar_normalised(ours)?;
    let names =
        |nars: &[(String, Vec<u8>)]| nars.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(&stock_nars) != names(&our_nars) {
        return Ok(vec![(
            format!(
                "outputs: stock {:?}, ours {:?}",
                names(&stock_nars),
                names(&our_nars)
            ),
            None,
        )]);
    }
    let mut diffs = Vec::new();
    for ((name, stock_nar), (_, our_nar)) in stock_nars.iter().zip(&our_nars) {
        if stock_nar != our_nar {
            let (report, dir) = explain_nar_difference(name, stock_nar, our_nar)?;
            diffs.push((report, Some(dir)));
        }
    }
    Ok(diffs)
}

fn scratch_dir(label: &str) -> Result<PathBuf, HarnessError> {
    let base = std::env::temp_dir();
    // Kept: the report names it for inspection.
    Ok(tempfile::Builder::new()
        .prefix(&format!("checkpoint-conformance-{label}-"))
        .tempdir_in(&base)
        .io_context("creating a directory in", &base)?
        .keep())
}

/// Keeps both NARs, unpacks them and returns a report with `diff -r` (and `diff -u` of
/// differing text files), and the directory that keeps them.
fn explain_nar_difference(
    output: &str,
    stock: &[u8],
    ours: &[u8],
) -> Result<(String, PathBuf), HarnessError> {
    let dir = scratch_dir(output)?;
    let mut report = format!(
        "output {output}: normalised NARs differ ({} vs {} bytes); kept in {}",
        stock.len(),
        ours.len(),
        dir.display()
    );
    for (label, nar) in [("stock", stock), ("ours", ours)] {
        let file = dir.join(format!("{label}.nar"));
        std::fs::write(&file, nar).io_context("writing", &file)?;
        nix::restore(nar, &dir.join(label))?;
    }
    let diff = diff_trees(&dir.join("stock"), &dir.join("ours"));
    let shown: Vec<&str> = diff.lines().take(DIFF_LINES).collect();
    let _ = write!(report, "\n--- diff -r stock ours\n{}", shown.join("\n"));
    if diff.lines().count() > DIFF_LINES {
        let _ = write!(
            report,
            "\n[... {} more lines]",
            diff.lines().count() - DIFF_LINES
        );
    }
    Ok((report, dir))
}

fn diff_trees(stock: &Path, ours: &Path) -> String {
    match Command::new("diff")
        .args(["-r", "-u", "--no-dereference"])
        .arg(stock)
        .arg(ours)
        .output()
    {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            if text.trim().is_empty() {
                // Same files and contents: the difference is in modes (executable bit).
                text = ls_tree(stock) + "\n--- ours\n" + &ls_tree(ours);
            }
            text
        }
        Err(e) => format!("(could not run diff: {e})"),
    }
}

fn ls_tree(dir: &Path) -> String {
    Command::new("find")
        .arg(dir)
        .args(["-printf", "%M %P -> %l\\n"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Builds `tests/cases/<file_name>` with the stock builder and with checkpoint-builder,
/// checks the stock build against `stock_outcome` (the case does what it documents) and
/// the two builds against `expectation`. `Ok` carries a summary; `Err` the report.
pub fn check_case(
    file_name: &str,
    stock_outcome: Outcome,
    expectation: Expectation,
) -> Result<String, String> {
    let case = nix::cases_dir().join(file_name);
    let stock = nix::nix_build(&case, None).map_err(|e| format!("{file_name}: {e}"))?;
    if Outcome::of(&stock) != stock_outcome {
        return Err(format!(
            "{file_name}: the stock build should end as {stock_outcome:?} but {}\n--- log (tail)\n{}\n--- errors\n{}",
            stock.describe(),
            stock.log_tail(LOG_TAIL),
            stock.errors.join("\n")
        ));
    }
    let run_ours = || -> Result<(BuildResult, Comparison), HarnessError> {
        let ours = nix::nix_build(&case, Some(nix::builder_binary()?))?;
        let comparison = compare_builds(&stock, &ours)?;
        Ok((ours, comparison))
    };
    let (ours, comparison) = run_ours().map_err(|e| format!("{file_name}: {e}"))?;
    let mut header = format!(
        "{file_name}\n  stock: {}\n  ours:  {}\n  phases: {}",
        stock.describe(),
        ours.describe(),
        stock.phases.join(" ")
    );
    for note in &comparison.notes {
        let _ = write!(header, "\n  note: {note}");
    }
    let diffs = comparison.differences;
    match (diffs.is_empty(), expectation) {
        (true, _) => Ok(header),
        (false, Expectation::Identical) => Err(format!(
            "{header}\n{} difference(s):\n{}",
            diffs.len(),
            diffs.join("\n\n")
        )),
        (false, Expectation::Divergent(reason)) => {
            // Expected: nothing to inspect, so nothing is left behind in the temporary
            // directory run after run.
            for dir in &comparison.kept {
                let _ = std::fs::remove_dir_all(dir);
            }
            Ok(format!(
                "{header}\n  documented divergence ({reason}; the kept NARs were removed):\n{}",
                diffs.join("\n\n")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::without_bash_location;

    #[test]
    fn only_a_bash_location_prefix_is_replaced() {
        for (line, expected) in [
            (
                "/nix/store/x-stdenv/setup: line 1162: pop_var_context: head",
                "BASH_LOCATION: pop_var_context: head",
            ),
            (
                "/proc/1/fd/4: line 51: frozen: readonly variable",
                "BASH_LOCATION: frozen: readonly variable",
            ),
            ("this installPhase fails", "this installPhase fails"),
            (
                "a file: line 3: with a blank",
                "a file: line 3: with a blank",
            ),
            ("f: line x: not a number", "f: line x: not a number"),
            ("f: line 3 no colon after", "f: line 3 no colon after"),
        ] {
            assert_eq!(without_bash_location(line), expected, "{line}");
        }
    }
}
