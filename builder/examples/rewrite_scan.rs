//! Benchmark: how fast `Rewrites` (checkpoint::rewrite) scans the bytes of a file for an
//! earlier output path, its hash and its seed, for hashes that start with different
//! characters, in one run. The scan's cost should not depend on the output hash; the
//! slowest / fastest ratio it prints says how far it does (docs/benchmarks.md, "Session 22").
//!
//! `cargo run --release --example rewrite_scan -- FILE` (a few tens of MB of sources or
//! objects, concatenated).

use checkpoint_builder::checkpoint::Rewrites;
use std::time::{Duration, Instant};

fn main() {
    let Some(file) = std::env::args().nth(1) else {
        eprintln!("usage: rewrite_scan FILE");
        std::process::exit(2);
    };
    let data = std::fs::read(&file).unwrap_or_else(|e| {
        eprintln!("rewrite_scan: cannot read {file}: {e}");
        std::process::exit(1);
    });
    let mut times: Vec<Duration> = Vec::new();
    for first in ["0", "1", "a", "i", "n", "s", "z"] {
        // A nix-base32 hash (no e, o, u, t) starting with `first`.
        let hash = format!("{first}{}", &"1bcdfghjklmnpqrsvwxyz0123456789a"[..31]);
        let new_hash = "x".repeat(32);
        let pairs = vec![
            (
                format!("/nix/store/{hash}-probe-1.0").into_bytes(),
                format!("/nix/store/{new_hash}-probe-1.0").into_bytes(),
            ),
            (hash.as_bytes().to_vec(), new_hash.as_bytes().to_vec()),
            (
                hash.as_bytes()[..10].to_vec(),
                new_hash.as_bytes()[..10].to_vec(),
            ),
        ];
        let rw = Rewrites::new(&pairs).expect("equal lengths");
        // Best of three streamed passes, in 1 MiB chunks as an import feeds them.
        let best = (0..3)
            .map(|_| {
                let started = Instant::now();
                let mut s = rw.stream();
                for c in data.chunks(1 << 20) {
                    s.feed(c, |_| Ok(())).expect("no sink error");
                }
                s.finish(|_| Ok(())).expect("no sink error");
                started.elapsed()
            })
            .min()
            .expect("three runs");
        println!(
            "hash starting with {first}: {:8.2} ms, {:6.2} GB/s",
            best.as_secs_f64() * 1e3,
            data.len() as f64 / best.as_secs_f64() / 1e9
        );
        times.push(best);
    }
    let (min, max) = (times.iter().min(), times.iter().max());
    if let (Some(min), Some(max)) = (min, max) {
        println!(
            "slowest / fastest: {:.2}",
            max.as_secs_f64() / min.as_secs_f64()
        );
    }
}
