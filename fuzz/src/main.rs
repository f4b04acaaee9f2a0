//! checkpoint-fuzz: a mutation fuzzer for checkpoint-builder's parsers that builds on stable
//! Rust (no sanitizer, no coverage feedback: `cargo fuzz` needs nightly). It owns the
//! mutation loop and crash supervision; the targets are in `targets.rs`.
//!
//! `checkpoint-fuzz run TARGET SECONDS DIR` supervises a worker process (this binary,
//! `worker`) that mutates seeds (bit flips, interesting bytes, inserts, deletes, splices,
//! dictionary tokens, truncation; stacked), writes each input to `DIR/current` before
//! running it, catches panics (a finding, saved to `DIR/findings/`) and keeps inputs the
//! target accepted as new seeds (a cheap stand-in for coverage). The worker runs under
//! `RLIMIT_AS` (1 GiB) and an `alarm` per input (10 s): an abort, a signal or a hang ends
//! it, and the supervisor saves `DIR/current` as a finding and starts a new worker for the
//! time left. At the end one line: target, seconds, executions, findings.
//!
//! `checkpoint-fuzz replay TARGET FILE…` runs inputs once (regression tests use it).

mod targets;

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// xorshift64*: fast, seedable, good enough for mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'%', b'/', b'.', b'\n', b'$', b'{', b'}', b'[', b']',
    b'\'', b'0', b'9',
];
const MAX_INPUT: usize = 1 << 20;

/// One mutation of `data` (another seed `other` for splices, `dict` for tokens).
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dict: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            data.drain(i..i + n);
        }
        4 if len > 0 => {
            // Duplicate a range.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(256));
            let piece = data[i..i + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, piece);
        }
        5 if !other.is_empty() => {
            // Splice: our head, the other's tail.
            let i = rng.below(len + 1);
            let j = rng.below(other.len());
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
        }
        6 | 7 if !dict.is_empty() => {
            let w = &dict[rng.below(dict.len())];
            let i = rng.below(len + 1);
            if rng.below(2) == 0 || len == 0 {
                data.splice(i..i, w.iter().copied());
            } else {
                let n = w.len().min(len - i.min(len));
                data.splice(i..i + n, w.iter().copied());
            }
        }
        8 if len > 0 => data.truncate(rng.below(len)),
        _ if len > 0 => {
            // Replace a run of digits by an interesting number.
            let i = rng.below(len);
            if let Some(start) = (i..len).find(|&k| data[k].is_ascii_digit()) {
                let end = (start..len)
                    .find(|&k| !data[k].is_ascii_digit())
                    .unwrap_or(len);
                let nums: [&[u8]; 6] = [
                    b"0",
                    b"18446744073709551615",
                    b"18446744073709551616",
                    b"4294967296",
                    b"9223372036854775807",
                    b"999999999999999999999999",
                ];
                data.splice(start..end, nums[rng.below(nums.len())].iter().copied());
            }
        }
        _ => data.push(rng.next() as u8),
    }
    data.truncate(MAX_INPUT);
}

/// The function a worker runs per input.
type Runner = Box<dyn FnMut(&[u8])>;

fn runner(target: &str, work: &Path) -> (Runner, Vec<Vec<u8>>) {
    match target {
        "manifest" => {
            let files = targets::seed_checkpoint(work);
            let seeds = files
                .iter()
                .filter(|(n, _)| n.ends_with(".json"))
                .map(|(_, b)| b.clone())
                .collect();
            (Box::new(targets::manifest), seeds)
        }
        "state" => (Box::new(targets::state), targets::seed_states()),
        "ninja" => (Box::new(targets::ninja_target), targets::seed_ninja()),
        "pack" => {
            let files = targets::seed_checkpoint(work);
            let seeds = files
                .iter()
                .map(|(n, b)| {
                    let mut s = format!("{n}\n").into_bytes();
                    s.extend_from_slice(b);
                    s
                })
                .collect();
            let mut t = targets::PackTarget::new(work, files);
            (Box::new(move |d: &[u8]| t.run(d)), seeds)
        }
        // Not a real target: proves that panics and aborts are caught and saved.
        "selftest" => (
            Box::new(|d: &[u8]| {
                if d.windows(2).any(|w| w == b"!!") {
                    panic!("selftest panic");
                }
                if d.windows(2).any(|w| w == b"@@") {
                    std::process::abort();
                }
            }),
            vec![b"!@".to_vec(), b"@!".to_vec()],
        ),
        other => {
            eprintln!(
                "unknown target {other} (targets: {})",
                targets::TARGETS.join(" ")
            );
            std::process::exit(2);
        }
    }
}

/// How many leading bytes of an input the pack target keeps unmutated (its file name).
fn protected_prefix(target: &str, input: &[u8]) -> usize {
    if target == "pack" {
        input.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1)
    } else {
        0
    }
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn worker(target: &str, seconds: f64, seed: u64, dir: &Path) {
    // SAFETY: setrlimit on this process only.
    unsafe {
        let rl = libc::rlimit {
            rlim_cur: 1 << 30,
            rlim_max: 1 << 30,
        };
        libc::setrlimit(libc::RLIMIT_AS, &rl);
    }
    let work = dir.join(format!("work-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("creating the work directory");
    let (mut run, mut corpus) = runner(target, &work);
    // From here a panic is a finding, recorded with its message (not printed).
    std::panic::set_hook(Box::new(|info| {
        LAST_PANIC.with(|p| *p.borrow_mut() = info.to_string());
    }));
    let dict = targets::dictionary(target);
    let mut rng = Rng(seed | 1);
    let findings = dir.join("findings");
    std::fs::create_dir_all(&findings).expect("creating findings/");
    let current = dir.join("current");
    let _ = &current;
    let current_file = std::fs::File::create(&current).expect("creating the current input");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut execs, mut last_report) = (0u64, Instant::now());
    let report = |execs: u64| {
        let _ = std::fs::write(
            dir.join(format!("execs-{}", std::process::id())),
            execs.to_string(),
        );
    };
    let seeds = corpus.len();
    while Instant::now() < deadline {
        let base = &corpus[rng.below(corpus.len())];
        let other = corpus[rng.below(corpus.len())].clone();
        let mut input = base.clone();
        let keep = protected_prefix(target, &input);
        let mut tail = input.split_off(keep);
        for _ in 0..1 + rng.below(6) {
            mutate_once(
                &mut rng,
                &mut tail,
                &other[protected_prefix(target, &other)..],
                &dict,
            );
        }
        input.extend_from_slice(&tail);
        {
            use std::os::unix::fs::FileExt;
            current_file
                .set_len(0)
                .expect("truncating the current input");
            current_file
                .write_all_at(&input, 0)
                .expect("writing the current input");
        }
        // SAFETY: alarm only arms a timer; SIGALRM's default action ends a hung worker.
        unsafe { libc::alarm(10) };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run(&input)));
        execs += 1;
        match outcome {
            Ok(()) => {
                // Accepted-looking inputs (not too many) become seeds.
                if corpus.len() < 2000 && rng.below(64) == 0 {
                    corpus.push(input);
                }
            }
            Err(_) => {
                let message = LAST_PANIC.with(|p| p.borrow().clone());
                let name = format!("panic-{}-{execs}", std::process::id());
                let _ = std::fs::write(findings.join(&name), &input);
                let _ = std::fs::write(findings.join(format!("{name}.txt")), &message);
            }
        }
        if last_report.elapsed() > Duration::from_millis(500) {
            report(execs);
            last_report = Instant::now();
        }
    }
    // SAFETY: disarms the timer.
    unsafe { libc::alarm(0) };
    report(execs);
    let _ = std::fs::remove_dir_all(&work);
    let _ = seeds;
}

fn supervise(target: &str, seconds: f64, dir: &Path) -> i32 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("findings")).expect("creating the output directory");
    let exe = std::env::current_exe().expect("our own path");
    let start = Instant::now();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ std::process::id() as u64;
    let mut crashes = 0;
    loop {
        let left = seconds - start.elapsed().as_secs_f64();
        if left < 0.5 {
            break;
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let status = std::process::Command::new(&exe)
            .args(["worker", target, &format!("{left:.3}"), &seed.to_string()])
            .arg(dir)
            .status()
            .expect("starting a worker");
        if !status.success() {
            if !dir.join("current").exists() {
                eprintln!("the {target} worker failed before running any input: {status}");
                return 1;
            }
            crashes += 1;
            let name = format!("crash-{crashes}");
            let _ = std::fs::copy(dir.join("current"), dir.join("findings").join(&name));
            let _ = std::fs::write(
                dir.join("findings").join(format!("{name}.txt")),
                format!("worker ended: {status}\n"),
            );
            // Its scratch directory is left behind by a crash.
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with("work-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let execs: u64 = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("execs-"))
        .filter_map(|e| {
            std::fs::read_to_string(e.path())
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum();
    let findings: Vec<String> = std::fs::read_dir(dir.join("findings"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".txt"))
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "target={target} seconds={elapsed:.1} executions={execs} execs_per_s={:.0} findings={} (crashes/hangs {crashes}, panics {})",
        execs as f64 / elapsed,
        findings.len(),
        findings.len() - crashes
    );
    let _ = std::io::stdout().flush();
    0
}

fn replay(target: &str, files: &[PathBuf]) -> i32 {
    let work = std::env::temp_dir().join(format!("checkpoint-fuzz-replay-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("creating a work directory");
    let (mut run, _) = runner(target, &work);
    for f in files {
        let input = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        run(&input);
        println!("{}: ok", f.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("run") if args.len() == 5 => supervise(
            &args[2],
            args[3].parse().expect("SECONDS"),
            Path::new(&args[4]),
        ),
        Some("worker") if args.len() == 6 => {
            worker(
                &args[2],
                args[3].parse().expect("SECONDS"),
                args[4].parse().expect("SEED"),
                Path::new(&args[5]),
            );
            0
        }
        Some("replay") if args.len() >= 4 => {
            let files: Vec<PathBuf> = args[3..].iter().map(PathBuf::from).collect();
            replay(&args[2], &files)
        }
        _ => {
            eprintln!(
                "usage: checkpoint-fuzz run TARGET SECONDS DIR | replay TARGET FILE...\ntargets: {}",
                targets::TARGETS.join(" ")
            );
            2
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pack target's seed holds a patched blob, so mutations reach the patch reader.
    #[test]
    fn the_pack_seed_holds_a_patched_blob() {
        let work =
            std::env::temp_dir().join(format!("checkpoint-fuzz-seed-{}", std::process::id()));
        std::fs::create_dir_all(&work).expect("a work directory");
        let files = targets::seed_checkpoint(&work);
        let patched = files
            .iter()
            .filter(|(n, _)| n.starts_with("layers/"))
            .any(|(_, b)| b.windows(18).any(|w| w == b"\"encoding\":\"patch\""));
        let _ = std::fs::remove_dir_all(&work);
        assert!(patched, "no layer of the seed stores a patched blob");
    }

    /// Every input kept under `fuzz/regressions/<target>/` (findings of earlier runs) runs
    /// through its target without a panic.
    #[test]
    fn regressions_replay_cleanly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        let work =
            std::env::temp_dir().join(format!("checkpoint-fuzz-test-{}", std::process::id()));
        std::fs::create_dir_all(&work).expect("a work directory");
        for target in targets::TARGETS {
            let dir = root.join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let (mut run, _) = runner(target, &work);
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "txt" || x == "md") {
                    continue;
                }
                let input = std::fs::read(&path).expect("reading a regression input");
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run(&input)));
                assert!(
                    outcome.is_ok(),
                    "{} panics in target {target}",
                    path.display()
                );
            }
        }
        let _ = std::fs::remove_dir_all(&work);
    }

    #[test]
    fn mutations_change_inputs_and_stay_bounded() {
        let mut rng = Rng(42);
        let dict = targets::dictionary("manifest");
        let mut changed = 0;
        for _ in 0..1000 {
            let mut d = b"{\"format_version\":2}\n".to_vec();
            mutate_once(&mut rng, &mut d, b"other", &dict);
            changed += usize::from(d != b"{\"format_version\":2}\n");
            assert!(d.len() <= MAX_INPUT);
        }
        assert!(changed > 900, "{changed}");
    }

    #[test]
    fn seeds_are_accepted_by_their_targets() {
        let work =
            std::env::temp_dir().join(format!("checkpoint-fuzz-seeds-{}", std::process::id()));
        std::fs::create_dir_all(&work).expect("a work directory");
        for target in targets::TARGETS {
            let (mut run, seeds) = runner(target, &work);
            assert!(!seeds.is_empty(), "{target} has no seeds");
            for s in &seeds {
                run(s);
            }
        }
        let _ = std::fs::remove_dir_all(&work);
    }
}
