//! Parser for the output of bash's `declare -p` (bash 5.x), into typed variables.
//!
//! Pure: bytes in, `Variable`s out. The grammar is what bash prints, one declaration per line:
//! `declare -FLAGS NAME[=VALUE]`, where VALUE is a double-quoted or `$'…'` word, or a
//! parenthesised list of `[KEY]=WORD` elements for arrays. Values with control characters
//! are always `$'…'`-quoted by bash, so a declaration never spans lines.

use super::bytes::ByteString;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The attributes bash shows in `declare -p` (`-a`/`-A` are carried by [`Value`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "is_false")]
    pub exported: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub integer: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub lowercase: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub uppercase: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nameref: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub trace: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A variable's value; `Unset*` are variables that are declared but hold no value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Value {
    /// `declare -- x` (declared, no value).
    UnsetScalar,
    /// `declare -a x` (declared array, no value).
    UnsetIndexed,
    /// `declare -A x` (declared associative array, no value).
    UnsetAssoc,
    Scalar(ByteString),
    /// Index → element, in index order (sparse arrays keep their indices).
    Indexed(Vec<(i64, ByteString)>),
    /// Key → element, in bash's iteration order (the order `declare -p` printed).
    Assoc(Vec<(ByteString, ByteString)>),
}

/// One declared shell variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    #[serde(default)]
    pub attributes: Attributes,
    pub value: Value,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DeclareParseError {
    #[error("line {line}: {what} in `declare -p` output: {text:?}")]
    Malformed {
        line: usize,
        what: &'static str,
        text: String,
    },
}

/// Parses a whole `declare -p` listing.
pub fn parse_declarations(input: &[u8]) -> Result<Vec<Variable>, DeclareParseError> {
    let mut out = Vec::new();
    for (index, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        out.push(
            parse_line(line).map_err(|what| DeclareParseError::Malformed {
                line: index + 1,
                what,
                text: String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned(),
            })?,
        );
    }
    Ok(out)
}

fn parse_line(line: &[u8]) -> Result<Variable, &'static str> {
    let rest = line
        .strip_prefix(b"declare -")
        .ok_or("expected `declare -`")?;
    let flags_end = rest.iter().position(|&b| b == b' ').ok_or("no name")?;
    let flags = &rest[..flags_end];
    let rest = &rest[flags_end + 1..];
    let mut attributes = Attributes::default();
    let (mut indexed, mut assoc) = (false, false);
    if flags != b"-" {
        for &f in flags {
            match f {
                b'a' => indexed = true,
                b'A' => assoc = true,
                b'x' => attributes.exported = true,
                b'r' => attributes.readonly = true,
                b'i' => attributes.integer = true,
                b'l' => attributes.lowercase = true,
                b'u' => attributes.uppercase = true,
                b'n' => attributes.nameref = true,
                b't' => attributes.trace = true,
                _ => return Err("unknown attribute flag"),
            }
        }
    }
    let name_end = rest.iter().position(|&b| b == b'=').unwrap_or(rest.len());
    let name = std::str::from_utf8(&rest[..name_end]).map_err(|_| "non-UTF-8 name")?;
    if !is_identifier(name) {
        return Err("invalid variable name");
    }
    let value = if name_end == rest.len() {
        match (indexed, assoc) {
            (true, _) => Value::UnsetIndexed,
            (_, true) => Value::UnsetAssoc,
            _ => Value::UnsetScalar,
        }
    } else {
        let mut cursor = Cursor {
            input: &rest[name_end + 1..],
            pos: 0,
        };
        let value = if indexed || assoc {
            cursor.expect(b'(')?;
            let mut idx = Vec::new();
            let mut map = Vec::new();
            loop {
                cursor.skip_spaces();
                match cursor.peek() {
                    Some(b')') => {
                        cursor.pos += 1;
                        break;
                    }
                    Some(b'[') => {
                        cursor.pos += 1;
                        let key = cursor.word(b"]")?;
                        cursor.expect(b']')?;
                        cursor.expect(b'=')?;
                        let element = cursor.word(b" )")?;
                        if assoc {
                            map.push((ByteString(key), ByteString(element)));
                        } else {
                            let index = std::str::from_utf8(&key)
                                .ok()
                                .and_then(|k| k.parse::<i64>().ok())
                                .ok_or("non-numeric array index")?;
                            idx.push((index, ByteString(element)));
                        }
                    }
                    _ => return Err("expected `[` or `)` in array"),
                }
            }
            if assoc {
                Value::Assoc(map)
            } else {
                Value::Indexed(idx)
            }
        } else {
            Value::Scalar(ByteString(cursor.word(b"")?))
        };
        if cursor.pos != cursor.input.len() {
            return Err("trailing bytes after value");
        }
        value
    };
    Ok(Variable {
        name: name.to_owned(),
        attributes,
        value,
    })
}

/// True for a bash identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.bytes();
    matches!(chars.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && chars.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), &'static str> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err("unexpected character")
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Reads a shell word made of `"…"`, `$'…'`, `'…'` and bare parts, stopping before any
    /// unquoted byte in `stop` (or at the end of input).
    fn word(&mut self, stop: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            if stop.contains(&b) {
                break;
            }
            match b {
                b'"' => {
                    self.pos += 1;
                    loop {
                        let c = self.peek().ok_or("unterminated double quote")?;
                        self.pos += 1;
                        match c {
                            b'"' => break,
                            b'\\' => {
                                let n = self.peek().ok_or("dangling backslash")?;
                                if matches!(n, b'$' | b'`' | b'"' | b'\\' | b'\n') {
                                    self.pos += 1;
                                    if n != b'\n' {
                                        out.push(n);
                                    }
                                } else {
                                    out.push(b'\\');
                                }
                            }
                            _ => out.push(c),
                        }
                    }
                }
                b'\'' => {
                    self.pos += 1;
                    loop {
                        let c = self.peek().ok_or("unterminated single quote")?;
                        self.pos += 1;
                        if c == b'\'' {
                            break;
                        }
                        out.push(c);
                    }
                }
                b'$' if self.input.get(self.pos + 1) == Some(&b'\'') => {
                    self.pos += 2;
                    self.ansi_c(&mut out)?;
                }
                b'\\' => {
                    self.pos += 1;
                    out.push(self.peek().ok_or("dangling backslash")?);
                    self.pos += 1;
                }
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        Ok(out)
    }

    /// The body of a `$'…'` word, after the opening quote.
    fn ansi_c(&mut self, out: &mut Vec<u8>) -> Result<(), &'static str> {
        loop {
            let c = self.peek().ok_or("unterminated $'…'")?;
            self.pos += 1;
            match c {
                b'\'' => return Ok(()),
                b'\\' => {
                    let e = self.peek().ok_or("dangling backslash in $'…'")?;
                    self.pos += 1;
                    match e {
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'e' | b'E' => out.push(27),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'v' => out.push(11),
                        b'\\' | b'\'' | b'"' | b'?' => out.push(e),
                        b'0'..=b'7' => {
                            let mut v = (e - b'0') as u32;
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + (d - b'0') as u32;
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        b'x' => {
                            let mut v = 0u32;
                            let mut digits = 0;
                            while digits < 2 {
                                match self.peek().and_then(|d| (d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.pos += 1;
                                        digits += 1;
                                    }
                                    None => break,
                                }
                            }
                            if digits == 0 {
                                out.extend_from_slice(b"\\x");
                            } else {
                                out.push(v as u8);
                            }
                        }
                        b'c' => {
                            let ctl = self.peek().ok_or("dangling \\c")?;
                            self.pos += 1;
                            out.push(ctl & 0x1f);
                        }
                        b'u' | b'U' => {
                            let max = if e == b'u' { 4 } else { 8 };
                            let mut v = 0u32;
                            let mut digits = 0;
                            while digits < max {
                                match self.peek().and_then(|d| (d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.pos += 1;
                                        digits += 1;
                                    }
                                    None => break,
                                }
                            }
                            let ch = char::from_u32(v).ok_or("invalid \\u escape")?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => {
                            out.push(b'\\');
                            out.push(other);
                        }
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Variable {
        let mut v = parse_declarations(line.as_bytes()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn scalars_and_quoting() {
        let v = one(r#"declare -- y="q\"\$\`\\""#);
        assert_eq!(v.value, Value::Scalar(ByteString::from("q\"$`\\")));
        let v = one(r"declare -- x=$'a\tb\n\303\251\001'");
        assert_eq!(
            v.value,
            Value::Scalar(ByteString(b"a\tb\n\xc3\xa9\x01".to_vec()))
        );
        let v = one("declare -x OLDPWD");
        assert!(v.attributes.exported);
        assert_eq!(v.value, Value::UnsetScalar);
        let v = one(r#"declare -ixl w="4""#);
        assert!(v.attributes.integer && v.attributes.exported && v.attributes.lowercase);
        let v = one(r#"declare -n r="x""#);
        assert!(v.attributes.nameref);
    }

    #[test]
    fn arrays() {
        let v = one(r#"declare -a arr=([0]="" [1]="*" [2]="a b")"#);
        assert_eq!(
            v.value,
            Value::Indexed(vec![
                (0, ByteString::from("")),
                (1, ByteString::from("*")),
                (2, ByteString::from("a b"))
            ])
        );
        let v = one(r#"declare -a sp=([3]="x" [7]=$'\303\251')"#);
        assert_eq!(
            v.value,
            Value::Indexed(vec![(3, ByteString::from("x")), (7, ByteString::from("é"))])
        );
        let v = one(r#"declare -A m=(["b c"]=$'x\ny' [a]="1" )"#);
        assert_eq!(
            v.value,
            Value::Assoc(vec![
                (ByteString::from("b c"), ByteString::from("x\ny")),
                (ByteString::from("a"), ByteString::from("1"))
            ])
        );
        assert_eq!(one("declare -A e=()").value, Value::Assoc(vec![]));
        assert_eq!(one("declare -a FUNCNAME").value, Value::UnsetIndexed);
        assert!(
            one("declare -ar BASH_VERSINFO=([0]=\"5\")")
                .attributes
                .readonly
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_declarations(b"echo hi\n").is_err());
        assert!(parse_declarations(b"declare -- x=\"unterminated\n").is_err());
        assert!(parse_declarations(b"declare -- 1x=\"a\"\n").is_err());
    }

    /// Round trip through real bash: whatever bash prints, we parse to the values we set.
    #[test]
    fn parses_real_bash_output() {
        let script = r#"
            s=$'tab\there\nnl \001 \\ " $ ` '"'"' é'
            declare -a arr=("" "*" "a b" $'x\ny')
            declare -A map=([k1]=v1 ["odd key"]=2 [$'nl\nkey']=3)
            declare -- empty=""
            declare -p s arr map empty
        "#;
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", script])
            .env_clear()
            .output()
            .expect("bash runs");
        let vars = parse_declarations(&out.stdout).unwrap();
        assert_eq!(
            vars[0].value,
            Value::Scalar(ByteString::from("tab\there\nnl \u{1} \\ \" $ ` ' é"))
        );
        match &vars[1].value {
            Value::Indexed(e) => {
                assert_eq!(e.len(), 4);
                assert_eq!(e[3].1, ByteString::from("x\ny"));
            }
            other => panic!("{other:?}"),
        }
        match &vars[2].value {
            Value::Assoc(e) => {
                assert_eq!(e.len(), 3);
                assert!(e.contains(&(ByteString::from("nl\nkey"), ByteString::from("3"))));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(vars[3].value, Value::Scalar(ByteString::from("")));
    }
}
