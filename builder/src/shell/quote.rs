//! Quoting of arbitrary bytes as one bash word that evaluates back to exactly those bytes.

/// Quotes `bytes` for bash: `'…'` when every byte is printable ASCII without `'`,
/// otherwise `$'…'` with `\NNN` octal escapes (always three digits, so a following digit can
/// never extend an escape).
pub fn quote(bytes: &[u8]) -> String {
    let plain = bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'\'');
    if plain {
        let mut out = String::with_capacity(bytes.len() + 2);
        out.push('\'');
        out.push_str(std::str::from_utf8(bytes).expect("printable ASCII"));
        out.push('\'');
        return out;
    }
    let mut out = String::with_capacity(bytes.len() * 2 + 3);
    out.push_str("$'");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{:03o}", b)),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn every_byte_survives_bash() {
        let all: Vec<u8> = (1u8..=255).collect();
        let samples: Vec<Vec<u8>> = vec![
            b"plain".to_vec(),
            b"it's".to_vec(),
            b"".to_vec(),
            b"\\\n\t$`\"".to_vec(),
            b"\x01\x07".to_vec(),
            b"digit after escape \x017".to_vec(),
            all,
        ];
        let mut script = String::new();
        for s in &samples {
            script.push_str(&format!("printf '%s\\0' {}\n", quote(s)));
        }
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", &script])
            .env_clear()
            .output()
            .unwrap();
        let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(got[i], &s[..], "sample {i}");
        }
    }
}
