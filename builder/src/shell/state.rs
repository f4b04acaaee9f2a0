//! The shell state carried from one phase process to the next, and the parser of the dump
//! that a phase process writes when its phase ends.
//!
//! Pure: the dump is bytes (sections written by the epilogue in [`super::driver`] and by the
//! `__capture` helper), the result a [`ShellState`]. Which variables belong to bash itself
//! (and so are never restored) is decided here too.

use super::bytes::ByteString;
use super::declare::{parse_declarations, DeclareParseError, Variable};
use super::traps::Trap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// Variables that bash owns: read-only, dynamic or per-process. Never restored; see
/// `docs/state-carry.md`.
pub const BASH_OWNED: &[&str] = &[
    "BASHOPTS",
    "BASHPID",
    "BASH_ALIASES",
    "BASH_ARGC",
    "BASH_ARGV",
    "BASH_ARGV0",
    "BASH_CMDS",
    "BASH_COMMAND",
    "BASH_EXECUTION_STRING",
    "BASH_LINENO",
    "BASH_LOADABLES_PATH",
    "BASH_MONOSECONDS",
    "BASH_REMATCH",
    "BASH_SOURCE",
    "BASH_SUBSHELL",
    "BASH_TRAPSIG",
    "BASH_VERSINFO",
    "BASH_VERSION",
    "COMP_WORDBREAKS",
    "DIRSTACK",
    "EPOCHREALTIME",
    "EPOCHSECONDS",
    "EUID",
    "FUNCNAME",
    "GROUPS",
    "HISTCMD",
    "HOSTNAME",
    "HOSTTYPE",
    "LINENO",
    "MACHTYPE",
    "OPTIND",
    "OSTYPE",
    "PIPESTATUS",
    "PPID",
    "RANDOM",
    "SECONDS",
    "SHELLOPTS",
    "SRANDOM",
    "UID",
    "_",
];

/// True when `name` is a variable bash owns (never carried between phases).
pub fn is_bash_owned(name: &str) -> bool {
    BASH_OWNED.binary_search(&name).is_ok()
}

/// A resource limit as `getrlimit` reports it (`u64::MAX` is infinity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceLimit {
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// Everything about a bash process that the next phase must see again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellState {
    /// Every variable except the bash-owned ones, sorted by name.
    pub variables: Vec<Variable>,
    /// Names of the exported variables in the order they appear in children's environment.
    pub export_order: Vec<String>,
    /// `declare -f` output: every function definition, in name order.
    pub functions: ByteString,
    /// Function names with their export flag.
    pub function_names: Vec<(String, bool)>,
    /// `set -o` options (name, on).
    pub set_options: Vec<(String, bool)>,
    /// `shopt` options (name, on).
    pub shopt_options: Vec<(String, bool)>,
    /// `trap -p` output as bash printed it; never evaluated as is (see [`super::traps`]).
    /// After the setup step of a build that runs phases, and after each phase, the traps of
    /// `genericBuild`'s frame; after a build that ran whole in the setup step, those of the
    /// sourced builder script.
    pub traps: ByteString,
    /// The `DEBUG`, `RETURN` and `ERR` traps (`trap -p` text) that stock's levels around
    /// `genericBuild` hold while it runs: bash clears them on entry to a function (and
    /// `DEBUG` on entry to a sourced file) and restores them on return. Set by the setup
    /// step, carried unchanged by the phases (nothing runs at those levels meanwhile).
    #[serde(default, skip_serializing_if = "ByteString::is_empty")]
    pub outer_traps: ByteString,
    /// The logical working directory (`$PWD`), or the physical one when `PWD` is unset.
    pub cwd: ByteString,
    /// `DIRSTACK` entries after the first (the first is the cwd).
    pub dir_stack: Vec<ByteString>,
    pub umask: u32,
    pub limits: Vec<ResourceLimit>,
    /// Where fd 1 and fd 2 point when a phase redirected them with `exec` (regular files).
    pub stdout_target: Option<ByteString>,
    pub stderr_target: Option<ByteString>,
}

impl ShellState {
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables
            .binary_search_by(|v| v.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.variables[i])
    }

    pub fn has_function(&self, name: &str) -> bool {
        self.function_names.iter().any(|(n, _)| n == name)
    }

    /// A copy of everything but the function text (left empty), which is the bulk of a state
    /// and is stored, hashed and rewritten as plain bytes of its own.
    pub fn without_functions(&self) -> ShellState {
        let ShellState {
            variables,
            export_order,
            functions: _,
            function_names,
            set_options,
            shopt_options,
            traps,
            outer_traps,
            cwd,
            dir_stack,
            umask,
            limits,
            stdout_target,
            stderr_target,
        } = self;
        ShellState {
            variables: variables.clone(),
            export_order: export_order.clone(),
            functions: ByteString::default(),
            function_names: function_names.clone(),
            set_options: set_options.clone(),
            shopt_options: shopt_options.clone(),
            traps: traps.clone(),
            outer_traps: outer_traps.clone(),
            cwd: cwd.clone(),
            dir_stack: dir_stack.clone(),
            umask: *umask,
            limits: limits.clone(),
            stdout_target: stdout_target.clone(),
            stderr_target: stderr_target.clone(),
        }
    }

    /// The text of one function as `declare -f` printed it, if defined.
    pub fn function_text(&self, name: &str) -> Option<&[u8]> {
        split_functions(self.functions.as_bytes(), &self.function_names)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text)
    }
}

/// Splits `declare -f` output into per-function texts, using the known names (in order).
pub fn split_functions<'a>(
    text: &'a [u8],
    names: &'a [(String, bool)],
) -> Vec<(&'a str, &'a [u8])> {
    let mut starts = Vec::with_capacity(names.len());
    let mut from = 0usize;
    for (name, _) in names {
        let header = format!("{name} () \n");
        // A header follows the previous function's closing `}` line (or starts the text).
        let found = find_header(text, header.as_bytes(), from);
        if let Some(pos) = found {
            starts.push((name.as_str(), pos));
            from = pos + header.len();
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, (name, start)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map(|(_, s)| *s).unwrap_or(text.len());
        out.push((*name, &text[*start..end]));
    }
    out
}

fn find_header(text: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos + needle.len() <= text.len() {
        let at_boundary = pos == 0 || text[..pos].ends_with(b"}\n");
        if at_boundary && text[pos..].starts_with(needle) {
            return Some(pos);
        }
        pos += memchr_newline(&text[pos..]).map(|i| i + 1)?;
    }
    None
}

fn memchr_newline(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', s)
}

#[derive(Debug, Error)]
pub enum DumpError {
    #[error("the phase's state dump has no `{0}` section (the phase process ended early?)")]
    MissingSection(&'static str),
    #[error("the phase's state dump is malformed: {0}")]
    Malformed(String),
    #[error(transparent)]
    Declarations(#[from] DeclareParseError),
}

/// The sections of one dump, split on the marker lines `\n#CPB-<nonce> NAME\n`.
#[derive(Debug, Default)]
pub struct DumpSections<'a> {
    sections: Vec<(&'a str, &'a [u8])>,
}

impl<'a> DumpSections<'a> {
    pub fn split(dump: &'a [u8], nonce: &str) -> Self {
        let marker = format!("\n#CPB-{nonce} ");
        let marker = marker.as_bytes();
        let mut sections = Vec::new();
        // Markers do not overlap: the search goes on after each one.
        let positions: Vec<usize> = memchr::memmem::find_iter(dump, marker).collect();
        for (k, &pos) in positions.iter().enumerate() {
            let name_start = pos + marker.len();
            let Some(name_len) = memchr_newline(&dump[name_start..]) else {
                break;
            };
            let name = std::str::from_utf8(&dump[name_start..name_start + name_len]).unwrap_or("");
            let body_start = name_start + name_len + 1;
            let body_end = positions.get(k + 1).copied().unwrap_or(dump.len());
            let body = if body_start <= body_end {
                &dump[body_start..body_end]
            } else {
                &[][..]
            };
            sections.push((name, body));
        }
        DumpSections { sections }
    }

    /// The body of the first section called `name`.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.sections
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }

    /// The first section whose name starts with `prefix`, with the rest of its name.
    pub fn get_prefixed(&self, prefix: &str) -> Option<(&'a str, &'a [u8])> {
        self.sections
            .iter()
            .find_map(|(n, b)| n.strip_prefix(prefix).map(|rest| (rest, *b)))
    }

    pub fn require(&self, name: &'static str) -> Result<&'a [u8], DumpError> {
        self.get(name).ok_or(DumpError::MissingSection(name))
    }
}

/// What the `__capture` helper reports about the bash process that ran it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    pub umask: u32,
    pub limits: Vec<ResourceLimit>,
    pub stdout_target: Option<ByteString>,
    pub stderr_target: Option<ByteString>,
    pub physical_cwd: ByteString,
    /// Environment entries (`NAME=value`) in order.
    pub environ: Vec<ByteString>,
}

impl ProcessFacts {
    /// Serialises for the dump (see [`ProcessFacts::parse`]).
    pub fn encode(&self) -> Vec<u8> {
        use super::bytes::to_hex;
        let mut out = Vec::new();
        out.extend_from_slice(format!("umask {:o}\n", self.umask).as_bytes());
        for l in &self.limits {
            out.extend_from_slice(
                format!("rlimit {} {} {}\n", l.resource, l.soft, l.hard).as_bytes(),
            );
        }
        if let Some(t) = &self.stdout_target {
            out.extend_from_slice(format!("fd1 {}\n", to_hex(t.as_bytes())).as_bytes());
        }
        if let Some(t) = &self.stderr_target {
            out.extend_from_slice(format!("fd2 {}\n", to_hex(t.as_bytes())).as_bytes());
        }
        out.extend_from_slice(format!("cwd {}\n", to_hex(self.physical_cwd.as_bytes())).as_bytes());
        out.extend_from_slice(format!("environ {}\n", self.environ.len()).as_bytes());
        for e in &self.environ {
            out.extend_from_slice(e.as_bytes());
            out.push(0);
        }
        out
    }

    pub fn parse(body: &[u8]) -> Result<Self, DumpError> {
        use super::bytes::from_hex;
        let bad = |what: &str| DumpError::Malformed(format!("capture section: {what}"));
        let mut facts = ProcessFacts::default();
        let mut rest = body;
        loop {
            let nl = memchr_newline(rest).ok_or_else(|| bad("unterminated line"))?;
            let line = std::str::from_utf8(&rest[..nl]).map_err(|_| bad("non-UTF-8 line"))?;
            rest = &rest[nl + 1..];
            let mut words = line.split(' ');
            let key = words.next().unwrap_or("");
            let hex = |w: Option<&str>| -> Result<ByteString, DumpError> {
                w.and_then(from_hex)
                    .map(ByteString)
                    .ok_or_else(|| bad("bad hex"))
            };
            match key {
                "umask" => {
                    facts.umask = u32::from_str_radix(words.next().unwrap_or(""), 8)
                        .map_err(|_| bad("bad umask"))?
                }
                "rlimit" => {
                    let mut n = || words.next().and_then(|w| w.parse::<u64>().ok());
                    let (r, s, h) = (n(), n(), n());
                    match (r, s, h) {
                        (Some(r), Some(soft), Some(hard)) => facts.limits.push(ResourceLimit {
                            resource: r as i32,
                            soft,
                            hard,
                        }),
                        _ => return Err(bad("bad rlimit")),
                    }
                }
                "fd1" => facts.stdout_target = Some(hex(words.next())?),
                "fd2" => facts.stderr_target = Some(hex(words.next())?),
                "cwd" => facts.physical_cwd = hex(words.next())?,
                "environ" => {
                    let count: usize = words
                        .next()
                        .and_then(|w| w.parse().ok())
                        .ok_or_else(|| bad("bad environ count"))?;
                    for _ in 0..count {
                        let end = rest
                            .iter()
                            .position(|&b| b == 0)
                            .ok_or_else(|| bad("truncated environ"))?;
                        facts.environ.push(ByteString(rest[..end].to_vec()));
                        rest = &rest[end + 1..];
                    }
                    return Ok(facts);
                }
                _ => return Err(bad("unknown key")),
            }
        }
    }
}

fn parse_options(body: &[u8], prefix_on: &str, prefix_off: &str) -> Vec<(String, bool)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| {
            if let Some(name) = line.strip_prefix(prefix_on) {
                Some((name.trim().to_owned(), true))
            } else {
                line.strip_prefix(prefix_off)
                    .map(|name| (name.trim().to_owned(), false))
            }
        })
        .collect()
}

/// Builds the state from a dump's sections (see `driver::epilogue`).
pub fn parse_state(sections: &DumpSections<'_>) -> Result<ShellState, DumpError> {
    let set_options = parse_options(sections.require("set")?, "set -o ", "set +o ");
    let shopt_options = parse_options(sections.require("shopt")?, "shopt -s ", "shopt -u ");
    let function_names: Vec<(String, bool)> =
        String::from_utf8_lossy(sections.require("function-names")?)
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("declare -f")?;
                let (flags, name) = rest.split_once(' ')?;
                Some((name.to_owned(), flags.contains('x')))
            })
            .collect();
    let all = parse_declarations(sections.require("variables")?)?;
    let traps_of = |section: &str, body: &[u8]| {
        super::traps::parse_traps(body)
            .map_err(|e| DumpError::Malformed(format!("{section} section: {e}")))
    };
    let level_traps = traps_of("traps", sections.require("traps")?)?;
    // The setup step: the top level's DEBUG trap, which the sourced builder script ran without.
    let top_debug: Vec<Trap> = match sections.get("outer-debug") {
        Some(body) => traps_of("outer-debug", body)?,
        None => Vec::new(),
    };
    let has_debug = level_traps.iter().any(|t| t.condition == "DEBUG");
    let outer_debug = top_debug
        .into_iter()
        .filter(|t| t.condition == "DEBUG" && !has_debug);
    let (traps, outer_traps) = match sections.get("inner-traps") {
        // The recorder ran inside genericBuild: its traps are the frame's, and the setup
        // step's own DEBUG/RETURN/ERR are the outer levels'.
        Some(body) => {
            let inner = traps_of("inner-traps", body)?;
            let outer: Vec<Trap> = level_traps
                .into_iter()
                .filter(|t| super::traps::is_frame_scoped(&t.condition))
                .chain(outer_debug)
                .collect();
            (inner, outer)
        }
        None => (level_traps, outer_debug.collect()),
    };
    let traps = ByteString(super::traps::format_traps(&traps));
    let outer_traps = ByteString(super::traps::format_traps(&outer_traps));
    let functions = ByteString(sections.require("functions")?.to_vec());
    let facts = ProcessFacts::parse(sections.require("capture")?)?;

    let mut dir_stack = Vec::new();
    if let Some(body) = sections.get("dirstack") {
        for var in parse_declarations(body)? {
            if let super::declare::Value::Indexed(entries) = &var.value {
                dir_stack = entries.iter().skip(1).map(|(_, v)| v.clone()).collect();
            }
        }
    }
    let mut variables = Vec::with_capacity(all.len());
    for var in all {
        if is_bash_owned(&var.name) {
            continue;
        }
        variables.push(var);
    }
    variables.sort_by(|a, b| a.name.cmp(&b.name));

    let cwd = variables
        .iter()
        .find(|v| v.name == "PWD")
        .and_then(|v| match &v.value {
            super::declare::Value::Scalar(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| facts.physical_cwd.clone());

    let exported: BTreeMap<&str, ()> = variables
        .iter()
        .filter(|v| v.attributes.exported)
        .map(|v| (v.name.as_str(), ()))
        .collect();
    let export_order = facts
        .environ
        .iter()
        .filter_map(|entry| {
            let eq = entry.as_bytes().iter().position(|&b| b == b'=')?;
            let name = std::str::from_utf8(&entry.as_bytes()[..eq]).ok()?;
            exported.contains_key(name).then(|| name.to_owned())
        })
        .collect();

    Ok(ShellState {
        variables,
        export_order,
        functions,
        function_names,
        set_options,
        shopt_options,
        traps,
        outer_traps,
        cwd,
        dir_stack,
        umask: facts.umask,
        limits: facts.limits,
        stdout_target: facts.stdout_target,
        stderr_target: facts.stderr_target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_owned_list_is_sorted_for_binary_search() {
        let mut sorted = BASH_OWNED.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, BASH_OWNED);
        assert!(is_bash_owned("PPID") && is_bash_owned("_") && !is_bash_owned("PATH"));
    }

    #[test]
    fn facts_round_trip() {
        let facts = ProcessFacts {
            umask: 0o077,
            limits: vec![ResourceLimit {
                resource: 7,
                soft: 1024,
                hard: u64::MAX,
            }],
            stdout_target: Some(ByteString::from("/build/log")),
            stderr_target: None,
            physical_cwd: ByteString(b"/build/\xff".to_vec()),
            environ: vec![ByteString::from("A=1\n2"), ByteString::from("B=")],
        };
        assert_eq!(ProcessFacts::parse(&facts.encode()).unwrap(), facts);
    }

    #[test]
    fn sections_split_on_nonce_markers_only() {
        let dump = b"\n#CPB-n1 a\nx\n#CPB-n2 fake\n\n#CPB-n1 b\n\x00y\n";
        let s = DumpSections::split(dump, "n1");
        assert_eq!(s.get("a"), Some(&b"x\n#CPB-n2 fake\n"[..]));
        assert_eq!(s.get("b"), Some(&b"\x00y\n"[..]));
    }

    #[test]
    fn split_functions_by_known_names() {
        let text = b"a () \n{ \n    echo '\nb () \n'\n}\nb () \n{ \n    :\n}\n";
        let names = vec![("a".to_owned(), false), ("b".to_owned(), false)];
        let parts = split_functions(text, &names);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].1.ends_with(b"'\n}\n"));
        assert_eq!(parts[1].1, b"b () \n{ \n    :\n}\n");
    }
}
