//! Full tree states (path → entry per root): folding layers, whole-state invariants, and
//! diffs between states; pure, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{CheckpointError, Result};
use super::limits::MAX_ENTRIES;
use super::manifest::{check_entry, ContentHash, Entry, EntryKind, Layer, RootDiff, Timestamp};
use super::path::RelPath;

/// Every entry of one root, by path. Empty means the root does not exist.
pub type RootState = BTreeMap<RelPath, Entry>;

/// The state of all roots after some layer.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct State {
    /// Root name → entries. Roots that never existed may be absent or empty.
    pub roots: BTreeMap<String, RootState>,
}

impl State {
    /// The entries of `root` (an empty map if it has none).
    pub fn root(&self, root: &str) -> &RootState {
        static EMPTY: RootState = BTreeMap::new();
        self.roots.get(root).unwrap_or(&EMPTY)
    }

    /// Applies one layer's diffs, then checks the invariants of every root it touched
    /// ([`check_root_state`]) and that the state holds at most [`MAX_ENTRIES`] entries.
    pub fn apply(&mut self, layer: &Layer) -> Result<()> {
        for (root, diff) in &layer.roots {
            let st = self.roots.entry(root.clone()).or_default();
            apply_root_diff(st, diff).map_err(|(path, problem)| CheckpointError::Manifest {
                layer: layer.index,
                root: root.clone(),
                path: path.escaped(),
                problem,
            })?;
            check_root_state(st).map_err(|(path, problem)| CheckpointError::Manifest {
                layer: layer.index,
                root: root.clone(),
                path: path.escaped(),
                problem,
            })?;
        }
        let entries: usize = self.roots.values().map(BTreeMap::len).sum();
        if entries > MAX_ENTRIES {
            return Err(CheckpointError::Manifest {
                layer: layer.index,
                root: String::new(),
                path: String::new(),
                problem: format!(
                    "the state after this layer has {entries} entries, more than {MAX_ENTRIES} (the format's limit, §10)"
                ),
            });
        }
        Ok(())
    }

    /// The newest mtime of any entry (`None` when there are no entries). A file that
    /// changes after a restore must get an mtime newer than this.
    pub fn max_mtime(&self) -> Option<Timestamp> {
        self.roots.values().filter_map(max_mtime).max()
    }

    /// Every blob referenced by any file entry.
    pub fn blobs(&self) -> BTreeSet<ContentHash> {
        self.roots
            .values()
            .flat_map(|r| r.values().filter_map(Entry::blob))
            .collect()
    }
}

/// The newest mtime of any entry of one root (`None` when it has no entries): what a file
/// changed after restoring this root must be newer than.
pub fn max_mtime(root: &RootState) -> Option<Timestamp> {
    root.values().map(|e| e.mtime).max()
}

/// Applies a diff to one root's state: deletions (each must exist), then changed entries.
pub fn apply_root_diff(
    st: &mut RootState,
    diff: &RootDiff,
) -> std::result::Result<(), (RelPath, String)> {
    for p in &diff.deleted {
        if st.remove(p).is_none() {
            return Err((
                p.clone(),
                "deleted path does not exist in the previous state".into(),
            ));
        }
    }
    for (p, e) in &diff.changed {
        st.insert(p.clone(), e.clone());
    }
    Ok(())
}

/// The one validation of a root state that `verify` (through [`State::apply`]), every
/// restore and every snapshot run, so that whatever passes `verify` restores: every
/// entry's own fields and the format's limits (`check_entry`), at most [`MAX_ENTRIES`]
/// entries, the root entry exists when anything does and is of a kind restore can create
/// (not a socket or device), a non-directory root stands alone, every parent is a
/// directory in the state, hardlink groups are consistent (the leader exists, leads
/// itself, shares content and metadata, and the group has at least two members).
pub fn check_root_state(st: &RootState) -> std::result::Result<(), (RelPath, String)> {
    let Some((first, root_entry)) = st.iter().next() else {
        return Ok(());
    };
    if !first.is_root() {
        return Err((
            first.clone(),
            "entries exist but the root entry \"\" does not".into(),
        ));
    }
    if st.len() > MAX_ENTRIES {
        return Err((
            RelPath::root(),
            format!(
                "{} entries, more than {MAX_ENTRIES} (the format's limit, §10)",
                st.len()
            ),
        ));
    }
    if root_entry.kind.is_unsupported_for_restore() {
        return Err((
            RelPath::root(),
            format!(
                "the root is a {}, which cannot be restored (a root must be a directory, file, symlink or fifo)",
                root_entry.kind.name()
            ),
        ));
    }
    for (p, e) in st {
        check_entry(p, e).map_err(|problem| (p.clone(), problem))?;
    }
    if !root_entry.is_dir() && st.len() > 1 {
        return Err((
            RelPath::root(),
            "a non-directory root cannot have children".into(),
        ));
    }
    let mut group_sizes: BTreeMap<&RelPath, usize> = BTreeMap::new();
    for (p, e) in st.iter().skip(1) {
        let parent = p.parent().unwrap_or_default();
        match st.get(&parent) {
            Some(pe) if pe.is_dir() => {}
            Some(_) => return Err((p.clone(), "parent is not a directory".into())),
            None => return Err((p.clone(), "parent does not exist".into())),
        }
        if let EntryKind::File {
            hardlink: Some(g),
            size,
            blake3,
            ..
        } = &e.kind
        {
            let leader = st.get(g).ok_or_else(|| {
                (
                    p.clone(),
                    format!("hardlink group {g} names a missing path"),
                )
            })?;
            match &leader.kind {
                EntryKind::File {
                    hardlink: Some(lg),
                    size: ls,
                    blake3: lb,
                } if lg == g && ls == size && lb == blake3 => {}
                _ => {
                    return Err((
                        p.clone(),
                        format!(
                        "hardlink group {g}: leader is not a file of the same group and content"
                    ),
                    ))
                }
            }
            if leader.mode != e.mode || leader.mtime != e.mtime || leader.xattrs != e.xattrs {
                return Err((
                    p.clone(),
                    format!("hardlink group {g}: members disagree on mode, mtime or xattrs"),
                ));
            }
            *group_sizes.entry(g).or_default() += 1;
        }
    }
    for (g, n) in group_sizes {
        if n < 2 {
            return Err((g.clone(), "hardlink group with a single member".into()));
        }
    }
    Ok(())
}

/// The diff that turns `a` into `b`, in manifest form (full records of added or changed
/// entries, every removed path).
pub fn diff_root(a: &RootState, b: &RootState) -> RootDiff {
    let mut d = RootDiff::default();
    for (p, e) in b {
        if a.get(p) != Some(e) {
            d.changed.push((p.clone(), e.clone()));
        }
    }
    for p in a.keys() {
        if !b.contains_key(p) {
            d.deleted.push(p.clone());
        }
    }
    d
}

/// Which aspects of an entry changed.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ChangedFields {
    /// Kind changed (file → dir, ...).
    pub kind: bool,
    /// File content, symlink target or device number changed.
    pub content: bool,
    /// Permission bits changed.
    pub mode: bool,
    /// Modification time changed.
    pub mtime: bool,
    /// Extended attributes changed.
    pub xattrs: bool,
    /// Hardlink grouping changed.
    pub hardlink: bool,
}

/// The changes of one root between two states.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct RootChanges {
    /// Paths only in the second state.
    pub added: Vec<RelPath>,
    /// Paths only in the first state.
    pub removed: Vec<RelPath>,
    /// Paths in both whose entries differ.
    pub changed: Vec<(RelPath, ChangedFields)>,
}

impl RootChanges {
    /// True when the root is identical.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Differences between two states, by root; identical roots are absent.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct StateDiff {
    /// Root name → changes.
    pub roots: BTreeMap<String, RootChanges>,
}

impl StateDiff {
    /// True when the states are identical.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

fn changed_fields(a: &Entry, b: &Entry) -> ChangedFields {
    let mut c = ChangedFields {
        mode: a.mode != b.mode,
        mtime: a.mtime != b.mtime,
        xattrs: a.xattrs != b.xattrs,
        ..ChangedFields::default()
    };
    match (&a.kind, &b.kind) {
        (
            EntryKind::File {
                size: s1,
                blake3: h1,
                hardlink: l1,
            },
            EntryKind::File {
                size: s2,
                blake3: h2,
                hardlink: l2,
            },
        ) => {
            c.content = s1 != s2 || h1 != h2;
            c.hardlink = l1 != l2;
        }
        (x, y) if x.name() == y.name() => c.content = x != y,
        _ => c.kind = true,
    }
    c
}

/// Compares two root states.
pub fn diff_root_changes(a: &RootState, b: &RootState) -> RootChanges {
    let mut rc = RootChanges::default();
    for (p, e) in b {
        match a.get(p) {
            None => rc.added.push(p.clone()),
            Some(old) if old != e => rc.changed.push((p.clone(), changed_fields(old, e))),
            Some(_) => {}
        }
    }
    rc.removed = a.keys().filter(|p| !b.contains_key(*p)).cloned().collect();
    rc
}

/// Compares two states root by root (added, removed, changed paths).
pub fn diff(a: &State, b: &State) -> StateDiff {
    let names: BTreeSet<&String> = a.roots.keys().chain(b.roots.keys()).collect();
    let mut out = StateDiff::default();
    for name in names {
        let rc = diff_root_changes(a.root(name), b.root(name));
        if !rc.is_empty() {
            out.roots.insert(name.clone(), rc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::manifest::LayerMeta;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }
    use crate::checkpoint::testutil::dir_entry as dir;

    fn file(c: &[u8], g: Option<&str>) -> Entry {
        Entry {
            kind: EntryKind::File {
                size: c.len() as u64,
                blake3: ContentHash::of(c),
                hardlink: g.map(p),
            },
            mode: 0o644,
            mtime: Timestamp::default(),
            xattrs: BTreeMap::new(),
        }
    }
    fn layer(index: u32, diff: RootDiff) -> Layer {
        Layer {
            index,
            meta: LayerMeta::default(),
            roots: [("build".to_string(), diff)].into_iter().collect(),
            blobs: Vec::new(),
        }
    }

    #[test]
    fn fold_and_diff() {
        let mut a = RootState::new();
        a.insert(RelPath::root(), dir());
        a.insert(p("d"), dir());
        a.insert(p("d/f"), file(b"1", None));
        a.insert(p("x"), file(b"x", Some("x")));
        a.insert(p("y"), file(b"x", Some("x")));
        check_root_state(&a).unwrap();
        let mut b = a.clone();
        b.remove(&p("d/f"));
        b.remove(&p("d"));
        b.insert(p("n"), file(b"n", None));
        let mut y = file(b"x", Some("x"));
        y.mode = 0o600;
        let mut x = y.clone();
        x.mode = 0o600;
        b.insert(p("x"), x);
        b.insert(p("y"), y);
        check_root_state(&b).unwrap();

        let d = diff_root(&a, &b);
        assert_eq!(d.deleted, vec![p("d"), p("d/f")]);
        let mut st = State::default();
        st.apply(&layer(0, diff_root(&RootState::new(), &a)))
            .unwrap();
        st.apply(&layer(1, d)).unwrap();
        assert_eq!(st.root("build"), &b);

        let sd = diff(
            &State {
                roots: [("build".into(), a)].into_iter().collect(),
            },
            &st,
        );
        let rc = &sd.roots["build"];
        assert_eq!(rc.added, vec![p("n")]);
        assert_eq!(rc.removed, vec![p("d"), p("d/f")]);
        assert_eq!(rc.changed.len(), 2);
        assert!(rc.changed[0].1.mode && !rc.changed[0].1.content);
    }

    #[test]
    fn invariants_are_enforced() {
        let mut s = RootState::new();
        s.insert(p("a"), file(b"", None));
        assert!(check_root_state(&s).is_err(), "root missing");
        s.insert(RelPath::root(), dir());
        check_root_state(&s).unwrap();
        s.insert(p("a/b"), file(b"", None));
        assert!(check_root_state(&s).is_err(), "parent is a file");
        s.remove(&p("a/b"));
        s.insert(p("a"), file(b"", Some("a")));
        assert!(check_root_state(&s).is_err(), "group of one");
        s.insert(p("b"), file(b"other", Some("a")));
        assert!(check_root_state(&s).is_err(), "group content differs");
        let mut l = RootState::new();
        l.insert(RelPath::root(), file(b"", None));
        l.insert(p("a"), file(b"", None));
        assert!(check_root_state(&l).is_err(), "file root with children");
        let mut st = State::default();
        let bad = layer(
            0,
            RootDiff {
                changed: vec![],
                deleted: vec![p("nope")],
            },
        );
        assert!(matches!(
            st.apply(&bad),
            Err(CheckpointError::Manifest { .. })
        ));
    }
}
