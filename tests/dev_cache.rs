//! The development cache (issue 6), with real Nix and the cache bound into the sandbox:
//! resume after a failed installPhase, the failed state kept and enterable, concurrent builds
//! sharing one cache, a build killed with SIGKILL, and corrupt entries.

use integration_tests::nix::{instantiate, nix_build_with_paths, repo_root};
use integration_tests::outputs::{normalised_out, run_salt};
use integration_tests::{builder_binary, BuildResult};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Killing a nix-build may end builds running beside it in this single-user store, so the
/// tests of this file run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh cache directory the sandbox's build user can write.
fn cache_dir(test: &str) -> PathBuf {
    let dir = repo_root().join("target/dev-cache").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Command::new("chmod")
        .arg("1777")
        .arg(&dir)
        .status()
        .unwrap();
    dir
}

fn case(label: &str, variant: &str, name: &str, cache: Option<&Path>) -> PathBuf {
    let dir = repo_root().join("target/dev-cache-cases");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{label}.nix"));
    let cache = cache
        .map(|c| format!("\"{}\"", c.display()))
        .unwrap_or("null".into());
    std::fs::write(
        &file,
        format!(
            "{{ mkDrv }}:\nimport {} {{ inherit mkDrv; variant = \"{variant}\"; name = \"{name}\"; salt = \"{}\"; cache = {cache}; }}\n",
            repo_root().join("tests/reuse-cases/cproject.nix").display(),
            run_salt()
        ),
    )
    .unwrap();
    file
}

fn build(label: &str, variant: &str, name: &str, cache: Option<&Path>) -> BuildResult {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<&Path> = cache.into_iter().collect();
    nix_build_with_paths(&case(label, variant, name, cache), Some(builder), &paths)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(builder_binary().unwrap())
        .args(args)
        .output()
        .unwrap()
}

fn entries(cache: &Path) -> Vec<serde_json::Value> {
    let out = cli(&["cache", "ls", &cache.to_string_lossy(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn failed_install_is_kept_enterable_and_resumed_after_the_fix() {
    let _serial = serial();
    let cache = cache_dir("resume");
    let name = "cache-cproject-1";
    let broken = build("broken", "broken-install", name, Some(&cache));
    assert!(
        !broken.success && broken.exit_code == Some(1),
        "{}",
        broken.log_tail(30)
    );
    assert!(
        broken.log_lines.iter().any(|l| l.contains("are kept in")),
        "{}",
        broken.log_tail(20)
    );
    let listed = entries(&cache);
    assert_eq!(listed.len(), 1);
    let layers: Vec<&str> = listed[0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(layers.last(), Some(&"failed:installPhase"), "{layers:?}");

    // Enter the failed state: the cwd and the build products of that moment. The shell's
    // tree goes under TMPDIR and stays (documented), so TMPDIR is the test's own.
    let shell_tmp = cache_dir("resume-shell-tmp");
    let mut shell = Command::new(builder_binary().unwrap())
        .env("TMPDIR", &shell_tmp)
        .args([
            "shell",
            "--cache",
            &cache.to_string_lossy(),
            name,
            "--at",
            "installPhase",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    shell
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"echo \"STATE|$curPhase|${PWD##*/}|$(ls greet main.o 2>&1 | tr '\\n' ' ')\"; exit\n",
        )
        .unwrap();
    let out = shell.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("STATE|checkPhase|cproject-src|greet main.o"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let fixed = build("fixed", "install", name, Some(&cache));
    let clean = build("fixed-clean", "install", name, None);
    assert!(fixed.success, "{}", fixed.log_tail(30));
    for phase in ["unpackPhase", "configurePhase", "buildPhase"] {
        assert!(
            !fixed.ran_phase(phase),
            "{phase} ran again\n{}",
            fixed.log_tail(30)
        );
    }
    assert!(fixed.ran_phase("installPhase"));
    assert!(normalised_out(&fixed) == normalised_out(&clean));
}

#[test]
fn concurrent_builds_share_one_cache() {
    let _serial = serial();
    let cache = cache_dir("concurrent");
    let c1 = cache.clone();
    let c2 = cache.clone();
    let t1 = std::thread::spawn(move || build("conc-a", "a", "cache-cproject-2", Some(&c1)));
    let t2 = std::thread::spawn(move || build("conc-b", "flags", "cache-otherpkg-2", Some(&c2)));
    let (a, b) = (t1.join().unwrap(), t2.join().unwrap());
    assert!(
        a.success && b.success,
        "{}\n{}\n{}\n{}",
        a.errors.join("\n"),
        b.errors.join("\n"),
        a.log_tail(20),
        b.log_tail(20)
    );
    let listed = entries(&cache);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for e in &listed {
        assert_eq!(e["complete"], true, "{e}");
        let v = cli(&["verify", e["path"].as_str().unwrap()]);
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    }
    // gc keeps the cache under the limit.
    assert!(
        cli(&["cache", "gc", &cache.to_string_lossy(), "--max-size", "1"])
            .status
            .success()
    );
    assert_eq!(entries(&cache).len(), 0);
}

#[test]
fn a_killed_build_leaves_a_usable_cache_and_corrupt_entries_are_dropped() {
    let _serial = serial();
    let cache = cache_dir("killed");
    let name = "cache-cproject-3";
    let builder = builder_binary().unwrap().to_path_buf();
    let file = case("slow", "slow", name, Some(&cache));
    // Through the harness, on the stdenv the suite runs on (`CHECKPOINT_TEST_STDENV`), like
    // every other build of this file.
    let drv = instantiate(&file, Some(&builder)).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new("nix-build")
        .args([
            "--option",
            "build-users-group",
            "",
            "--option",
            "sandbox",
            "true",
            "--option",
            "substituters",
            "",
        ])
        .arg("--option")
        .arg("extra-sandbox-paths")
        .arg(format!(
            "/bin /usr /lib /lib64 /etc/alternatives {}",
            cache.display()
        ))
        .arg("--no-out-link")
        .arg(drv.trim())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // buildPhase sleeps 8 s: kill everything in the middle of it.
    let mut waited = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        waited += 250;
        let listed = entries(&cache);
        let in_build = listed.first().is_some_and(|e| {
            e["layers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == "configurePhase")
        });
        if in_build || waited > 20_000 {
            break;
        }
    }
    // SIGKILL the nix-build process: the sandboxed builder dies with it (Nix gives it a
    // parent-death signal), in the middle of a phase, without any cleanup.
    child.kill().ok();
    child.wait().unwrap();
    let listed = entries(&cache);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["complete"], false);

    // A corrupt copy of that entry, newer than it: dropped with a message, never used.
    let entry = PathBuf::from(listed[0]["path"].as_str().unwrap());
    let corrupt = entry.with_file_name(format!("{name}-9999999999999999999-1"));
    Command::new("cp")
        .arg("-a")
        .arg(&entry)
        .arg(&corrupt)
        .status()
        .unwrap();
    let blob = walk(&corrupt.join("packs"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let next = build("after-kill", "a", name, Some(&cache));
    let clean = build("after-kill-clean", "a", name, None);
    assert!(next.success, "{}", next.log_tail(30));
    assert!(
        next.log_lines
            .iter()
            .any(|l| l.contains("dropping cache entry")),
        "{}",
        next.log_tail(30)
    );
    assert!(!corrupt.exists());
    assert!(!next.ran_phase("configurePhase"), "{}", next.log_tail(30));
    assert!(next.ran_phase("buildPhase"));
    assert!(normalised_out(&next) == normalised_out(&clean));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
