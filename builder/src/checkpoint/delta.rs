//! Delta blobs (docs/checkpoint-format.md §5, encoding `delta`): a content stored as one
//! zstd frame compressed with another blob's content as its prefix. A relinked program or a
//! rebuilt archive differs from its earlier version in a few places, but a longer string or
//! member moves every byte after it, which a patch of the same length cannot hold; zstd
//! finds the moved ranges in the prefix, and the frame costs about what changed. Pure: the
//! record's layout and rules, and encoding and decoding a frame against a base held in
//! memory.

use super::limits::MAX_DELTA_CONTENT;
use super::manifest::ContentHash;
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx};

/// Contents from this size on are worth storing as a delta of the content the same path held
/// in the earlier checkpoint (a relinked program, a rebuilt archive); smaller ones are
/// compressed whole (their whole frame is small already, and a delta's reader holds its
/// base in memory).
pub const DELTA_MIN_SIZE: u64 = 1 << 20;

/// Bytes of a record before its frame: base hash, base size, content size.
pub const HEADER: usize = 32 + 8 + 8;

/// zstd level of a delta's frame (as for whole contents: level 1).
const LEVEL: i32 = 1;

/// Long-distance matching inserts one position in 2^8 into its table (zstd's default is
/// 2^7 for these windows). Most of an encode is the rolling hash over the whole base and
/// content, and fewer insertions made the large synthetic project's archive and program
/// deltas 7 to 10 % faster to encode, with frames as small (docs/benchmarks.md, "Session 23").
const LDM_HASH_RATE_LOG: u32 = 8;

/// A delta blob's record without its frame: the content is `size` bytes, the frame's
/// decoding with the `base_size` bytes of blob `base` as its prefix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeltaHeader {
    pub base: ContentHash,
    pub base_size: u64,
    pub size: u64,
}

impl DeltaHeader {
    /// The record: this header, then `frame`.
    pub fn record(&self, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + frame.len());
        out.extend_from_slice(&self.base.0);
        out.extend_from_slice(&self.base_size.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(frame);
        out
    }

    /// Parses the first [`HEADER`] bytes of a record and checks the sizes against
    /// [`MAX_DELTA_CONTENT`]; the problem, in words, otherwise.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let Some(head) = bytes.get(..HEADER) else {
            return Err(format!(
                "a delta record of {} bytes, shorter than its {HEADER}-byte header",
                bytes.len()
            ));
        };
        let base = ContentHash(head[..32].try_into().expect("32 bytes"));
        let base_size = u64::from_le_bytes(head[32..40].try_into().expect("8 bytes"));
        let size = u64::from_le_bytes(head[40..48].try_into().expect("8 bytes"));
        for (what, n) in [("its base", base_size), ("its content", size)] {
            if n > MAX_DELTA_CONTENT {
                return Err(format!(
                    "a delta whose {what} is {n} bytes, more than the limit of \
                     {MAX_DELTA_CONTENT}"
                ));
            }
        }
        Ok(DeltaHeader {
            base,
            base_size,
            size,
        })
    }
}

/// True when a content of `size` bytes may be stored as a delta of one of `base_size` bytes.
pub fn may_store(size: u64, base_size: u64) -> bool {
    (DELTA_MIN_SIZE..=MAX_DELTA_CONTENT).contains(&size) && base_size <= MAX_DELTA_CONTENT
}

/// True when a record of `record_len` bytes is worth storing for a content of `size`
/// bytes: at most an eighth of it (a content that shares little with its base is
/// compressed whole).
pub fn pays(record_len: usize, size: u64) -> bool {
    (record_len as u64) <= size / 8
}

/// zstd's smallest window (2^10 bytes).
const WINDOW_LOG_MIN: u32 = 10;

/// The window a frame needs to reach back over the whole base from the content's end (at
/// most 2^30 bytes: both sides are within [`MAX_DELTA_CONTENT`]).
fn window_log(base_len: usize, len: usize) -> u32 {
    let reach = (base_len as u64 + len as u64).max(1);
    (64 - (reach - 1).leading_zeros()).clamp(WINDOW_LOG_MIN, 30)
}

/// Compresses `content` into one frame with `base` as its prefix (long-distance matching
/// on, a window that reaches over both: what `zstd --patch-from` does, with a sparser
/// long-distance table).
pub fn encode(base: &[u8], content: &[u8]) -> Result<Vec<u8>, String> {
    let err = |c: usize| format!("zstd: {}", zstd_safe::get_error_name(c));
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(LEVEL))
        .map_err(err)?;
    cctx.set_parameter(CParameter::WindowLog(window_log(base.len(), content.len())))
        .map_err(err)?;
    cctx.set_parameter(CParameter::EnableLongDistanceMatching(true))
        .map_err(err)?;
    cctx.set_parameter(CParameter::LdmHashRateLog(LDM_HASH_RATE_LOG))
        .map_err(err)?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true))
        .map_err(err)?;
    cctx.set_pledged_src_size(Some(content.len() as u64))
        .map_err(err)?;
    cctx.ref_prefix(base).map_err(err)?;
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(content.len()));
    cctx.compress2(&mut out, content).map_err(err)?;
    Ok(out)
}

/// Decodes `frame` with `base` as its prefix into exactly `size` bytes: memory is `size`
/// whatever the frame claims (decoding stops with an error where it would write more), and
/// a frame that makes fewer bytes is an error. The content is not hashed here.
pub fn decode(base: &[u8], frame: &[u8], size: u64) -> Result<Vec<u8>, String> {
    let err = |c: usize| format!("zstd: {}", zstd_safe::get_error_name(c));
    let size = usize::try_from(size).map_err(|_| "a delta content beyond memory".to_owned())?;
    let mut dctx = DCtx::create();
    dctx.ref_prefix(base).map_err(err)?;
    let mut out = Vec::with_capacity(size);
    dctx.decompress(&mut out, frame).map_err(err)?;
    if out.len() != size {
        return Err(format!(
            "the delta decodes to {} bytes but its record says {size}",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_shifted_content_costs_what_changed_and_decodes_back() {
        let base = pseudo_random(3 << 20, 1);
        // A longer string early on moves every later byte.
        let mut content = base[..1000].to_vec();
        content.extend_from_slice(b"a longer string than before");
        content.extend_from_slice(&base[1000..]);
        let frame = encode(&base, &content).unwrap();
        assert!(frame.len() < 4096, "{} bytes", frame.len());
        assert!(pays(HEADER + frame.len(), content.len() as u64));
        assert_eq!(
            decode(&base, &frame, content.len() as u64).unwrap(),
            content
        );
    }

    #[test]
    fn decoding_is_held_to_the_recorded_size_and_base() {
        let base = pseudo_random(2 << 20, 2);
        let mut content = base.clone();
        content.rotate_left(12345);
        let frame = encode(&base, &content).unwrap();
        let n = content.len() as u64;
        // Room for fewer bytes than the frame makes: refused, nothing beyond the room.
        assert!(decode(&base, &frame, n - 1).is_err());
        // Fewer bytes made than the record says.
        assert!(decode(&base, &frame, n + 1).is_err());
        // Another base decodes to other bytes, or fails: never the content.
        let other = pseudo_random(2 << 20, 3);
        assert!(decode(&other, &frame, n).map_or(true, |c| c != content));
        // Not a frame.
        assert!(decode(&base, b"not a zstd frame", n).is_err());
    }

    #[test]
    fn a_header_reads_back_and_its_sizes_are_bounded() {
        let h = DeltaHeader {
            base: ContentHash([7; 32]),
            base_size: 5 << 20,
            size: 6 << 20,
        };
        let record = h.record(b"frame");
        assert_eq!(DeltaHeader::parse(&record).unwrap(), h);
        assert!(DeltaHeader::parse(&record[..HEADER - 1]).is_err());
        for big in [
            DeltaHeader {
                size: MAX_DELTA_CONTENT + 1,
                ..h
            },
            DeltaHeader {
                base_size: MAX_DELTA_CONTENT + 1,
                ..h
            },
        ] {
            let e = DeltaHeader::parse(&big.record(b"")).unwrap_err();
            assert!(e.contains("more than the limit"), "{e}");
        }
        assert!(may_store(DELTA_MIN_SIZE, MAX_DELTA_CONTENT));
        assert!(!may_store(DELTA_MIN_SIZE - 1, 1 << 20));
        assert!(!may_store(MAX_DELTA_CONTENT + 1, 1 << 20));
        assert!(!may_store(1 << 20, MAX_DELTA_CONTENT + 1));
    }
}
