//! The numeric limits of the checkpoint format (docs/checkpoint-format.md §10); pure, no I/O.
//!
//! Every reader enforces them before it allocates or writes anything a checkpoint claims,
//! so the memory and time of `open`, `verify` and `restore` are bounded by the size of the
//! checkpoint and these numbers; writers refuse to record what would break them, so a
//! checkpoint this code writes is always one it reads back. A restored tree within these
//! limits can be snapshotted again by the builder (every path it reaches stays below
//! `PATH_MAX`).

/// Longest path component in bytes (Linux `NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// Longest path inside a root, in bytes. Leaves room for the directory a root is restored
/// into (the builder's build directory, `/nix/store/<hash>-<name>`, a CLI target) within
/// Linux's `PATH_MAX` of 4096 bytes (see [`PATH_MAX`]).
pub const MAX_PATH: usize = 3072;

/// Linux `PATH_MAX`, the terminating NUL included: restore refuses a target whose absolute
/// path, a `/` and the longest path of the state would not fit, so the builder's own next
/// snapshot (and Nix, which deletes the build directory by path) can reach every file.
pub const PATH_MAX: usize = 4096;

/// Most components of a path inside a root (restore keeps one descriptor open per level).
pub const MAX_DEPTH: usize = 256;

/// Longest symlink target in bytes (`PATH_MAX` without the NUL).
pub const MAX_SYMLINK_TARGET: usize = 4095;

/// Longest xattr name in bytes, `user.` included (Linux `XATTR_NAME_MAX`).
pub const MAX_XATTR_NAME: usize = 255;

/// Longest xattr value in bytes (Linux `XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 65536;

/// Most xattrs on one entry.
pub const MAX_XATTRS: usize = 128;

/// Largest file size an entry may claim: 1 TiB.
pub const MAX_FILE_SIZE: u64 = 1 << 40;

/// zstd regenerates at most 128 KiB from a 4-byte RLE block: content can never be more than
/// this many times its stored length. A claim above it is refused without reading.
pub const MAX_ZSTD_RATIO: u64 = 32768;

/// Largest zstd window a frame may ask for (2^27 = 128 MiB, zstd's own default limit): what
/// one decoder may allocate.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Earliest mtime (seconds): 1901-12-13, the oldest time ext4, XFS and btrfs all store.
pub const MIN_MTIME_SEC: i64 = -(1 << 31);

/// Latest mtime (seconds): 2446-05-10, the newest time ext4 stores (XFS and btrfs go
/// further). Out-of-range times are refused, never clamped.
pub const MAX_MTIME_SEC: i64 = (1 << 34) - (1 << 31) - 1;

/// Most entries one layer may list (changed and deleted, all roots together), and most
/// entries one state may hold (all roots together).
pub const MAX_ENTRIES: usize = 1 << 21;

/// Most layers in a checkpoint.
pub const MAX_LAYERS: usize = 4096;

/// Most roots in a checkpoint.
pub const MAX_ROOTS: usize = 256;

/// Most attachments on one layer; an attachment name is at most [`MAX_NAME`] bytes.
pub const MAX_ATTACHMENTS: usize = 64;

/// Largest attachment content: attachments (shell state, keys) are parsed in memory.
pub const MAX_ATTACHMENT: u64 = 64 << 20;

/// Largest record of a patched blob (its stored bytes: base, size, regions), read into
/// memory before its base is streamed.
pub const MAX_PATCH_RECORD: u64 = 1 << 20;

/// Largest content a delta blob makes, and largest base it is made from: a reader holds both
/// in memory while it decodes one (docs/checkpoint-format.md §5, `delta`).
pub const MAX_DELTA_CONTENT: u64 = 256 << 20;

/// Most memory the delta blobs decoded or encoded at one time may hold (bases, frames and
/// contents together; one blob takes at most three times [`MAX_DELTA_CONTENT`]): threads
/// wait for each other beyond it.
pub const MAX_DELTA_MEMORY: u64 = 1 << 30;

/// Largest `index.json`.
pub const MAX_INDEX_FILE: u64 = 16 << 20;

/// Largest layer file.
pub const MAX_LAYER_FILE: u64 = 512 << 20;

/// True when `sec` is an mtime a checkpoint may carry.
pub fn mtime_in_range(sec: i64) -> bool {
    (MIN_MTIME_SEC..=MAX_MTIME_SEC).contains(&sec)
}
