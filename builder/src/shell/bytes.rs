//! Byte strings that serialise as JSON strings when they are UTF-8 and as hex otherwise.
//!
//! Bash values, file names and environment entries are bytes, not text; this type keeps them
//! exact while keeping the common (UTF-8) case readable and comparable in stored state.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An owned byte string with a lossless, deterministic JSON form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteString(pub Vec<u8>);

impl ByteString {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&[u8]> for ByteString {
    fn from(b: &[u8]) -> Self {
        ByteString(b.to_vec())
    }
}

impl From<Vec<u8>> for ByteString {
    fn from(b: Vec<u8>) -> Self {
        ByteString(b)
    }
}

impl From<&str> for ByteString {
    fn from(s: &str) -> Self {
        ByteString(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for ByteString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

#[derive(Serialize, Deserialize)]
struct HexForm {
    hex: String,
}

impl Serialize for ByteString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => HexForm {
                hex: to_hex(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ByteString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Hex(HexForm),
        }
        match Either::deserialize(d)? {
            Either::Text(t) => Ok(ByteString(t.into_bytes())),
            Either::Hex(h) => from_hex(&h.hex)
                .map(ByteString)
                .ok_or_else(|| serde::de::Error::custom("invalid hex byte string")),
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Parses lower- or upper-case hex; `None` on odd length or a non-hex digit.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let raw = text.as_bytes();
    if !raw.len().is_multiple_of(2) {
        return None;
    }
    raw.chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_non_utf8() {
        for raw in [&b"plain"[..], b"\xff\xfe name", b""] {
            let value = ByteString(raw.to_vec());
            let json = serde_json::to_string(&value).unwrap();
            let back: ByteString = serde_json::from_str(&json).unwrap();
            assert_eq!(back, value, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&ByteString::from("a")).unwrap(),
            "\"a\""
        );
        assert_eq!(
            serde_json::to_string(&ByteString(vec![0xff])).unwrap(),
            "{\"hex\":\"ff\"}"
        );
    }
}
