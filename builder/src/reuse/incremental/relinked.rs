//! The build products an incremental build relinks whatever the restore writes: programs,
//! shared libraries and static archives of the earlier build that hold a compile unit whose
//! source changed. Its object is compiled again and is then newer than them, so the build
//! tool links them again; a linker and `ar` behind `rm -f` write their output afresh, and
//! a missing target is remade by the same rule (as in a clean build, where it is missing
//! too). An incremental restore leaves them out of the tree, neither imported nor written:
//! on a large project they are most of the bytes a one-line change would restore (issue 19).
//!
//! A product holds a unit when its bytes name the unit's file as an ELF `STT_FILE` symbol
//! does (`\0unit.c\0` in a string table: gcc and clang write the source's base name, and
//! the linker and `ar` keep the symbol). Only files of [`MIN_SIZE`] and more are looked at,
//! where leaving one out saves more than reading it costs. Pure: which files to read
//! ([`candidates`]) and what their bytes say ([`UnitSearch`]; [`ProductSearch`], the same
//! search for a header change's units, [`super::objects`]); the reads are the caller's.

use crate::checkpoint::{ContentHash, EntryKind, OverlayChange, RelPath, RootState};
use memchr::memmem;

/// Products smaller than this are restored: reading one to decide costs about what writing
/// it does.
pub const MIN_SIZE: u64 = 1 << 20;

/// The file names (last path component) of the compile units whose content changed: the
/// names their objects' `STT_FILE` symbols carry.
pub fn changed_unit_names(
    changes: &[(RelPath, OverlayChange)],
    is_unit: impl Fn(&[u8]) -> bool,
) -> Vec<Vec<u8>> {
    unit_file_names(
        changes
            .iter()
            .filter(|(p, c)| *c == OverlayChange::Content && is_unit(p.as_bytes()))
            .map(|(p, _)| p),
    )
}

/// The file names (last path component) of compile units `units`, sorted, each once: what
/// [`UnitSearch`] looks for.
pub fn unit_file_names<'a>(units: impl IntoIterator<Item = &'a RelPath>) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = units
        .into_iter()
        .filter_map(|p| p.file_name().map(<[u8]>::to_vec))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The files of `built` (the earlier tree after `buildPhase`) worth reading for a changed
/// unit: regular files of at least [`MIN_SIZE`] bytes, with no other link in the tree (a
/// hardlink group stays whole), that neither source tree has and that `buildPhase` wrote
/// (`before`, the tree before it, lacks them or had another content: a program configure
/// compiled is not one make remakes), with their content hash and size.
pub fn candidates(
    built: &RootState,
    before: &RootState,
    old_source: &RootState,
    new_source: &RootState,
) -> Vec<(RelPath, ContentHash, u64)> {
    built
        .iter()
        .filter(|(p, _)| !old_source.contains_key(p) && !new_source.contains_key(p))
        .filter_map(|(p, e)| match &e.kind {
            EntryKind::File {
                size,
                blake3,
                hardlink: None,
            } if *size >= MIN_SIZE => Some((p.clone(), *blake3, *size)),
            _ => None,
        })
        .filter(|(p, hash, _)| before.get(p).and_then(|e| e.blob()) != Some(*hash))
        .collect()
}

/// What a file's bytes said so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Read on.
    Undecided,
    /// A program, shared library or archive that names a changed unit: leave it out.
    Holds,
    /// Not a program, shared library or archive: keep it (stop reading).
    NotLinked,
}

/// Reads a file's content chunk by chunk for the `STT_FILE` name of a changed unit, once its
/// first bytes show a linked product: an ELF executable or shared object (`e_type` 2 or 3,
/// either byte order) or an `ar` archive.
#[derive(Debug)]
pub struct UnitSearch {
    /// `\0name\0` for each unit name.
    needles: Vec<Vec<u8>>,
    /// The last bytes before the next chunk (one byte less than the longest needle).
    tail: Vec<u8>,
    started: bool,
}

impl UnitSearch {
    /// A search for `names` (file names of compile units); `None` when there are none.
    pub fn new(names: &[Vec<u8>]) -> Option<Self> {
        if names.is_empty() {
            return None;
        }
        let needles = names
            .iter()
            .map(|n| [&b"\0"[..], n, b"\0"].concat())
            .collect();
        Some(UnitSearch {
            needles,
            tail: Vec::new(),
            started: false,
        })
    }

    /// The next chunk of the content (the first one at least 18 bytes long, as any chunk of
    /// a file of [`MIN_SIZE`] is).
    pub fn feed(&mut self, chunk: &[u8]) -> Verdict {
        if !self.started {
            self.started = true;
            if !is_linked_product(chunk) {
                return Verdict::NotLinked;
            }
        }
        let keep = self.needles.iter().map(Vec::len).max().unwrap_or(1) - 1;
        // A needle across the chunk boundary: the tail and the chunk's first bytes.
        if !self.tail.is_empty() {
            let mut seam = self.tail.clone();
            seam.extend_from_slice(&chunk[..chunk.len().min(keep)]);
            if self.found_in(&seam) {
                return Verdict::Holds;
            }
        }
        if self.found_in(chunk) {
            return Verdict::Holds;
        }
        // The last `keep` bytes seen, for the next seam.
        self.tail
            .extend_from_slice(&chunk[chunk.len().saturating_sub(keep)..]);
        let excess = self.tail.len().saturating_sub(keep);
        self.tail.drain(..excess);
        Verdict::Undecided
    }

    fn found_in(&self, bytes: &[u8]) -> bool {
        self.needles
            .iter()
            .any(|n| memmem::find(bytes, n).is_some())
    }
}

/// Whether a build product may hold one of some compile units, for a header change no
/// dependency record names ([`super::objects`]): a [`UnitSearch`] over the whole content,
/// from its first bytes whatever the chunks, that also looks for the symbol table the
/// `STT_FILE` names are in. A program or shared library without one (linked with `-s`) may
/// hold any unit.
#[derive(Debug)]
pub struct ProductSearch {
    units: UnitSearch,
    symtab: UnitSearch,
    found: Verdict,
    has_symtab: bool,
    /// The first bytes, until there are enough to tell the kind of file.
    head: Vec<u8>,
    started: bool,
}

/// Bytes enough to tell an ELF file's type (18) or an archive's magic (8).
const HEAD: usize = 64;

impl ProductSearch {
    /// A search for `names` (file names of compile units); `None` when there are none.
    pub fn new(names: &[Vec<u8>]) -> Option<Self> {
        Some(ProductSearch {
            units: UnitSearch::new(names)?,
            symtab: UnitSearch::new(&[b".symtab".to_vec()])?,
            found: Verdict::Undecided,
            has_symtab: false,
            head: Vec::new(),
            started: false,
        })
    }

    /// The next chunk of the content.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.found != Verdict::Undecided {
            return;
        }
        if self.started {
            self.search(chunk);
            return;
        }
        self.head.extend_from_slice(chunk);
        if self.head.len() >= HEAD {
            self.started = true;
            let head = std::mem::take(&mut self.head);
            self.search(&head);
        }
    }

    fn search(&mut self, chunk: &[u8]) {
        self.found = self.units.feed(chunk);
        if !self.has_symtab {
            self.has_symtab = self.symtab.feed(chunk) == Verdict::Holds;
        }
    }

    /// Whether what was fed decides already (a match, or a head that is no linked
    /// product): [`Self::may_hold`] says the same whatever comes after.
    pub fn decided(&self) -> bool {
        self.found != Verdict::Undecided
    }

    /// After the whole content: true for a program, shared library or archive that names
    /// one of the units, or that has no symbol table to name them in.
    pub fn may_hold(mut self) -> bool {
        if !self.started && !self.head.is_empty() {
            let head = std::mem::take(&mut self.head);
            self.started = true;
            self.search(&head);
        }
        match self.found {
            Verdict::Holds => true,
            Verdict::NotLinked => false,
            Verdict::Undecided => self.started && !self.has_symtab,
        }
    }
}

/// An ELF executable or shared object, or an `ar` archive, by its first bytes.
fn is_linked_product(head: &[u8]) -> bool {
    if head.starts_with(b"!<arch>\n") {
        return true;
    }
    if !head.starts_with(b"\x7fELF") || head.len() < 18 {
        return false;
    }
    let e_type = match head[5] {
        1 => u16::from_le_bytes([head[16], head[17]]),
        2 => u16::from_be_bytes([head[16], head[17]]),
        _ => return false,
    };
    matches!(e_type, 2 | 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Entry, Timestamp};

    fn elf(e_type: u16, body: &[u8]) -> Vec<u8> {
        let mut head = vec![0u8; 64];
        head[..4].copy_from_slice(b"\x7fELF");
        head[4] = 2;
        head[5] = 1;
        head[16..18].copy_from_slice(&e_type.to_le_bytes());
        [head, body.to_vec()].concat()
    }

    fn search(names: &[&str], content: &[u8], chunk: usize) -> Verdict {
        let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let mut s = UnitSearch::new(&names).unwrap();
        for c in content.chunks(chunk) {
            match s.feed(c) {
                Verdict::Undecided => {}
                v => return v,
            }
        }
        Verdict::Undecided
    }

    /// As the untracked-header search reads a product: no further than a decided verdict.
    fn may_hold(names: &[&str], content: &[u8], chunk: usize) -> bool {
        let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        let mut s = ProductSearch::new(&names).unwrap();
        for c in content.chunks(chunk) {
            s.feed(c);
            if s.decided() {
                break;
            }
        }
        s.may_hold()
    }

    #[test]
    fn a_product_search_decides_at_a_name_or_a_head_that_is_no_product() {
        let names = [b"lz4hc.c".to_vec()];
        let fed = |content: &[u8]| {
            let mut s = ProductSearch::new(&names).unwrap();
            s.feed(content);
            s
        };
        let naming = elf(2, &[&[7u8; 300][..], b"\0lz4hc.c\0"].concat());
        assert!(fed(&naming).decided());
        assert!(fed(&elf(1, &[7u8; 300])).decided(), "an object");
        assert!(fed(&[b'#'; 100]).decided(), "a script");
        // A symbol table alone decides nothing: the name may come after it.
        let symtab_only = elf(2, &[&[7u8; 300][..], b"\0.symtab\0"].concat());
        assert!(!fed(&symtab_only).decided());
        assert!(!fed(&elf(2, &[9u8; 300])).decided());
    }

    #[test]
    fn a_product_may_hold_a_unit_it_names_or_when_it_has_no_symbol_table() {
        let with_symtab = [&[7u8; 300][..], b"\0.symtab\0.strtab\0", &[1u8; 40]].concat();
        let naming = [&with_symtab[..], b"\0lz4hc.c\0"].concat();
        for chunk in [1, 5, 17, 18, 63, 64, 65, 1000] {
            assert!(may_hold(&["lz4hc.c"], &elf(3, &naming), chunk), "{chunk}");
            assert!(
                may_hold(&["lz4hc.c"], &[b"!<arch>\n", &naming[..]].concat(), chunk),
                "{chunk}"
            );
            assert!(
                !may_hold(&["lz4hc.c"], &elf(2, &with_symtab), chunk),
                "a symbol table without the name: {chunk}"
            );
            assert!(
                may_hold(&["lz4hc.c"], &elf(2, &[9u8; 400]), chunk),
                "no symbol table (linked with -s): {chunk}"
            );
            assert!(
                !may_hold(&["lz4hc.c"], &elf(1, &naming), chunk),
                "an object is no linked product: {chunk}"
            );
            assert!(!may_hold(&["lz4hc.c"], b"#!/bin/sh\nexec lz4hc.c\n", chunk));
        }
        assert!(!may_hold(&["lz4hc.c"], b"", 1), "empty");
        assert!(
            !may_hold(&["lz4hc.c"], b"\x7fELF", 1),
            "too short to be one"
        );
    }

    #[test]
    fn a_program_or_archive_naming_a_changed_unit_holds_it_wherever_the_chunks_split() {
        let body = [
            &[7u8; 5000][..],
            b"\0crt.c\0u00001.c\0main.c\0",
            &[9u8; 300],
        ]
        .concat();
        for content in [
            elf(2, &body),
            elf(3, &body),
            [b"!<arch>\n", &body[..]].concat(),
        ] {
            for chunk in [18, 19, 64, 1000, 5003, 5010, 1 << 20] {
                assert_eq!(
                    search(&["u00001.c"], &content, chunk),
                    Verdict::Holds,
                    "chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn a_name_that_is_only_part_of_another_is_not_the_unit() {
        // `xu00001.c` and `u00001.cc` are other units; `u00001.c` inside a path is not a
        // symbol's whole name.
        let body = b"\0xu00001.c\0u00001.cc\0src/u00001.c\0";
        for chunk in [20, 64, 67, 1 << 20] {
            assert_eq!(
                search(&["u00001.c"], &elf(2, body), chunk),
                Verdict::Undecided
            );
        }
    }

    #[test]
    fn objects_and_other_files_are_not_linked_products() {
        let body = b"\0u00001.c\0";
        // An ELF relocatable object (its unit is compiled again anyway), a core file, text.
        assert_eq!(search(&["u00001.c"], &elf(1, body), 64), Verdict::NotLinked);
        assert_eq!(search(&["u00001.c"], &elf(4, body), 64), Verdict::NotLinked);
        let text = [&b"#!/bin/sh\n"[..], &[b' '; 20], body].concat();
        assert_eq!(search(&["u00001.c"], &text, 64), Verdict::NotLinked);
        // A big-endian executable is one.
        let mut be = elf(0, body);
        be[5] = 2;
        be[16..18].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(search(&["u00001.c"], &be, 64), Verdict::Holds);
    }

    #[test]
    fn only_changed_compile_units_and_large_products_count() {
        let rp = |s: &str| RelPath::new(s.as_bytes().to_vec()).unwrap();
        let changes = vec![
            (rp("p/src/a.c"), OverlayChange::Content),
            (rp("p/src/b.c"), OverlayChange::Added),
            (rp("p/include/h.h"), OverlayChange::Content),
            (rp("p/lib/a.c"), OverlayChange::Content),
        ];
        let is_unit = |p: &[u8]| p.ends_with(b".c");
        assert_eq!(changed_unit_names(&changes, is_unit), vec![b"a.c".to_vec()]);

        let file = |size: u64| Entry {
            kind: EntryKind::File {
                size,
                blake3: ContentHash::of(&size.to_le_bytes()),
                // Odd sizes stand for a file linked twice.
                hardlink: (size % 2 == 1).then(|| rp("p/linked")),
            },
            mode: 0o644,
            mtime: Timestamp { sec: 1, nsec: 0 },
            xattrs: Default::default(),
        };
        let tree = |items: &[(&str, u64)]| -> RootState {
            items.iter().map(|(p, s)| (rp(p), file(*s))).collect()
        };
        let built = tree(&[
            ("p/prog", MIN_SIZE),
            ("p/linked", (6 << 20) + 1),
            ("p/linked-too", (6 << 20) + 1),
            ("p/relinked", 3 << 20),
            ("p/configured", 4 << 20),
            ("p/small", MIN_SIZE - 1),
            ("p/shipped.bin", 5 << 20),
            ("p/new.bin", 5 << 20),
        ]);
        // configure wrote `configured` (make did not touch it) and an earlier `relinked`.
        let before = tree(&[("p/configured", 4 << 20), ("p/relinked", 2 << 20)]);
        let old_source = tree(&[("p/shipped.bin", 5 << 20)]);
        let new_source = tree(&[("p/new.bin", 5 << 20)]);
        let found: Vec<RelPath> = candidates(&built, &before, &old_source, &new_source)
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        assert_eq!(found, vec![rp("p/prog"), rp("p/relinked")]);
    }
}
