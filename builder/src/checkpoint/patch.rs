//! Patched blobs (docs/checkpoint-format.md §5, encoding `patch`): a content stored as
//! another blob of the same checkpoint with a few byte ranges replaced. An import that
//! rewrites an output path or a `-frandom-seed` in every object file of a tree stores each
//! rewritten object this way, instead of compressing it whole again. Pure: the record's
//! encoding and rules, the regions where two equal-length contents differ, and applying
//! regions to a stream.

use super::limits::MAX_PATCH_RECORD;
use super::manifest::ContentHash;

/// Differing bytes this close together are one region: a record stays short where a
/// rewritten string differs from the old one in scattered characters (two hashes share some).
const MERGE_GAP: u64 = 16;

/// File contents from this size on are worth storing as a patch of an earlier content they
/// differ from in a few bytes (an import's rewritten output path or `-frandom-seed`, a
/// stripped program whose only change is the output path it names): smaller ones are
/// compressed whole.
pub const PATCH_MIN_SIZE: u64 = 4096;

/// The longest patch record worth it for a content of `size` bytes: a sixteenth of it.
pub fn patch_budget(size: u64) -> usize {
    usize::try_from(size / 16).unwrap_or(usize::MAX)
}

/// Bytes of a record before its regions: base hash, content size, region count.
const HEADER: usize = 32 + 8 + 4;
/// Bytes of a region before its replacement bytes: offset, length.
const REGION_HEADER: usize = 8 + 4;

/// A patched blob's record: its content is `size` bytes of blob `base` with each region's
/// bytes in place of the base's at its offset.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Patch {
    pub base: ContentHash,
    pub size: u64,
    /// Sorted, non-empty, separated by at least one byte, within `size`.
    pub regions: Vec<Region>,
}

/// Bytes that replace the base's from `offset` on.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Region {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

impl Region {
    fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

impl Patch {
    /// The record's bytes (before masking).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.base.0);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.regions.len() as u32).to_le_bytes());
        for r in &self.regions {
            out.extend_from_slice(&r.offset.to_le_bytes());
            out.extend_from_slice(&(r.bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&r.bytes);
        }
        out
    }

    /// The length of [`Patch::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        encoded_len(&self.regions)
    }

    /// Parses and checks a record: at most [`MAX_PATCH_RECORD`] bytes, at least one region,
    /// every region non-empty, within the content, after the previous one with a gap, and
    /// nothing left over. The problem, in words, otherwise.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() as u64 > MAX_PATCH_RECORD {
            return Err(format!(
                "a patch record of {} bytes, more than the limit of {MAX_PATCH_RECORD}",
                bytes.len()
            ));
        }
        let mut r = Reader { bytes, pos: 0 };
        let base: [u8; 32] = r.take(32)?.try_into().expect("32 bytes");
        let size = r.u64()?;
        let count = r.u32()?;
        if count == 0 {
            return Err("a patch record with no region".into());
        }
        let mut regions: Vec<Region> = Vec::new();
        for _ in 0..count {
            let offset = r.u64()?;
            let len = r.u32()?;
            if len == 0 {
                return Err(format!("an empty patch region at offset {offset}"));
            }
            if let Some(prev) = regions.last() {
                if offset <= prev.end() {
                    return Err(format!(
                        "patch region at {offset} does not come after the previous one's end \
                         ({}) with a gap",
                        prev.end()
                    ));
                }
            }
            let bytes = r.take(len as usize)?.to_vec();
            let region = Region { offset, bytes };
            if offset.checked_add(u64::from(len)).is_none_or(|e| e > size) {
                return Err(format!(
                    "patch region at {offset} of {len} bytes passes the content's {size} bytes"
                ));
            }
            regions.push(region);
        }
        if r.pos != bytes.len() {
            return Err(format!(
                "{} bytes after the last patch region",
                bytes.len() - r.pos
            ));
        }
        Ok(Patch {
            base: ContentHash(base),
            size,
            regions,
        })
    }
}

fn encoded_len(regions: &[Region]) -> usize {
    HEADER
        + regions
            .iter()
            .map(|r| REGION_HEADER + r.bytes.len())
            .sum::<usize>()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("the patch record ends at byte {}", self.bytes.len()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
}

/// Collects, chunk by chunk, the regions where a new content differs from an old one of the
/// same length, differing bytes at most 16 apart (`MERGE_GAP`) in one region; gives up once
/// the record would pass its budget.
#[derive(Debug)]
pub struct DiffRegions {
    regions: Vec<Region>,
    /// Absolute position of the next chunk.
    pos: u64,
    /// The last bytes of the new content before `pos` (at most `MERGE_GAP`), for a gap
    /// that reaches back into the previous chunk.
    tail: Vec<u8>,
    /// Bytes the record may take, and the bytes it takes so far.
    budget: usize,
    len: usize,
    over: bool,
}

impl DiffRegions {
    /// A collector whose record may take at most `budget` bytes (and never more than
    /// [`MAX_PATCH_RECORD`]).
    pub fn new(budget: usize) -> Self {
        DiffRegions {
            regions: Vec::new(),
            pos: 0,
            tail: Vec::new(),
            budget: budget.min(MAX_PATCH_RECORD as usize),
            len: HEADER,
            over: false,
        }
    }

    /// A collector for a content of `size` bytes, when one of that size is worth a patch (at
    /// least [`PATCH_MIN_SIZE`]); its budget is [`patch_budget`].
    pub fn for_content(size: u64) -> Option<Self> {
        (size >= PATCH_MIN_SIZE).then(|| DiffRegions::new(patch_budget(size)))
    }

    /// True once the record would pass its budget: the rest of the contents need not be
    /// compared.
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The next `old.len()` bytes of both contents.
    pub fn feed(&mut self, old: &[u8], new: &[u8]) {
        assert_eq!(old.len(), new.len(), "regions compare equal lengths");
        if !self.over && old != new {
            // Compare in blocks: equal blocks (almost all of them) cost one memcmp.
            const BLOCK: usize = 256;
            'blocks: for (k, (a, b)) in old.chunks(BLOCK).zip(new.chunks(BLOCK)).enumerate() {
                if a == b {
                    continue;
                }
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    if x != y {
                        self.differs(k * BLOCK + i, new);
                        if self.over {
                            break 'blocks;
                        }
                    }
                }
            }
        }
        self.pos += new.len() as u64;
        let keep = MERGE_GAP as usize;
        if new.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&new[new.len() - keep..]);
        } else {
            self.tail.extend_from_slice(new);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
    }

    /// Byte `i` of the chunk `new` (at `self.pos`) differs.
    fn differs(&mut self, i: usize, new: &[u8]) {
        let at = self.pos + i as u64;
        let byte_at = |p: u64| -> u8 {
            if p >= self.pos {
                new[(p - self.pos) as usize]
            } else {
                self.tail[self.tail.len() - (self.pos - p) as usize]
            }
        };
        let grow = match self.regions.last() {
            Some(r) if at - r.end() <= MERGE_GAP => {
                let fill: Vec<u8> = (r.end()..=at).map(byte_at).collect();
                Some(fill)
            }
            _ => None,
        };
        match grow {
            Some(fill) => {
                self.len += fill.len();
                self.regions.last_mut().expect("matched").bytes.extend(fill);
            }
            None => {
                self.len += REGION_HEADER + 1;
                self.regions.push(Region {
                    offset: at,
                    bytes: vec![new[i]],
                });
            }
        }
        if self.len > self.budget {
            self.over = true;
            self.regions = Vec::new();
        }
    }

    /// The regions, or `None` when the contents are equal or the record would pass its
    /// budget.
    pub fn finish(self) -> Option<Vec<Region>> {
        (!self.over && !self.regions.is_empty()).then_some(self.regions)
    }
}

/// `earlier` with `later` laid over it: the regions of a content patched by `earlier` and
/// then changed where `later` says (both sorted, as [`Patch`] keeps them), relative to the
/// same base. Regions that touch or overlap are joined.
pub fn overlay(earlier: &[Region], later: &[Region]) -> Vec<Region> {
    // Byte ranges of `earlier` that no `later` region covers, then all of `later`.
    let mut pieces: Vec<Region> = Vec::new();
    for e in earlier {
        let mut start = e.offset;
        for l in later
            .iter()
            .filter(|l| l.offset < e.end() && l.end() > e.offset)
        {
            if l.offset > start {
                pieces.push(slice(e, start, l.offset));
            }
            start = start.max(l.end());
        }
        if start < e.end() {
            pieces.push(slice(e, start, e.end()));
        }
    }
    pieces.extend(later.iter().cloned());
    pieces.sort_by_key(|r| r.offset);
    let mut out: Vec<Region> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match out.last_mut() {
            // Pieces never overlap (each byte is earlier's or later's), so touching ones
            // join end to start.
            Some(last) if last.end() == p.offset => last.bytes.extend_from_slice(&p.bytes),
            _ => out.push(p),
        }
    }
    out
}

/// Bytes `[from, to)` (absolute) of region `r`.
fn slice(r: &Region, from: u64, to: u64) -> Region {
    Region {
        offset: from,
        bytes: r.bytes[(from - r.offset) as usize..(to - r.offset) as usize].to_vec(),
    }
}

/// The record length regions would take.
pub fn record_len(regions: &[Region]) -> usize {
    encoded_len(regions)
}

/// Lays a patch's regions over its base's content as it streams past, chunk by chunk.
#[derive(Debug)]
pub struct Applier<'a> {
    regions: &'a [Region],
    /// The first region that may still reach the next chunk.
    next: usize,
    pos: u64,
}

impl<'a> Applier<'a> {
    pub fn new(regions: &'a [Region]) -> Self {
        Applier {
            regions,
            next: 0,
            pos: 0,
        }
    }

    /// Patches the next chunk of the base's content in place.
    pub fn apply(&mut self, chunk: &mut [u8]) {
        let end = self.pos + chunk.len() as u64;
        while self.next < self.regions.len() && self.regions[self.next].end() <= self.pos {
            self.next += 1;
        }
        for r in self.regions[self.next..]
            .iter()
            .take_while(|r| r.offset < end)
        {
            let from = r.offset.max(self.pos);
            let to = r.end().min(end);
            chunk[(from - self.pos) as usize..(to - self.pos) as usize]
                .copy_from_slice(&r.bytes[(from - r.offset) as usize..(to - r.offset) as usize]);
        }
        self.pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions_of(old: &[u8], new: &[u8], chunk: usize) -> Option<Vec<Region>> {
        let mut d = DiffRegions::new(1 << 20);
        for (a, b) in old.chunks(chunk).zip(new.chunks(chunk)) {
            d.feed(a, b);
        }
        d.finish()
    }

    fn applied(base: &[u8], regions: &[Region], chunk: usize) -> Vec<u8> {
        let mut out = base.to_vec();
        let mut a = Applier::new(regions);
        for c in out.chunks_mut(chunk) {
            a.apply(c);
        }
        out
    }

    fn sample() -> (Vec<u8>, Vec<u8>) {
        let old: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        // A seed rewritten in two places, a changed byte 10 after one (joined), and one at
        // the very end.
        new[100..110].copy_from_slice(b"kb3b8nwgzh");
        new[5000..5010].copy_from_slice(b"kb3b8nwgzh");
        new[5020] ^= 1;
        new[9999] ^= 1;
        (old, new)
    }

    #[test]
    fn differing_regions_rebuild_the_new_content_whatever_the_chunks() {
        let (old, new) = sample();
        let whole = regions_of(&old, &new, old.len()).unwrap();
        for chunk in [1, 3, 7, 16, 17, 100, 4096] {
            let r = regions_of(&old, &new, chunk).unwrap();
            assert_eq!(r, whole, "chunk {chunk}");
            for apply_chunk in [1, 5, 64, 10_000] {
                assert_eq!(applied(&old, &r, apply_chunk), new);
            }
        }
        // 100..110, 5000..5021 (joined over the 10-byte gap), 9999.
        let spans: Vec<(u64, usize)> = whole.iter().map(|r| (r.offset, r.bytes.len())).collect();
        assert_eq!(spans, vec![(100, 10), (5000, 21), (9999, 1)]);
        assert_eq!(regions_of(&old, &old, 64), None);
    }

    #[test]
    fn a_record_over_its_budget_gives_up() {
        let old = vec![0u8; 4096];
        let new: Vec<u8> = (0..4096).map(|i| if i % 64 == 0 { 1 } else { 0 }).collect();
        let mut d = DiffRegions::new(200);
        d.feed(&old, &new);
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let (old, new) = sample();
        let p = Patch {
            base: ContentHash::of(&old),
            size: old.len() as u64,
            regions: regions_of(&old, &new, 512).unwrap(),
        };
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), p.encoded_len());
        assert_eq!(Patch::parse(&bytes).unwrap(), p);

        let region = |offset: u64, bytes: &[u8]| Region {
            offset,
            bytes: bytes.to_vec(),
        };
        let bad = |regions: Vec<Region>, size: u64| {
            Patch::parse(
                &Patch {
                    base: p.base,
                    size,
                    regions,
                }
                .to_bytes(),
            )
            .unwrap_err()
        };
        assert!(bad(vec![], 10).contains("no region"));
        assert!(bad(vec![region(3, b"")], 10).contains("empty"));
        assert!(bad(vec![region(8, b"abc")], 10).contains("passes"));
        assert!(bad(vec![region(u64::MAX, b"a")], 10).contains("passes"));
        assert!(bad(vec![region(2, b"ab"), region(4, b"c")], 10).contains("gap"));
        assert!(bad(vec![region(5, b"ab"), region(1, b"c")], 10).contains("gap"));
        assert!(Patch::parse(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("ends"));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Patch::parse(&longer)
            .unwrap_err()
            .contains("after the last"));
        let mut many = bytes[..HEADER].to_vec();
        many[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Patch::parse(&many).unwrap_err().contains("ends"));
        assert!(Patch::parse(&vec![0u8; MAX_PATCH_RECORD as usize + 1])
            .unwrap_err()
            .contains("limit"));
    }

    #[test]
    fn overlay_is_the_later_patch_applied_after_the_earlier() {
        let base: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
        let mut first = base.clone();
        first[10..40].fill(b'a');
        first[500..510].fill(b'b');
        let mut second = first.clone();
        second[30..60].fill(b'c'); // overlaps the end of the first region
        second[505] = b'd'; // inside one
        second[900] = b'e'; // elsewhere
        let earlier = regions_of(&base, &first, 64).unwrap();
        let later = regions_of(&first, &second, 64).unwrap();
        let both = overlay(&earlier, &later);
        assert_eq!(applied(&base, &both, 33), second);
        // Sorted, separated: what `Patch::parse` accepts.
        let p = Patch {
            base: ContentHash::of(&base),
            size: base.len() as u64,
            regions: both,
        };
        assert_eq!(Patch::parse(&p.to_bytes()).unwrap(), p);
    }
}
