//! Which build products a compile unit was compiled into, and how a unit whose header changed
//! unseen is marked as changed: its objects are made older than it (pure).
//!
//! When a header changes that no dependency record names ([`super::dependencies`]), make must
//! be told that what includes it is out of date. Making the includers newer than everything
//! tells make more than that: every rule with the includer as a prerequisite runs again, not
//! only its compile (GNU diffutils regenerates its man pages with `help2man`, which stamps
//! the current month, from `cmp.1: cmp.c cmp.x`; a clean build installs the shipped pages).
//! So the unit's objects are made one second older than the unit instead, and only the rules
//! that make objects run. A unit's objects are the build products (paths the new source does
//! not have) that
//! - are named after it: `foo.o`, `foo.lo`, `foo.obj`, `foo.os`, `foo.So`, `foo.s`, `foo.i`,
//!   `foo.ii` for `foo.c`; automake's and libtool's per-target `prog-foo.o` and
//!   `libx_la-foo.lo`; CMake's and Meson's `foo.c.o`;
//! - or are ELF relocatable objects whose `STT_FILE` symbol names the unit's file name (gcc
//!   writes the source's base name there, whatever the object is called).
//!
//! The programs, shared libraries and archives that hold a unit (its `STT_FILE` name, which
//! the linker and `ar` keep: [`super::relinked::UnitSearch`]) are made older than the units
//! too: a rule may make one from the unit itself, with no object between (lz4's
//! `liblz4.so: $(SRCFILES)`, compiled and linked in one command, and `liblz4.a:
//! $(SRCFILES)`), and only its being older than the unit remakes it; where an object is
//! between, the object's compile makes it older anyway. So is a program or shared library
//! with no symbol table (linked with `-s`), whose bytes cannot say what it holds
//! ([`super::relinked::ProductSearch`]): remade, it is what a clean build makes.
//!
//! A unit with no such product, or whose mtime cannot be gone below (second 0), is made newer
//! instead, as before: it may be compiled by a rule this cannot see, and a stale object is a
//! wrong output. So is every unit under ninja: for a `restat` rule it compares the inputs with
//! the output mtime its log recorded, not the file's, and would not see an aged object.

use crate::checkpoint::{ContentHash, Entry, EntryKind, RelPath, RootState, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// Suffixes of the files a compile of `foo.c` writes as `foo<suffix>`.
const PRODUCT_SUFFIXES: &[&[u8]] = &[b".o", b".lo", b".obj", b".os", b".So", b".s", b".i", b".ii"];

/// Suffixes of the files read for an ELF `STT_FILE` symbol.
const ELF_OBJECT_SUFFIXES: &[&[u8]] = &[b".o", b".obj", b".os", b".So"];

/// The largest object read for its symbols; a larger one is only matched by name.
const MAX_OBJECT_READ: u64 = 256 << 20;

/// What [`mark_units_changed`] did, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MarkedUnits {
    /// Compile units marked as changed.
    pub units: usize,
    /// Their objects, made older than the unit.
    pub aged_objects: usize,
    /// Programs, shared libraries and archives holding one of them, made older than the
    /// units.
    pub aged_linked: usize,
    /// Units with no object found, made newer than everything restored.
    pub touched_units: usize,
    /// Units whose only objects were left out of the tree: make remakes them as it remakes
    /// any missing target, so the unit is left as it is.
    pub remade_units: usize,
}

impl MarkedUnits {
    /// How the log says it: "… are compiled again (N objects made older than their sources…)".
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} object(s) made older than their sources",
            self.aged_objects
        );
        if self.aged_linked > 0 {
            text.push_str(&format!(
                ", {} program(s), shared librar(ies) or archive(s) holding them too",
                self.aged_linked
            ));
        }
        if self.touched_units > 0 {
            text.push_str(&format!(
                ", {} unit(s) with no object found made newer",
                self.touched_units
            ));
        }
        if self.remade_units > 0 {
            text.push_str(&format!(
                ", {} unit(s) whose objects were left out for make to remake",
                self.remade_units
            ));
        }
        text
    }
}

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

fn stem(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    }
}

/// True when `product` (a file name) is named after the unit file name `unit`.
fn named_after(product: &[u8], unit: &[u8]) -> bool {
    let stem = stem(unit);
    PRODUCT_SUFFIXES.iter().any(|suffix| {
        let Some(base) = product.strip_suffix(*suffix) else {
            return false;
        };
        base == stem
            || base == unit
            || base
                .strip_suffix(stem)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with(b"-"))
    })
}

/// The `STT_FILE` symbol names of an ELF relocatable object (32 or 64 bit, either byte
/// order); empty for anything else or anything malformed. Every offset is checked: the bytes
/// come from a checkpoint.
pub fn elf_source_names(data: &[u8]) -> Vec<Vec<u8>> {
    elf_file_symbols(data).unwrap_or_default()
}

struct Reader<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn bytes(&self, at: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(at).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.data.get(start..end)
    }
    fn u8(&self, at: u64) -> Option<u8> {
        Some(self.bytes(at, 1)?[0])
    }
    fn u16(&self, at: u64) -> Option<u64> {
        let b: [u8; 2] = self.bytes(at, 2)?.try_into().ok()?;
        Some(u64::from(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }))
    }
    fn u32(&self, at: u64) -> Option<u64> {
        let b: [u8; 4] = self.bytes(at, 4)?.try_into().ok()?;
        Some(u64::from(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    }
    fn u64(&self, at: u64) -> Option<u64> {
        let b: [u8; 8] = self.bytes(at, 8)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    /// A word: 4 bytes in a 32-bit file, 8 in a 64-bit one.
    fn word(&self, at: u64, wide: bool) -> Option<u64> {
        if wide {
            self.u64(at)
        } else {
            self.u32(at)
        }
    }
    fn c_string(&self, at: u64, end: u64) -> Option<&[u8]> {
        let text = self.bytes(at, end.checked_sub(at)?)?;
        let nul = text.iter().position(|&b| b == 0)?;
        Some(&text[..nul])
    }
}

/// A section header's type, offset, size, link and entry size.
struct Section {
    kind: u64,
    offset: u64,
    size: u64,
    link: u64,
    entry_size: u64,
}

fn elf_file_symbols(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    const ET_REL: u64 = 1;
    const SHT_SYMTAB: u64 = 2;
    const STT_FILE: u8 = 4;
    if data.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match data.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let big_endian = match data.get(5)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let r = Reader { data, big_endian };
    if r.u16(16)? != ET_REL {
        return None;
    }
    let (shoff, shentsize, shnum) = if wide {
        (r.u64(0x28)?, r.u16(0x3a)?, r.u16(0x3c)?)
    } else {
        (r.u32(0x20)?, r.u16(0x2e)?, r.u16(0x30)?)
    };
    let header_size = if wide { 64 } else { 40 };
    if shentsize < header_size {
        return None;
    }
    let section = |i: u64| -> Option<Section> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let w = if wide { 8 } else { 4 };
        // sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info,
        // sh_addralign, sh_entsize.
        let offset_at = at + 8 + 2 * w;
        Some(Section {
            kind: r.u32(at + 4)?,
            offset: r.word(offset_at, wide)?,
            size: r.word(offset_at + w, wide)?,
            link: r.u32(offset_at + 2 * w)?,
            entry_size: r.word(offset_at + 2 * w + 8 + w, wide)?,
        })
    };
    let mut names = Vec::new();
    for i in 0..shnum {
        let symtab = section(i)?;
        if symtab.kind != SHT_SYMTAB {
            continue;
        }
        let strtab = section(symtab.link)?;
        let strtab_end = strtab.offset.checked_add(strtab.size)?;
        r.bytes(strtab.offset, strtab.size)?;
        let symbol_size = if wide { 24 } else { 16 };
        if symtab.entry_size < symbol_size {
            return None;
        }
        let count = symtab.size / symtab.entry_size;
        for s in 0..count {
            let at = symtab
                .offset
                .checked_add(s.checked_mul(symtab.entry_size)?)?;
            let info = r.u8(if wide { at + 4 } else { at + 12 })?;
            if info & 0xf != STT_FILE {
                continue;
            }
            let name_at = strtab.offset.checked_add(r.u32(at)?)?;
            let name = r.c_string(name_at, strtab_end)?;
            if !name.is_empty() && !names.iter().any(|n: &Vec<u8>| n == name) {
                names.push(name.to_vec());
            }
        }
    }
    Some(names)
}

/// The build products of `tree` (paths `source` lacks) that may be linked from compile
/// units: regular files with an execute bit, archives (`.a`) and shared libraries (`.so`,
/// `.so.N…`), with their content hash and size. Whether one holds a unit is for the caller to
/// read ([`super::relinked::UnitSearch`]); what it finds goes to [`mark_units_changed`].
pub fn linked_candidates(tree: &RootState, source: &RootState) -> Vec<(RelPath, ContentHash, u64)> {
    tree.iter()
        .filter(|(p, _)| !source.contains_key(p))
        .filter_map(|(p, e)| match &e.kind {
            EntryKind::File { blake3, size, .. } if may_be_linked(p.as_bytes(), e.mode) => {
                Some((p.clone(), *blake3, *size))
            }
            _ => None,
        })
        .collect()
}

/// True for a path and mode a linked product may have (see [`linked_candidates`]).
fn may_be_linked(path: &[u8], mode: u32) -> bool {
    let name = file_name(path);
    mode & 0o111 != 0
        || name.ends_with(b".a")
        || name.ends_with(b".so")
        || memchr::memmem::find(name, b".so.").is_some()
}

/// Marks `units` (compile units of `tree`) as changed for make: their objects (build
/// products: paths `source` does not have) are made one second older than the unit; a unit
/// with none found is made as new as `changed_mtime` if it is older. `left_out` holds the
/// earlier build's entries of products left out of `tree` for make to remake (they held a
/// stale value): a unit whose objects are all among them is left as it is, since make
/// compiles it to remake the missing object, and making it newer would also run every other
/// rule that has it as a prerequisite (GNU m4's `m4.1: src/m4.c`, remade by `help2man`,
/// which stamps the current month, where a clean build installs the shipped page). `read`
/// gives a file's content by hash (None when it cannot be read: the file is then matched by
/// name only). `linked` are the programs, shared libraries and archives of `tree` that hold
/// one of the units ([`linked_candidates`] the caller found naming one): each is made one
/// second older than the oldest unit. Under ninja (`ninja`) every unit is made newer
/// instead.
#[allow(clippy::too_many_arguments)]
pub fn mark_units_changed(
    tree: &mut RootState,
    units: &[RelPath],
    source: &RootState,
    left_out: &RootState,
    read: &dyn Fn(&ContentHash) -> Option<Vec<u8>>,
    linked: &BTreeSet<RelPath>,
    changed_mtime: Timestamp,
    ninja: bool,
) -> MarkedUnits {
    let mut marked = MarkedUnits {
        units: units.len(),
        ..MarkedUnits::default()
    };
    if units.is_empty() {
        return marked;
    }
    if ninja {
        for unit in units {
            if let Some(e) = tree.get_mut(unit) {
                e.mtime = e.mtime.max(changed_mtime);
            }
        }
        marked.touched_units = units.len();
        return marked;
    }
    let wanted: BTreeSet<&[u8]> = units.iter().map(|u| file_name(u.as_bytes())).collect();
    // The products that may be objects, with the unit file names their symbols give, and
    // whether they were left out (missing from `tree`).
    let mut products: Vec<(RelPath, Vec<Vec<u8>>, bool)> = Vec::new();
    let entries = tree
        .iter()
        .map(|(p, e)| (p, e, false))
        .chain(left_out.iter().map(|(p, e)| (p, e, true)));
    for (path, entry, missing) in entries {
        let EntryKind::File { blake3, size, .. } = &entry.kind else {
            continue;
        };
        if source.contains_key(path) || (missing && tree.contains_key(path)) {
            continue;
        }
        let name = file_name(path.as_bytes());
        let by_name = wanted.iter().any(|unit| named_after(name, unit));
        let elf = ELF_OBJECT_SUFFIXES.iter().any(|s| name.ends_with(s)) && *size <= MAX_OBJECT_READ;
        if !by_name && !elf {
            continue;
        }
        let symbols = if elf {
            read(blake3)
                .map(|data| elf_source_names(&data))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        products.push((path.clone(), symbols, missing));
    }
    let mut aged: BTreeMap<RelPath, Timestamp> = BTreeMap::new();
    let mut touched = Vec::new();
    for unit in units {
        let Some(unit_mtime) = tree.get(unit).map(|e| e.mtime) else {
            continue;
        };
        let unit_name = file_name(unit.as_bytes());
        let (missing, objects): (Vec<_>, Vec<_>) = products
            .iter()
            .filter(|(p, symbols, _)| {
                named_after(file_name(p.as_bytes()), unit_name)
                    || symbols.iter().any(|s| file_name(s) == unit_name)
            })
            .partition(|(_, _, missing)| *missing);
        let objects: Vec<&RelPath> = objects.iter().map(|(p, _, _)| p).collect();
        if objects.is_empty() && !missing.is_empty() {
            marked.remade_units += 1;
            continue;
        }
        if objects.is_empty() || unit_mtime.sec < 1 {
            touched.push(unit.clone());
            continue;
        }
        let older = Timestamp {
            sec: unit_mtime.sec - 1,
            nsec: unit_mtime.nsec,
        };
        for object in objects {
            let at = aged.entry(object.clone()).or_insert(older);
            *at = (*at).min(older);
        }
    }
    for (object, older) in &aged {
        if let Some(e) = tree.get_mut(object) {
            e.mtime = e.mtime.min(*older);
        }
    }
    // A linked product holds some of the units: older than the oldest, it is older than each
    // it holds. Units at second 0 are made newer below, which remakes it as well.
    let oldest = units
        .iter()
        .filter_map(|u| tree.get(u).map(|e| e.mtime))
        .filter(|m| m.sec >= 1)
        .min();
    if let Some(oldest) = oldest {
        let older = Timestamp {
            sec: oldest.sec - 1,
            nsec: oldest.nsec,
        };
        for product in linked {
            if source.contains_key(product) || aged.contains_key(product) {
                continue;
            }
            if let Some(e) = tree.get_mut(product) {
                if matches!(e.kind, EntryKind::File { .. }) {
                    e.mtime = e.mtime.min(older);
                    marked.aged_linked += 1;
                }
            }
        }
    }
    // The paths of one inode share its mtime: an aged path's other links are aged with it.
    let mut groups: BTreeMap<RelPath, Timestamp> = BTreeMap::new();
    for path in aged.keys().chain(linked) {
        if let Some(Entry {
            kind:
                EntryKind::File {
                    hardlink: Some(group),
                    ..
                },
            mtime,
            ..
        }) = tree.get(path)
        {
            let at = groups.entry(group.clone()).or_insert(*mtime);
            *at = (*at).min(*mtime);
        }
    }
    for e in tree.values_mut() {
        if let EntryKind::File {
            hardlink: Some(group),
            ..
        } = &e.kind
        {
            if let Some(older) = groups.get(group) {
                e.mtime = e.mtime.min(*older);
            }
        }
    }
    for unit in &touched {
        if let Some(e) = tree.get_mut(unit) {
            e.mtime = e.mtime.max(changed_mtime);
        }
    }
    marked.aged_objects = aged.len();
    marked.touched_units = touched.len();
    marked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testutil::tree_of;

    fn rp(p: &str) -> RelPath {
        RelPath::new(p.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn products_named_after_a_unit() {
        for product in [
            "foo.o",
            "foo.lo",
            "foo.obj",
            "foo.c.o",
            "prog-foo.o",
            "libx_la-foo.lo",
            "foo.s",
        ] {
            assert!(named_after(product.as_bytes(), b"foo.c"), "{product}");
        }
        for product in [
            "bar.o",
            "foofoo.o",
            "-foo.o",
            "foo.a",
            "foo.c",
            "foo.h.gch",
            "xfoo.o",
        ] {
            assert!(!named_after(product.as_bytes(), b"foo.c"), "{product}");
        }
    }

    /// A minimal ELF relocatable object: a symbol table with one `STT_FILE` symbol naming
    /// `source`, 64-bit little-endian or 32-bit big-endian.
    fn elf_object(source: &str, wide: bool) -> Vec<u8> {
        let be = !wide;
        let put16 =
            |v: &mut Vec<u8>, x: u16| v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        let put32 =
            |v: &mut Vec<u8>, x: u32| v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        let word = |v: &mut Vec<u8>, x: u64| {
            if wide {
                v.extend(x.to_le_bytes())
            } else {
                v.extend((x as u32).to_be_bytes())
            }
        };
        let header_size: u64 = if wide { 64 } else { 52 };
        let section_size: u64 = if wide { 64 } else { 40 };
        let symbol_size: u64 = if wide { 24 } else { 16 };
        let mut strtab = vec![0u8];
        strtab.extend(source.as_bytes());
        strtab.push(0);
        let mut symtab = vec![0u8; symbol_size as usize]; // the null symbol
        let mut sym = Vec::new();
        if wide {
            put32(&mut sym, 1);
            sym.push(4); // STT_FILE, STB_LOCAL
            sym.push(0);
            put16(&mut sym, 0xfff1);
            sym.extend([0u8; 16]);
        } else {
            put32(&mut sym, 1);
            put32(&mut sym, 0);
            put32(&mut sym, 0);
            sym.push(4);
            sym.push(0);
            put16(&mut sym, 0xfff1);
        }
        symtab.extend(sym);
        let symtab_at = header_size;
        let strtab_at = symtab_at + symtab.len() as u64;
        let shoff = strtab_at + strtab.len() as u64;
        let mut f = b"\x7fELF".to_vec();
        f.push(if wide { 2 } else { 1 });
        f.push(if be { 2 } else { 1 });
        f.extend([1u8; 1]);
        f.resize(16, 0);
        put16(&mut f, 1); // ET_REL
        put16(&mut f, 62);
        put32(&mut f, 1);
        word(&mut f, 0); // entry
        word(&mut f, 0); // phoff
        word(&mut f, shoff);
        put32(&mut f, 0); // flags
        put16(&mut f, header_size as u16);
        put16(&mut f, 0);
        put16(&mut f, 0);
        put16(&mut f, section_size as u16);
        put16(&mut f, 3);
        put16(&mut f, 2);
        assert_eq!(f.len() as u64, header_size);
        f.extend(&symtab);
        f.extend(&strtab);
        let mut section = |kind: u32, offset: u64, size: u64, link: u32, entsize: u64| {
            put32(&mut f, 0);
            put32(&mut f, kind);
            word(&mut f, 0);
            word(&mut f, 0);
            word(&mut f, offset);
            word(&mut f, size);
            put32(&mut f, link);
            put32(&mut f, 0);
            word(&mut f, 1);
            word(&mut f, entsize);
        };
        section(0, 0, 0, 0, 0);
        section(2, symtab_at, symtab.len() as u64, 2, symbol_size);
        section(3, strtab_at, strtab.len() as u64, 0, 0);
        f
    }

    #[test]
    fn elf_file_symbols_are_read_in_both_classes_and_byte_orders() {
        assert_eq!(
            elf_source_names(&elf_object("util.c", true)),
            vec![b"util.c".to_vec()]
        );
        assert_eq!(
            elf_source_names(&elf_object("util.c", false)),
            vec![b"util.c".to_vec()]
        );
    }

    #[test]
    fn malformed_elf_gives_no_names_and_no_panic() {
        let good = elf_object("util.c", true);
        assert!(elf_source_names(b"").is_empty());
        assert!(elf_source_names(b"#!/bin/sh\n").is_empty());
        for cut in 0..good.len() {
            assert!(elf_source_names(&good[..cut]).is_empty(), "cut at {cut}");
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] = 0xff;
            let _ = elf_source_names(&bad);
        }
    }

    fn object_tree(
        files: &[(&str, &str)],
        contents: &mut BTreeMap<ContentHash, Vec<u8>>,
    ) -> RootState {
        for (_, c) in files {
            contents.insert(ContentHash::of(c.as_bytes()), c.as_bytes().to_vec());
        }
        tree_of(files)
    }

    #[test]
    fn objects_are_aged_and_units_without_one_or_under_ninja_are_touched() {
        let mut contents = BTreeMap::new();
        let mut tree = object_tree(
            &[
                ("src/cmp.c", "int main;"),
                ("src/cmp.o", "not elf"),
                ("src/util.c", "int u;"),
                ("src/odd-name-pic.o", "ELF:util.c"),
                ("src/orphan.c", "int o;"),
                ("man/cmp.1", "page"),
            ],
            &mut contents,
        );
        // The ELF object: replace its content by a real one naming util.c.
        let elf = elf_object("util.c", true);
        let h = ContentHash::of(&elf);
        contents.insert(h, elf.clone());
        if let Some(e) = tree.get_mut(&rp("src/odd-name-pic.o")) {
            if let EntryKind::File { blake3, size, .. } = &mut e.kind {
                *blake3 = h;
                *size = elf.len() as u64;
            }
        }
        for (p, e) in tree.iter_mut() {
            e.mtime = Timestamp {
                sec: if p.as_bytes().ends_with(b".c") {
                    100
                } else {
                    200
                },
                nsec: 0,
            };
        }
        let mut source = tree.clone();
        source.retain(|p, _| p.as_bytes().ends_with(b".c") || p.as_bytes().ends_with(b".1"));
        let read = |h: &ContentHash| contents.get(h).cloned();
        let changed = Timestamp { sec: 500, nsec: 0 };
        let none = RootState::new();
        let units = [rp("src/cmp.c"), rp("src/util.c"), rp("src/orphan.c")];
        let mut under_ninja = tree.clone();
        let marked = mark_units_changed(
            &mut under_ninja,
            &units,
            &source,
            &none,
            &read,
            &BTreeSet::new(),
            changed,
            true,
        );
        assert_eq!((marked.aged_objects, marked.touched_units), (0, 3));
        assert_eq!(under_ninja[&rp("src/cmp.c")].mtime.sec, 500);
        assert_eq!(under_ninja[&rp("src/cmp.o")].mtime.sec, 200);
        let marked = mark_units_changed(
            &mut tree,
            &units,
            &source,
            &none,
            &read,
            &BTreeSet::new(),
            changed,
            false,
        );
        assert_eq!(
            marked,
            MarkedUnits {
                units: 3,
                aged_objects: 2,
                aged_linked: 0,
                touched_units: 1,
                remade_units: 0
            }
        );
        let mtime = |p: &str| tree[&rp(p)].mtime.sec;
        assert_eq!(mtime("src/cmp.o"), 99);
        assert_eq!(mtime("src/odd-name-pic.o"), 99);
        assert_eq!(
            mtime("src/cmp.c"),
            100,
            "a unit with an object keeps its mtime"
        );
        assert_eq!(mtime("src/util.c"), 100);
        assert_eq!(
            mtime("src/orphan.c"),
            500,
            "a unit with no object is made newer"
        );
        assert_eq!(mtime("man/cmp.1"), 200);
    }

    #[test]
    fn programs_libraries_and_archives_holding_a_unit_are_aged_below_the_oldest_unit() {
        // lz4: `liblz4.a` and `liblz4.so` are made from the sources themselves
        // (`liblz4.a: $(SRCFILES)`), so only their being older than a unit remakes them,
        // though the programs' make compiles an object of the same unit.
        let mut contents = BTreeMap::new();
        let files = [
            ("lib/lz4hc.c", "int hc;"),
            ("lib/lz4.c", "int l;"),
            ("lib/lz4hc.o", "object"),
            ("lib/liblz4.a", "archive"),
            ("lib/liblz4.so.1.9.4", "shared"),
            ("lib/liblz4.so.1", "shared"),
            ("lib/liblz4.pc", "text"),
            ("programs/lz4", "program"),
            ("scripts/run.sh", "#!/bin/sh"),
        ];
        let mut tree = object_tree(&files, &mut contents);
        for (p, e) in tree.iter_mut() {
            let p = p.as_bytes();
            e.mtime = Timestamp {
                sec: if p == b"lib/lz4hc.c" {
                    100
                } else if p == b"lib/lz4.c" {
                    150
                } else {
                    200
                },
                nsec: 7,
            };
            if p == b"programs/lz4" || p == b"scripts/run.sh" {
                e.mode = 0o755;
            }
            // One inode: the library and its soname link.
            if p.starts_with(b"lib/liblz4.so.1") {
                if let EntryKind::File { hardlink, .. } = &mut e.kind {
                    *hardlink = Some(rp("lib/liblz4.so.1"));
                }
            }
        }
        let mut source = tree.clone();
        source.retain(|p, _| {
            let p = p.as_bytes();
            p.ends_with(b".c") || p.ends_with(b".sh")
        });
        let candidates: Vec<String> = linked_candidates(&tree, &source)
            .into_iter()
            .map(|(p, _, _)| p.to_string())
            .collect();
        assert_eq!(
            candidates,
            [
                "lib/liblz4.a",
                "lib/liblz4.so.1",
                "lib/liblz4.so.1.9.4",
                "programs/lz4"
            ],
            "products with an execute bit, `.a` or `.so` only; the source's script is no product"
        );
        let linked: BTreeSet<RelPath> = [rp("lib/liblz4.a"), rp("lib/liblz4.so.1.9.4")].into();
        let read = |h: &ContentHash| contents.get(h).cloned();
        let marked = mark_units_changed(
            &mut tree,
            &[rp("lib/lz4hc.c"), rp("lib/lz4.c")],
            &source,
            &RootState::new(),
            &read,
            &linked,
            Timestamp { sec: 500, nsec: 0 },
            false,
        );
        assert_eq!((marked.aged_objects, marked.aged_linked), (1, 2));
        let mtime = |p: &str| tree[&rp(p)].mtime;
        assert_eq!(mtime("lib/lz4hc.o").sec, 99);
        assert_eq!(mtime("lib/liblz4.a"), Timestamp { sec: 99, nsec: 7 });
        assert_eq!(mtime("lib/liblz4.so.1.9.4").sec, 99);
        assert_eq!(
            mtime("lib/liblz4.so.1").sec,
            99,
            "another link of the same inode has its mtime"
        );
        assert_eq!(mtime("programs/lz4").sec, 200, "not found holding a unit");
        assert_eq!(mtime("lib/lz4hc.c").sec, 100);
        assert_eq!(mtime("lib/lz4.c").sec, 500, "no object: made newer");
        assert!(marked.describe().starts_with(
            "1 object(s) made older than their sources, 2 program(s), shared librar(ies) or \
             archive(s) holding them too"
        ));
    }

    #[test]
    fn a_shipped_object_and_a_unit_at_second_zero_are_not_aged() {
        let mut contents = BTreeMap::new();
        let mut tree = object_tree(&[("a.c", "int a;"), ("a.o", "shipped")], &mut contents);
        for e in tree.values_mut() {
            e.mtime = Timestamp { sec: 0, nsec: 0 };
        }
        let source = tree.clone();
        let read = |h: &ContentHash| contents.get(h).cloned();
        let changed = Timestamp { sec: 500, nsec: 0 };
        let none = RootState::new();
        let marked = mark_units_changed(
            &mut tree,
            &[rp("a.c")],
            &source,
            &none,
            &read,
            &BTreeSet::new(),
            changed,
            false,
        );
        assert_eq!(marked.aged_objects, 0);
        assert_eq!(marked.touched_units, 1);
        assert_eq!(tree[&rp("a.o")].mtime.sec, 0);
        assert_eq!(tree[&rp("a.c")].mtime.sec, 500);
    }

    #[test]
    fn a_unit_whose_object_was_left_out_is_left_for_make_to_compile() {
        let mut contents = BTreeMap::new();
        let mut tree = object_tree(
            &[
                ("src/m4.c", "int m;"),
                ("src/m4.o", "object"),
                ("src/path.c", "int p;"),
                ("src/path.o", "object"),
                ("src/prog-path.o", "object"),
                ("doc/m4.1", "page"),
            ],
            &mut contents,
        );
        for (p, e) in tree.iter_mut() {
            let sec = if p.as_bytes().ends_with(b".c") {
                100
            } else {
                200
            };
            e.mtime = Timestamp { sec, nsec: 0 };
        }
        let mut source = tree.clone();
        source.retain(|p, _| p.as_bytes().ends_with(b".c") || p.as_bytes().ends_with(b".1"));
        // m4.o and path.o held a stale value: they are left out, path's other object stays.
        let left_out: RootState = ["src/m4.o", "src/path.o"]
            .iter()
            .map(|p| (rp(p), tree.remove(&rp(p)).unwrap()))
            .collect();
        let read = |h: &ContentHash| contents.get(h).cloned();
        let changed = Timestamp { sec: 500, nsec: 0 };
        let units = [rp("src/m4.c"), rp("src/path.c")];
        let marked = mark_units_changed(
            &mut tree,
            &units,
            &source,
            &left_out,
            &read,
            &BTreeSet::new(),
            changed,
            false,
        );
        assert_eq!(
            marked,
            MarkedUnits {
                units: 2,
                aged_objects: 1,
                aged_linked: 0,
                touched_units: 0,
                remade_units: 1
            }
        );
        let mtime = |p: &str| tree[&rp(p)].mtime.sec;
        assert_eq!(
            mtime("src/m4.c"),
            100,
            "make remakes the missing m4.o from it"
        );
        assert_eq!(mtime("src/prog-path.o"), 99);
        assert_eq!(mtime("src/path.c"), 100);
        assert!(!tree.contains_key(&rp("src/m4.o")));
        assert!(marked
            .describe()
            .contains("1 unit(s) whose objects were left out"));
    }
}
