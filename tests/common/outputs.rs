//! Helpers shared by the reuse tests: fresh derivations per run, and a build's `out` as a NAR
//! with its own hash masked.

use crate::nix::{dump, BuildResult};
use std::path::{Path, PathBuf};

/// One value per test process, so every run builds new derivations (outputs of earlier runs
/// stay referenced by their dependants' `.drv` files and cannot be deleted for a rebuild).
pub fn run_salt() -> &'static str {
    static SALT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SALT.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        format!("{t}-{}", std::process::id())
    })
}

/// The NAR of store object `store_path`, read at `real` (its path, or its copy in another
/// store's directory), with its own hash part and that hash's 10-character prefix (the
/// `-frandom-seed` nixpkgs derives from `$out`) replaced by zeros.
pub fn normalised_nar(store_path: &Path, real: &Path) -> Vec<u8> {
    let name = store_path
        .file_name()
        .expect("a store path")
        .to_string_lossy()
        .into_owned();
    let hash = name.as_bytes()[..32].to_vec();
    let mut nar = dump(real).unwrap_or_else(|e| panic!("{e}"));
    // The hash, its first ten characters (the compiler seed), and the pieces a compiler keeps
    // apart when it copies the path in overlapping stores: the hash's last k characters and
    // the name (`z-pieces-46`), longest first. The name part stays as it is.
    let name_part = name.as_bytes()[32..].to_vec();
    let mut needles = vec![(hash.clone(), 32), (hash[..10].to_vec(), 10)];
    needles.extend(
        (1..32)
            .rev()
            .map(|k| ([&hash[32 - k..], &name_part[..]].concat(), k)),
    );
    // And 8 characters of the hash anywhere: what is left where the path was split so that no
    // file holds it whole (8-byte immediates).
    needles.extend(hash.windows(8).map(|w| (w.to_vec(), 8)));
    // The name's bytes after a whole hash are the name, never hash characters: a tail piece
    // whose hash characters equal the name's (a hash ending in `c` before `-piec` cut off by
    // the next piece, `c` + `q-pieces-46`) must not be taken for one there.
    let mut name_bytes = vec![false; nar.len()];
    let mut i = 0;
    while i + hash.len() <= nar.len() {
        if nar[i..].starts_with(&hash) {
            let after = i + hash.len();
            let same = nar[after..]
                .iter()
                .zip(&name_part)
                .take_while(|(a, b)| a == b)
                .count();
            name_bytes[after..after + same].fill(true);
            i = after;
        } else {
            i += 1;
        }
    }
    for (needle, hash_chars) in needles {
        let mut i = 0;
        while i + needle.len() <= nar.len() {
            if nar[i..].starts_with(&needle) && !name_bytes[i..i + hash_chars].contains(&true) {
                nar[i..i + hash_chars].fill(b'0');
                i += needle.len();
            } else {
                i += 1;
            }
        }
    }
    nar
}

/// The build's `checkpoint` output (`checkpoint = true`) or its other output.
pub fn output(result: &BuildResult, checkpoint: bool) -> PathBuf {
    result
        .out_paths
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-checkpoint") == checkpoint)
        .cloned()
        .unwrap_or_else(|| panic!("no such output in {:?}", result.out_paths))
}

/// [`normalised_nar`] of the build's output other than `checkpoint`.
pub fn normalised_out(result: &BuildResult) -> Vec<u8> {
    let out = output(result, false);
    normalised_nar(&out, &out)
}
