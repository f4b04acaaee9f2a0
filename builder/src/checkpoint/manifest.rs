//! Manifest types (entries, layers, index) and their deterministic JSON form; pure, no I/O.
//!
//! The serialised form is specified in `docs/checkpoint-format.md`. Parsing checks the
//! format version first (typed "expected X, found Y" error), then the shape, then the
//! per-layer rules (sorted, unique, clean paths; well-formed entries), and finally that the
//! bytes are exactly the canonical serialisation, so equal content always means equal bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{CheckpointError, Result};
use super::limits::{
    mtime_in_range, MAX_ATTACHMENTS, MAX_ENTRIES, MAX_FILE_SIZE, MAX_LAYERS, MAX_MTIME_SEC,
    MAX_NAME, MAX_ROOTS, MAX_SYMLINK_TARGET, MAX_XATTRS, MAX_XATTR_NAME, MAX_XATTR_VALUE,
    MIN_MTIME_SEC,
};
use super::path::{escape_bytes, unescape_bytes, RelPath};

/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 5;

/// blake3 of some uncompressed content.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes `data`.
    pub fn of(data: &[u8]) -> Self {
        ContentHash(*blake3::hash(data).as_bytes())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }

    /// Parses 64 lower-case hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        blake3::Hash::from_hex(s)
            .ok()
            .map(|h| ContentHash(*h.as_bytes()))
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(h: blake3::Hash) -> Self {
        ContentHash(*h.as_bytes())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ContentHash::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("blake3 must be 64 lower-case hex digits"))
    }
}

/// A modification time with nanosecond precision (seconds may be negative).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds, `< 1_000_000_000`.
    pub nsec: u32,
}

/// What kind of filesystem object an entry is, with the kind-specific data.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Logical size in bytes (holes included).
        size: u64,
        /// blake3 of the content.
        blake3: ContentHash,
        /// Hardlink group: the smallest path of the group of paths (within this root) that
        /// share the inode; `None` when the file has no other link inside the root.
        hardlink: Option<RelPath>,
    },
    /// A symbolic link; the target is raw bytes and may dangle or be absolute.
    Symlink {
        /// The link content.
        target: Vec<u8>,
    },
    /// A named pipe; recreated on restore.
    Fifo,
    /// A unix socket; recorded, skipped on restore.
    Socket,
    /// A character device; recorded, skipped on restore.
    CharDevice {
        /// Device number.
        rdev: u64,
    },
    /// A block device; recorded, skipped on restore.
    BlockDevice {
        /// Device number.
        rdev: u64,
    },
}

impl EntryKind {
    /// The kind name used in manifests.
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::Dir => "dir",
            EntryKind::File { .. } => "file",
            EntryKind::Symlink { .. } => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Socket => "socket",
            EntryKind::CharDevice { .. } => "char-device",
            EntryKind::BlockDevice { .. } => "block-device",
        }
    }

    /// True for kinds restore cannot recreate (sockets, devices).
    pub fn is_unsupported_for_restore(&self) -> bool {
        matches!(
            self,
            EntryKind::Socket | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. }
        )
    }
}

/// Extended attributes: full name (`user.…`) → value, raw bytes.
pub type Xattrs = BTreeMap<Vec<u8>, Vec<u8>>;

/// One filesystem object at one path (the path is the key it is stored under).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// Kind and kind-specific data.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time.
    pub mtime: Timestamp,
    /// Extended attributes in the `user.` namespace: full name → value, raw bytes.
    pub xattrs: Xattrs,
}

impl Entry {
    /// The blob this entry needs, if it is a file.
    pub fn blob(&self) -> Option<ContentHash> {
        match &self.kind {
            EntryKind::File { blake3, .. } => Some(*blake3),
            _ => None,
        }
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Dir)
    }
}

/// What the caller attaches to a layer.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct LayerMeta {
    /// Layer name, usually the phase name (`setup`, `configurePhase`, ...).
    pub name: String,
    /// Named extra blobs stored with the layer (e.g. `"shell-state"`), see
    /// `CheckpointWriter::put_blob`.
    pub attachments: BTreeMap<String, ContentHash>,
    /// Free-form JSON (keys, timings, ...). Objects serialise with sorted keys.
    pub meta: serde_json::Value,
}

/// How the stored bytes of a blob encode its content.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encoding {
    /// One or more zstd frames.
    Zstd,
    /// The content itself.
    Raw,
    /// Another blob of the checkpoint with byte ranges replaced
    /// ([`crate::checkpoint::patch::Patch`]).
    Patch,
    /// A zstd frame compressed with another blob of the checkpoint as its prefix
    /// ([`crate::checkpoint::delta`]).
    Delta,
}

impl Encoding {
    /// The name in a layer file's blob table.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Raw => "raw",
            Encoding::Patch => "patch",
            Encoding::Delta => "delta",
        }
    }

    /// True for a blob stored on its own (`zstd`, `raw`), which a patch or a delta may
    /// stand on; false for one made out of another blob.
    pub fn is_whole(self) -> bool {
        matches!(self, Encoding::Zstd | Encoding::Raw)
    }

    /// True when a blob of this encoding may be made out of one of encoding `base`
    /// (docs/checkpoint-format.md §5): a patch out of a whole blob or a delta, a delta out
    /// of a whole blob only, so a reader follows at most two steps.
    pub fn may_stand_on(self, base: Encoding) -> bool {
        match self {
            Encoding::Patch => base != Encoding::Patch,
            Encoding::Delta => base.is_whole(),
            Encoding::Zstd | Encoding::Raw => false,
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "zstd" => Some(Encoding::Zstd),
            "raw" => Some(Encoding::Raw),
            "patch" => Some(Encoding::Patch),
            "delta" => Some(Encoding::Delta),
            _ => None,
        }
    }
}

/// One blob stored in a layer's pack: its content hash and where its stored bytes lie.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PackedBlob {
    /// blake3 of the (uncompressed) content.
    pub blake3: ContentHash,
    /// Byte offset in the pack.
    pub offset: u64,
    /// Stored length in the pack.
    pub length: u64,
    /// How the stored bytes encode the content.
    pub encoding: Encoding,
}

/// Checks a pack table: sorted by offset, each blob starting where the previous one ends,
/// the first at 0, no hash twice. Returns the pack's length.
pub fn check_pack_table(blobs: &[PackedBlob]) -> std::result::Result<u64, String> {
    let mut end = 0u64;
    let mut seen = std::collections::HashSet::new();
    for b in blobs {
        if b.offset != end {
            return Err(format!(
                "blob {} starts at {} where {end} was expected (blobs must be sorted and contiguous)",
                b.blake3, b.offset
            ));
        }
        if !seen.insert(b.blake3) {
            return Err(format!("blob {} is stored twice", b.blake3));
        }
        end = end
            .checked_add(b.length)
            .ok_or_else(|| format!("blob {} ends beyond 2^64", b.blake3))?;
    }
    Ok(end)
}

/// The changes of one root in one layer.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RootDiff {
    /// Added or changed entries (full records), sorted by path, unique.
    pub changed: Vec<(RelPath, Entry)>,
    /// Removed paths, every removed descendant listed too; sorted, unique.
    pub deleted: Vec<RelPath>,
}

impl RootDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// One layer: the caller's metadata plus, per root with changes, the diff against the
/// previous layer.
#[derive(Clone, PartialEq, Debug)]
pub struct Layer {
    /// Position in the checkpoint, from 0.
    pub index: u32,
    /// Caller metadata.
    pub meta: LayerMeta,
    /// Diffs by root name; roots without changes are absent.
    pub roots: BTreeMap<String, RootDiff>,
    /// The blobs first stored for this layer, in its pack (`packs/NNN.pack`), by offset.
    /// Filled in by the checkpoint writer; empty when the layer stored nothing new.
    pub blobs: Vec<PackedBlob>,
}

/// What the index says about one layer.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerRef {
    /// Position, equal to the array position.
    pub index: u32,
    /// The layer name.
    pub name: String,
    /// blake3 of the layer file's bytes.
    pub blake3: ContentHash,
    /// Blobs first stored for this layer (its pack's table).
    pub blobs_added: u64,
    /// Bytes of its pack.
    pub blob_bytes_added: u64,
}

/// `index.json`: the entry point of a checkpoint.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Free-form JSON describing the checkpoint (system, derivation, ...).
    pub meta: serde_json::Value,
    /// All root names, sorted and unique.
    pub roots: Vec<String>,
    /// The layers in order.
    pub layers: Vec<LayerRef>,
}

/// The relative file name of a layer: `layers/NNN-<name>.json`, with every byte of the
/// name outside `[A-Za-z0-9_-]` replaced by `_`.
pub fn layer_file_name(index: u32, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("layers/{index:03}-{clean}.json")
}

/// Root names: 1-64 bytes of `[A-Za-z0-9._+-]`, not starting with `.`.
pub fn check_root_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(CheckpointError::InvalidRootName {
            root: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 bytes long");
    }
    if name.starts_with('.') {
        return bad("must not start with `.`");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-'))
    {
        return bad("only [A-Za-z0-9._+-] allowed");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Serialised records.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRecord {
    path: String,
    kind: String,
    mode: String,
    mtime_s: i64,
    mtime_ns: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blake3: Option<ContentHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hardlink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rdev: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    xattrs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootDiffRecord {
    changed: Vec<EntryRecord>,
    deleted: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerRecord {
    format_version: u32,
    index: u32,
    name: String,
    attachments: BTreeMap<String, ContentHash>,
    meta: serde_json::Value,
    roots: BTreeMap<String, RootDiffRecord>,
    blobs: Vec<PackedBlobRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackedBlobRecord {
    blake3: ContentHash,
    offset: u64,
    length: u64,
    encoding: String,
}

#[derive(Deserialize)]
struct VersionProbe {
    format_version: Option<u32>,
}

fn entry_to_record(path: &RelPath, e: &Entry) -> EntryRecord {
    let mut r = EntryRecord {
        path: path.escaped(),
        kind: e.kind.name().to_owned(),
        mode: format!("{:04o}", e.mode),
        mtime_s: e.mtime.sec,
        mtime_ns: e.mtime.nsec,
        size: None,
        blake3: None,
        hardlink: None,
        target: None,
        rdev: None,
        xattrs: e
            .xattrs
            .iter()
            .map(|(k, v)| (escape_bytes(k), escape_bytes(v)))
            .collect(),
    };
    match &e.kind {
        EntryKind::File {
            size,
            blake3,
            hardlink,
        } => {
            r.size = Some(*size);
            r.blake3 = Some(*blake3);
            r.hardlink = hardlink.as_ref().map(RelPath::escaped);
        }
        EntryKind::Symlink { target } => r.target = Some(escape_bytes(target)),
        EntryKind::CharDevice { rdev } | EntryKind::BlockDevice { rdev } => r.rdev = Some(*rdev),
        EntryKind::Dir | EntryKind::Fifo | EntryKind::Socket => {}
    }
    r
}

/// Checks an entry's own fields (not its relation to other entries).
pub(crate) fn check_entry(path: &RelPath, e: &Entry) -> std::result::Result<(), String> {
    if e.mode > 0o7777 {
        return Err(format!("mode {:o} has bits outside 0o7777", e.mode));
    }
    if e.mtime.nsec >= 1_000_000_000 {
        return Err("mtime_ns must be below 1e9".into());
    }
    if !mtime_in_range(e.mtime.sec) {
        return Err(format!(
            "mtime_s {} is outside {MIN_MTIME_SEC}..={MAX_MTIME_SEC} (the format's limit, §10)",
            e.mtime.sec
        ));
    }
    match &e.kind {
        EntryKind::File { size, .. } if *size > MAX_FILE_SIZE => {
            return Err(format!(
                "size {size} is larger than {MAX_FILE_SIZE} bytes (the format's limit, §10)"
            ));
        }
        EntryKind::Symlink { target } if target.len() > MAX_SYMLINK_TARGET => {
            return Err(format!(
                "symlink target of {} bytes is longer than {MAX_SYMLINK_TARGET} (the format's limit, §10)",
                target.len()
            ));
        }
        _ => {}
    }
    match &e.kind {
        EntryKind::File {
            hardlink: Some(h), ..
        } => {
            if h > path {
                return Err(format!(
                    "hardlink group {h} must be the smallest path of the group"
                ));
            }
            if path.is_root() {
                return Err("the root cannot be a hardlink".into());
            }
        }
        EntryKind::Symlink { target } if target.is_empty() || target.contains(&0) => {
            return Err("symlink target must be non-empty and without NUL".into());
        }
        _ => {}
    }
    if !e.xattrs.is_empty() && !matches!(e.kind, EntryKind::File { .. } | EntryKind::Dir) {
        return Err("xattrs are only recorded on files and directories".into());
    }
    if e.xattrs.len() > MAX_XATTRS {
        return Err(format!(
            "{} xattrs, more than {MAX_XATTRS} (the format's limit, §10)",
            e.xattrs.len()
        ));
    }
    for (k, v) in &e.xattrs {
        if !k.starts_with(b"user.") || k.len() == 5 || k.contains(&0) {
            return Err(format!(
                "xattr name {} must be `user.` plus a non-empty name without NUL",
                escape_bytes(k)
            ));
        }
        if k.len() > MAX_XATTR_NAME {
            return Err(format!(
                "xattr name of {} bytes is longer than {MAX_XATTR_NAME} (the format's limit, §10)",
                k.len()
            ));
        }
        if v.len() > MAX_XATTR_VALUE {
            return Err(format!(
                "xattr {} has a value of {} bytes, more than {MAX_XATTR_VALUE} (the format's limit, §10)",
                escape_bytes(k),
                v.len()
            ));
        }
    }
    Ok(())
}

fn record_to_entry(r: EntryRecord) -> std::result::Result<(RelPath, Entry), String> {
    let path = RelPath::from_escaped(&r.path).map_err(|e| e.to_string())?;
    let mode = if r.mode.len() == 4 && r.mode.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
        u32::from_str_radix(&r.mode, 8).map_err(|e| e.to_string())?
    } else {
        return Err(format!("mode {:?} must be 4 octal digits", r.mode));
    };
    let want = |present: bool, field: &str| -> std::result::Result<(), String> {
        if present {
            Ok(())
        } else {
            Err(format!("kind {} requires field {field}", r.kind))
        }
    };
    let forbid = |present: bool, field: &str| -> std::result::Result<(), String> {
        if present {
            Err(format!("kind {} must not have field {field}", r.kind))
        } else {
            Ok(())
        }
    };
    let is_file = r.kind == "file";
    let is_dev = r.kind == "char-device" || r.kind == "block-device";
    if !is_file {
        forbid(r.size.is_some(), "size")?;
        forbid(r.blake3.is_some(), "blake3")?;
        forbid(r.hardlink.is_some(), "hardlink")?;
    }
    if r.kind != "symlink" {
        forbid(r.target.is_some(), "target")?;
    }
    if !is_dev {
        forbid(r.rdev.is_some(), "rdev")?;
    }
    let kind = match r.kind.as_str() {
        "dir" => EntryKind::Dir,
        "file" => {
            want(r.size.is_some(), "size")?;
            want(r.blake3.is_some(), "blake3")?;
            EntryKind::File {
                size: r.size.unwrap_or_default(),
                blake3: r.blake3.unwrap_or(ContentHash([0; 32])),
                hardlink: match &r.hardlink {
                    Some(h) => Some(RelPath::from_escaped(h).map_err(|e| e.to_string())?),
                    None => None,
                },
            }
        }
        "symlink" => {
            want(r.target.is_some(), "target")?;
            EntryKind::Symlink {
                target: unescape_bytes(r.target.as_deref().unwrap_or_default())
                    .map_err(|e| e.to_string())?,
            }
        }
        "fifo" => EntryKind::Fifo,
        "socket" => EntryKind::Socket,
        "char-device" | "block-device" => {
            want(r.rdev.is_some(), "rdev")?;
            let rdev = r.rdev.unwrap_or_default();
            if r.kind == "char-device" {
                EntryKind::CharDevice { rdev }
            } else {
                EntryKind::BlockDevice { rdev }
            }
        }
        other => return Err(format!("unknown kind {other:?}")),
    };
    let mut xattrs = BTreeMap::new();
    for (k, v) in &r.xattrs {
        xattrs.insert(
            unescape_bytes(k).map_err(|e| e.to_string())?,
            unescape_bytes(v).map_err(|e| e.to_string())?,
        );
    }
    let entry = Entry {
        kind,
        mode,
        mtime: Timestamp {
            sec: r.mtime_s,
            nsec: r.mtime_ns,
        },
        xattrs,
    };
    check_entry(&path, &entry)?;
    Ok((path, entry))
}

fn check_version(bytes: &[u8], file: &Path) -> Result<()> {
    let probe: VersionProbe =
        serde_json::from_slice(bytes).map_err(|e| CheckpointError::Parse {
            file: file.to_owned(),
            source: e,
        })?;
    match probe.format_version {
        Some(FORMAT_VERSION) => Ok(()),
        Some(found) => Err(CheckpointError::FormatVersion {
            file: file.to_owned(),
            expected: FORMAT_VERSION,
            found,
        }),
        None => Err(CheckpointError::Index {
            file: file.to_owned(),
            problem: "no format_version field".into(),
        }),
    }
}

fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs, maps with string keys and `Value` cannot fail.
    let mut v = serde_json::to_vec(value).expect("manifest records always serialise");
    v.push(b'\n');
    v
}

impl Layer {
    /// Checks the rules that concern this layer alone: root names, sorted and unique paths,
    /// no path both changed and deleted, no empty root diff, well-formed entries.
    pub fn validate(&self) -> Result<()> {
        let err = |root: &str, path: String, problem: String| CheckpointError::Manifest {
            layer: self.index,
            root: root.to_owned(),
            path,
            problem,
        };
        if self.index as usize >= MAX_LAYERS {
            return Err(err(
                "",
                String::new(),
                format!("more than {MAX_LAYERS} layers (the format's limit, §10)"),
            ));
        }
        if self.meta.attachments.len() > MAX_ATTACHMENTS {
            return Err(err(
                "",
                String::new(),
                format!("more than {MAX_ATTACHMENTS} attachments (the format's limit, §10)"),
            ));
        }
        for name in self.meta.attachments.keys() {
            if name.is_empty() {
                return Err(err("", String::new(), "empty attachment name".into()));
            }
            if name.len() > MAX_NAME {
                return Err(err(
                    "",
                    String::new(),
                    format!(
                        "attachment name longer than {MAX_NAME} bytes (the format's limit, §10)"
                    ),
                ));
            }
        }
        let entries: usize = self
            .roots
            .values()
            .map(|d| d.changed.len() + d.deleted.len())
            .sum();
        if entries > MAX_ENTRIES {
            return Err(err(
                "",
                String::new(),
                format!("{entries} entries, more than {MAX_ENTRIES} (the format's limit, §10)"),
            ));
        }
        check_pack_table(&self.blobs)
            .map_err(|p| err("", String::new(), format!("blob table: {p}")))?;
        for (root, diff) in &self.roots {
            check_root_name(root)?;
            if diff.is_empty() {
                return Err(err(
                    root,
                    String::new(),
                    "empty root diff must be omitted".into(),
                ));
            }
            for w in diff.changed.windows(2) {
                if w[0].0 >= w[1].0 {
                    return Err(err(
                        root,
                        w[1].0.escaped(),
                        "changed entries not sorted and unique".into(),
                    ));
                }
            }
            for w in diff.deleted.windows(2) {
                if w[0] >= w[1] {
                    return Err(err(
                        root,
                        w[1].escaped(),
                        "deleted paths not sorted and unique".into(),
                    ));
                }
            }
            for (path, e) in &diff.changed {
                check_entry(path, e).map_err(|p| err(root, path.escaped(), p))?;
                if diff.deleted.binary_search(path).is_ok() {
                    return Err(err(
                        root,
                        path.escaped(),
                        "path both changed and deleted".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The canonical serialised bytes (compact JSON plus a newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let rec = LayerRecord {
            format_version: FORMAT_VERSION,
            index: self.index,
            name: self.meta.name.clone(),
            attachments: self.meta.attachments.clone(),
            meta: self.meta.meta.clone(),
            roots: self
                .roots
                .iter()
                .map(|(name, d)| {
                    (
                        name.clone(),
                        RootDiffRecord {
                            changed: d
                                .changed
                                .iter()
                                .map(|(p, e)| entry_to_record(p, e))
                                .collect(),
                            deleted: d.deleted.iter().map(RelPath::escaped).collect(),
                        },
                    )
                })
                .collect(),
            blobs: self
                .blobs
                .iter()
                .map(|b| PackedBlobRecord {
                    blake3: b.blake3,
                    offset: b.offset,
                    length: b.length,
                    encoding: b.encoding.name().to_owned(),
                })
                .collect(),
        };
        canonical_json(&rec)
    }

    /// Parses and validates a layer file's bytes; `file` is only used in errors.
    pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<Layer> {
        check_version(bytes, file)?;
        let rec: LayerRecord =
            serde_json::from_slice(bytes).map_err(|e| CheckpointError::Parse {
                file: file.to_owned(),
                source: e,
            })?;
        let index = rec.index;
        let mut roots = BTreeMap::new();
        for (name, d) in rec.roots {
            let mut diff = RootDiff::default();
            for r in d.changed {
                let path = r.path.clone();
                let pe = record_to_entry(r).map_err(|problem| CheckpointError::Manifest {
                    layer: index,
                    root: name.clone(),
                    path,
                    problem,
                })?;
                diff.changed.push(pe);
            }
            for p in d.deleted {
                let path = RelPath::from_escaped(&p).map_err(|e| CheckpointError::Manifest {
                    layer: index,
                    root: name.clone(),
                    path: p.clone(),
                    problem: format!("deleted path: {e}"),
                })?;
                diff.deleted.push(path);
            }
            roots.insert(name, diff);
        }
        let mut blobs = Vec::with_capacity(rec.blobs.len());
        for b in rec.blobs {
            let encoding =
                Encoding::from_name(&b.encoding).ok_or_else(|| CheckpointError::Manifest {
                    layer: index,
                    root: String::new(),
                    path: String::new(),
                    problem: format!("blob table: unknown encoding {:?}", b.encoding),
                })?;
            blobs.push(PackedBlob {
                blake3: b.blake3,
                offset: b.offset,
                length: b.length,
                encoding,
            });
        }
        let layer = Layer {
            index,
            meta: LayerMeta {
                name: rec.name,
                attachments: rec.attachments,
                meta: rec.meta,
            },
            roots,
            blobs,
        };
        layer.validate()?;
        if layer.to_bytes() != bytes {
            return Err(CheckpointError::Index {
                file: file.to_owned(),
                problem: "layer file is not in canonical form".into(),
            });
        }
        Ok(layer)
    }
}

impl Index {
    /// The canonical serialised bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_json(self)
    }

    /// Parses and checks an index file's bytes; `file` is only used in errors.
    pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<Index> {
        check_version(bytes, file)?;
        let index: Index = serde_json::from_slice(bytes).map_err(|e| CheckpointError::Parse {
            file: file.to_owned(),
            source: e,
        })?;
        let problem = |p: String| CheckpointError::Index {
            file: file.to_owned(),
            problem: p,
        };
        if index.roots.len() > MAX_ROOTS {
            return Err(problem(format!(
                "{} roots, more than {MAX_ROOTS} (the format's limit, §10)",
                index.roots.len()
            )));
        }
        if index.layers.len() > MAX_LAYERS {
            return Err(problem(format!(
                "{} layers, more than {MAX_LAYERS} (the format's limit, §10)",
                index.layers.len()
            )));
        }
        for r in &index.roots {
            check_root_name(r)?;
        }
        if index.roots.windows(2).any(|w| w[0] >= w[1]) {
            return Err(problem("roots not sorted and unique".into()));
        }
        for (i, l) in index.layers.iter().enumerate() {
            if l.index as usize != i {
                return Err(problem(format!(
                    "layer at position {i} has index {}",
                    l.index
                )));
            }
        }
        if index.to_bytes() != bytes {
            return Err(problem("index is not in canonical form".into()));
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    fn file(content: &[u8], hardlink: Option<&str>) -> Entry {
        Entry {
            kind: EntryKind::File {
                size: content.len() as u64,
                blake3: ContentHash::of(content),
                hardlink: hardlink.map(p),
            },
            mode: 0o644,
            mtime: Timestamp {
                sec: 1_700_000_000,
                nsec: 5,
            },
            xattrs: BTreeMap::new(),
        }
    }

    fn sample() -> Layer {
        let mut x = file(b"x", None);
        x.xattrs.insert(b"user.k\xff".to_vec(), b"v\0\n".to_vec());
        let diff = RootDiff {
            changed: vec![
                (
                    RelPath::root(),
                    Entry {
                        kind: EntryKind::Dir,
                        mode: 0o755,
                        mtime: Timestamp { sec: -3, nsec: 0 },
                        xattrs: BTreeMap::new(),
                    },
                ),
                (p("a"), file(b"hi", Some("a"))),
                (p("b"), file(b"hi", Some("a"))),
                (
                    p("l"),
                    Entry {
                        kind: EntryKind::Symlink {
                            target: b"/nowhere\n".to_vec(),
                        },
                        mode: 0o777,
                        mtime: Timestamp::default(),
                        xattrs: BTreeMap::new(),
                    },
                ),
                (RelPath::new(&b"n\xff x"[..]).unwrap(), x),
            ],
            deleted: vec![p("gone"), p("gone/sub")],
        };
        Layer {
            index: 2,
            meta: LayerMeta {
                name: "buildPhase".into(),
                attachments: [("shell-state".to_string(), ContentHash::of(b"s"))]
                    .into_iter()
                    .collect(),
                meta: serde_json::json!({"z": 1, "a": {"y": [1, 2], "b": "c"}}),
            },
            roots: [("build".to_string(), diff)].into_iter().collect(),
            blobs: vec![
                PackedBlob {
                    blake3: ContentHash::of(b"s"),
                    offset: 0,
                    length: 1,
                    encoding: Encoding::Raw,
                },
                PackedBlob {
                    blake3: ContentHash::of(b"hi"),
                    offset: 1,
                    length: 11,
                    encoding: Encoding::Zstd,
                },
            ],
        }
    }

    #[test]
    fn layer_round_trip_is_exact_and_canonical() {
        let l = sample();
        let bytes = l.to_bytes();
        let back = Layer::from_bytes(&bytes, Path::new("t.json")).unwrap();
        assert_eq!(back, l);
        assert_eq!(back.to_bytes(), bytes);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""mode":"0644""#), "{text}");
        assert!(text.contains(r#""path":"n%FF x""#), "{text}");
        // Non-canonical whitespace is refused.
        let pretty = serde_json::to_vec_pretty(
            &serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
        )
        .unwrap();
        assert!(Layer::from_bytes(&pretty, Path::new("t.json")).is_err());
    }

    #[test]
    fn wrong_version_is_typed() {
        let text = String::from_utf8(sample().to_bytes())
            .unwrap()
            .replace("\"format_version\":5", "\"format_version\":7");
        match Layer::from_bytes(text.as_bytes(), Path::new("t.json")) {
            Err(CheckpointError::FormatVersion {
                expected: 5,
                found: 7,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        let text = String::from_utf8(sample().to_bytes()).unwrap();
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "%00", "a/"] {
            let t = text.replace("\"path\":\"l\"", &format!("\"path\":\"{bad}\""));
            assert!(
                Layer::from_bytes(t.as_bytes(), Path::new("t")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn unsorted_and_overlapping_are_refused() {
        let mut l = sample();
        l.roots.get_mut("build").unwrap().changed.swap(1, 2);
        assert!(l.validate().is_err());
        let mut l = sample();
        l.roots.get_mut("build").unwrap().deleted.push(p("l"));
        l.roots.get_mut("build").unwrap().deleted.sort();
        assert!(l.validate().is_err());
        let mut l = sample();
        l.roots.get_mut("build").unwrap().changed[2].1 = file(b"hi", Some("z"));
        assert!(
            l.validate().is_err(),
            "hardlink group must be the smallest path"
        );
        let mut l = sample();
        l.blobs[1].offset = 2;
        assert!(l.validate().is_err(), "a gap in the pack");
        let mut l = sample();
        l.blobs.swap(0, 1);
        assert!(l.validate().is_err(), "blob table not sorted by offset");
        let mut l = sample();
        l.blobs[1].blake3 = l.blobs[0].blake3;
        assert!(l.validate().is_err(), "a blob stored twice");
    }

    #[test]
    fn index_round_trip() {
        let idx = Index {
            format_version: FORMAT_VERSION,
            meta: serde_json::json!({"system": "x86_64-linux"}),
            roots: vec!["build".into(), "out".into()],
            layers: vec![LayerRef {
                index: 0,
                name: "setup".into(),
                blake3: ContentHash::of(b""),
                blobs_added: 1,
                blob_bytes_added: 9,
            }],
        };
        let b = idx.to_bytes();
        assert_eq!(Index::from_bytes(&b, Path::new("i")).unwrap(), idx);
        assert_eq!(
            layer_file_name(3, "build Phase/x"),
            "layers/003-build_Phase_x.json"
        );
    }
}
