//! ninja's build log across moved output paths (design §4). ninja reruns a command when the
//! hash of the command line differs from the one `.ninja_log` recorded for its output. After
//! a restore, `build.ninja` has the earlier build's output paths rewritten to this build's
//! (a `-DPREFIX="$out"` compile definition, an install directory baked into a flag), and so
//! have the objects those commands made; the log still holds the hashes of the earlier
//! commands, so ninja would rerun every such command although its output is what it would
//! make. This module evaluates the manifest (`build.ninja` and the files it includes) the
//! way ninja does, as the earlier build had it and rewritten, and moves each log entry whose
//! hash is that of the earlier command to the hash of the rewritten one.
//!
//! Failing safe: an entry whose hash matches neither command (a manifest construct this
//! evaluator does not reproduce, or a command that changed for another reason) is left as
//! it is, and ninja reruns that command as it would have anyway. A manifest that does not
//! parse, or a log of a version not known here, leaves the whole log alone.
//!
//! Log versions: 5 (ninja 1.10–1.12, MurmurHash64A) and 7 (ninja 1.13, rapidhash), one line
//! per output: start, end, mtime, output path, command hash in hexadecimal.
//!
//! Pure: files come from the caller's reader; [`NinjaLogs`] is the
//! [`crate::checkpoint::Translator`] that imports of an earlier checkpoint run.

use crate::checkpoint::{ContentHash, EntryKind, RelPath, Rewrites, RootState, Translator};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;

type Bytes = Vec<u8>;

/// How deep `include`/`subninja` may nest.
const MAX_INCLUDE_DEPTH: usize = 32;
/// How deep variable references may nest while a command is evaluated (ninja reports a
/// cycle; anything this deep is one).
const MAX_EVAL_DEPTH: usize = 64;
/// The name of ninja's build log, and of the manifest ninja reads by default beside it.
const LOG_NAME: &[u8] = b".ninja_log";
const MANIFEST_NAME: &[u8] = b"build.ninja";

/// Why a manifest could not be evaluated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("{file}:{line}: {problem}")]
    Syntax {
        file: String,
        line: usize,
        problem: String,
    },
    #[error("{0}: no such file in the tree")]
    Missing(String),
    #[error("include and subninja nested deeper than {MAX_INCLUDE_DEPTH} files")]
    TooDeep,
    #[error("variable `{0}` refers to itself")]
    Cycle(String),
}

/// One build statement with a command (not `phony`), evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Every output, explicit and implicit, canonical (as the log names them).
    pub outputs: Vec<Bytes>,
    /// What ninja hashes: the command, then `;rspfile=` and the response file's content when
    /// there is one.
    pub command: Bytes,
}

/// The edges of a manifest, in the order ninja reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub edges: Vec<Edge>,
}

#[derive(Debug)]
enum Piece {
    Text(Bytes),
    Var(Bytes),
}

/// A value or path as written: text and variable references.
type EvalString = Vec<Piece>;

#[derive(Debug, Default)]
struct Rule {
    bindings: HashMap<Bytes, EvalString>,
}

#[derive(Debug, Default)]
struct Scope {
    parent: Option<usize>,
    vars: HashMap<Bytes, Bytes>,
    rules: HashMap<Bytes, Rc<Rule>>,
}

/// A build statement as parsed; its command is evaluated once the whole manifest is read,
/// because ninja evaluates rule variables late (a file variable set after the statement
/// counts).
struct PendingEdge {
    rule: Rc<Rule>,
    /// The statement's own scope when it has bindings, else its file's.
    scope: usize,
    outputs: Vec<Bytes>,
    explicit_outputs: usize,
    explicit_inputs: Vec<Bytes>,
}

/// Evaluates the manifest `root` (a path as ninja would open it from its working directory)
/// with files from `read`.
pub fn evaluate(
    root: &[u8],
    read: &mut dyn FnMut(&[u8]) -> Option<Bytes>,
) -> Result<Manifest, ManifestError> {
    let mut parser = Parser {
        scopes: vec![Scope::default()],
        edges: Vec::new(),
        read,
    };
    parser.parse_file(root, 0, 0)?;
    let mut manifest = Manifest::default();
    for e in &parser.edges {
        let mut command = parser.edge_variable(e, b"command", 0)?;
        let rsp = parser.edge_variable(e, b"rspfile_content", 0)?;
        if !rsp.is_empty() {
            command.extend_from_slice(b";rspfile=");
            command.extend_from_slice(&rsp);
        }
        manifest.edges.push(Edge {
            outputs: e.outputs.clone(),
            command,
        });
    }
    Ok(manifest)
}

struct Parser<'r> {
    scopes: Vec<Scope>,
    edges: Vec<PendingEdge>,
    read: &'r mut dyn FnMut(&[u8]) -> Option<Bytes>,
}

impl Parser<'_> {
    fn parse_file(&mut self, name: &[u8], scope: usize, depth: usize) -> Result<(), ManifestError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ManifestError::TooDeep);
        }
        let text = (self.read)(name)
            .ok_or_else(|| ManifestError::Missing(String::from_utf8_lossy(name).into_owned()))?;
        let mut lx = Lexer {
            text: &text,
            pos: 0,
            file: name,
        };
        while lx.next_statement()? {
            let word = lx.ident().ok_or_else(|| lx.error("expected a statement"))?;
            lx.eat_spaces();
            match word.as_slice() {
                b"build" => self.parse_build(&mut lx, scope)?,
                b"rule" => {
                    let name = lx.ident().ok_or_else(|| lx.error("expected a rule name"))?;
                    lx.eat_spaces();
                    lx.end_of_line()?;
                    let mut rule = Rule::default();
                    while lx.indented() {
                        let (key, value) = lx.binding()?;
                        rule.bindings.insert(key, value);
                    }
                    self.scopes[scope].rules.insert(name, Rc::new(rule));
                }
                b"pool" => {
                    lx.ident().ok_or_else(|| lx.error("expected a pool name"))?;
                    lx.eat_spaces();
                    lx.end_of_line()?;
                    while lx.indented() {
                        lx.binding()?;
                    }
                }
                b"default" => {
                    while !lx.path()?.is_empty() {}
                    lx.end_of_line()?;
                }
                b"include" | b"subninja" => {
                    let path = lx.path()?;
                    lx.end_of_line()?;
                    let path = self.evaluate_in(&path, scope);
                    let into = if word == b"subninja" {
                        self.scopes.push(Scope {
                            parent: Some(scope),
                            ..Scope::default()
                        });
                        self.scopes.len() - 1
                    } else {
                        scope
                    };
                    self.parse_file(&path, into, depth + 1)?;
                }
                _ => {
                    lx.expect(b'=')?;
                    lx.eat_spaces();
                    let value = lx.eval_string(false)?;
                    let value = self.evaluate_in(&value, scope);
                    self.scopes[scope].vars.insert(word, value);
                }
            }
        }
        Ok(())
    }

    fn parse_build(&mut self, lx: &mut Lexer, scope: usize) -> Result<(), ManifestError> {
        let mut outputs = lx.paths()?;
        let explicit_outputs = outputs.len();
        if lx.token(b"|") {
            outputs.extend(lx.paths()?);
        }
        if outputs.is_empty() {
            return Err(lx.error("expected an output path"));
        }
        lx.expect(b':')?;
        lx.eat_spaces();
        let rule_name = lx.ident().ok_or_else(|| lx.error("expected a rule name"))?;
        lx.eat_spaces();
        let inputs = lx.paths()?;
        for marker in [&b"|"[..], b"||", b"|@"] {
            if lx.token(marker) {
                lx.paths()?;
            }
        }
        lx.end_of_line()?;
        let mut edge_scope = scope;
        while lx.indented() {
            let (key, value) = lx.binding()?;
            if edge_scope == scope {
                self.scopes.push(Scope {
                    parent: Some(scope),
                    ..Scope::default()
                });
                edge_scope = self.scopes.len() - 1;
            }
            // Statement bindings are evaluated in the file's scope, not in each other's.
            let value = self.evaluate_in(&value, scope);
            self.scopes[edge_scope].vars.insert(key, value);
        }
        if rule_name == b"phony" && self.rule(scope, &rule_name).is_none() {
            return Ok(());
        }
        let rule = self.rule(scope, &rule_name).ok_or_else(|| {
            lx.error(&format!(
                "unknown rule {}",
                String::from_utf8_lossy(&rule_name)
            ))
        })?;
        let canonical =
            |p: &EvalString, this: &Self| canonical_path(&this.evaluate_in(p, edge_scope));
        let outputs = outputs.iter().map(|p| canonical(p, self)).collect();
        let explicit_inputs = inputs.iter().map(|p| canonical(p, self)).collect();
        self.edges.push(PendingEdge {
            rule,
            scope: edge_scope,
            outputs,
            explicit_outputs,
            explicit_inputs,
        });
        Ok(())
    }

    fn rule(&self, mut scope: usize, name: &[u8]) -> Option<Rc<Rule>> {
        loop {
            if let Some(r) = self.scopes[scope].rules.get(name) {
                return Some(r.clone());
            }
            scope = self.scopes[scope].parent?;
        }
    }

    /// A variable as a scope sees it: its own, then its parents'.
    fn variable(&self, mut scope: usize, name: &[u8]) -> Bytes {
        loop {
            if let Some(v) = self.scopes[scope].vars.get(name) {
                return v.clone();
            }
            match self.scopes[scope].parent {
                Some(p) => scope = p,
                None => return Vec::new(),
            }
        }
    }

    fn evaluate_in(&self, value: &EvalString, scope: usize) -> Bytes {
        let mut out = Vec::new();
        for piece in value {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Var(v) => out.extend(self.variable(scope, v)),
            }
        }
        out
    }

    /// A variable as a build statement's command sees it: `$in`, `$in_newline` and `$out`;
    /// then the statement's scope (its bindings, or its file's variables when it has none);
    /// then the rule's binding, evaluated the same way; then the enclosing scopes.
    fn edge_variable(
        &self,
        e: &PendingEdge,
        name: &[u8],
        depth: usize,
    ) -> Result<Bytes, ManifestError> {
        match name {
            b"in" => return Ok(shell_list(&e.explicit_inputs, b' ')),
            b"in_newline" => return Ok(shell_list(&e.explicit_inputs, b'\n')),
            b"out" => return Ok(shell_list(&e.outputs[..e.explicit_outputs], b' ')),
            _ => {}
        }
        if depth > MAX_EVAL_DEPTH {
            return Err(ManifestError::Cycle(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        let scope = &self.scopes[e.scope];
        if let Some(v) = scope.vars.get(name) {
            return Ok(v.clone());
        }
        if let Some(value) = e.rule.bindings.get(name) {
            let mut out = Vec::new();
            for piece in value {
                match piece {
                    Piece::Text(t) => out.extend_from_slice(t),
                    Piece::Var(v) => out.extend(self.edge_variable(e, v, depth + 1)?),
                }
            }
            return Ok(out);
        }
        Ok(scope
            .parent
            .map(|p| self.variable(p, name))
            .unwrap_or_default())
    }
}

/// Paths joined by `sep`, each quoted for a POSIX shell the way ninja quotes them.
fn shell_list(paths: &[Bytes], sep: u8) -> Bytes {
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        let safe = p
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"_+-./".contains(&c));
        if safe {
            out.extend_from_slice(p);
        } else {
            out.push(b'\'');
            for &c in p {
                if c == b'\'' {
                    out.extend_from_slice(b"'\\''");
                } else {
                    out.push(c);
                }
            }
            out.push(b'\'');
        }
    }
    out
}

/// ninja's canonical form of a path: no `.` components, `x/..` folded, no repeated or
/// trailing slashes; `.` for an empty result.
pub fn canonical_path(path: &[u8]) -> Bytes {
    let absolute = path.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if parts.last().is_some_and(|l| *l != b"..") => {
                parts.pop();
            }
            _ => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if absolute {
        out.push(b'/');
    }
    out.extend(parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// A cursor over one manifest file.
struct Lexer<'t> {
    text: &'t [u8],
    pos: usize,
    file: &'t [u8],
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

fn is_simple_var(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')
}

impl Lexer<'_> {
    fn error(&self, problem: &str) -> ManifestError {
        ManifestError::Syntax {
            file: String::from_utf8_lossy(self.file).into_owned(),
            line: 1 + self.text[..self.pos.min(self.text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            problem: problem.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn rest(&self) -> &[u8] {
        &self.text[self.pos..]
    }

    /// The length of a line break at the cursor (`\n` or `\r\n`), 0 if none.
    fn line_break(&self) -> usize {
        if self.rest().starts_with(b"\n") {
            1
        } else if self.rest().starts_with(b"\r\n") {
            2
        } else {
            0
        }
    }

    fn skip_line(&mut self) {
        match self.rest().iter().position(|&b| b == b'\n') {
            Some(i) => self.pos += i + 1,
            None => self.pos = self.text.len(),
        }
    }

    /// Skips comment lines (indented or not); returns where the current line starts, with
    /// the cursor past its indentation.
    fn past_comments(&mut self) -> usize {
        loop {
            let start = self.pos;
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
            if self.peek() != Some(b'#') {
                return start;
            }
            self.skip_line();
        }
    }

    /// Moves to the start of the next statement, past blank lines and comments; false at
    /// the end of the file.
    fn next_statement(&mut self) -> Result<bool, ManifestError> {
        loop {
            let start = self.past_comments();
            let brk = self.line_break();
            if brk > 0 {
                self.pos += brk;
                continue;
            }
            if self.peek().is_none() {
                return Ok(false);
            }
            if self.pos > start {
                return Err(self.error("unexpected indentation"));
            }
            return Ok(true);
        }
    }

    /// Whether the next line is an indented binding (comments skipped); moves past the
    /// indentation if so, else stays at the start of the line.
    fn indented(&mut self) -> bool {
        let start = self.past_comments();
        if self.pos == start || self.peek().is_none() || self.line_break() > 0 {
            self.pos = start;
            return false;
        }
        true
    }

    /// Spaces, and `$` line continuations with the next line's indentation.
    fn eat_spaces(&mut self) {
        loop {
            if self.peek() == Some(b' ') {
                self.pos += 1;
            } else if self.rest().starts_with(b"$\n") || self.rest().starts_with(b"$\r\n") {
                self.pos += if self.rest()[1] == b'\n' { 2 } else { 3 };
                while self.peek() == Some(b' ') {
                    self.pos += 1;
                }
            } else {
                return;
            }
        }
    }

    fn ident(&mut self) -> Option<Bytes> {
        let n = self.rest().iter().take_while(|&&c| is_ident(c)).count();
        if n == 0 {
            return None;
        }
        self.pos += n;
        Some(self.text[self.pos - n..self.pos].to_vec())
    }

    fn expect(&mut self, c: u8) -> Result<(), ManifestError> {
        if self.peek() != Some(c) {
            return Err(self.error(&format!("expected `{}`", c as char)));
        }
        self.pos += 1;
        Ok(())
    }

    /// Takes `token` (`|`, `||` or `|@`, never the start of a longer one) and the spaces
    /// after it.
    fn token(&mut self, token: &[u8]) -> bool {
        let rest = self.rest();
        if !rest.starts_with(token) {
            return false;
        }
        if token == b"|" && matches!(rest.get(1), Some(b'|') | Some(b'@')) {
            return false;
        }
        self.pos += token.len();
        self.eat_spaces();
        true
    }

    fn end_of_line(&mut self) -> Result<(), ManifestError> {
        self.eat_spaces();
        let brk = self.line_break();
        if brk == 0 && self.peek().is_some() {
            return Err(self.error("expected the end of the line"));
        }
        self.pos += brk;
        Ok(())
    }

    /// `key = value` after an indentation.
    fn binding(&mut self) -> Result<(Bytes, EvalString), ManifestError> {
        let key = self
            .ident()
            .ok_or_else(|| self.error("expected a variable name"))?;
        self.eat_spaces();
        self.expect(b'=')?;
        self.eat_spaces();
        Ok((key, self.eval_string(false)?))
    }

    fn path(&mut self) -> Result<EvalString, ManifestError> {
        self.eval_string(true)
    }

    /// Paths up to the next `:`, `|` or the end of the line.
    fn paths(&mut self) -> Result<Vec<EvalString>, ManifestError> {
        let mut paths = Vec::new();
        loop {
            let p = self.path()?;
            if p.is_empty() {
                return Ok(paths);
            }
            paths.push(p);
        }
    }

    /// A path (ends before a space, `:`, `|` or a line break; the spaces after it are
    /// taken) or a value (ends after its line break).
    fn eval_string(&mut self, path: bool) -> Result<EvalString, ManifestError> {
        let mut out: EvalString = Vec::new();
        let text = |out: &mut EvalString, bytes: &[u8]| match out.last_mut() {
            Some(Piece::Text(t)) => t.extend_from_slice(bytes),
            _ => out.push(Piece::Text(bytes.to_vec())),
        };
        while let Some(c) = self.peek() {
            let brk = self.line_break();
            if brk > 0 {
                if !path {
                    self.pos += brk;
                }
                break;
            }
            if path && matches!(c, b' ' | b':' | b'|') {
                break;
            }
            if c != b'$' {
                let n = self
                    .rest()
                    .iter()
                    .take_while(|&&b| {
                        b != b'$'
                            && b != b'\n'
                            && b != b'\r'
                            && !(path && matches!(b, b' ' | b':' | b'|'))
                    })
                    .count()
                    .max(1);
                text(&mut out, &self.text[self.pos..self.pos + n]);
                self.pos += n;
                continue;
            }
            self.pos += 1;
            match self.peek() {
                Some(e @ (b'$' | b' ' | b':')) => {
                    text(&mut out, &[e]);
                    self.pos += 1;
                }
                Some(b'\n') | Some(b'\r') if self.line_break() > 0 => {
                    self.pos += self.line_break();
                    while self.peek() == Some(b' ') {
                        self.pos += 1;
                    }
                }
                Some(b'{') => {
                    self.pos += 1;
                    let n = self.rest().iter().take_while(|&&c| is_ident(c)).count();
                    if n == 0 || self.rest().get(n) != Some(&b'}') {
                        return Err(self.error("bad ${...} reference"));
                    }
                    out.push(Piece::Var(self.rest()[..n].to_vec()));
                    self.pos += n + 1;
                }
                Some(c) if is_simple_var(c) => {
                    let n = self
                        .rest()
                        .iter()
                        .take_while(|&&c| is_simple_var(c))
                        .count();
                    out.push(Piece::Var(self.rest()[..n].to_vec()));
                    self.pos += n;
                }
                _ => return Err(self.error("bad $-escape")),
            }
        }
        if path {
            self.eat_spaces();
        }
        Ok(out)
    }
}

/// The hash function of a log version, if known here.
fn command_hasher(version: u32) -> Option<fn(&[u8]) -> u64> {
    match version {
        5 | 6 => Some(murmur_hash_64a),
        7 => Some(|c: &[u8]| rapidhash::v1::rapidhash_v1(c)),
        _ => None,
    }
}

/// MurmurHash64A (Austin Appleby's 64-bit MurmurHash2) with ninja's seed, little-endian.
pub fn murmur_hash_64a(key: &[u8]) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h: u64 = 0xDECA_FBAD_DECA_FBAD ^ (key.len() as u64).wrapping_mul(M);
    let mut blocks = key.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().expect("8-byte block"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// What [`translate_log`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogTranslation {
    /// The new log, when an entry changed.
    pub content: Option<Bytes>,
    /// Entries moved from the earlier command's hash to the rewritten command's.
    pub moved: usize,
    /// Entries of known outputs whose hash is neither (ninja will rerun their commands).
    pub unmatched: usize,
}

/// Moves the hash of each entry of `log` (already rewritten: its output names are this
/// build's) that is the hash of the earlier command of its output (`earlier`, the manifest
/// before rewriting) to the hash of the command `now` has for it. The manifests must have
/// the same edges in the same order (one is the other rewritten); `None` when they do not,
/// or when the log's version is not known here. Every other byte stays as it is.
pub fn translate_log(log: &[u8], earlier: &Manifest, now: &Manifest) -> Option<LogTranslation> {
    let header_end = log.iter().position(|&b| b == b'\n')? + 1;
    let version: u32 = std::str::from_utf8(log[..header_end].strip_prefix(b"# ninja log v")?)
        .ok()?
        .trim_end()
        .parse()
        .ok()?;
    let hash = command_hasher(version)?;
    if earlier.edges.len() != now.edges.len() {
        return None;
    }
    let mut edge_of: HashMap<&[u8], usize> = HashMap::new();
    for (i, e) in now.edges.iter().enumerate() {
        for o in &e.outputs {
            edge_of.entry(o.as_slice()).or_insert(i);
        }
    }
    // Edge → (hash of its earlier command, hash of its command now), computed when needed.
    let mut hashes: HashMap<usize, (u64, u64)> = HashMap::new();
    let mut result = LogTranslation::default();
    let mut out = log[..header_end].to_vec();
    for line in log[header_end..].split_inclusive(|&b| b == b'\n') {
        let end = line.len() - usize::from(line.ends_with(b"\n"));
        let fields: Vec<&[u8]> = line[..end].split(|&b| b == b'\t').collect();
        let entry = match fields.as_slice() {
            [_, _, _, output, field] => edge_of.get(output).and_then(|&i| {
                let logged = u64::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()?;
                Some((i, logged, field.len()))
            }),
            _ => None,
        };
        let Some((i, logged, digits)) = entry else {
            out.extend_from_slice(line);
            continue;
        };
        let (old, new) = *hashes
            .entry(i)
            .or_insert_with(|| (hash(&earlier.edges[i].command), hash(&now.edges[i].command)));
        if logged == new {
            out.extend_from_slice(line);
        } else if logged == old {
            out.extend_from_slice(&line[..end - digits]);
            out.extend_from_slice(format!("{new:x}").as_bytes());
            out.extend_from_slice(&line[end..]);
            result.moved += 1;
        } else {
            result.unmatched += 1;
            out.extend_from_slice(line);
        }
    }
    if result.moved > 0 {
        result.content = Some(out);
    }
    Some(result)
}

/// One log an import looked at, for the build log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReport {
    /// The log's path in its root, escaped.
    pub path: String,
    /// What was done: the counts of [`LogTranslation`], or why the log was left alone.
    pub outcome: Result<(usize, usize), String>,
}

/// The line the build log gives it (after `checkpoint-builder: `).
impl std::fmt::Display for LogReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = &self.path;
        match &self.outcome {
            Ok((moved, unmatched)) => {
                write!(
                    f,
                    "ninja log {path}: {moved} command hash(es) moved to this build's output paths"
                )?;
                if *unmatched > 0 {
                    write!(
                        f,
                        ", {unmatched} not recognised (ninja reruns those commands)"
                    )?;
                }
                Ok(())
            }
            Err(why) => write!(
                f,
                "ninja log {path} left as it is: {why}; ninja reruns the commands that name an \
                 output path"
            ),
        }
    }
}

/// The [`Translator`] for ninja build logs: for each `.ninja_log` with a `build.ninja`
/// beside it (ninja's default layout, which CMake and Meson use), evaluates the manifest
/// before and after the rewrite and translates the log. Results are remembered with the
/// contents they were made from, so the layers of an import that share them cost one
/// evaluation.
#[derive(Debug, Default)]
pub struct NinjaLogs {
    memo: Mutex<Memo>,
}

/// One translation: the log's path, the files read (as ninja names them) with their
/// contents' hashes, and the translated log if it changed.
type MemoEntry = (RelPath, Vec<(Bytes, ContentHash)>, Option<Bytes>);

#[derive(Debug, Default)]
struct Memo {
    results: Vec<MemoEntry>,
    reports: Vec<LogReport>,
}

impl NinjaLogs {
    /// The logs looked at so far that needed something or could not be read, each once.
    pub fn reports(&self) -> Vec<LogReport> {
        self.memo.lock().expect("ninja log memo").reports.clone()
    }
}

impl Translator for NinjaLogs {
    fn translate(
        &self,
        old: &RootState,
        read: &mut dyn FnMut(&RelPath) -> Option<Vec<u8>>,
        rw: &Rewrites,
    ) -> Vec<(RelPath, Vec<u8>)> {
        let mut memo = self.memo.lock().expect("ninja log memo");
        let mut out = Vec::new();
        let logs = old.iter().filter(|(p, e)| {
            p.file_name() == Some(LOG_NAME)
                && matches!(e.kind, EntryKind::File { hardlink: None, .. })
        });
        for (log_path, _) in logs {
            let dir = log_path.parent().unwrap_or_else(RelPath::root);
            let hash_of = |name: &[u8]| old.get(&resolve(&dir, name)?)?.blob();
            let known = memo.results.iter().find(|(p, read, _)| {
                p == log_path && read.iter().all(|(name, h)| hash_of(name) == Some(*h))
            });
            if let Some((_, _, result)) = known {
                out.extend(result.clone().map(|bytes| (log_path.clone(), bytes)));
                continue;
            }
            let mut files: Vec<(Bytes, ContentHash, Bytes)> = Vec::new();
            let mut reader = |name: &[u8]| -> Option<Bytes> {
                if let Some((_, _, b)) = files.iter().find(|(n, _, _)| n == name) {
                    return Some(b.clone());
                }
                let path = resolve(&dir, name)?;
                let hash = old.get(&path)?.blob()?;
                let bytes = read(&path)?;
                files.push((name.to_vec(), hash, bytes.clone()));
                Some(bytes)
            };
            let Some(log) = reader(LOG_NAME) else {
                continue;
            };
            let earlier = evaluate(MANIFEST_NAME, &mut reader);
            let outcome = earlier
                .map_err(|e| format!("its manifest was not understood ({e})"))
                .and_then(|earlier| {
                    let mut rewritten = |name: &[u8]| {
                        let (_, _, b) = files.iter().find(|(n, _, _)| n == name)?;
                        Some(rw.apply(b).unwrap_or_else(|| b.clone()))
                    };
                    let now = evaluate(MANIFEST_NAME, &mut rewritten)
                        .map_err(|e| format!("its rewritten manifest was not understood ({e})"))?;
                    let log_now = rw.apply(&log).unwrap_or(log);
                    translate_log(&log_now, &earlier, &now).ok_or_else(|| {
                        "its version, or its manifest's edges, are not known here".to_owned()
                    })
                });
            let result = match outcome {
                Ok(t) => {
                    if t.moved > 0 || t.unmatched > 0 {
                        memo.reports.push(LogReport {
                            path: log_path.escaped(),
                            outcome: Ok((t.moved, t.unmatched)),
                        });
                    }
                    t.content
                }
                Err(why) => {
                    memo.reports.push(LogReport {
                        path: log_path.escaped(),
                        outcome: Err(why),
                    });
                    None
                }
            };
            out.extend(result.clone().map(|bytes| (log_path.clone(), bytes)));
            let read = files.into_iter().map(|(n, h, _)| (n, h)).collect();
            memo.results.push((log_path.clone(), read, result));
        }
        out
    }
}

/// The path in the root of `name` as ninja, run in `dir`, opens it; `None` outside the
/// root.
fn resolve(dir: &RelPath, name: &[u8]) -> Option<RelPath> {
    if name.first() == Some(&b'/') {
        return None;
    }
    let mut joined = dir.as_bytes().to_vec();
    if !joined.is_empty() {
        joined.push(b'/');
    }
    joined.extend_from_slice(name);
    match canonical_path(&joined).as_slice() {
        b"." => Some(RelPath::root()),
        c if c == b".." || c.starts_with(b"../") || c.starts_with(b"/") => None,
        c => RelPath::new(c.to_vec()).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testutil::tree_of;

    /// A manifest using most of ninja's syntax: an include (same scope) and a subninja (own
    /// scope), statement bindings evaluated early and rule variables late (`cflags` is set
    /// again after the statements), explicit and implicit outputs, implicit and order-only
    /// inputs, escapes, continuations, a comment in a block, a path that needs quoting, a
    /// response file, phony statements.
    const BUILD_NINJA: &str = "\
# a manifest with most of ninja's syntax
ninja_required_version = 1.5
prefix = /nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-demo
cflags = -O2 -DPREFIX=\"$prefix\"
include rules.ninja

build obj/a.o: cc src/a.c | src/a.h || order
  flags = -DEXTRA $cflags
build obj/b.o obj/b.extra | obj/b.imp: cc ./src/../src/b.c
build obj/sp$ ace.o: cc src/sp$ ace.c
  # a comment inside a block
  flags = -DCOLON$:x ${prefix}/lib $$HOME
build lib.a: ar obj/a.o obj/b.o $
    obj/sp$ ace.o
build order: phony
build all: phony lib.a sub/c.o
subninja sub/sub.ninja
cflags = -O3 -DPREFIX=\"$prefix\"
default all
";
    const RULES_NINJA: &str = "\
rule cc
  command = : cc $flags $cflags -c $in -o $out && touch $out $
      && true
  description = CC $out
rule ar
  command = : ar $out @$out.rsp && touch $out
  rspfile = $out.rsp
  rspfile_content = $in_newline
";
    const SUB_NINJA: &str = "cflags = -Osub\nbuild sub/c.o: cc sub/c.c\n";

    /// What ninja 1.11.1 (log v5) and 1.13.2 (log v7) logged for each output after building
    /// the manifest above in a directory of its own (Debian's ninja-build and PyPI's ninja
    /// wheel, 2026-11-21).
    const LOGGED: &[(&str, &str, &str)] = &[
        ("obj/a.o", "55d300d7e7018c45", "1b316566b5d55b8b"),
        ("obj/b.o", "d41a1f7506c21d1a", "70c9a2426c4c92f0"),
        ("obj/b.extra", "d41a1f7506c21d1a", "70c9a2426c4c92f0"),
        ("obj/b.imp", "d41a1f7506c21d1a", "70c9a2426c4c92f0"),
        ("obj/sp ace.o", "d12436ca98c24e9", "61f72f1dad5574a2"),
        ("sub/c.o", "e90bfc36bb9f87b9", "297fad571bc63f9"),
        ("lib.a", "cd0cca85b48bcf37", "97a65d925bf675e1"),
    ];

    /// ninja 1.11.1's log of the same manifest with the prefix's hash all `b`s.
    const LOGGED_REWRITTEN_V5: &[(&str, &str)] = &[
        ("obj/a.o", "ed689c441fc39296"),
        ("obj/b.o", "fa1b77815de6cdb3"),
        ("obj/sp ace.o", "a8dcbcbaeda2ed12"),
        ("sub/c.o", "e90bfc36bb9f87b9"),
        ("lib.a", "cd0cca85b48bcf37"),
    ];

    const OLD_HASH: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const NEW_HASH: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn files(build: &str) -> HashMap<Bytes, Bytes> {
        [
            ("build.ninja", build),
            ("rules.ninja", RULES_NINJA),
            ("sub/sub.ninja", SUB_NINJA),
        ]
        .into_iter()
        .map(|(n, c)| (n.as_bytes().to_vec(), c.as_bytes().to_vec()))
        .collect()
    }

    fn manifest(build: &str) -> Manifest {
        let files = files(build);
        evaluate(b"build.ninja", &mut |n| files.get(n).cloned()).unwrap()
    }

    fn command_of<'m>(m: &'m Manifest, output: &str) -> &'m [u8] {
        &m.edges
            .iter()
            .find(|e| e.outputs.iter().any(|o| o == output.as_bytes()))
            .unwrap_or_else(|| panic!("no edge makes {output}"))
            .command
    }

    fn log(version: u32, entries: &[(&str, &str)]) -> Vec<u8> {
        let mut text = format!("# ninja log v{version}\n");
        for (i, (out, hash)) in entries.iter().enumerate() {
            text.push_str(&format!(
                "{i}\t{}\t17952747169{i:08}\t{out}\t{hash}\n",
                i + 3
            ));
        }
        text.into_bytes()
    }

    #[test]
    fn commands_evaluate_as_ninja_evaluates_them() {
        let m = manifest(BUILD_NINJA);
        assert_eq!(
            String::from_utf8_lossy(command_of(&m, "obj/sp ace.o")),
            ": cc -DCOLON:x /nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-demo/lib $HOME -O3 \
             -DPREFIX=\"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-demo\" -c 'src/sp ace.c' \
             -o 'obj/sp ace.o' && touch 'obj/sp ace.o' && true"
        );
        assert_eq!(
            String::from_utf8_lossy(command_of(&m, "lib.a")),
            ": ar lib.a @lib.a.rsp && touch lib.a;rspfile=obj/a.o\nobj/b.o\n'obj/sp ace.o'"
        );
        // Two statements are phony: five edges with commands.
        assert_eq!(m.edges.len(), 5);
        for (output, v5, v7) in LOGGED {
            let command = command_of(&m, output);
            assert_eq!(
                (
                    format!("{:x}", murmur_hash_64a(command)),
                    format!("{:x}", rapidhash::v1::rapidhash_v1(command))
                ),
                (v5.to_string(), v7.to_string()),
                "{output}: {}",
                String::from_utf8_lossy(command)
            );
        }
    }

    #[test]
    fn hashes_match_ninjas_for_every_length_class() {
        // (length, MurmurHash64A, rapidhash v1) of `:` or `: ` and letters (i * 7 mod 26),
        // from the logs of ninja 1.11.1 and 1.13.2.
        let vectors: &[(usize, u64, u64)] = &[
            (1, 0x2e49d2477c6737f0, 0xa2da22321247804b),
            (3, 0xf2d1360f1675bfb3, 0xbae980166742c4ce),
            (4, 0xd9de49a40064b387, 0x275a9b5516fb682a),
            (8, 0xab1af2389265a6d1, 0x4cf8aaeeb600e8cf),
            (15, 0xb20a1a38bf048f64, 0xbd26a8311ff9d3d9),
            (16, 0x108afbe3a94e543d, 0xc151377bba3da9f7),
            (17, 0x3b6fc26caae64d8d, 0xccbefed511b5e2a9),
            (33, 0x97acb99ee67f6f8e, 0x86d3f75b57ec6653),
            (48, 0x835b5f4a50f511df, 0x7b92f2b7b2e9f088),
            (49, 0xc5256c57bf277113, 0x6dd63e5fe4f39bda),
            (96, 0x9d44c906861060bb, 0xca226d64439b8833),
            (97, 0x7760c55deb733722, 0x4f78cf886205c16f),
            (200, 0xba99d7509ef365a4, 0xef5608fcfa890d6f),
        ];
        for &(len, murmur, rapid) in vectors {
            let mut command = b":".to_vec();
            if len >= 2 {
                command.push(b' ');
                command.extend((0..len - 2).map(|i| b'a' + (i * 7 % 26) as u8));
            }
            assert_eq!(command.len(), len);
            assert_eq!(murmur_hash_64a(&command), murmur, "murmur, length {len}");
            assert_eq!(
                rapidhash::v1::rapidhash_v1(&command),
                rapid,
                "rapidhash, length {len}"
            );
        }
    }

    #[test]
    fn a_translated_log_has_the_hashes_ninja_logs_for_the_rewritten_manifest() {
        let earlier = manifest(BUILD_NINJA);
        let now = manifest(&BUILD_NINJA.replace(OLD_HASH, NEW_HASH));
        let old_entries: Vec<(&str, &str)> = LOGGED.iter().map(|(o, v5, _)| (*o, *v5)).collect();
        let t = translate_log(&log(5, &old_entries), &earlier, &now).unwrap();
        // The three edges whose commands name the prefix (five entries); `sub/c.o` and
        // `lib.a` keep their hash.
        assert_eq!((t.moved, t.unmatched), (5, 0));
        let new_entries: Vec<(&str, &str)> = LOGGED
            .iter()
            .map(|(o, _, _)| {
                let edge = if o.starts_with("obj/b.") {
                    "obj/b.o"
                } else {
                    o
                };
                let (_, h) = LOGGED_REWRITTEN_V5
                    .iter()
                    .find(|(x, _)| *x == edge)
                    .unwrap();
                (*o, *h)
            })
            .collect();
        assert_eq!(
            String::from_utf8(t.content.unwrap()).unwrap(),
            String::from_utf8(log(5, &new_entries)).unwrap()
        );
    }

    #[test]
    fn entries_ninja_would_rerun_anyway_stay_and_are_counted() {
        let earlier = manifest(BUILD_NINJA);
        let now = manifest(&BUILD_NINJA.replace(OLD_HASH, NEW_HASH));
        // Already the new hash, a hash of some other command, an output no edge makes, a
        // line that is not an entry.
        let entries = [
            ("obj/a.o", "ed689c441fc39296"),
            ("obj/b.o", "123"),
            ("gone.o", "55d300d7e7018c45"),
        ];
        let mut text = log(5, &entries);
        text.extend_from_slice(b"garbage\n");
        let t = translate_log(&text, &earlier, &now).unwrap();
        assert_eq!((t.moved, t.unmatched, t.content), (0, 1, None));
        // v7 uses rapidhash.
        let v7: Vec<(&str, &str)> = LOGGED.iter().map(|(o, _, h)| (*o, *h)).collect();
        assert_eq!(
            translate_log(&log(7, &v7), &earlier, &now).unwrap().moved,
            5
        );
        // Unknown versions, and manifests that are not one rewritten, are left alone.
        assert_eq!(translate_log(&log(4, &entries), &earlier, &now), None);
        assert_eq!(translate_log(b"no header", &earlier, &now), None);
        assert_eq!(
            translate_log(&log(5, &entries), &earlier, &Manifest::default()),
            None
        );
    }

    #[test]
    fn malformed_manifests_are_errors() {
        let cases: &[(&str, &str)] = &[
            ("build a: nosuchrule b\n", "unknown rule"),
            ("rule r\n  command = x\nbuild a: r $%\n", "bad $-escape"),
            ("  x = 1\n", "unexpected indentation"),
            ("include missing.ninja\n", "missing.ninja"),
            ("x = ${unterminated\n", "bad ${...}"),
        ];
        for (text, want) in cases {
            let err = evaluate(b"build.ninja", &mut |n| {
                (n == b"build.ninja").then(|| text.as_bytes().to_vec())
            })
            .unwrap_err();
            assert!(err.to_string().contains(want), "{text:?}: {err}");
        }
        let cycle = "rule r\n  command = $a\n  a = $b\n  b = $a\nbuild x: r\n";
        let err = evaluate(b"build.ninja", &mut |_| Some(cycle.as_bytes().to_vec())).unwrap_err();
        assert_eq!(err, ManifestError::Cycle("a".into()));
    }

    #[test]
    fn paths_are_canonical_and_quoted_like_ninjas() {
        for (path, want) in [
            ("./a/./b//c/", "a/b/c"),
            ("a/../../b", "../b"),
            ("a/b/..", "a"),
            ("/x/../y", "/y"),
            ("./", "."),
        ] {
            assert_eq!(canonical_path(path.as_bytes()), want.as_bytes(), "{path}");
        }
        let list = shell_list(&[b"plain/p-1_+.o".to_vec(), b"it's here".to_vec()], b' ');
        assert_eq!(list, b"plain/p-1_+.o 'it'\\''s here'");
    }

    fn rewrites() -> Rewrites {
        Rewrites::new(&[(
            format!("/nix/store/{OLD_HASH}").into_bytes(),
            format!("/nix/store/{NEW_HASH}").into_bytes(),
        )])
        .unwrap()
    }

    #[test]
    fn the_translator_translates_each_log_beside_a_manifest_once() {
        let old_entries: Vec<(&str, &str)> = LOGGED.iter().map(|(o, v5, _)| (*o, *v5)).collect();
        let old_log = String::from_utf8(log(5, &old_entries)).unwrap();
        let state = tree_of(&[
            ("src/build/build.ninja", BUILD_NINJA),
            ("src/build/rules.ninja", RULES_NINJA),
            ("src/build/sub/sub.ninja", SUB_NINJA),
            ("src/build/.ninja_log", &old_log),
            // A log with no manifest beside it.
            ("elsewhere/.ninja_log", &old_log),
        ]);
        let contents: HashMap<RelPath, Bytes> = [
            ("src/build/build.ninja", BUILD_NINJA),
            ("src/build/rules.ninja", RULES_NINJA),
            ("src/build/sub/sub.ninja", SUB_NINJA),
            ("src/build/.ninja_log", &old_log),
            ("elsewhere/.ninja_log", &old_log),
        ]
        .into_iter()
        .map(|(p, c)| {
            (
                RelPath::new(p.as_bytes().to_vec()).unwrap(),
                c.as_bytes().to_vec(),
            )
        })
        .collect();
        let translator = NinjaLogs::default();
        let reads = std::cell::Cell::new(0);
        let mut read = |p: &RelPath| {
            reads.set(reads.get() + 1);
            contents.get(p).cloned()
        };
        let out = translator.translate(&state, &mut read, &rewrites());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.as_bytes(), b"src/build/.ninja_log");
        let earlier = manifest(BUILD_NINJA);
        let now = manifest(&BUILD_NINJA.replace(OLD_HASH, NEW_HASH));
        let want = translate_log(old_log.as_bytes(), &earlier, &now)
            .unwrap()
            .content
            .unwrap();
        assert_eq!(out[0].1, want);
        let reports = translator.reports();
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert!(reports
            .iter()
            .any(|r| r.path == "src/build/.ninja_log" && r.outcome == Ok((5, 0))));
        assert!(reports.iter().any(|r| r.path == "elsewhere/.ninja_log"
            && r.outcome.as_ref().is_err_and(|e| e.contains("build.ninja"))));
        let lines: Vec<String> = reports.iter().map(ToString::to_string).collect();
        assert!(lines.contains(
            &"ninja log src/build/.ninja_log: 5 command hash(es) moved to this build's output paths"
                .to_owned()
        ));
        let partial = LogReport {
            path: "b/.ninja_log".into(),
            outcome: Ok((2, 1)),
        };
        assert_eq!(
            partial.to_string(),
            "ninja log b/.ninja_log: 2 command hash(es) moved to this build's output paths, 1 not \
             recognised (ninja reruns those commands)"
        );

        // The same contents again (the next layer of the import): nothing is read.
        let before = reads.get();
        let again = translator.translate(&state, &mut read, &rewrites());
        assert_eq!(again, out);
        assert_eq!(reads.get(), before);
        assert_eq!(translator.reports().len(), 2);
    }
}
