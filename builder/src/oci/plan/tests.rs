//! The plan rules of docs/oci-export.md, one test each, on literal states.

use super::*;
use crate::checkpoint::state::diff_root;
use crate::checkpoint::testutil::{dir_entry, file_entry, tree_of};
use crate::checkpoint::{LayerMeta, RootState};

fn rel(s: &str) -> RelPath {
    RelPath::new(s.as_bytes().to_vec()).unwrap()
}

fn build_mount() -> Vec<Mount> {
    vec![
        Mount::new("build", b"/build").unwrap(),
        Mount::new("out", b"/nix/store/h-x").unwrap(),
    ]
}

/// The layer turning `before` into `after` (root `root`), and the state after it.
fn layer(root: &str, before: &RootState, after: &RootState) -> (Layer, State) {
    let diff = diff_root(before, after);
    let layer = Layer {
        index: 1,
        meta: LayerMeta {
            name: "p".into(),
            ..LayerMeta::default()
        },
        roots: [(root.to_owned(), diff)].into_iter().collect(),
        blobs: Vec::new(),
    };
    let mut next = State::default();
    next.roots.insert(root.to_owned(), after.clone());
    (layer, next)
}

fn paths(plan: &Plan) -> Vec<(String, &'static str)> {
    plan.iter()
        .map(|(p, i)| {
            let what = match i {
                Item::Entry(e) if e.is_dir() => "dir",
                Item::Entry(_) => "entry",
                Item::HardLink { .. } => "link",
                Item::Whiteout => "whiteout",
                Item::SyntheticDir => "synthetic",
            };
            (lossy(p), what)
        })
        .collect()
}

fn s(p: &str, w: &'static str) -> (String, &'static str) {
    (p.to_owned(), w)
}

#[test]
fn a_deleted_tree_is_one_whiteout_in_its_parent() {
    let before = tree_of(&[("a/x", "1"), ("a/y", "2"), ("b/z", "3"), ("keep", "4")]);
    let mut after = before.clone();
    for p in ["a", "a/x", "a/y", "b/z"] {
        after.remove(&rel(p));
    }
    let (l, next) = layer("build", &before, &after);
    let (plan, sockets) = plan_layer(&l, &next, &build_mount()).unwrap();
    assert!(sockets.is_empty());
    assert_eq!(
        paths(&plan),
        vec![
            s("build", "dir"),
            s("build/.wh.a", "whiteout"),
            s("build/b", "dir"),
            s("build/b/.wh.z", "whiteout"),
        ]
    );
}

#[test]
fn a_directory_replaced_by_a_file_needs_no_whiteouts_below_it() {
    let before = tree_of(&[("d/x", "1")]);
    let mut after = before.clone();
    after.remove(&rel("d/x"));
    after.insert(rel("d"), file_entry(b"now a file"));
    let (l, next) = layer("build", &before, &after);
    let (plan, _) = plan_layer(&l, &next, &build_mount()).unwrap();
    assert_eq!(paths(&plan), vec![s("build", "dir"), s("build/d", "entry")]);
}

#[test]
fn a_new_link_to_a_file_of_an_earlier_layer_brings_the_whole_group() {
    let linked = |content: &[u8], leader: &str| {
        let mut e = file_entry(content);
        if let EntryKind::File { hardlink, .. } = &mut e.kind {
            *hardlink = Some(rel(leader));
        }
        e
    };
    let mut before = tree_of(&[("other", "o")]);
    before.insert(rel("a"), linked(b"same", "a"));
    before.insert(rel("b"), linked(b"same", "a"));
    let mut after = before.clone();
    after.insert(rel("c"), linked(b"same", "a"));
    let (l, next) = layer("build", &before, &after);
    assert_eq!(l.roots["build"].changed.len(), 1, "only c changed");
    let (plan, _) = plan_layer(&l, &next, &build_mount()).unwrap();
    assert_eq!(
        paths(&plan),
        vec![
            s("build", "dir"),
            s("build/a", "entry"),
            s("build/b", "link"),
            s("build/c", "link"),
        ]
    );
    for p in ["build/b", "build/c"] {
        match &plan[p.as_bytes()] {
            Item::HardLink { target, .. } => assert_eq!(target, b"build/a"),
            other => panic!("{p}: {other:?}"),
        }
    }
}

#[test]
fn outputs_get_the_store_directories_above_them() {
    let before = RootState::new();
    let after = tree_of(&[("bin/hello", "#!")]);
    let (l, next) = layer("out", &before, &after);
    let (plan, _) = plan_layer(&l, &next, &build_mount()).unwrap();
    assert_eq!(
        paths(&plan),
        vec![
            s("nix", "synthetic"),
            s("nix/store", "synthetic"),
            s("nix/store/h-x", "dir"),
            s("nix/store/h-x/bin", "dir"),
            s("nix/store/h-x/bin/hello", "entry"),
        ]
    );
    // And removing the whole output is a whiteout in /nix/store.
    let (l, next) = layer("out", &after, &RootState::new());
    let (plan, _) = plan_layer(&l, &next, &build_mount()).unwrap();
    assert_eq!(
        paths(&plan),
        vec![
            s("nix", "synthetic"),
            s("nix/store", "synthetic"),
            s("nix/store/.wh.h-x", "whiteout"),
        ]
    );
}

#[test]
fn parents_carry_their_recorded_metadata() {
    let before = tree_of(&[]);
    let mut after = tree_of(&[("d/e/f", "x")]);
    let mut ro = dir_entry();
    ro.mode = 0o555;
    after.insert(rel("d"), ro.clone());
    // d did not change in a later layer: it is still written with its mode.
    let (l, next) = layer("build", &before, &after);
    let (plan, _) = plan_layer(&l, &next, &build_mount()).unwrap();
    assert_eq!(plan[&b"build/d"[..]], Item::Entry(ro));
}

#[test]
fn names_that_read_as_whiteouts_are_refused() {
    let (l, next) = layer("build", &RootState::new(), &tree_of(&[("x/.wh.y", "1")]));
    let err = plan_layer(&l, &next, &build_mount()).unwrap_err();
    assert_eq!(err.path, "build/x/.wh.y");
    for bad in [&b"relative"[..], b"/", b"/a/../b", b"/a//b", b"/nix/.wh.x"] {
        assert!(Mount::new("out", bad).is_err(), "{bad:?}");
    }
    let overlapping = vec![
        Mount::new("build", b"/build").unwrap(),
        Mount::new("out", b"/build/out").unwrap(),
    ];
    assert!(check_disjoint(&overlapping).is_err());
    let siblings = vec![
        Mount::new("build", b"/build").unwrap(),
        Mount::new("out", b"/build-out").unwrap(),
    ];
    assert!(check_disjoint(&siblings).is_ok());
}

#[test]
fn sockets_are_left_out_and_reported() {
    let mut after = tree_of(&[]);
    after.insert(
        rel("sock"),
        Entry {
            kind: EntryKind::Socket,
            ..dir_entry()
        },
    );
    let (l, next) = layer("build", &RootState::new(), &after);
    let (plan, sockets) = plan_layer(&l, &next, &build_mount()).unwrap();
    assert_eq!(paths(&plan), vec![s("build", "dir")]);
    assert_eq!(sockets, vec![b"build/sock".to_vec()]);
}
