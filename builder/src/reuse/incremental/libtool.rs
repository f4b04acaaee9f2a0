//! libtool's record files of build products left out of a resumed tree: which `.lo` and `.la`
//! go with a left-out object or library, so that make remakes them together.
//!
//! libtool compiles `D/N.c` into `D/.libs/N.o` (position-independent) and often `D/N.o`, and
//! writes the small text file `D/N.lo` that names them; make's target is `D/N.lo`. A library
//! is `D/.libs/libX.so.*` and `D/.libs/libX.a`, recorded by `D/libX.la`, make's target. An
//! object or library left out (it held a stale value or a piece of an earlier output path)
//! with its record kept is never remade: make sees the record up to date, and the link that
//! reads the missing object fails (the build then starts again from scratch). Leaving the
//! record out with it makes make remake both. Pure: names only, nothing is read.

use crate::checkpoint::{RelPath, RootState};
use std::collections::BTreeSet;

/// The records in `tree` that go with the `left_out` paths and are not left out already:
/// `D/N.lo` for `D/.libs/N.o` or `D/N.o`, `D/libX.la` for `D/.libs/libX.so…` or
/// `D/.libs/libX.a`. In path order, each once.
pub fn records_of<'p>(
    tree: &RootState,
    left_out: impl IntoIterator<Item = &'p RelPath>,
) -> Vec<RelPath> {
    let left_out: BTreeSet<&RelPath> = left_out.into_iter().collect();
    let mut records = BTreeSet::new();
    for path in &left_out {
        for record in candidates(path) {
            if tree.contains_key(&record) && !left_out.contains(&record) {
                records.insert(record);
            }
        }
    }
    records.into_iter().collect()
}

/// The record paths that may go with `path`, by name.
fn candidates(path: &RelPath) -> Vec<RelPath> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let in_libs = dir.file_name() == Some(b".libs".as_slice());
    // The directory the records are in: `D` for `D/.libs/…`, else the file's own.
    let record_dir = if in_libs {
        match dir.parent() {
            Some(d) => d,
            None => return Vec::new(),
        }
    } else {
        dir
    };
    let mut out = Vec::new();
    if let Some(stem) = name.strip_suffix(b".o") {
        out.extend(record_dir.join(&[stem, b".lo".as_slice()].concat()).ok());
    }
    if in_libs && name.starts_with(b"lib") {
        let library = memchr::memmem::find(name, b".so")
            .filter(|&i| matches!(name.get(i + 3), None | Some(b'.')))
            .or_else(|| name.strip_suffix(b".a").map(<[u8]>::len));
        if let Some(end) = library {
            out.extend(
                record_dir
                    .join(&[&name[..end], b".la".as_slice()].concat())
                    .ok(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testutil::tree_of;

    fn paths(list: &[&str]) -> Vec<RelPath> {
        list.iter()
            .map(|p| RelPath::new(p.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn objects_and_libraries_take_their_records_along() {
        let tree = tree_of(&[
            ("lib/util.lo", "pic_object='.libs/util.o'"),
            ("lib/.libs/util.o", "pic"),
            ("lib/util.o", "non-pic"),
            ("lib/text.lo", "pic_object='.libs/text.o'"),
            ("lib/.libs/text.o", "pic"),
            ("lib/libgreet.la", "dlname='libgreet.so.1'"),
            ("lib/.libs/libgreet.so.1.2.3", "elf"),
            ("lib/.libs/libgreet.a", "ar"),
            ("lib/libother.la", "dlname='libother.so.0'"),
            ("src/main.o", "elf"),
            ("src/greet", "elf"),
        ]);
        assert_eq!(
            records_of(&tree, &paths(&["lib/.libs/util.o"])),
            paths(&["lib/util.lo"])
        );
        assert_eq!(
            records_of(
                &tree,
                &paths(&["lib/util.o", "lib/.libs/libgreet.so.1.2.3"])
            ),
            paths(&["lib/libgreet.la", "lib/util.lo"])
        );
        assert_eq!(
            records_of(&tree, &paths(&["lib/.libs/libgreet.a", "lib/libgreet.la"])),
            Vec::<RelPath>::new(),
            "a record left out already is not listed again"
        );
        // Not libtool's: no record, nothing more.
        assert!(records_of(&tree, &paths(&["src/main.o", "src/greet"])).is_empty());
        // `.so` must end the name or be followed by a dot: `libgreet.sox` is no library.
        assert!(records_of(&tree, &paths(&["lib/.libs/libgreet.sox"])).is_empty());
        assert!(records_of(&tree, &paths(&["util.o", ".libs/util.o"])).is_empty());
    }
}
