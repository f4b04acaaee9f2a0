//! The traps of a state: `trap -p` output parsed into (handler, condition) pairs, and the
//! `builtin trap` commands that set them again.
//!
//! Pure. The stored form stays bash's own `trap -p` text; it is never evaluated as is: each
//! handler is read as the single-quoted word bash prints, the condition must be one
//! [`super::names::is_trap_condition`] knows, and the restore code quotes the handler itself.

use super::quote::quote;
use thiserror::Error;

/// One trap: the handler text (bytes, unquoted) and its condition (`EXIT`, `SIGINT` …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    pub handler: Vec<u8>,
    pub condition: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TrapError {
    #[error("trap line {line} is not `trap -- 'HANDLER' CONDITION`: {what}")]
    Malformed { line: usize, what: &'static str },
    #[error("trap line {line}: {condition:?} is not a signal or trap condition bash knows")]
    UnknownCondition { line: usize, condition: String },
}

/// Parses `trap -p` output: one `trap -- 'HANDLER' CONDITION` per trap, HANDLER quoted as
/// bash's `sh_single_quote` does (`'…'` pieces joined by `\'`), possibly over several lines.
pub fn parse_traps(text: &[u8]) -> Result<Vec<Trap>, TrapError> {
    let mut traps = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < text.len() {
        let bad = |what| TrapError::Malformed { line, what };
        let rest = &text[pos..];
        let rest = rest.strip_prefix(b"trap -- ").ok_or(bad("no `trap -- `"))?;
        pos = text.len() - rest.len();
        let mut handler = Vec::new();
        loop {
            match text.get(pos) {
                Some(b'\'') => {
                    let close = text[pos + 1..]
                        .iter()
                        .position(|&b| b == b'\'')
                        .ok_or(bad("an unterminated quote"))?;
                    handler.extend_from_slice(&text[pos + 1..pos + 1 + close]);
                    pos += close + 2;
                }
                Some(b'\\') if text.get(pos + 1) == Some(&b'\'') => {
                    handler.push(b'\'');
                    pos += 2;
                }
                Some(b' ') => break,
                _ => return Err(bad("the handler is not single-quoted")),
            }
        }
        pos += 1;
        let end = text[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(bad("no newline after the condition"))?;
        let condition = std::str::from_utf8(&text[pos..pos + end])
            .ok()
            .filter(|c| super::names::is_trap_condition(c))
            .ok_or_else(|| TrapError::UnknownCondition {
                line,
                condition: String::from_utf8_lossy(&text[pos..pos + end]).into_owned(),
            })?;
        line += 1 + handler.iter().filter(|&&b| b == b'\n').count();
        traps.push(Trap {
            handler,
            condition: condition.to_owned(),
        });
        pos += end + 1;
    }
    Ok(traps)
}

/// `trap -p` text for `traps`, as bash prints it (the handler quoted as `sh_single_quote`
/// does), which [`parse_traps`] reads back.
pub fn format_traps(traps: &[Trap]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in traps {
        out.extend_from_slice(b"trap -- '");
        for &b in &t.handler {
            if b == b'\'' {
                out.extend_from_slice(b"'\\''");
            } else {
                out.push(b);
            }
        }
        out.extend_from_slice(b"' ");
        out.extend_from_slice(t.condition.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Whether bash saves and clears a trap of `condition` on entry to a function (without
/// `functrace`/`errtrace`) and restores it on return: `DEBUG`, `RETURN` and `ERR`.
pub fn is_frame_scoped(condition: &str) -> bool {
    matches!(condition, "DEBUG" | "RETURN" | "ERR")
}

/// The commands that set `traps` again, one line each.
pub fn render_traps(traps: &[Trap]) -> String {
    let mut out = String::new();
    for t in traps {
        out.push_str("builtin trap -- ");
        out.push_str(&quote(&t.handler));
        out.push(' ');
        out.push_str(&t.condition);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `format_traps` writes what bash's `trap -p` writes, so the text reads back the same.
    #[test]
    fn formatted_traps_are_bash_own_text() {
        let script = "trap -- \"echo 'a'\\''b\" RETURN\ntrap '' PIPE\ntrap -p\n";
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", script])
            .output()
            .expect("bash runs");
        let traps = parse_traps(&out.stdout).unwrap();
        assert_eq!(format_traps(&traps), out.stdout);
        assert_eq!(parse_traps(&format_traps(&traps)).unwrap(), traps);
    }

    #[test]
    fn bash_trap_output_round_trips_through_bash() {
        let script = concat!(
            "trap -- \"echo 'hi'\nx=\\$(date) \\\\ \\$'\\\\n'\" EXIT\n",
            "trap '' PIPE\ntrap : RTMIN+3\ntrap 'a;b' ERR\ntrap 'return 3' RETURN\n",
            "trap -p; trap - EXIT\n",
        );
        // With every signal at its default: bash also lists a signal ignored when it started
        // (SIGHUP under nohup, SIGINT and SIGQUIT in a background job).
        let out = std::process::Command::new("env")
            .args(["--default-signal", "bash", "--norc", "-c", script])
            .output()
            .expect("bash runs");
        let traps = parse_traps(&out.stdout).unwrap();
        assert_eq!(traps.len(), 5, "{:?}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(traps[0].condition, "EXIT");
        assert_eq!(traps[0].handler, b"echo 'hi'\nx=$(date) \\ $'\\n'");
        assert!(traps
            .iter()
            .any(|t| t.condition == "SIGPIPE" && t.handler.is_empty()));
        // Set again from our rendering, bash prints the same.
        let again = std::process::Command::new("env")
            .args(["--default-signal", "bash", "--norc", "-c"])
            .arg(format!("{}trap -p; trap - EXIT\n", render_traps(&traps)))
            .output()
            .expect("bash runs");
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            String::from_utf8_lossy(&out.stdout)
        );
    }

    #[test]
    fn hostile_trap_text_is_refused() {
        for bad in [
            &b"trap -- 'x' EXIT\ntouch /tmp/pwned\n"[..],
            b"trap -- 'x' EXIT; touch /tmp/pwned\n",
            b"trap -- 'x' EXIT $(touch /tmp/pwned)\n",
            b"trap -- x EXIT\n",
            b"trap -- \"$(id)\" EXIT\n",
            b"trap -- 'x'$(id) EXIT\n",
            b"trap -- 'x' EXIT",
            b"trap -- 'unterminated EXIT\n",
            b"touch /tmp/pwned\n",
            b"trap -- 'x' exit\n",
            b"trap -- 'x'  EXIT\n",
        ] {
            assert!(
                parse_traps(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Whatever a handler holds stays one quoted word when rendered again.
        let traps = parse_traps(b"trap -- ''\\''; touch /tmp/pwned; '\\''' EXIT\n").unwrap();
        assert_eq!(traps[0].handler, b"'; touch /tmp/pwned; '");
        assert_eq!(
            render_traps(&traps),
            "builtin trap -- $'\\'; touch /tmp/pwned; \\'' EXIT\n"
        );
    }
}
