//! Outputs that keep gcc's debug information from objects compiled in an earlier build. An
//! object compiled with `-g` records its command line, `-frandom-seed=…` included (nixpkgs
//! derives the seed from `$out`), in `.debug_str`, whose order gcc takes from its own hash
//! table: the path rewrite gives a reused object this build's seed, but not the order a
//! compile with that seed gives. Stripped outputs (the default) lose those sections; an output
//! that keeps them (`dontStrip`, a debug output) would differ from a clean build's, so such a
//! build is detected here and built again from scratch (docs/keys.md).

use crate::reuse::keys::random_seed_of;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The seeds of this build's outputs whose seed differs from the earlier build's output of
/// the same name: the flag text (`-frandom-seed=` and the seed) to look for.
pub fn changed_seeds(
    base_outputs: &BTreeMap<String, Vec<u8>>,
    outputs: &[(String, PathBuf)],
) -> Vec<Vec<u8>> {
    outputs
        .iter()
        .filter_map(|(name, path)| {
            let new = random_seed_of(path.as_os_str().as_bytes())?;
            let old = random_seed_of(base_outputs.get(name)?)?;
            (old != new).then(|| [b"-frandom-seed=".as_slice(), &new].concat())
        })
        .collect()
}

/// Whether `head` (a file's first bytes) starts an ELF file or an `ar` archive of objects.
pub fn is_object_file(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF") || head.starts_with(b"!<arch>\n")
}

/// The first object file (ELF or `ar`) under `roots` that contains one of `needles`; symlinks
/// are not followed. Reads in bounded chunks.
pub fn find_object_with(
    roots: &[PathBuf],
    needles: &[Vec<u8>],
) -> std::io::Result<Option<PathBuf>> {
    let longest = needles.iter().map(Vec::len).max().unwrap_or(0);
    if longest == 0 {
        return Ok(None);
    }
    let finders: Vec<memchr::memmem::Finder> =
        needles.iter().map(memchr::memmem::Finder::new).collect();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else if meta.is_file() && file_contains(&path, &finders, longest)? {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn file_contains(
    path: &Path,
    needles: &[memchr::memmem::Finder],
    longest: usize,
) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; (1 << 20) + longest];
    let mut kept = 0;
    let mut first = true;
    loop {
        let n = file.read(&mut buf[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let filled = kept + n;
        if first {
            if filled < 8 && n > 0 {
                // Too short to tell yet: read on.
                kept = filled;
                continue;
            }
            if !is_object_file(&buf[..filled]) {
                return Ok(false);
            }
            first = false;
        }
        let window = &buf[..filled];
        if needles.iter().any(|needle| needle.find(window).is_some()) {
            return Ok(true);
        }
        // Keep the tail that could start a needle cut at the chunk's end.
        kept = (longest - 1).min(filled);
        buf.copy_within(filled - kept..filled, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/aaaaaaaaaa0000000000000000000000-x";
    const B: &str = "/nix/store/bbbbbbbbbb0000000000000000000000-x";

    #[test]
    fn a_changed_output_path_changes_the_seed() {
        let base: BTreeMap<String, Vec<u8>> = [("out".to_owned(), A.as_bytes().to_vec())].into();
        assert_eq!(
            changed_seeds(&base, &[("out".into(), PathBuf::from(B))]),
            [b"-frandom-seed=bbbbbbbbbb".to_vec()]
        );
        assert!(changed_seeds(&base, &[("out".into(), PathBuf::from(A))]).is_empty());
        assert!(changed_seeds(&base, &[("dev".into(), PathBuf::from(B))]).is_empty());
    }

    #[test]
    fn only_object_files_are_searched_across_chunk_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let needle = b"-frandom-seed=bbbbbbbbbb".to_vec();
        // An ELF file with the needle across the first chunk's end.
        let mut elf = b"\x7fELF".to_vec();
        elf.resize((1 << 20) - 5, 0);
        elf.extend_from_slice(&needle);
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("lib/libx.so"), &elf).unwrap();
        std::fs::write(dir.join("flags.txt"), &needle).unwrap();
        let roots = [dir.clone()];
        assert_eq!(
            find_object_with(&roots, std::slice::from_ref(&needle)).unwrap(),
            Some(dir.join("lib/libx.so"))
        );
        std::fs::remove_file(dir.join("lib/libx.so")).unwrap();
        assert_eq!(
            find_object_with(&roots, &[needle]).unwrap(),
            None,
            "a text file is not an object"
        );
    }
}
