//! Reading nix-build's `--log-format internal-json` stderr: for one derivation, the
//! phases it announced (`setPhase` results), its log lines, the exit code Nix reports and
//! the errors that explain a failure (its own, a dependency's).
//! Pure: no processes, no files.

use serde_json::Value;

/// Activity type of a derivation build (`actBuild`).
const ACT_BUILD: u64 = 105;
/// Result type of a build log line (`resBuildLogLine`).
const RES_BUILD_LOG_LINE: u64 = 101;
/// Result type of a phase change (`resSetPhase`).
const RES_SET_PHASE: u64 = 104;
/// Verbosity of an error message (`lvlError`).
const LVL_ERROR: u64 = 0;

/// What the log says about one derivation's build.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuildLog {
    /// Phase names in the order of the `@nix setPhase` lines the builder wrote.
    pub phases: Vec<String>,
    /// The build's own log lines (stdout and stderr of the builder).
    pub lines: Vec<String>,
    /// `N` of "failed with exit code N" for this derivation, if reported.
    pub exit_code: Option<i32>,
    /// Nix's messages that mention this derivation and its error messages about any other
    /// (a dependency that failed, with its last log lines), in order, ANSI escapes removed.
    pub errors: Vec<String>,
    /// Whether this nix-build ran the derivation's builder (false when its outputs were
    /// already valid, e.g. built meanwhile by another process).
    pub built: bool,
}

/// Extracts what concerns `drv_path` from nix-build's stderr in internal-json format.
pub fn parse(stderr: &str, drv_path: &str) -> BuildLog {
    let mut log = BuildLog::default();
    let mut build_ids: Vec<u64> = Vec::new();
    for line in stderr.lines() {
        let Some(json) = line.strip_prefix("@nix ") else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        let id = value.get("id").and_then(Value::as_u64);
        let kind = value.get("type").and_then(Value::as_u64);
        let first_field = value
            .get("fields")
            .and_then(|f| f.get(0))
            .and_then(Value::as_str);
        match value.get("action").and_then(Value::as_str) {
            Some("start") if kind == Some(ACT_BUILD) && first_field == Some(drv_path) => {
                build_ids.extend(id);
                log.built = true;
            }
            Some("result") if id.is_some_and(|id| build_ids.contains(&id)) => match kind {
                Some(RES_SET_PHASE) => log.phases.extend(first_field.map(str::to_owned)),
                Some(RES_BUILD_LOG_LINE) => log.lines.extend(first_field.map(str::to_owned)),
                _ => {}
            },
            Some("msg") => {
                let text = value
                    .get("raw_msg")
                    .or_else(|| value.get("msg"))
                    .and_then(Value::as_str)
                    .map(strip_ansi)
                    .unwrap_or_default();
                if text.contains(drv_path) {
                    if log.exit_code.is_none() {
                        log.exit_code = exit_code_in(&text);
                    }
                    log.errors.push(text);
                } else if value.get("level").and_then(Value::as_u64) == Some(LVL_ERROR) {
                    log.errors.push(text);
                }
            }
            _ => {}
        }
    }
    log
}

/// `N` from "... failed with exit code N".
pub fn exit_code_in(message: &str) -> Option<i32> {
    const MARK: &str = "failed with exit code ";
    let start = message.find(MARK)? + MARK.len();
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Removes ANSI CSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRV: &str = "/nix/store/5zbxg55ypkvpfx8wkahj6jdg2ahw0258-case.drv";

    fn sample() -> String {
        [
            r#"@nix {"action":"start","fields":["/nix/store/clcp68af1ldwi4lz7r2p35n7r373j5r2-dep.drv","",1,1],"id":7,"level":3,"text":"building","type":105}"#,
            r#"@nix {"action":"result","fields":["unpackPhase"],"id":7,"type":104}"#,
            r#"@nix {"action":"start","fields":["/nix/store/5zbxg55ypkvpfx8wkahj6jdg2ahw0258-case.drv","",1,1],"id":9,"level":3,"text":"building","type":105}"#,
            r#"@nix {"action":"result","fields":["Running phase: unpackPhase"],"id":9,"type":101}"#,
            r#"@nix {"action":"result","fields":["unpackPhase"],"id":9,"type":104}"#,
            r#"@nix {"action":"result","fields":["buildPhase"],"id":9,"type":104}"#,
            "not json at all",
            "@nix {\"action\":\"msg\",\"level\":0,\"msg\":\"\\u001b[31;1merror:\\u001b[0m builder for '\\u001b[35;1m/nix/store/5zbxg55ypkvpfx8wkahj6jdg2ahw0258-case.drv\\u001b[0m' failed with exit code 2\"}",
        ]
        .join("\n")
    }

    #[test]
    fn phases_and_lines_of_the_named_build_only() {
        let log = parse(&sample(), DRV);
        assert_eq!(log.phases, ["unpackPhase", "buildPhase"]);
        assert_eq!(log.lines, ["Running phase: unpackPhase"]);
        assert!(log.built);
        assert!(!parse(&sample(), "/nix/store/other.drv").built);
    }

    #[test]
    fn exit_code_from_the_error_message() {
        let log = parse(&sample(), DRV);
        assert_eq!(log.exit_code, Some(2));
        assert_eq!(log.errors.len(), 1);
        assert!(log.errors[0].starts_with("error: builder for '/nix/store/"));
    }

    #[test]
    fn a_failed_dependency_s_error_is_kept_but_gives_no_exit_code() {
        let stderr = [
            r#"@nix {"action":"msg","level":1,"msg":"warning: the group 'nixbld' does not exist"}"#,
            r#"@nix {"action":"msg","level":0,"msg":"error: builder for '/nix/store/clcp68af1ldwi4lz7r2p35n7r373j5r2-dep.drv' failed due to signal 9 (Killed)"}"#,
            r#"@nix {"action":"msg","level":0,"msg":"error: 1 dependencies of derivation '/nix/store/5zbxg55ypkvpfx8wkahj6jdg2ahw0258-case.drv' failed to build"}"#,
        ]
        .join("\n");
        let log = parse(&stderr, DRV);
        assert_eq!(log.errors.len(), 2, "{:?}", log.errors);
        assert!(log.errors[0].contains("dep.drv' failed due to signal 9"));
        assert!(log.errors[1].contains("1 dependencies"));
        assert_eq!(log.exit_code, None);
    }

    #[test]
    fn exit_code_parsing() {
        assert_eq!(exit_code_in("x failed with exit code 127"), Some(127));
        assert_eq!(exit_code_in("x failed with exit code"), None);
        assert_eq!(exit_code_in("failed to produce output path"), None);
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\u{1b}[31;1merror:\u{1b}[0m x"), "error: x");
    }
}
