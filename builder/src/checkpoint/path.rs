//! Relative paths as bytes and the byte-string escaping used in manifests; pure, no I/O.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::error::{CheckpointError, Result};
use super::limits::{MAX_DEPTH, MAX_NAME, MAX_PATH};

/// A clean path relative to a root, kept as raw bytes so non-UTF-8 names survive.
///
/// Invariants (checked by [`RelPath::new`]): either empty (the root itself) or a
/// `/`-separated list of non-empty components, none of which is `.` or `..`, with no
/// leading or trailing `/` and no NUL byte. Ordering is bytewise, so every ancestor sorts
/// before its descendants.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RelPath(Vec<u8>);

impl RelPath {
    /// The root itself (the empty path).
    pub fn root() -> Self {
        RelPath(Vec::new())
    }

    /// Validates `bytes` as a clean relative path.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if let Err(reason) = check_rel_path(&bytes) {
            return Err(CheckpointError::InvalidPath {
                path: escape_bytes(&bytes),
                reason,
            });
        }
        Ok(RelPath(bytes))
    }

    /// Parses the escaped manifest form (see [`escape_bytes`]) and validates it.
    pub fn from_escaped(s: &str) -> Result<Self> {
        RelPath::new(unescape_bytes(s)?)
    }

    /// The escaped manifest form.
    pub fn escaped(&self) -> String {
        escape_bytes(&self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path as a `Path` (relative; empty for the root).
    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }

    /// True for the root (empty path).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends one component; `name` must be a valid single component.
    pub fn join(&self, name: &[u8]) -> Result<Self> {
        if let Err(reason) = check_component(name) {
            return Err(CheckpointError::InvalidPath {
                path: escape_bytes(name),
                reason,
            });
        }
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        Ok(RelPath(v))
    }

    /// The parent path, `None` for the root.
    pub fn parent(&self) -> Option<RelPath> {
        if self.0.is_empty() {
            return None;
        }
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => Some(RelPath(self.0[..i].to_vec())),
            None => Some(RelPath::root()),
        }
    }

    /// The last component, `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        if self.0.is_empty() {
            return None;
        }
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => Some(&self.0[i + 1..]),
            None => Some(&self.0),
        }
    }

    /// The components, outermost first (none for the root).
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// Number of components (0 for the root).
    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// True if `self` is `ancestor` or lies below it (component-wise).
    pub fn starts_with(&self, ancestor: &RelPath) -> bool {
        if ancestor.0.is_empty() {
            return true;
        }
        self.0.starts_with(&ancestor.0)
            && (self.0.len() == ancestor.0.len() || self.0[ancestor.0.len()] == b'/')
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.escaped())
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped())
    }
}

/// Checks one path component: non-empty, not `.`/`..`, no `/`, no NUL, at most
/// [`MAX_NAME`] bytes.
pub(crate) fn check_component(name: &[u8]) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty path component");
    }
    if name.len() > MAX_NAME {
        return Err("a path component is longer than 255 bytes (NAME_MAX)");
    }
    if name == b"." || name == b".." {
        return Err("`.` or `..` component");
    }
    if name.contains(&0) {
        return Err("NUL byte");
    }
    if name.contains(&b'/') {
        return Err("`/` inside a component");
    }
    Ok(())
}

fn check_rel_path(bytes: &[u8]) -> std::result::Result<(), &'static str> {
    if bytes.is_empty() {
        return Ok(());
    }
    if bytes[0] == b'/' {
        return Err("absolute path");
    }
    if bytes.len() > MAX_PATH {
        return Err("the path is longer than 3072 bytes (the format's limit, §10)");
    }
    for (depth, c) in bytes.split(|&b| b == b'/').enumerate() {
        if depth >= MAX_DEPTH {
            return Err("the path has more than 256 components (the format's limit, §10)");
        }
        check_component(c)?;
    }
    Ok(())
}

/// Escapes arbitrary bytes into a JSON-friendly string, injectively and canonically.
///
/// Valid UTF-8 is kept as is, except `%`, the C0 controls (0x00-0x1F) and DEL (0x7F); those
/// bytes and every byte that is not part of a valid UTF-8 sequence become `%XX` with two
/// upper-case hex digits. And no 32 characters of Nix's base-32 alphabet follow each other
/// in the result: a character that would be the 32nd is escaped too, so the hash of a store
/// path a symlink target or a file name holds never stands in a layer file as it is, where
/// Nix's scan for references would find it (docs/checkpoint-format.md §2).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = Escaped::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let valid = e.valid_up_to();
                let bad = e.error_len().unwrap_or(rest.len() - valid);
                // from_utf8 has just told us this prefix is valid UTF-8.
                (std::str::from_utf8(&rest[..valid]).unwrap_or(""), bad)
            }
        };
        for c in valid.chars() {
            if c == '%' || (c as u32) < 0x20 || c as u32 == 0x7f {
                out.push_hex(c as u8);
            } else {
                out.push(c);
            }
        }
        let consumed = valid.len();
        for &b in &rest[consumed..consumed + bad] {
            out.push_hex(b);
        }
        rest = &rest[consumed + bad..];
    }
    out.text
}

/// True for the characters of Nix's base-32 alphabet (`0-9a-z` without `e o t u`).
fn is_nix_base32(c: char) -> bool {
    matches!(c, '0'..='9' | 'a'..='d' | 'f'..='n' | 'p'..='s' | 'v'..='z')
}

/// The output of [`escape_bytes`], counting the base-32 characters it ends with.
#[derive(Default)]
struct Escaped {
    text: String,
    run: usize,
}

impl Escaped {
    fn push(&mut self, c: char) {
        if is_nix_base32(c) && self.run == 31 {
            self.push_hex(c as u8);
        } else {
            self.emit(c);
        }
    }

    fn push_hex(&mut self, b: u8) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        self.emit('%');
        self.emit(HEX[(b >> 4) as usize] as char);
        self.emit(HEX[(b & 15) as usize] as char);
    }

    fn emit(&mut self, c: char) {
        self.run = if is_nix_base32(c) { self.run + 1 } else { 0 };
        self.text.push(c);
    }
}

/// Inverse of [`escape_bytes`]; rejects anything [`escape_bytes`] would not have produced.
pub fn unescape_bytes(s: &str) -> Result<Vec<u8>> {
    let bad = |reason| CheckpointError::InvalidPath {
        path: s.to_owned(),
        reason,
    };
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = b.get(i + 1).and_then(|&c| hex_val(c));
            let lo = b.get(i + 2).and_then(|&c| hex_val(c));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(bad("`%` not followed by two upper-case hex digits")),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if escape_bytes(&out) != s {
        return Err(bad("not in canonical escaped form"));
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_and_is_canonical() {
        let cases: &[&[u8]] = &[
            b"",
            b"plain/name.c",
            b"with space",
            b"new\nline",
            b"100%",
            b"\xff\xfe bad utf8",
            "é ü 日本".as_bytes(),
            b"\xc3",
            b"\x7f\x01",
        ];
        for &c in cases {
            let e = escape_bytes(c);
            assert_eq!(unescape_bytes(&e).unwrap(), c, "{e}");
            assert!(!e.contains('\n'));
        }
        assert_eq!(escape_bytes(b"a%b\n\xff"), "a%25b%0A%FF");
        assert!(
            unescape_bytes("%61").is_err(),
            "non-canonical escape of 'a'"
        );
        assert!(unescape_bytes("%0a").is_err(), "lower-case hex");
        assert!(
            unescape_bytes("%C3%A9").is_err(),
            "valid UTF-8 must not be escaped"
        );
        assert!(unescape_bytes("%2").is_err());
    }

    #[test]
    fn no_store_hash_stands_in_an_escaped_string() {
        let hash = "0123456789abcdfghijklmnpqrsvwxyz";
        let target = format!("/nix/store/{hash}-zlib-1.3/lib/libz.so");
        let e = escape_bytes(target.as_bytes());
        assert_eq!(
            e,
            "/nix/store/0123456789abcdfghijklmnpqrsvwxy%7A-zlib-1.3/lib/libz.so"
        );
        assert_eq!(unescape_bytes(&e).unwrap(), target.as_bytes());
        assert!(
            unescape_bytes(&target).is_err(),
            "the unescaped hash is not canonical"
        );
        // Long runs are broken every 32 characters, counting the digits of an escape.
        for len in [31, 32, 33, 64, 65, 200] {
            let run: String = hash.chars().cycle().take(len).collect();
            for text in [
                run.clone(),
                format!("%{run}"),
                format!("\n{run}\u{7f}{run}"),
            ] {
                let e = escape_bytes(text.as_bytes());
                let longest = e
                    .split(|c: char| !is_nix_base32(c))
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                assert!(longest < 32, "{e}");
                assert_eq!(unescape_bytes(&e).unwrap(), text.as_bytes(), "{e}");
            }
        }
        assert_eq!(escape_bytes(&hash.as_bytes()[..31]), &hash[..31]);
    }

    #[test]
    fn escape_round_trips_random_bytes() {
        // xorshift: deterministic, no dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            let len = (x % 24) as usize;
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Bias towards interesting bytes: ASCII, '%', controls, UTF-8 lead/continuation.
                let b = match x % 5 {
                    0 => b'%',
                    1 => (x >> 8) as u8 & 0x1f,
                    2 => 0x80 | ((x >> 8) as u8 & 0x3f),
                    3 => 0xc2 + ((x >> 8) as u8 % 0x30),
                    _ => b'a' + ((x >> 8) as u8 % 26),
                };
                v.push(b);
            }
            let e = escape_bytes(&v);
            assert_eq!(unescape_bytes(&e).unwrap(), v, "{e}");
        }
    }

    #[test]
    fn rel_path_validation() {
        for bad in [
            &b"/abs"[..],
            b"../x",
            b"a/../b",
            b"a//b",
            b"a/",
            b"./a",
            b"a/.",
            b"a\0b",
        ] {
            assert!(RelPath::new(bad).is_err(), "{:?}", escape_bytes(bad));
        }
        let p = RelPath::new(&b"a/b c/\xff"[..]).unwrap();
        assert_eq!(p.depth(), 3);
        assert_eq!(p.file_name().unwrap(), b"\xff");
        assert_eq!(p.parent().unwrap().as_bytes(), b"a/b c");
        assert_eq!(RelPath::new("a").unwrap().parent(), Some(RelPath::root()));
        assert_eq!(RelPath::root().parent(), None);
        assert!(p.starts_with(&RelPath::new("a").unwrap()));
        assert!(!RelPath::new("ab")
            .unwrap()
            .starts_with(&RelPath::new("a").unwrap()));
        assert!(RelPath::root().join(b"..").is_err());
        assert!(RelPath::root().join(b"a/b").is_err());
    }

    #[test]
    fn ancestors_sort_first() {
        let mut v: Vec<RelPath> = ["a/b", "a-b", "a", "a/b/c", "a.c", ""]
            .iter()
            .map(|s| RelPath::new(*s).unwrap())
            .collect();
        v.sort();
        for (i, p) in v.iter().enumerate() {
            for q in &v[..i] {
                assert!(!q.starts_with(p) || q == p);
            }
        }
    }
}
