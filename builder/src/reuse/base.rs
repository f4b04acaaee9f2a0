//! Loads an earlier build's checkpoint (untrusted input, design §6) and moves its layers into
//! this build: layers rewritten to this build's output paths, trees restored, snapshots adopted.
//!
//! Effectful. Deciding *what* to reuse is pure and lives in [`crate::reuse::plan`].

use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointWriter, ContentCheck, ContentHash, EntryKind, Layer,
    RelPath, RestoreReport, RewritePair, RootState, Snapshotter, State,
};
use crate::meta::attachment;
use crate::meta::{BuildMeta, LayerInfo};
use crate::reuse::keys::{random_seed_of, LayerInputs};
use crate::reuse::plan::BaseLayer;
use crate::reuse::stale::{pieces_or_windows_held, ReadChunks, StaleValue};
use crate::reuse::trust::{self, BaseTrust, LayerRecord, TrustError};
use crate::shell::validate::StateValidator;
use crate::shell::ShellState;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An earlier build's checkpoint that passed the checks made when it is loaded.
pub struct BaseCheckpoint {
    pub dir: PathBuf,
    pub checkpoint: Checkpoint,
    pub layers: Vec<BaseLayer>,
    /// Output name → path in the earlier build.
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// The earlier build's output paths in the order its keys mask them (the derivation's
    /// outputs as declared, then the checkpoint's own path: [`crate::reuse::keys::output_masks`]
    /// names each by its position), for comparing its recorded values with this build's.
    pub masked_outputs: Vec<Vec<u8>>,
    /// The earlier build's build directory.
    pub build_top: Vec<u8>,
    /// Said in the log when the base is used: why it is trusted although it did not come
    /// out of a build at its path (`checkpointBaseTrust = "any"`).
    pub trust_note: Option<String>,
    /// The blobs whose content was not checked when the base was loaded: the build's reads
    /// verify each blob they read, and [`BaseCheckpoint::verify_unread_contents`] the others.
    unchecked_contents: Option<ContentCheck>,
}

impl BaseCheckpoint {
    /// Rehashes, on `threads` threads, every blob of the base the build has not read (and
    /// verified) yet; a no-op for a base whose contents were checked whole when it was
    /// loaded. Started once the build's restores from the base are done, beside the phases
    /// that run over what they restored (docs/trust.md, "When the contents are checked").
    pub fn verify_unread_contents(&self, threads: usize) -> Result<(), CheckpointError> {
        match &self.unchecked_contents {
            Some(contents) => self
                .checkpoint
                .verify_contents_on(contents, threads)
                .map(|_| ()),
            None => Ok(()),
        }
    }
}

/// Opens and checks `dir` (integrity, system, keys and chain, then provenance under `trust`,
/// docs/trust.md); `Err` is the reason, for a log line ("checkpoint rejected: …"). The
/// contents of its blobs are checked as the build reads them, and the rest by
/// [`BaseCheckpoint::verify_unread_contents`]: no blob is read twice.
pub fn load_base(
    dir: &Path,
    system: Option<&str>,
    trust: BaseTrust,
) -> Result<BaseCheckpoint, String> {
    load_base_with(dir, system, false, trust)
}

/// [`load_base`], optionally for a checkpoint that may be unfinished (a development cache
/// entry of a build that failed or was killed: only the layers its index lists count). An
/// unfinished one has every blob checked here, so that the cache drops a bad entry before
/// any build uses it.
pub fn load_base_with(
    dir: &Path,
    system: Option<&str>,
    unfinished: bool,
    trust: BaseTrust,
) -> Result<BaseCheckpoint, String> {
    let checkpoint = Checkpoint::open(dir).map_err(|e| error_chain(&e))?;
    let contents = checkpoint
        .check_structure(unfinished)
        .map_err(|e| error_chain(&e))?;
    let unchecked_contents = if unfinished {
        checkpoint
            .verify_contents(&contents)
            .map_err(|e| error_chain(&e))?;
        None
    } else {
        Some(contents)
    };
    let meta = BuildMeta::from_json(checkpoint.meta()).map_err(|e| e.to_string())?;
    if meta.system.as_deref() != system {
        return Err(format!(
            "it was made for system {}, this build is for {}",
            meta.system.as_deref().unwrap_or("(unknown)"),
            system.unwrap_or("(unknown)")
        ));
    }
    let outputs: BTreeMap<String, Vec<u8>> = meta
        .output_paths
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    // As the recorder lists them: declared outputs (an empty path keeps a missing one's
    // position), then the checkpoint.
    let masked_outputs: Vec<Vec<u8>> = meta
        .outputs
        .iter()
        .map(|name| outputs.get(name).cloned().unwrap_or_default())
        .chain(std::iter::once(
            meta.checkpoint_path
                .as_deref()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
        ))
        .collect();
    let build_top = meta.build_top.as_bytes().to_vec();
    let mut layers = decode_layers(&checkpoint)?;
    if unfinished {
        // A build killed between writing a layer and writing the chain that covers it leaves
        // one layer the chain does not bind: that layer is not used.
        let chained = meta.chain.as_ref().map_or(0, Vec::len);
        if chained + 1 == layers.len() {
            layers.truncate(chained);
        }
    }
    if layers.first().map(|l| l.name.as_str()) != Some("setup") {
        return Err("its first layer is not `setup`".into());
    }
    check_keys_and_chain(&checkpoint, &layers, &build_top).map_err(|e| e.to_string())?;
    let recorded = meta.checkpoint_path.as_deref();
    let actual = dir.to_string_lossy();
    let hint = || crate::reuse::store_path::how_added(dir).unwrap_or_default();
    let mut trust_note = None;
    if let Err(e) = trust::check_provenance(recorded, &actual, trust, hint) {
        return Err(e.to_string());
    }
    if trust == BaseTrust::Any {
        if let Err(e) = trust::check_provenance(recorded, &actual, BaseTrust::Built, hint) {
            let why = e.to_string();
            let why = why
                .split("; a derivation that trusts it")
                .next()
                .unwrap_or(&why);
            trust_note = Some(format!(
                "checkpoint {} used because {} = \"any\" although {why}",
                dir.display(),
                trust::TRUST_ATTRIBUTE
            ));
        }
    }
    Ok(BaseCheckpoint {
        dir: dir.to_path_buf(),
        checkpoint,
        layers,
        outputs,
        masked_outputs,
        build_top,
        trust_note,
        unchecked_contents,
    })
}

/// Why `checkpoint` would not be used as a `checkpointBase` without opting in (its keys or
/// chain inconsistent, or not at the path its build wrote it to); `None` when it would.
/// `layers` are its decoded layers. For `diff`, which must not call a forged layer's key the
/// same as a real one's.
pub fn trust_problem(checkpoint: &Checkpoint, layers: &[BaseLayer]) -> Option<String> {
    let meta = match BuildMeta::from_json(checkpoint.meta()) {
        Ok(meta) => meta,
        Err(e) => return Some(e.to_string()),
    };
    if let Err(e) = check_keys_and_chain(checkpoint, layers, meta.build_top.as_bytes()) {
        return Some(e.to_string());
    }
    let recorded = meta.checkpoint_path.as_deref();
    let dir = checkpoint.dir();
    trust::check_provenance(recorded, &dir.to_string_lossy(), BaseTrust::Built, || {
        crate::reuse::store_path::how_added(dir).unwrap_or_default()
    })
    .err()
    .map(|e| e.to_string())
}

/// Every layer's key recomputed from its recorded inputs and its parent's key, and the chain
/// of the index checked against the layer files (see [`trust::check_consistency`]).
pub fn check_keys_and_chain(
    checkpoint: &Checkpoint,
    layers: &[BaseLayer],
    build_top: &[u8],
) -> Result<(), TrustError> {
    let infos: Vec<LayerInfo> = checkpoint
        .layers()
        .iter()
        .map(|l| LayerInfo::of(l).unwrap_or_default())
        .collect();
    let records: Vec<LayerRecord<'_>> = infos
        .iter()
        .zip(layers)
        .zip(&checkpoint.index().layers)
        .map(|((info, decoded), r)| LayerRecord {
            name: &decoded.name,
            key: info.key.as_deref(),
            parent_key: info.parent_key.as_deref(),
            inputs: &decoded.inputs,
            file: r.blake3,
        })
        .collect();
    let chain = BuildMeta::from_json(checkpoint.meta())
        .ok()
        .and_then(|m| m.chain);
    trust::check_consistency(&records, chain.as_deref(), build_top)
}

/// Every layer's name, shell state and keyed inputs.
pub fn decode_layers(checkpoint: &Checkpoint) -> Result<Vec<BaseLayer>, String> {
    let mut layers = Vec::new();
    let mut validator = StateValidator::default();
    for layer in checkpoint.layers() {
        let state = read_shell_state_with(checkpoint, layer, &mut validator)?;
        let mut inputs: LayerInputs =
            serde_json::from_slice(&read_attachment(checkpoint, layer, attachment::INPUTS)?)
                .map_err(|e| format!("layer `{}`: inputs unreadable: {e}", layer.meta.name))?;
        inputs.functions = read_attachment(checkpoint, layer, attachment::INPUT_FUNCTIONS)?.into();
        let taken_over = LayerInfo::of(layer).map_err(|e| e.to_string())?.taken_over;
        layers.push(BaseLayer {
            name: layer.meta.name.clone(),
            state,
            inputs,
            taken_over,
        });
    }
    Ok(layers)
}

fn read_attachment(checkpoint: &Checkpoint, layer: &Layer, name: &str) -> Result<Vec<u8>, String> {
    let hash = layer
        .meta
        .attachments
        .get(name)
        .ok_or_else(|| format!("layer `{}` has no {name}", layer.meta.name))?;
    checkpoint.read_blob(hash).map_err(|e| error_chain(&e))
}

/// The shell state recorded with `layer` (its JSON and its function definitions), refused
/// unless it can be restored without running anything it carries
/// ([`crate::shell::validate`]).
pub fn read_shell_state(checkpoint: &Checkpoint, layer: &Layer) -> Result<ShellState, String> {
    read_shell_state_with(checkpoint, layer, &mut StateValidator::default())
}

/// [`read_shell_state`] for one of a checkpoint's layers read in turn by `validator`.
fn read_shell_state_with(
    checkpoint: &Checkpoint,
    layer: &Layer,
    validator: &mut StateValidator,
) -> Result<ShellState, String> {
    use crate::shell::validate::{load_state_with, LoadError, UnsafeState};
    let json = read_attachment(checkpoint, layer, attachment::SHELL_STATE)?;
    let functions = read_attachment(checkpoint, layer, attachment::SHELL_FUNCTIONS)?;
    load_state_with(validator, &json, &functions).map_err(|e| {
        let which = match &e {
            LoadError::Unsafe(UnsafeState::Function(_)) => attachment::SHELL_FUNCTIONS,
            _ => attachment::SHELL_STATE,
        };
        format!(
            "layer `{}`: shell state (attachment `{which}`): {}",
            layer.meta.name,
            error_chain(&e)
        )
    })
}

/// An error and its sources, `: `-separated, for a log line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How the earlier build's paths move to this build's.
#[derive(Debug, Clone, Default)]
pub struct PathMoves {
    /// Old → new byte strings of the same length (output paths, their `-frandom-seed`s, the
    /// build directory), rewritten in place wherever the earlier build's content is reused.
    pub rewrites: Vec<RewritePair>,
    /// Paths whose length changed (a rename: `hello-2.9` → `hello-2.10`): no layer can be
    /// restored as it is, and a rerun over the earlier tree leaves out what holds them
    /// ([`crate::reuse::stale`]).
    pub stale: Vec<StaleValue>,
    /// The hash parts of renamed outputs (old → this build's), whose pieces a compiler may
    /// have stored apart from the rest of the path: compiler output holding 8 characters of
    /// one is left out too ([`crate::reuse::stale::windows_holding`]).
    pub renamed_hashes: Vec<StaleValue>,
}

/// Old → new byte strings for the earlier build's output paths and build directory. `Err`
/// when an output is missing here. A path whose length differs cannot be rewritten in place
/// and is returned as stale instead.
pub fn path_rewrites(
    base: &BaseCheckpoint,
    outputs: &[(String, PathBuf)],
    build_top: &Path,
) -> Result<PathMoves, String> {
    let mut moves = PathMoves::default();
    for (name, old) in &base.outputs {
        let new = outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_os_str().as_bytes().to_vec())
            .ok_or_else(|| format!("this build has no output `{name}`"))?;
        let seeds = random_seed_of(old)
            .zip(random_seed_of(&new))
            .filter(|(a, b)| a != b);
        let hashes = store_hash_of(old)
            .zip(store_hash_of(&new))
            .filter(|(a, b)| a != b);
        let renamed = new.len() != old.len()
            || old[old.len() - name_part(old).len()..] != new[new.len() - name_part(&new).len()..];
        if renamed {
            // A rename (the name part changed, whatever the length): a path a compiler
            // stored in pieces (below) holds part of the old name where no rewrite can find
            // it, so what holds the old hash is left out instead of rewritten. Only the seed
            // is rewritten in place, as for a new hash (gcc's debug information records it;
            // debug_info checks the outputs), so the old path and hash are looked for as the
            // seed rewrite leaves them: the new seed, then the rest of the old hash.
            let (seeded_path, seeded_hash) = match (&seeds, &hashes) {
                (Some((_, new_seed)), Some((old_hash, _))) => {
                    let seeded_hash = [new_seed.as_slice(), &old_hash[new_seed.len()..]].concat();
                    let at = old.len() - name_part(old).len() - old_hash.len();
                    let seeded_path = [
                        &old[..at],
                        seeded_hash.as_slice(),
                        &old[at + old_hash.len()..],
                    ]
                    .concat();
                    (seeded_path, Some(seeded_hash))
                }
                _ => (old.clone(), hashes.as_ref().map(|(a, _)| a.clone())),
            };
            moves.stale.push(StaleValue {
                old: seeded_path,
                new: Some(new.clone()),
                what: format!("output `{name}`"),
            });
            if let (Some(old_hash), Some((_, new_hash))) = (seeded_hash, &hashes) {
                moves.stale.push(StaleValue {
                    old: old_hash,
                    new: Some(new_hash.clone()),
                    what: format!("output `{name}`"),
                });
            }
            if let Some((old_hash, new_hash)) = &hashes {
                moves.renamed_hashes.push(StaleValue {
                    old: old_hash.clone(),
                    new: Some(new_hash.clone()),
                    what: format!("output `{name}`"),
                });
            }
            moves.rewrites.extend(seeds);
        } else if &new != old {
            moves.rewrites.extend(output_rewrites(old, &new));
        }
    }
    let top = build_top.as_os_str().as_bytes().to_vec();
    if top != base.build_top {
        if top.len() != base.build_top.len() {
            moves.stale.push(StaleValue {
                old: base.build_top.clone(),
                new: Some(top),
                what: "the build directory".into(),
            });
        } else {
            moves.rewrites.push((base.build_top.clone(), top));
        }
    }
    Ok(moves)
}

/// What may be left of an earlier output path that moved to a new hash under the same name
/// once its whole path and hash part are rewritten: gcc copies a constant path in overlapping
/// 16-byte stores, and the last one can hold only the hash's last characters and the name
/// (`iw-cpio-2.13/lib` of `/nix/store/…miw-cpio-2.13/lib`), which no rewrite of whole
/// strings reaches. One pattern per such output: the old hash's last character, then `-` and
/// the name; `new` is the new hash but its last character, for a match that is the end of a
/// rewritten whole hash (when both hashes end alike) is not a piece. Even a piece that is
/// right as it is (both hashes end alike) counts: gcc chose how to store the path by its
/// bytes, so an object compiled with the earlier path can differ from one compiled with this
/// build's in more than the path (seen: 8 more bytes of `.rodata`). Found in a reused file
/// ([`crate::reuse::stale::pieces_or_windows_held`]), it keeps that file's layer from being
/// used.
pub fn path_pieces(base: &BaseCheckpoint, outputs: &[(String, PathBuf)]) -> Vec<StaleValue> {
    base.outputs
        .iter()
        .filter_map(|(name, old)| {
            let (_, new) = outputs.iter().find(|(n, _)| n == name)?;
            output_piece(name, old, new.as_os_str().as_bytes())
        })
        .collect()
}

/// The hash parts of the earlier outputs that moved to a new hash under the same name (whose
/// whole hashes are rewritten), each with what it is for the log; see
/// [`crate::reuse::stale::pieces_or_windows_held`]. A renamed output's hash is not rewritten but
/// left out where it is found whole ([`PathMoves::stale`]), so it is not among them.
pub fn moved_hashes(base: &BaseCheckpoint, outputs: &[(String, PathBuf)]) -> Vec<StaleValue> {
    base.outputs
        .iter()
        .filter_map(|(name, old)| {
            let (_, new) = outputs.iter().find(|(n, _)| n == name)?;
            let new = new.as_os_str().as_bytes();
            let old_hash = store_hash_of(old)?;
            let moved = store_hash_of(new).is_some_and(|h| h != old_hash)
                && new.len() == old.len()
                && name_part(old) == name_part(new);
            moved.then(|| StaleValue {
                old: old_hash,
                new: None,
                what: format!("a piece of output `{name}`"),
            })
        })
        .collect()
}

/// [`path_pieces`] for one output moved from `old` to `new`.
fn output_piece(name: &str, old: &[u8], new: &[u8]) -> Option<StaleValue> {
    let (old_hash, new_hash) = (store_hash_of(old)?, store_hash_of(new)?);
    if old_hash == new_hash || name_part(old) != name_part(new) {
        return None;
    }
    let last = old_hash.len() - 1;
    Some(StaleValue {
        old: [&old_hash[last..], name_part(old)].concat(),
        new: Some(new_hash[..last].to_vec()),
        what: format!("a piece of output `{name}`"),
    })
}

/// The 32-character hash part of a store path's base name (`<hash>-<name>`), if it has one.
fn store_hash_of(path: &[u8]) -> Option<Vec<u8>> {
    let base = path.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    let name = &path[base..];
    (name.len() >= 33 && name[32] == b'-').then(|| name[..32].to_vec())
}

/// What follows the hash in a store path's base name (`-<name>`), or the whole base name.
fn name_part(path: &[u8]) -> &[u8] {
    let base = path.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    let name = &path[base..];
    if name.len() >= 33 && name[32] == b'-' {
        &name[32..]
    } else {
        name
    }
}

/// The rewrites for one output moved from `old` to `new` (same length, different): the whole
/// path; then its hash part alone, wherever it stands; then the random seed (the hash's
/// first ten characters, see docs/keys.md). The hash alone matters where a compiler stored
/// the path in pieces: gcc expands `memcpy (buf, "/nix/store/<hash>-name/lib", n)` into
/// overlapping 16-byte stores, so `.rodata` holds `/nix/store/<hash>-na` and a later piece,
/// never the whole path, and without the hash pair only the seed pair would match there,
/// leaving ten new characters before twenty-two old ones (found by bench/corpus.sh: gnulib's
/// `LIBDIR` in GNU patch, docs/corpus.md). Earlier pairs win where several match.
fn output_rewrites(old: &[u8], new: &[u8]) -> Vec<RewritePair> {
    let mut rewrites = vec![(old.to_vec(), new.to_vec())];
    if let (Some(a), Some(b)) = (store_hash_of(old), store_hash_of(new)) {
        rewrites.push((a, b));
    }
    if let (Some(a), Some(b)) = (random_seed_of(old), random_seed_of(new)) {
        rewrites.push((a, b));
    }
    rewrites
}

/// Files of the build directory that belong to this build, not to the restored one: kept
/// across the restore (structured attributes carry this derivation's values).
const OWN_BUILD_FILES: &[&str] = &[".attrs.json", ".attrs.sh"];

/// What [`resume_trees`] spent its time on and wrote, for the builder's own-time report.
#[derive(Debug, Default, Clone)]
pub struct ResumeCost {
    /// Importing the layers (reading, verifying and rewriting their blobs).
    pub import: std::time::Duration,
    /// Restoring the trees from the imported layers.
    pub write: std::time::Duration,
    /// What the restores wrote (every root added up).
    pub report: RestoreReport,
}

/// Imports layers `0..=depth` of the base into `writer` (rewritten), restores their trees into
/// the build directory and the outputs, and hands the state to `snapshotter`.
pub fn resume_trees(
    base: &BaseCheckpoint,
    depth: u32,
    rewrites: &[(Vec<u8>, Vec<u8>)],
    writer: &mut CheckpointWriter,
    snapshotter: &mut Snapshotter,
    build_top: &Path,
    outputs: &[(String, PathBuf)],
) -> Result<(State, ResumeCost), CheckpointError> {
    let started = std::time::Instant::now();
    let mut cost = ResumeCost::default();
    // The import leaves every file content it reads in the build directory, where the
    // restore links it into place: each blob is decompressed once.
    writer.stage_in(build_top)?;
    let restored = (|| {
        let state = writer.import_layers_rewritten(&base.checkpoint, depth, rewrites)?;
        check_path_pieces(base, depth, &state, writer, outputs)?;
        cost.import = started.elapsed();
        let started = std::time::Instant::now();
        let kept: Vec<(PathBuf, Vec<u8>)> = OWN_BUILD_FILES
            .iter()
            .map(|f| build_top.join(f))
            .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
            .collect();
        cost.report
            .absorb(writer.restore_state_into(state.root("build"), build_top)?);
        for (path, bytes) in kept {
            std::fs::write(&path, bytes).map_err(|e| CheckpointError::io("write", &path, e))?;
        }
        for (name, path) in outputs {
            let root = state.root(name);
            if !root.is_empty() && !path.exists() {
                cost.report.absorb(writer.restore_state(root, path)?);
            }
        }
        cost.write = started.elapsed();
        Ok(state)
    })();
    let ended = writer.end_staging();
    let state = restored?;
    ended?;
    snapshotter.adopt(state.clone(), depth + 1)?;
    Ok((state, cost))
}

/// Refuses layer `depth` of `base` when a file of `state` (its import) still holds a piece of
/// an earlier output path ([`piece_held`]): restored, it would carry the earlier path into
/// this build.
fn check_path_pieces(
    base: &BaseCheckpoint,
    depth: u32,
    state: &State,
    writer: &CheckpointWriter,
    outputs: &[(String, PathBuf)],
) -> Result<(), CheckpointError> {
    let read = |h: &ContentHash, sink: &mut dyn FnMut(&[u8]) -> std::ops::ControlFlow<()>| {
        writer.stream_content(h, sink).is_ok()
    };
    for (root_name, root) in &state.roots {
        if let Some(held) = piece_held(base, depth, root, outputs, &read)? {
            return Err(CheckpointError::PathPieceHeld {
                layer: depth,
                held: format!(
                    "{root_name}/{} holds {} (`{}`)",
                    held.file,
                    held.what,
                    String::from_utf8_lossy(&held.piece)
                ),
            });
        }
    }
    Ok(())
}

/// A piece of an earlier output path found in a reused file ([`piece_held`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPiece {
    pub file: RelPath,
    /// What it is a piece of, for the log (`a piece of output `out``).
    pub what: String,
    /// The bytes found.
    pub piece: Vec<u8>,
}

/// The first file of `root` (a root of layer `depth` of `base`, imported with this build's
/// rewrites; its contents read with `read`) that still holds a piece of an earlier output
/// path: a tail piece in a file the rewrite changed ([`path_pieces`]), else 8 characters of a
/// moved hash in compiler output ([`moved_hashes`]).
pub fn piece_held(
    base: &BaseCheckpoint,
    depth: u32,
    root: &RootState,
    outputs: &[(String, PathBuf)],
    read: ReadChunks<'_>,
) -> Result<Option<HeldPiece>, CheckpointError> {
    let (pieces, earlier, hashes) = pieces_and_hashes(base, depth, outputs)?;
    // One read of each file for both searches; a piece anywhere comes first.
    let held = pieces_or_windows_held(root, &earlier, &pieces, &hashes, read);
    let first = held
        .iter()
        .find(|(_, _, window)| window.is_none())
        .or_else(|| held.first());
    Ok(first.map(|(file, value, window)| HeldPiece {
        file: file.clone(),
        what: value.what.clone(),
        piece: window.map_or_else(|| value.old.clone(), <[u8]>::to_vec),
    }))
}

/// What [`piece_held`] and [`files_holding_pieces`] look for: the pieces of earlier output
/// paths, the contents of layer `depth` before any rewrite (a file still holding one of
/// those is not searched for pieces: the rewrite left it alone), and the moved hashes.
#[allow(clippy::type_complexity)]
fn pieces_and_hashes(
    base: &BaseCheckpoint,
    depth: u32,
    outputs: &[(String, PathBuf)],
) -> Result<(Vec<StaleValue>, HashSet<ContentHash>, Vec<StaleValue>), CheckpointError> {
    let pieces = path_pieces(base, outputs);
    let earlier = if pieces.is_empty() {
        HashSet::new()
    } else {
        file_contents(&base.checkpoint.state_after(depth)?)
    };
    Ok((pieces, earlier, moved_hashes(base, outputs)))
}

/// Every file of `root` (as for [`piece_held`]) that holds a piece of an earlier output path,
/// with what it holds a piece of: the files an incremental build leaves out of the tree it
/// resumes over, for the build to remake them.
pub fn files_holding_pieces(
    base: &BaseCheckpoint,
    depth: u32,
    root: &RootState,
    outputs: &[(String, PathBuf)],
    read: ReadChunks<'_>,
) -> Result<Vec<(RelPath, String)>, CheckpointError> {
    let (pieces, earlier, hashes) = pieces_and_hashes(base, depth, outputs)?;
    // One read of each file for both searches (a rewritten object is read for the pieces
    // and, as compiler output, for the hashes' windows).
    let mut held: Vec<(RelPath, String)> =
        pieces_or_windows_held(root, &earlier, &pieces, &hashes, read)
            .into_iter()
            .map(|(file, value, _)| (file, value.what.clone()))
            .collect();
    held.sort();
    Ok(held)
}

/// The content hashes of every file of `state`.
pub fn file_contents(state: &State) -> HashSet<ContentHash> {
    state
        .roots
        .values()
        .flat_map(|root| root.values())
        .filter_map(|e| match &e.kind {
            EntryKind::File { blake3, .. } => Some(*blake3),
            _ => None,
        })
        .collect()
}

/// Removes `path` and everything below it, never following a symlink; directories without
/// write or search permission (a restored tree may have them) are opened up first. Absent is
/// fine.
pub fn remove_tree(path: &Path) -> Result<(), CheckpointError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CheckpointError::io("stat", path, e)),
    };
    if !meta.file_type().is_dir() {
        return std::fs::remove_file(path).map_err(|e| CheckpointError::io("remove", path, e));
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| CheckpointError::io("chmod", path, e))?;
    let entries = std::fs::read_dir(path).map_err(|e| CheckpointError::io("read dir", path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CheckpointError::io("read dir", path, e))?;
        remove_tree(&entry.path())?;
    }
    std::fs::remove_dir(path).map_err(|e| CheckpointError::io("remove", path, e))
}

/// What the build directory held before the first step (what Nix put there: `.attrs.json`,
/// `.attrs.sh`), kept so that a build that must give up an earlier checkpoint after restoring
/// from it can start again from exactly that (docs/trust.md, "Falling back").
#[derive(Debug)]
pub struct InitialTree {
    entries: Vec<(PathBuf, InitialEntry)>,
}

#[derive(Debug)]
enum InitialEntry {
    Dir(u32),
    File(u32, Vec<u8>, std::time::SystemTime),
    Symlink(PathBuf),
}

impl InitialTree {
    /// The most the kept files may hold: Nix puts a few small files there.
    const MAX_BYTES: u64 = 64 << 20;

    /// Reads the tree at `root` (its entries, not `root` itself).
    pub fn capture(root: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let mut entries = Vec::new();
        let mut total = 0u64;
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let mut names: Vec<_> = std::fs::read_dir(root.join(&rel))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            for name in names {
                let rel = rel.join(name);
                let full = root.join(&rel);
                let meta = std::fs::symlink_metadata(&full)?;
                let mode = meta.permissions().mode() & 0o7777;
                let ft = meta.file_type();
                let entry = if ft.is_dir() {
                    stack.push(rel.clone());
                    InitialEntry::Dir(mode)
                } else if ft.is_symlink() {
                    InitialEntry::Symlink(std::fs::read_link(&full)?)
                } else if ft.is_file() {
                    total += meta.len();
                    if total > Self::MAX_BYTES {
                        return Err(std::io::Error::other("more than 64 MiB"));
                    }
                    InitialEntry::File(mode, std::fs::read(&full)?, meta.modified()?)
                } else {
                    return Err(std::io::Error::other(format!(
                        "{} is not a file, directory or symlink",
                        full.display()
                    )));
                };
                entries.push((rel, entry));
            }
        }
        // Parents before children.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(InitialTree { entries })
    }

    /// Empties `root` (it stays: it may be a mount point) and recreates what was captured.
    pub fn put_back(&self, root: &Path) -> Result<(), CheckpointError> {
        use std::os::unix::fs::PermissionsExt;
        let io = |what: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |e| CheckpointError::io(what, &p, e)
        };
        for entry in std::fs::read_dir(root).map_err(io("read dir", root))? {
            remove_tree(&entry.map_err(io("read dir", root))?.path())?;
        }
        let mut dirs = Vec::new();
        for (rel, entry) in &self.entries {
            let full = root.join(rel);
            match entry {
                InitialEntry::Dir(mode) => {
                    std::fs::create_dir(&full).map_err(io("create dir", &full))?;
                    dirs.push((full, *mode));
                }
                InitialEntry::Symlink(target) => {
                    std::os::unix::fs::symlink(target, &full).map_err(io("symlink", &full))?;
                }
                InitialEntry::File(mode, bytes, mtime) => {
                    std::fs::write(&full, bytes).map_err(io("write", &full))?;
                    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode))
                        .map_err(io("chmod", &full))?;
                    let f = std::fs::File::options()
                        .write(true)
                        .open(&full)
                        .map_err(io("open", &full))?;
                    f.set_modified(*mtime).map_err(io("set mtime", &full))?;
                }
            }
        }
        for (full, mode) in dirs.iter().rev() {
            std::fs::set_permissions(full, std::fs::Permissions::from_mode(*mode))
                .map_err(io("chmod", full))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{output_piece, output_rewrites, remove_tree, InitialTree, StaleValue};
    use crate::checkpoint::ContentHash;
    use crate::checkpoint::Rewrites;
    use crate::reuse::stale::pieces_held;
    use std::collections::{BTreeMap, HashSet};
    use std::os::unix::fs::PermissionsExt;

    const OLD: &[u8] = b"/nix/store/l9i65cwnhjb8g9c53ii6hl9mzdgppjcp-patch-2.7.6";
    const NEW: &[u8] = b"/nix/store/fnw1a3kysnpaa8m6lxgivbf1xvqpchmd-patch-2.7.6";

    fn rewritten(data: &[u8]) -> Vec<u8> {
        let rw = Rewrites::new(&output_rewrites(OLD, NEW)).unwrap();
        let mut v = data.to_vec();
        rw.apply_in_place(&mut v);
        v
    }

    #[test]
    fn a_path_stored_in_pieces_gets_the_whole_new_hash() {
        // What gcc left in GNU patch's .rodata for `memcpy (…, LIBDIR, …)`: the path up to
        // 16-byte boundaries, then an overlapping last piece.
        let old = b"/nix/store/l9i65cwnhjb8g9c53ii6hl9mzdgppjcp-patc-patch-2.7.6/lib";
        let new = b"/nix/store/fnw1a3kysnpaa8m6lxgivbf1xvqpchmd-patc-patch-2.7.6/lib";
        assert_eq!(rewritten(old), new);
    }

    #[test]
    fn the_piece_of_a_path_no_rewrite_reaches_is_the_shortest_differing_tail_and_the_name() {
        // cpio 2.13's `bin/cpio`: `iw-cpio-2.13/lib`, the last piece of a LIBDIR copy.
        let old = b"/nix/store/3chry7afr35hrm6a1csd2vy6qvi8lmiw-cpio-2.13";
        let new = b"/nix/store/ywxiaxyl3nidpgrg1s55zgiw0fp4j8if-cpio-2.13";
        let piece = output_piece("out", old, new).unwrap();
        assert_eq!(piece.old, b"w-cpio-2.13");
        assert_eq!(
            piece.new.as_deref(),
            Some(&b"ywxiaxyl3nidpgrg1s55zgiw0fp4j8i"[..])
        );
        // Hashes that end alike: still looked for (the object may differ in more than the
        // path), the end of this build's whole hash excepted (pieces_or_windows_held).
        let new = b"/nix/store/ywxiaxyl3nidpgrg1s55zgiw0fp4j8jw-cpio-2.13";
        assert_eq!(output_piece("out", old, new).unwrap().old, b"w-cpio-2.13");
        assert!(output_piece("out", old, old).is_none());
        let renamed = b"/nix/store/ywxiaxyl3nidpgrg1s55zgiw0fp4j8if-cpio-2.15";
        assert!(output_piece("out", old, renamed).is_none());
    }

    #[test]
    fn pieces_are_looked_for_in_rewritten_files_only() {
        use crate::checkpoint::testutil::tree_of;
        let piece = StaleValue {
            old: b"w-cpio-2.13".to_vec(),
            new: Some(b"ywxiaxyl3nidpgrg1s55zgiw0fp4j8j".to_vec()),
            what: "a piece of output `out`".into(),
        };
        let whole = "/nix/store/ywxiaxyl3nidpgrg1s55zgiw0fp4j8jw-cpio-2.13/lib";
        // Far into a content, so that chunked reads split the hash from the piece.
        let far_whole = format!("{}{whole}{}", "x".repeat(100), "y".repeat(60));
        let far_piece = format!("{}qqw-cpio-2.13", "x".repeat(100));
        // Another store path whose name starts with the output's and whose hash ends with
        // the same character (the checkpoint output in `env-vars`): not a piece.
        let other_path =
            "checkpoint=/nix/store/0a1b2c3d4f5g6h7i8j9k0l1m2n3p4q5w-cpio-2.13-checkpoint";
        let tree = tree_of(&[
            ("lib/far", &far_whole),
            ("lib/whole", whole),
            ("src/far", &far_piece),
            ("src/cpio", "xxxxw-cpio-2.13/lib"),
            ("env-vars", other_path),
            (
                "doc/notes",
                "w-cpio-2.13 in a file the rewrite did not change",
            ),
            ("src/main.o", "nothing"),
        ]);
        let contents: BTreeMap<ContentHash, Vec<u8>> = [
            whole,
            &far_whole,
            &far_piece,
            "xxxxw-cpio-2.13/lib",
            other_path,
            "w-cpio-2.13 in a file the rewrite did not change",
            "nothing",
        ]
        .iter()
        .map(|c| (ContentHash::of(c.as_bytes()), c.as_bytes().to_vec()))
        .collect();
        let earlier: HashSet<ContentHash> = [
            ContentHash::of(b"w-cpio-2.13 in a file the rewrite did not change"),
            ContentHash::of(b"nothing"),
        ]
        .into_iter()
        .collect();
        let pieces = [piece];
        for size in [1, 3, 40, 1 << 20] {
            let read = crate::reuse::stale::in_chunks(size, |h| contents.get(h).cloned());
            let held = pieces_held(&tree, &earlier, &pieces, &read);
            let paths: Vec<String> = held.iter().map(|(p, _)| p.to_string()).collect();
            assert_eq!(paths, ["src/cpio", "src/far"], "chunks of {size}");
        }
    }

    #[test]
    fn whole_paths_and_seeds_are_rewritten_as_before() {
        let mut old = OLD.to_vec();
        old.extend_from_slice(b"/lib -frandom-seed=l9i65cwnhj");
        let mut new = NEW.to_vec();
        new.extend_from_slice(b"/lib -frandom-seed=fnw1a3kysn");
        assert_eq!(rewritten(&old), new);
    }

    #[test]
    fn the_initial_tree_comes_back_and_locked_directories_go() {
        let top = std::env::temp_dir().join(format!("cpb-initial-{}", std::process::id()));
        let _ = remove_tree(&top);
        std::fs::create_dir_all(top.join("sub")).unwrap();
        std::fs::write(top.join(".attrs.json"), b"{\"a\":1}").unwrap();
        std::fs::set_permissions(top.join(".attrs.json"), PermissionsExt::from_mode(0o640))
            .unwrap();
        std::fs::write(top.join("sub/x"), b"x").unwrap();
        std::os::unix::fs::symlink("sub/x", top.join("link")).unwrap();
        let initial = InitialTree::capture(&top).unwrap();

        // What a restore left: changed files, new trees, a directory nobody may enter.
        std::fs::write(top.join(".attrs.json"), b"restored").unwrap();
        std::fs::remove_file(top.join("sub/x")).unwrap();
        std::fs::create_dir_all(top.join("src/locked/deep")).unwrap();
        std::fs::write(top.join("src/locked/deep/f"), b"f").unwrap();
        std::fs::set_permissions(top.join("src/locked"), PermissionsExt::from_mode(0o000)).unwrap();

        initial.put_back(&top).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&top)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".attrs.json", "link", "sub"]);
        assert_eq!(
            std::fs::read(top.join(".attrs.json")).unwrap(),
            b"{\"a\":1}"
        );
        let mode = std::fs::metadata(top.join(".attrs.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(std::fs::read(top.join("sub/x")).unwrap(), b"x");
        assert_eq!(
            std::fs::read_link(top.join("link")).unwrap(),
            std::path::Path::new("sub/x")
        );
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        remove_tree(&top).unwrap();
    }
}
