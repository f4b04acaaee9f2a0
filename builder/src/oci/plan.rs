//! What each OCI layer holds: the entries and whiteouts of one checkpoint layer, at the
//! paths the build saw them, with every parent directory. Pure: states and layers in, a
//! sorted list of tar items out; no I/O.
//!
//! Rules (docs/oci-export.md):
//! - root `build` lives at the recorded build directory, every output at its recorded
//!   store path; the tar path is that absolute path without its leading `/`;
//! - a deleted path becomes a whiteout `.wh.NAME` in its parent, unless its parent was
//!   deleted too (the parent's whiteout covers it) or replaced by a non-directory (the
//!   replacement removes it);
//! - a changed file of a hardlink group brings the whole group of the state after the
//!   layer: the group's first path as a full file, the others as tar hardlinks to it, so
//!   a link never points into an earlier layer;
//! - every parent of an item is in the tar with its recorded metadata; parents above a
//!   root (`nix`, `nix/store`) are fixed directories ([`SYNTHETIC_DIR_MODE`], mtime 0).

use crate::checkpoint::{Entry, EntryKind, Layer, RelPath, RootState, State};
use std::collections::{BTreeMap, BTreeSet};

/// Mode of the directories above a root, which the checkpoint does not record.
pub const SYNTHETIC_DIR_MODE: u32 = 0o755;

/// The prefix OCI gives whiteout files.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// Where a root lives in the image.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Mount {
    /// Root name in the checkpoint (`build`, `out`, ...).
    pub root: String,
    /// Absolute path without the leading `/`, clean (`build`, `nix/store/…-hello`).
    pub path: Vec<u8>,
}

impl Mount {
    /// Checks `abs` (an absolute path from the checkpoint's metadata) and makes a mount.
    pub fn new(root: &str, abs: &[u8]) -> Result<Mount, String> {
        let rel = abs
            .strip_prefix(b"/")
            .ok_or_else(|| format!("root `{root}`: path {:?} is not absolute", lossy(abs)))?;
        if rel.is_empty() {
            return Err(format!("root `{root}`: the root directory `/` itself"));
        }
        for c in rel.split(|&b| b == b'/') {
            if c.is_empty() || c == b"." || c == b".." || c.contains(&0) {
                return Err(format!("root `{root}`: path {:?} is not clean", lossy(abs)));
            }
            if c.starts_with(WHITEOUT_PREFIX) {
                return Err(format!(
                    "root `{root}`: path {:?} has a whiteout name",
                    lossy(abs)
                ));
            }
        }
        Ok(Mount {
            root: root.to_owned(),
            path: rel.to_vec(),
        })
    }

    /// The tar path of `rel` inside this root.
    pub fn tar_path(&self, rel: &RelPath) -> Vec<u8> {
        if rel.is_root() {
            self.path.clone()
        } else {
            [&self.path[..], b"/", rel.as_bytes()].concat()
        }
    }
}

/// Refuses mounts that overlap (one at or below another): their entries would collide.
pub fn check_disjoint(mounts: &[Mount]) -> Result<(), String> {
    for a in mounts {
        for b in mounts {
            if a.root != b.root
                && (a.path == b.path
                    || (b.path.starts_with(&a.path) && b.path.get(a.path.len()) == Some(&b'/')))
            {
                return Err(format!(
                    "roots `{}` and `{}` overlap ({:?}, {:?})",
                    a.root,
                    b.root,
                    lossy(&a.path),
                    lossy(&b.path)
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One tar entry of a layer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Item {
    /// An entry of the state after the layer, written in full (a file with its content).
    Entry(Entry),
    /// A file written as a tar hardlink to `target` (a tar path earlier in the same layer).
    HardLink { entry: Entry, target: Vec<u8> },
    /// A whiteout (the item's path is `PARENT/.wh.NAME`).
    Whiteout,
    /// A directory above a root, which the checkpoint does not record.
    SyntheticDir,
}

/// The items of a layer, by tar path (sorted bytewise, so parents come first and a group's
/// first path precedes its links).
pub type Plan = BTreeMap<Vec<u8>, Item>;

/// Why a layer cannot be planned.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Unrepresentable {
    /// Tar path (lossy).
    pub path: String,
    pub problem: &'static str,
}

/// Plans the OCI layer of checkpoint layer `layer`, given `next`, the state after it.
/// Sockets cannot be in a tar: they are left out and returned.
pub fn plan_layer(
    layer: &Layer,
    next: &State,
    mounts: &[Mount],
) -> Result<(Plan, Vec<Vec<u8>>), Unrepresentable> {
    let mut plan = Plan::new();
    let mut sockets = Vec::new();
    for (root, diff) in &layer.roots {
        let Some(mount) = mounts.iter().find(|m| &m.root == root) else {
            return Err(Unrepresentable {
                path: root.clone(),
                problem: "the root has no recorded path",
            });
        };
        let st = next.root(root);
        let deleted: BTreeSet<&RelPath> = diff.deleted.iter().collect();
        for p in &diff.deleted {
            let parent = p.parent();
            if let Some(parent) = &parent {
                if deleted.contains(parent) || !st.get(parent).is_some_and(Entry::is_dir) {
                    continue;
                }
            }
            let name = p.file_name().map_or(&mount.path[..], |n| n);
            let base = match &parent {
                Some(parent) => mount.tar_path(parent),
                None => parent_of(&mount.path).to_vec(),
            };
            let mut path = base.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(WHITEOUT_PREFIX);
            path.extend_from_slice(base_name(name));
            plan.insert(path, Item::Whiteout);
            add_parents(&mut plan, mount, st, parent.as_ref());
        }
        let mut groups = BTreeSet::new();
        for (p, e) in &diff.changed {
            check_name(mount, p)?;
            match &e.kind {
                EntryKind::Socket => {
                    sockets.push(mount.tar_path(p));
                    continue;
                }
                EntryKind::File {
                    hardlink: Some(g), ..
                } => {
                    groups.insert(g.clone());
                }
                _ => {}
            }
            plan.insert(mount.tar_path(p), Item::Entry(e.clone()));
            add_parents(&mut plan, mount, st, p.parent().as_ref());
        }
        if !groups.is_empty() {
            for (p, e) in st {
                let EntryKind::File {
                    hardlink: Some(g), ..
                } = &e.kind
                else {
                    continue;
                };
                if !groups.contains(g) {
                    continue;
                }
                let item = if p == g {
                    Item::Entry(e.clone())
                } else {
                    Item::HardLink {
                        entry: e.clone(),
                        target: mount.tar_path(g),
                    }
                };
                plan.insert(mount.tar_path(p), item);
                add_parents(&mut plan, mount, st, p.parent().as_ref());
            }
        }
    }
    Ok((plan, sockets))
}

/// The last component of a clean relative path (the path itself without a `/`).
fn base_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// Everything before the last `/` (empty for a single component).
fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => &[],
    }
}

/// A path component named `.wh.*` would read as a whiteout.
fn check_name(mount: &Mount, p: &RelPath) -> Result<(), Unrepresentable> {
    if p.components().any(|c| c.starts_with(WHITEOUT_PREFIX)) {
        return Err(Unrepresentable {
            path: lossy(&mount.tar_path(p)),
            problem: "a name starting with `.wh.` would be read as an OCI whiteout",
        });
    }
    Ok(())
}

/// Adds `dir` (a directory of `st`, or `None` for "above the root") and every ancestor.
fn add_parents(plan: &mut Plan, mount: &Mount, st: &RootState, dir: Option<&RelPath>) {
    let mut cur = dir.cloned();
    while let Some(d) = cur {
        if let Some(e) = st.get(&d) {
            plan.entry(mount.tar_path(&d))
                .or_insert_with(|| Item::Entry(e.clone()));
        }
        cur = d.parent();
    }
    let mut above = parent_of(&mount.path);
    while !above.is_empty() {
        plan.entry(above.to_vec()).or_insert(Item::SyntheticDir);
        above = parent_of(above);
    }
}

#[cfg(test)]
mod tests;
