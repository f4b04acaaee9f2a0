//! Equal-length byte-string rewriting (an earlier build's output paths → this build's), for
//! importing layers into a new checkpoint: in buffers, in streams, in names, in JSON and in
//! whole root states. Pure, no I/O.
//!
//! Semantics: one left-to-right scan; at each position the first pair (in the order given)
//! whose `old` starts there is replaced by its `new` and the scan continues after it;
//! otherwise the scan moves one byte on. Replacements never overlap and a replaced region is
//! never scanned again, so `a→b, b→c` turns `a` into `b` (a simultaneous substitution, not a
//! chain). Because every `new` has the length of its `old`, sizes and offsets never change.

use std::collections::{BTreeMap, HashMap};

use memchr::memmem;

use super::error::{CheckpointError, Result};
use super::manifest::{ContentHash, Entry, EntryKind, Xattrs};
use super::path::{escape_bytes, RelPath};
use super::state::RootState;

/// One rewrite: `(old, new)`, both of the same length.
pub type RewritePair = (Vec<u8>, Vec<u8>);

/// Where each pattern of a [`Rewrites`] occurs next in the bytes one scan goes over, by
/// pattern: `None` before it was looked for, `Some(usize::MAX)` when it occurs no more.
struct Occurrences(Vec<Option<usize>>);

impl Occurrences {
    fn new(patterns: usize) -> Self {
        Occurrences(vec![None; patterns])
    }
}

/// A validated list of `(old, new)` pairs, ready to scan with.
#[derive(Clone, Debug)]
pub struct Rewrites {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    /// A substring searcher for each `old`, in the order of `pairs`: a scan jumps from one
    /// occurrence to the next. Jumping to the next byte that starts a pattern instead made
    /// the cost follow the output hash: a store hash starting with a letter frequent in the
    /// content stopped the scan every few bytes.
    finders: Vec<memmem::Finder<'static>>,
    max_len: usize,
}

impl Rewrites {
    /// Checks the pairs: every `old` non-empty and every `new` exactly as long as its `old`.
    /// A pair whose `new` equals its `old` is kept: it changes nothing itself but, being
    /// earlier in the order, shields its occurrences from later pairs.
    pub fn new(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Self> {
        let mut max_len = 0;
        for (old, new) in pairs {
            let bad = |problem| {
                Err(CheckpointError::InvalidRewrite {
                    old: escape_bytes(old),
                    new: escape_bytes(new),
                    problem,
                })
            };
            if old.is_empty() {
                return bad("the string to replace is empty");
            }
            if old.len() != new.len() {
                return bad("old and new differ in length, so they cannot be swapped in place");
            }
            max_len = max_len.max(old.len());
        }
        Ok(Rewrites {
            pairs: pairs.to_vec(),
            finders: pairs
                .iter()
                .map(|(old, _)| memmem::Finder::new(old).into_owned())
                .collect(),
            max_len,
        })
    }

    /// True when applying these rewrites can never change anything (no pairs, or every pair
    /// replaces a string by itself).
    pub fn is_identity(&self) -> bool {
        self.pairs.iter().all(|(o, n)| o == n)
    }

    /// Scans `data[from..]` in place, deciding only positions before `limit`; returns where
    /// the scan stopped (`>= limit`, or past a replacement that ends beyond it) and the
    /// number of replacements that changed bytes.
    fn scan(&self, data: &mut [u8], from: usize, limit: usize) -> (usize, u64) {
        let mut i = from;
        let mut n = 0;
        let mut next = Occurrences::new(self.pairs.len());
        while let Some((j, (old, new))) = self.next_match(data, i, limit, &mut next) {
            let len = new.len();
            if old != new {
                data[j..j + len].copy_from_slice(new);
                n += 1;
            }
            i = j + len;
        }
        (i.max(limit), n)
    }

    /// The first position from `i` and before `limit` where some `old` occurs whole in
    /// `data`, with the first pair (in order) whose `old` occurs there. `next` keeps where
    /// each one occurs next, for the calls that follow on the same bytes from a later `i`
    /// (those after a replacement are unchanged by it). Each entry is the first occurrence
    /// at or after `i`, so the pairs that occur at the position found are those whose entry
    /// is that position.
    fn next_match(
        &self,
        data: &[u8],
        i: usize,
        limit: usize,
        next: &mut Occurrences,
    ) -> Option<(usize, &RewritePair)> {
        if i >= limit {
            return None;
        }
        for (at, finder) in next.0.iter_mut().zip(&self.finders) {
            if at.is_none_or(|at| at < i) {
                *at = Some(finder.find(&data[i..]).map_or(usize::MAX, |j| i + j));
            }
        }
        let j = next
            .0
            .iter()
            .flatten()
            .copied()
            .min()
            .filter(|&j| j < limit)?;
        let p = next.0.iter().position(|&at| at == Some(j))?;
        Some((j, &self.pairs[p]))
    }

    /// Rewrites `data` in place; returns the number of replacements that changed bytes
    /// (0 exactly when `data` is left as it was).
    pub fn apply_in_place(&self, data: &mut [u8]) -> u64 {
        if self.pairs.is_empty() {
            return 0;
        }
        let len = data.len();
        self.scan(data, 0, len).1
    }

    /// The rewritten copy of `data`, or `None` (without copying anything) when nothing in
    /// it changes.
    pub fn apply(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut i = 0;
        let mut next = Occurrences::new(self.pairs.len());
        while let Some((j, (old, new))) = self.next_match(data, i, data.len(), &mut next) {
            if old != new {
                // Everything before `j` is decided and unchanged: go on in a copy.
                let mut v = data.to_vec();
                let len = v.len();
                self.scan(&mut v, j, len);
                return Some(v);
            }
            i = j + old.len();
        }
        None
    }

    /// True if some pair with `new != old` has its `old` somewhere in `data`, whatever the
    /// priorities: a cheap test that rules out any change, in `data` or in any part of it.
    fn may_change(&self, data: &[u8]) -> bool {
        self.pairs
            .iter()
            .zip(&self.finders)
            .any(|((old, new), finder)| old != new && finder.find(data).is_some())
    }

    /// A rewriter for content that arrives in chunks.
    pub fn stream(&self) -> StreamRewriter<'_> {
        StreamRewriter {
            rw: self,
            pending: Vec::new(),
            replaced: 0,
        }
    }

    /// Rewrites one path component by component (a pattern never matches across `/`, as a
    /// NAR never has one name spanning two directories); `None` when nothing changes.
    pub fn apply_path(&self, p: &RelPath) -> Result<Option<RelPath>> {
        if p.is_root() || !self.may_change(p.as_bytes()) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(p.as_bytes().len());
        let mut changed = false;
        for (i, c) in p.components().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            match self.apply(c) {
                Some(n) => {
                    changed = true;
                    out.extend_from_slice(&n);
                }
                None => out.extend_from_slice(c),
            }
        }
        if changed {
            RelPath::new(out).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Rewrites a UTF-8 string; fails if the result is not UTF-8.
    pub fn apply_str(&self, s: &str) -> std::result::Result<String, String> {
        match self.apply(s.as_bytes()) {
            None => Ok(s.to_owned()),
            Some(b) => String::from_utf8(b).map_err(|_| {
                format!("rewriting {s:?} gives bytes that are not UTF-8, so it cannot stay a JSON string")
            }),
        }
    }

    /// Rewrites every string of a JSON value: string values and object keys (two keys
    /// rewritten to the same one are an error).
    pub fn apply_json(
        &self,
        v: &serde_json::Value,
    ) -> std::result::Result<serde_json::Value, String> {
        use serde_json::Value;
        Ok(match v {
            Value::String(s) => Value::String(self.apply_str(s)?),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.apply_json(x))
                    .collect::<std::result::Result<_, _>>()?,
            ),
            Value::Object(o) => {
                let mut m = serde_json::Map::new();
                for (k, x) in o {
                    let k2 = self.apply_str(k)?;
                    if m.insert(k2.clone(), self.apply_json(x)?).is_some() {
                        return Err(format!("two JSON keys are rewritten to {k2:?}"));
                    }
                }
                Value::Object(m)
            }
            other => other.clone(),
        })
    }

    fn apply_xattrs(&self, x: &Xattrs) -> std::result::Result<Xattrs, String> {
        let mut out = BTreeMap::new();
        for (k, v) in x {
            let k2 = self.apply(k).unwrap_or_else(|| k.clone());
            let v2 = self.apply(v).unwrap_or_else(|| v.clone());
            if out.insert(k2.clone(), v2).is_some() {
                return Err(format!(
                    "two xattr names are rewritten to {}",
                    escape_bytes(&k2)
                ));
            }
        }
        Ok(out)
    }

    /// Rewrites a whole root state: paths (component-wise), symlink targets, xattr names and
    /// values, and file hashes through `hashes` (old content hash → hash of the rewritten
    /// content). Hardlink groups are re-led by their bytewise smallest rewritten path.
    pub fn apply_root_state(
        &self,
        st: &RootState,
        hashes: &HashMap<ContentHash, ContentHash>,
    ) -> std::result::Result<RootState, String> {
        let mut out = RootState::new();
        let mut path_map: HashMap<&RelPath, RelPath> = HashMap::new();
        for (p, e) in st {
            let np = self
                .apply_path(p)
                .map_err(|e| format!("path {p}: {e}"))?
                .unwrap_or_else(|| p.clone());
            let kind = match &e.kind {
                EntryKind::File {
                    size,
                    blake3,
                    hardlink,
                } => EntryKind::File {
                    size: *size,
                    blake3: *hashes
                        .get(blake3)
                        .ok_or_else(|| format!("path {p}: blob {blake3} was not imported"))?,
                    // Re-led below.
                    hardlink: hardlink.clone(),
                },
                EntryKind::Symlink { target } => EntryKind::Symlink {
                    target: self.apply(target).unwrap_or_else(|| target.clone()),
                },
                k => k.clone(),
            };
            let entry = Entry {
                kind,
                mode: e.mode,
                mtime: e.mtime,
                xattrs: self
                    .apply_xattrs(&e.xattrs)
                    .map_err(|m| format!("path {p}: {m}"))?,
            };
            if out.insert(np.clone(), entry).is_some() {
                return Err(format!("two paths are rewritten to {np}"));
            }
            path_map.insert(p, np);
        }
        // Hardlink groups: old leader → smallest rewritten member.
        let mut leaders: HashMap<RelPath, RelPath> = HashMap::new();
        for (p, e) in st {
            if let EntryKind::File {
                hardlink: Some(g), ..
            } = &e.kind
            {
                let np = &path_map[p];
                leaders
                    .entry(g.clone())
                    .and_modify(|l| {
                        if np < l {
                            *l = np.clone();
                        }
                    })
                    .or_insert_with(|| np.clone());
            }
        }
        if !leaders.is_empty() {
            for e in out.values_mut() {
                if let EntryKind::File {
                    hardlink: Some(g), ..
                } = &mut e.kind
                {
                    *g = leaders[&*g].clone();
                }
            }
        }
        Ok(out)
    }
}

/// Files whose rewritten content is not their bytes rewritten: contents that encode other
/// contents, like a build tool's log of command-line hashes (`crate::reuse::incremental::ninja`). An import of
/// an earlier checkpoint calls it for every root state it rewrites; what it returns replaces
/// the byte-rewritten content of those files (same path, mode and mtime).
pub trait Translator: Send + Sync + std::fmt::Debug {
    /// `old`: one root's state before rewriting; `read`: the content of one of its regular
    /// files (`None` when there is none); `rw`: the rewrites. Returns paths of `old` with
    /// their new content.
    fn translate(
        &self,
        old: &RootState,
        read: &mut dyn FnMut(&RelPath) -> Option<Vec<u8>>,
        rw: &Rewrites,
    ) -> Vec<(RelPath, Vec<u8>)>;
}

/// Rewrites content that arrives in chunks, with exactly the result of
/// [`Rewrites::apply_in_place`] on the whole: bytes that could still start a match are held
/// back until the next chunk (at most the longest pattern minus one).
#[derive(Debug)]
pub struct StreamRewriter<'a> {
    rw: &'a Rewrites,
    pending: Vec<u8>,
    replaced: u64,
}

impl StreamRewriter<'_> {
    /// Adds `chunk`; passes every byte that is final to `out`.
    pub fn feed(&mut self, chunk: &[u8], mut out: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        if self.rw.pairs.is_empty() {
            return out(chunk);
        }
        self.pending.extend_from_slice(chunk);
        // Decide only positions where every pattern fits, so priority is respected.
        let limit = (self.pending.len() + 1).saturating_sub(self.rw.max_len);
        let (done, n) = self.rw.scan(&mut self.pending, 0, limit);
        let done = done.min(self.pending.len());
        self.replaced += n;
        if done > 0 {
            out(&self.pending[..done])?;
            self.pending.drain(..done);
        }
        Ok(())
    }

    /// Rewrites and passes on what is held back; returns the number of replacements that
    /// changed bytes (0 exactly when the stream passed through unchanged).
    pub fn finish(mut self, mut out: impl FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        let len = self.pending.len();
        let (_, n) = self.rw.scan(&mut self.pending, 0, len);
        self.replaced += n;
        if len > 0 {
            out(&self.pending)?;
        }
        Ok(self.replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::manifest::Timestamp;

    fn rw(pairs: &[(&str, &str)]) -> Rewrites {
        let v: Vec<(Vec<u8>, Vec<u8>)> = pairs
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect();
        Rewrites::new(&v).unwrap()
    }

    /// The obvious quadratic implementation of the documented semantics.
    fn reference(pairs: &[(Vec<u8>, Vec<u8>)], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        'outer: while i < data.len() {
            for (o, n) in pairs {
                if data[i..].starts_with(o) {
                    out.extend_from_slice(n);
                    i += o.len();
                    continue 'outer;
                }
            }
            out.push(data[i]);
            i += 1;
        }
        out
    }

    #[test]
    fn pairs_are_checked() {
        let e = Rewrites::new(&[(b"abc".to_vec(), b"ab".to_vec())]).unwrap_err();
        assert!(matches!(e, CheckpointError::InvalidRewrite { .. }), "{e}");
        assert!(Rewrites::new(&[(vec![], vec![])]).is_err());
        assert!(Rewrites::new(&[]).unwrap().is_identity());
    }

    #[test]
    fn order_priority_and_no_chaining() {
        let r = rw(&[("ab", "xy"), ("b", "z"), ("xy", "QQ")]);
        assert_eq!(r.apply(b"abb xy").unwrap(), b"xyz QQ");
        let swap = rw(&[("a", "b"), ("b", "a")]);
        assert_eq!(swap.apply(b"aabb").unwrap(), b"bbaa");
        assert_eq!(rw(&[("aa", "bb")]).apply(b"aaa").unwrap(), b"bba");
        assert!(rw(&[("q", "r")]).apply(b"nothing").is_none());
        assert!(rw(&[("n", "n")]).apply(b"nothing").is_none());
    }

    #[test]
    fn streaming_equals_whole_buffer() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            // Small alphabet so patterns occur often, overlap and shield each other; up to
            // five patterns, the same one twice at times.
            let np = 1 + (next() % 5) as usize;
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..np)
                .map(|_| {
                    let len = 1 + (next() % 5) as usize;
                    let o: Vec<u8> = (0..len).map(|_| b'a' + (next() % 4) as u8).collect();
                    let n: Vec<u8> = (0..len).map(|_| b'A' + (next() % 3) as u8).collect();
                    (o, n)
                })
                .collect();
            let r = Rewrites::new(&pairs).unwrap();
            let len = (next() % 200) as usize;
            let data: Vec<u8> = (0..len).map(|_| b'a' + (next() % 4) as u8).collect();
            let want = reference(&pairs, &data);
            let mut whole = data.clone();
            r.apply_in_place(&mut whole);
            assert_eq!(whole, want, "round {round}");
            assert_eq!(
                r.apply(&data).unwrap_or(data.clone()),
                want,
                "round {round}"
            );
            assert_eq!(r.apply(&data).is_some(), want != data, "round {round}");
            let occurs = |o: &[u8]| data.windows(o.len()).any(|w| w == o);
            assert_eq!(
                r.may_change(&data),
                pairs.iter().any(|(o, n)| o != n && occurs(o)),
                "round {round}"
            );
            let chunk = 1 + (next() % 7) as usize;
            let mut s = r.stream();
            let mut got = Vec::new();
            for c in data.chunks(chunk) {
                s.feed(c, |b| {
                    got.extend_from_slice(b);
                    Ok(())
                })
                .unwrap();
            }
            s.finish(|b| {
                got.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, want, "round {round}, chunks of {chunk}");
        }
    }

    #[test]
    fn names_json_and_states() {
        let r = rw(&[("OLD", "NEW"), ("old", "new")]);
        assert_eq!(
            r.apply_path(&RelPath::new("a/OLD-x/y").unwrap())
                .unwrap()
                .unwrap(),
            RelPath::new("a/NEW-x/y").unwrap()
        );
        // Never across a `/`.
        let slash = rw(&[("a/b", "c/d")]);
        assert!(slash
            .apply_path(&RelPath::new("a/b").unwrap())
            .unwrap()
            .is_none());
        // Components are rewritten on their own, even when a pair spanning `/` would
        // shield them in the whole path.
        let shield = rw(&[("a/b", "a/b"), ("a", "z")]);
        assert_eq!(
            shield
                .apply_path(&RelPath::new("a/b").unwrap())
                .unwrap()
                .unwrap(),
            RelPath::new("z/b").unwrap()
        );
        let j = serde_json::json!({"k": ["OLD", 1, {"OLDkey": "x old y"}], "z": null});
        assert_eq!(
            r.apply_json(&j).unwrap(),
            serde_json::json!({"k": ["NEW", 1, {"NEWkey": "x new y"}], "z": null})
        );
        assert!(r
            .apply_json(&serde_json::json!({"OLD": 1, "NEW": 2}))
            .is_err());

        let file = |c: &[u8], g: Option<&str>| Entry {
            kind: EntryKind::File {
                size: c.len() as u64,
                blake3: ContentHash::of(c),
                hardlink: g.map(|g| RelPath::new(g).unwrap()),
            },
            mode: 0o644,
            mtime: Timestamp::default(),
            xattrs: BTreeMap::new(),
        };
        let dir = Entry {
            kind: EntryKind::Dir,
            mode: 0o755,
            mtime: Timestamp::default(),
            xattrs: [(b"user.OLD".to_vec(), b"v old".to_vec())]
                .into_iter()
                .collect(),
        };
        let mut st = RootState::new();
        st.insert(RelPath::root(), dir);
        // A hardlink group whose member is renamed keeps its leader `x`.
        st.insert(RelPath::new("x").unwrap(), file(b"c", Some("x")));
        st.insert(RelPath::new("zOLD").unwrap(), file(b"c", Some("x")));
        st.insert(RelPath::new("ZZ").unwrap(), file(b"d", None));
        let hashes: HashMap<_, _> = [
            (ContentHash::of(b"c"), ContentHash::of(b"C")),
            (ContentHash::of(b"d"), ContentHash::of(b"d")),
        ]
        .into_iter()
        .collect();
        let out = r.apply_root_state(&st, &hashes).unwrap();
        super::super::state::check_root_state(&out).unwrap();
        assert_eq!(out[&RelPath::root()].xattrs[&b"user.NEW"[..]], b"v new");
        assert_eq!(
            out[&RelPath::new("zNEW").unwrap()].blob(),
            Some(ContentHash::of(b"C"))
        );
        // A group whose rewritten leader changes is re-led.
        let lead = rw(&[("x", "a")]);
        let mut st2 = st.clone();
        st2.insert(RelPath::new("b").unwrap(), file(b"c", Some("b")));
        st2.insert(RelPath::new("x").unwrap(), file(b"c", Some("b")));
        st2.remove(&RelPath::new("zOLD").unwrap());
        let out = lead.apply_root_state(&st2, &hashes).unwrap();
        super::super::state::check_root_state(&out).unwrap();
        match &out[&RelPath::new("b").unwrap()].kind {
            EntryKind::File { hardlink, .. } => {
                assert_eq!(hardlink.as_ref().unwrap(), &RelPath::new("a").unwrap())
            }
            k => panic!("{k:?}"),
        }
        // Collisions are refused.
        st.insert(RelPath::new("zNEW").unwrap(), file(b"d", None));
        assert!(r.apply_root_state(&st, &hashes).is_err());
    }
}
