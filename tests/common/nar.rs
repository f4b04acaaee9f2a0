//! Store-path normalisation: every build's own output paths (and those of the
//! derivations it depends on, which also carry the builder under test) differ between
//! the stock and the checkpoint-builder build, so their 32-character hash parts are
//! replaced by placeholders of the same length derived from the path's name. The
//! compiler seed the reproducible-builds hook derives from the output path
//! (`-frandom-seed=` + the first 10 characters of the hash) is rewritten the same way.
//! Pure.

use std::collections::HashMap;

/// Length of the hash part of a store path's base name.
pub const HASH_LEN: usize = 32;

/// The placeholder for the hash of a store path named `name` (the part after the hash):
/// `name` with characters outside `[A-Za-z0-9+._-]` turned into `_`, cut or padded with
/// `_` to [`HASH_LEN`] characters. Upper case `@` marks it as not a real hash.
pub fn placeholder_for(name: &str) -> String {
    let mut out = String::from("@");
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || "+._-".contains(c) {
            c
        } else {
            '_'
        }
    }));
    out.truncate(HASH_LEN);
    while out.len() < HASH_LEN {
        out.push('_');
    }
    out
}

/// Splits `/nix/store/<hash>-<name>` (or a bare base name) into hash and name.
pub fn split_store_path(path: &str) -> Option<(&str, &str)> {
    let base = path.rsplit('/').next()?;
    if base.len() <= HASH_LEN + 1 || base.as_bytes()[HASH_LEN] != b'-' {
        return None;
    }
    let (hash, rest) = base.split_at(HASH_LEN);
    hash.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        .then_some((hash, &rest[1..]))
}

/// Prefix of the compiler seed flag whose value comes from the output path.
pub const SEED_FLAG: &str = "-frandom-seed=";
/// Characters of the hash the seed uses.
pub const SEED_LEN: usize = 10;

/// The rewrite table (text → same-length replacement) for the given store paths: each
/// hash part, and `-frandom-seed=` followed by its first ten characters.
pub fn rewrites_for<'a>(paths: impl IntoIterator<Item = &'a str>) -> HashMap<Vec<u8>, Vec<u8>> {
    let mut table = HashMap::new();
    for (hash, name) in paths.into_iter().filter_map(split_store_path) {
        let placeholder = placeholder_for(name);
        table.insert(
            format!("{SEED_FLAG}{}", &hash[..SEED_LEN]).into_bytes(),
            format!("{SEED_FLAG}{}", &placeholder[..SEED_LEN]).into_bytes(),
        );
        table.insert(hash.as_bytes().to_vec(), placeholder.into_bytes());
    }
    table
}

/// `bytes` with every occurrence of a key of `rewrites` replaced by its value (which
/// has the same length); at each position the longest matching key wins.
pub fn normalise(bytes: &[u8], rewrites: &HashMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let mut lengths: Vec<usize> = rewrites.keys().map(Vec::len).collect();
    lengths.sort_unstable_by(|a, b| b.cmp(a));
    lengths.dedup();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'scan: while i < bytes.len() {
        for &len in &lengths {
            if let Some(replacement) = bytes.get(i..i + len).and_then(|w| rewrites.get(w)) {
                out.extend_from_slice(replacement);
                i += len;
                continue 'scan;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "/nix/store/gkmw4bx408khiipx31zs4ylcgayvm7aa-case-01";

    #[test]
    fn placeholder_has_hash_length() {
        assert_eq!(placeholder_for("case-01").len(), HASH_LEN);
        assert_eq!(placeholder_for(&"x".repeat(80)).len(), HASH_LEN);
        assert_eq!(placeholder_for("a b"), format!("@a_b{}", "_".repeat(28)));
    }

    #[test]
    fn split() {
        assert_eq!(
            split_store_path(OUT),
            Some(("gkmw4bx408khiipx31zs4ylcgayvm7aa", "case-01"))
        );
        assert_eq!(split_store_path("/nix/store/short-x"), None);
        assert_eq!(split_store_path("/bin/bash"), None);
    }

    #[test]
    fn normalise_replaces_every_occurrence_and_keeps_length() {
        let rewrites = rewrites_for([OUT]);
        let text = format!("{OUT}/bin {OUT} gkmw4bx408khiipx31zs4ylcgayvm7aa end gkmw4bx408");
        let got = normalise(text.as_bytes(), &rewrites);
        assert_eq!(got.len(), text.len());
        let got = String::from_utf8(got).unwrap();
        assert_eq!(got.matches("@case-01").count(), 3);
        assert!(
            got.ends_with("end gkmw4bx408"),
            "a hash prefix is left alone"
        );
    }

    #[test]
    fn normalise_rewrites_the_compiler_seed() {
        let rewrites = rewrites_for([OUT]);
        let got = normalise(b"x -frandom-seed=gkmw4bx408 y", &rewrites);
        assert_eq!(got, b"x -frandom-seed=@case-01__ y");
    }
}
