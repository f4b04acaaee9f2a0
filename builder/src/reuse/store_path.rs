//! How a store path came to be: recomputes the content-addressed path `nix-store --add` (or
//! `--add-fixed --recursive sha256`) gives a directory, to name the cause when a base is
//! refused (docs/trust.md).
//!
//! The path arithmetic (SHA-256, Nix's hash compression and base32, `makeStorePath`) is
//! pure; [`how_added`] reads the tree to serialise it as a NAR.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `Some(" (… added to the store by content, as nix-store --add does)")` when `dir` is at
/// the path `nix-store --add` gives its content; `None` when it is not, or that cannot be
/// told (not a store path, unreadable).
pub fn how_added(dir: &Path) -> Option<String> {
    let text = dir.to_str()?.trim_end_matches('/');
    let (store_dir, base) = text.rsplit_once('/')?;
    let (_, name) = base.split_once('-')?;
    let mut hasher = Sha256::new();
    write_nar(dir, &mut hasher).ok()?;
    let nar = hasher.finish();
    let path = source_path(store_dir, &nar, name);
    (path == text).then(|| {
        " (it is the content-addressed path of its own content: it was added to the store with \
         nix-store --add or the like, not built)"
            .to_owned()
    })
}

/// The path of a content-addressed `source` store object without references: Nix's
/// `makeStorePath("source", sha256 of the NAR, name)`.
pub fn source_path(store_dir: &str, nar_sha256: &[u8; 32], name: &str) -> String {
    let inner = format!("source:sha256:{}:{store_dir}:{name}", to_hex(nar_sha256));
    let mut h = Sha256::new();
    h.update(inner.as_bytes());
    let digest = h.finish();
    let mut folded = [0u8; 20];
    for (i, b) in digest.iter().enumerate() {
        folded[i % 20] ^= b;
    }
    format!("{store_dir}/{}-{name}", nix_base32(&folded))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The characters of Nix's base32, in order (no `e`, `o`, `t`, `u`).
pub const NIX_BASE32_ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Nix's base32: its own alphabet, the last 5-bit group first.
pub fn nix_base32(hash: &[u8]) -> String {
    let len = (hash.len() * 8).div_ceil(5);
    (0..len)
        .rev()
        .map(|n| {
            let b = n * 5;
            let (i, j) = (b / 8, b % 8);
            let low = (hash[i] as u16) >> j;
            let high = hash.get(i + 1).map_or(0, |&h| (h as u16) << (8 - j));
            NIX_BASE32_ALPHABET[((low | high) & 0x1f) as usize] as char
        })
        .collect()
}

fn nar_str(out: &mut Sha256, bytes: &[u8]) {
    out.update(&(bytes.len() as u64).to_le_bytes());
    out.update(bytes);
    let pad = (8 - bytes.len() % 8) % 8;
    out.update(&[0u8; 8][..pad]);
}

/// Feeds the NAR serialisation of `path` to `out`.
fn write_nar(path: &Path, out: &mut Sha256) -> std::io::Result<()> {
    nar_str(out, b"nix-archive-1");
    write_node(path, out)
}

fn write_node(path: &Path, out: &mut Sha256) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    nar_str(out, b"(");
    nar_str(out, b"type");
    let ft = meta.file_type();
    if ft.is_symlink() {
        nar_str(out, b"symlink");
        nar_str(out, b"target");
        nar_str(out, std::fs::read_link(path)?.as_os_str().as_bytes());
    } else if ft.is_dir() {
        nar_str(out, b"directory");
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            nar_str(out, b"entry");
            nar_str(out, b"(");
            nar_str(out, b"name");
            nar_str(out, name.as_bytes());
            nar_str(out, b"node");
            write_node(&path.join(&name), out)?;
            nar_str(out, b")");
        }
    } else if ft.is_file() {
        nar_str(out, b"regular");
        if meta.permissions().mode() & 0o100 != 0 {
            nar_str(out, b"executable");
            nar_str(out, b"");
        }
        nar_str(out, b"contents");
        let len = meta.len();
        out.update(&len.to_le_bytes());
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 16];
        let mut seen = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            out.update(&buf[..n]);
        }
        if seen != len {
            return Err(std::io::Error::other("file changed while read"));
        }
        out.update(&[0u8; 8][..((8 - len % 8) % 8) as usize]);
    } else {
        return Err(std::io::Error::other("not representable in a NAR"));
    }
    nar_str(out, b")");
    Ok(())
}

/// SHA-256 (FIPS 180-4), streaming. Small and only used to name how a path was made.
pub struct Sha256 {
    state: [u32; 8],
    buf: [u8; 64],
    buf_len: usize,
    total: u64,
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    pub fn new() -> Self {
        Sha256 {
            state: [
                0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
                0x5be0cd19,
            ],
            buf: [0; 64],
            buf_len: 0,
            total: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len == 64 {
                let block = self.buf;
                self.compress(&block);
                self.buf_len = 0;
            }
        }
        while data.len() >= 64 {
            let (block, rest) = data.split_at(64);
            self.compress(block.try_into().expect("64 bytes"));
            data = rest;
        }
        self.buf[..data.len()].copy_from_slice(data);
        self.buf_len += data.len();
    }

    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.total.wrapping_mul(8);
        let mut pad = vec![0x80u8];
        pad.resize((119 - self.buf_len) % 64 + 1, 0);
        pad.extend_from_slice(&bits.to_be_bytes());
        let total = self.total;
        self.update(&pad);
        self.total = total;
        let mut out = [0u8; 32];
        for (i, w) in self.state.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    fn compress(&mut self, block: &[u8; 64]) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = self.state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(data);
        to_hex(&h.finish())
    }

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            sha(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // Streamed in odd pieces, across block boundaries.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut h = Sha256::new();
        for chunk in data.chunks(37) {
            h.update(chunk);
        }
        assert_eq!(to_hex(&h.finish()), sha(&data));
    }

    #[test]
    fn nix_base32_of_a_known_hash() {
        // `nix-hash --type sha256 --to-base32` of the sha256 of "" (Nix's own test vector).
        let mut h = Sha256::new();
        h.update(b"");
        assert_eq!(
            nix_base32(&h.finish()),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
    }

    #[test]
    fn the_path_nix_store_add_gives() {
        // A tree added with Nix 2.8 on the development machine: `nix-store --add` printed
        // /nix/store/dsq8y6s58mabvz2l42x81hrwr6fd1cqr-trust-sp, and `nix-hash --type
        // sha256` the NAR hash below.
        let dir = std::env::temp_dir().join(format!("cpb-store-path-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("a.txt"), b"hi\n").unwrap();
        std::fs::set_permissions(dir.join("a.txt"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("a.txt", dir.join("d/l")).unwrap();
        let mut h = Sha256::new();
        write_nar(&dir, &mut h).unwrap();
        let nar = h.finish();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            to_hex(&nar),
            "2052276df2da665615c11de6a6551ec79c50c1cd9dd78ea52e80c27962d7ebe2"
        );
        assert_eq!(
            source_path("/nix/store", &nar, "trust-sp"),
            "/nix/store/dsq8y6s58mabvz2l42x81hrwr6fd1cqr-trust-sp"
        );
    }
}
