//! A real multi-user Nix daemon on this machine (Debian 12, `nix-bin`), end to end:
//!
//! 1. the test starts its own `nix-daemon` (sandbox on, builds as the `nixbld*` users) on a
//!    private socket (`NIX_DAEMON_SOCKET_PATH`), configured through `NIX_CONFIG` only: no
//!    system file is edited and no other daemon is touched;
//! 2. a non-root user (`cpbtest`) builds `tests/reuse-cases/cproject.nix` through it
//!    (`NIX_REMOTE=daemon`): variant "a", then variant "source" with the first build's
//!    checkpoint as `checkpointBase` (incremental: configure restored, one file recompiled),
//!    then a clean "source" build, whose `out` must equal the incremental one;
//! 3. the same user `nix copy`s the first build's `out` and `checkpoint`, signed, to a
//!    `file://` binary cache;
//! 4. a second, separate store (a chroot store, `--store DIR`, no daemon, sandbox and build
//!    users on) substitutes the checkpoint from that cache while evaluating the "source"
//!    variant and builds it there incrementally too.
//!
//! The daemon is a child of the test and is stopped (that PID only) when the test ends, also
//! when it fails; the temporary directory (sockets, cache, second store) is removed, and the
//! store paths this run made in the main store are deleted.
//!
//! Needs root (to start the daemon, create users, build in a chroot store) and Nix 2.8's
//! `nix-daemon`, `nix-build` and `nix` on PATH. See docs/daemon.md.

use integration_tests::builder_binary;
use integration_tests::log::{parse, BuildLog};
use integration_tests::nix::{dump, render, repo_root, stdenv_nix};
use integration_tests::outputs::normalised_nar;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const SANDBOX_PATHS: &str = "/bin /usr /lib /lib64 /etc/alternatives";
const BUILD_GROUP: &str = "nixbld";
const TEST_USER: &str = "cpbtest";
const KEY_NAME: &str = "cpbtest-daemon-test-1";

// ---------------------------------------------------------------------------------------
// Processes

fn output_of(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", render(cmd)))
}

/// Runs `cmd`, requires success, returns its stdout.
fn ok(cmd: &mut Command) -> String {
    let out = output_of(cmd);
    assert!(
        out.status.success(),
        "`{}` failed ({}):\n{}",
        render(cmd),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A root command on the main store (never through a daemon the environment may name).
fn root(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("NIX_REMOTE")
        .env_remove("NIX_DAEMON_SOCKET_PATH");
    cmd
}

// ---------------------------------------------------------------------------------------
// Users

fn id_of(user: &str, flag: &str) -> Option<u32> {
    let out = output_of(Command::new("id").arg(flag).arg(user));
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The `nixbld` group's members' uids, creating the group and four build users when they
/// are missing (nix-bin creates them; a bare machine may not have them).
fn build_user_uids() -> Vec<u32> {
    let group = output_of(Command::new("getent").args(["group", BUILD_GROUP]));
    if !group.status.success() {
        eprintln!("daemon test: no `{BUILD_GROUP}` group, creating it and 4 build users");
        // Exit code 9: created meanwhile by another process; fine.
        let _ = output_of(Command::new("groupadd").args(["--system", BUILD_GROUP]));
        for i in 1..=4 {
            let name = format!("{BUILD_GROUP}{i}");
            if id_of(&name, "-u").is_none() {
                let _ = output_of(Command::new("useradd").args([
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/var/empty",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--gid",
                    BUILD_GROUP,
                    "--groups",
                    BUILD_GROUP,
                    "--comment",
                    &format!("Nix build user {i}"),
                    &name,
                ]));
            }
        }
    }
    let entry = ok(Command::new("getent").args(["group", BUILD_GROUP]));
    let members = entry.trim().rsplit(':').next().unwrap_or("").to_owned();
    let uids: Vec<u32> = members
        .split(',')
        .filter(|m| !m.is_empty())
        .filter_map(|m| id_of(m, "-u"))
        .collect();
    assert!(
        !uids.is_empty(),
        "group `{BUILD_GROUP}` has no members ({entry:?}): the daemon has no build users"
    );
    uids
}

/// The unprivileged user that talks to the daemon: (uid, gid), created when missing.
fn test_user() -> (u32, u32) {
    if id_of(TEST_USER, "-u").is_none() {
        let _ = output_of(Command::new("useradd").args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "checkpoint-builder daemon test",
            TEST_USER,
        ]));
    }
    match (id_of(TEST_USER, "-u"), id_of(TEST_USER, "-g")) {
        (Some(uid), Some(gid)) => {
            assert_ne!(uid, 0, "{TEST_USER} must not be root");
            (uid, gid)
        }
        _ => panic!("could not create the user {TEST_USER} with useradd"),
    }
}

// ---------------------------------------------------------------------------------------
// The daemon, and the run's scratch space

/// A `nix-daemon` this test started; dropping it stops that process (and only it).
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let socket = dir.join("daemon/socket");
        let log = dir.join("daemon.log");
        let config = [
            format!("build-users-group = {BUILD_GROUP}"),
            "sandbox = true".into(),
            format!("extra-sandbox-paths = {SANDBOX_PATHS}"),
            "substituters =".into(),
            "trusted-users = root".into(),
            "allowed-users = *".into(),
            "cores = 2".into(),
            "max-jobs = 1".into(),
        ]
        .join("\n");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("nix-daemon");
        cmd.env_remove("NIX_REMOTE")
            .env("NIX_CONFIG", &config)
            .env("NIX_DAEMON_SOCKET_PATH", &socket)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `nix-daemon` (is nix-bin installed?): {e}"));
        let mut daemon = Daemon { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !daemon.socket.exists() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "nix-daemon exited ({status}) before listening on {}:\n{}",
                    daemon.socket.display(),
                    daemon.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nix-daemon did not create {} in 15 s:\n{}",
                daemon.socket.display(),
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "daemon test: nix-daemon pid {} on {}",
            daemon.child.id(),
            daemon.socket.display()
        );
        daemon
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM to this PID, then SIGKILL to it if it has not exited after 10 s.
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-s", "TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything this run made: its daemon, its directory, its paths in the main store.
/// Dropped in that order, on success and on failure alike.
struct Run {
    daemon: Option<Daemon>,
    dir: PathBuf,
    /// Paths of the main store that only this run uses (its derivations and their outputs).
    made: Vec<String>,
    user: (u32, u32),
    builder: PathBuf,
    name: String,
    /// The run's world-readable copy of the stdenv the suite runs on
    /// (`CHECKPOINT_TEST_STDENV`, else tests/stdenv), and of `NIXPKGS_STDENV_FILES` when set
    /// (the real nixpkgs stdenv reads its shell files from there).
    stdenv: PathBuf,
    nixpkgs_files: Option<PathBuf>,
}

impl Drop for Run {
    fn drop(&mut self) {
        drop(self.daemon.take());
        if !self.made.is_empty() {
            let present: Vec<&String> =
                self.made.iter().filter(|p| Path::new(p).exists()).collect();
            if !present.is_empty() {
                let out = root("nix-store").arg("--delete").args(&present).output();
                if !matches!(&out, Ok(o) if o.status.success()) {
                    eprintln!("daemon test: could not delete this run's store paths: {out:?}");
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("daemon test: could not remove {}: {e}", self.dir.display());
        }
    }
}

impl Run {
    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("the daemon is running")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// A command run as the test user, talking to this run's daemon only.
    fn as_user(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("home/.cache"))
            .env("NIX_REMOTE", "daemon")
            .env("NIX_DAEMON_SOCKET_PATH", &self.daemon().socket)
            .current_dir(&self.dir)
            .uid(self.user.0)
            .gid(self.user.1);
        cmd
    }

    /// A case file like tests/reuse.rs writes, importing the run's world-readable copy.
    fn case(&self, label: &str, variant: &str, base: Option<&str>) -> PathBuf {
        let file = self.path(&format!("src/{label}.nix"));
        let base = base.map_or("null".into(), |p| format!("\"{p}\""));
        let text = format!(
            "{{ mkDrv }}:\nimport {} {{ inherit mkDrv; variant = \"{variant}\"; name = \"{}\"; base = {base}; }}\n",
            self.path("src/tests/reuse-cases/cproject.nix").display(),
            self.name
        );
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        file
    }

    fn harness_args(&self, cmd: &mut Command, case: &Path) {
        if let Some(files) = &self.nixpkgs_files {
            cmd.env("NIXPKGS_STDENV_FILES", files);
        }
        cmd.arg(self.path("src/tests/nix/harness.nix"))
            .arg("--arg")
            .arg("stdenvNix")
            .arg(&self.stdenv)
            .arg("--arg")
            .arg("case")
            .arg(case)
            .arg("--arg")
            .arg("builder")
            .arg(&self.builder);
    }

    /// Instantiates and builds `case` as the test user through the daemon.
    fn user_build(&mut self, label: &str, case: &Path) -> Built {
        let started = Instant::now();
        let mut inst = self.as_user("nix-instantiate");
        self.harness_args(&mut inst, case);
        let drv = single(lines(&ok(&mut inst)), label);
        let outs = lines(&ok(self
            .as_user("nix-store")
            .args(["-q", "--outputs"])
            .arg(&drv)));
        self.made.push(drv.clone());
        self.made.extend(outs.iter().cloned());
        for o in &outs {
            assert!(
                !Path::new(o).exists(),
                "{label}: {o} is already valid, the build would not run"
            );
        }
        let out = output_of(
            self.as_user("nix-build")
                .args(["--no-out-link", "--log-format", "internal-json", "-v"])
                .arg(&drv),
        );
        let built = Built::new(label, drv, outs, &out);
        eprintln!(
            "daemon test: {label} built through the daemon in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        built
    }

    /// Options of every command on the second store.
    fn store2_args(&self, cmd: &mut Command) {
        let public = std::fs::read_to_string(self.path("key.pub")).unwrap();
        cmd.arg("--store")
            .arg(self.path("store2"))
            .args(["--option", "build-users-group", BUILD_GROUP])
            .args(["--option", "sandbox", "true"])
            .args(["--option", "extra-sandbox-paths", SANDBOX_PATHS])
            .args(["--option", "substituters"])
            .arg(format!("file://{}", self.path("cache").display()))
            .args(["--option", "trusted-public-keys", public.trim()])
            .args(["--option", "require-sigs", "true"])
            .args(["--cores", "2", "--max-jobs", "1"]);
    }
}

fn single(items: Vec<String>, label: &str) -> String {
    match items.as_slice() {
        [one] => one.clone(),
        _ => panic!("{label}: expected exactly one derivation, got {items:?}"),
    }
}

/// One build: its derivation, outputs and log.
struct Built {
    label: String,
    drv: String,
    outs: Vec<String>,
    log: BuildLog,
}

impl Built {
    fn new(label: &str, drv: String, outs: Vec<String>, out: &Output) -> Built {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let log = parse(&stderr, &drv);
        let built = Built {
            label: label.into(),
            drv,
            outs,
            log,
        };
        assert!(
            out.status.success(),
            "{label}: build failed ({})\n{}\n{}\n{}",
            out.status,
            built.tail(60),
            built.log.errors.join("\n"),
            stderr
                .lines()
                .filter(|l| !l.starts_with("@nix"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            built.log.built,
            "{label}: nix-build did not build {}",
            built.drv
        );
        built
    }

    fn tail(&self, n: usize) -> String {
        let start = self.log.lines.len().saturating_sub(n);
        self.log.lines[start..].join("\n")
    }

    fn output(&self, checkpoint: bool) -> String {
        self.outs
            .iter()
            .find(|p| p.ends_with("-checkpoint") == checkpoint)
            .cloned()
            .unwrap_or_else(|| panic!("{}: no such output in {:?}", self.label, self.outs))
    }

    fn ran(&self, phase: &str) -> bool {
        let wanted = format!("Running phase: {phase}");
        self.log.lines.iter().any(|l| l.trim() == wanted)
    }

    fn decision(&self, phase: &str) -> String {
        let prefix = format!("checkpoint-builder: {phase} ");
        self.log
            .lines
            .iter()
            .rev()
            .find(|l| l.starts_with(&prefix) && (l.contains("restored") || l.contains("ran")))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "{}: no decision line for {phase}\n{}",
                    self.label,
                    self.tail(40)
                )
            })
    }

    fn compiles(&self) -> Vec<&String> {
        self.log
            .lines
            .iter()
            .filter(|l| l.contains(" -c -o "))
            .collect()
    }

    /// The one-line source change was built incrementally over the base checkpoint.
    fn assert_incremental(&self) {
        let label = &self.label;
        assert!(
            self.ran("unpackPhase"),
            "{label}: unpackPhase did not run\n{}",
            self.tail(40)
        );
        assert!(
            !self.ran("configurePhase"),
            "{label}: configurePhase ran\n{}",
            self.tail(40)
        );
        let configure = self.decision("configurePhase");
        assert!(
            configure.contains("restored (incremental)"),
            "{label}: {configure}"
        );
        let build = self.decision("buildPhase");
        assert!(build.contains("text.c"), "{label}: {build}");
        let compiled = self.compiles();
        assert_eq!(compiled.len(), 1, "{label}: {compiled:?}");
        assert!(
            compiled[0].contains("-c -o text.o text.c"),
            "{label}: {compiled:?}"
        );
    }
}

/// Every file under `dir` owned by root, and none writable by group or others.
fn assert_root_owned_read_only(path: &Path) {
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(meta.uid(), 0, "{} is not owned by root", p.display());
        if !meta.file_type().is_symlink() {
            assert_eq!(meta.mode() & 0o222, 0, "{} is writable", p.display());
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
}

fn copy_world_readable(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    ok(Command::new("cp").arg("-rL").arg(from).arg(to));
    ok(Command::new("chmod").arg("-R").arg("a+rX").arg(to));
}

const PROBE: &str = r#"{ nonce, hostDir }:
derivation {
  name = "daemon-probe";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  inherit nonce hostDir;
  args = [ "-c" ''
    echo "probe uid_map: $(/bin/cat /proc/self/uid_map)"
    echo "probe uid: $(/usr/bin/id -u)"
    if [ -e "$hostDir" ]; then echo "probe host dir: visible"; else echo "probe host dir: hidden"; fi
    echo ok > $out
  '' ];
}
"#;

#[test]
fn daemon_builds_incrementally_and_a_second_store_reuses_the_checkpoint_from_a_cache() {
    let started = Instant::now();
    let euid = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(
        euid, 0,
        "this test starts a nix-daemon, creates users and builds in a chroot store: run it as root"
    );
    let builder = builder_binary()
        .unwrap_or_else(|e| panic!("{e}"))
        .to_path_buf();
    let nixbld_uids = build_user_uids();
    let user = test_user();

    // The run's directory, world-traversable so the test user reaches the nix files.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!(
        "{:06x}",
        ((nanos as u64) ^ (u64::from(std::process::id()) << 20)) & 0xff_ffff
    );
    let dir = std::env::temp_dir().join(format!("cpb-daemon-{id}"));
    std::fs::create_dir(&dir).unwrap();
    let mut run = Run {
        daemon: None,
        dir: dir.clone(),
        made: Vec::new(),
        user,
        builder: PathBuf::new(),
        name: format!("daemon-cproject-{id}"),
        stdenv: PathBuf::new(),
        nixpkgs_files: None,
    };
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = repo_root();
    for rel in ["tests/nix", "tests/reuse-cases/cproject.nix"] {
        copy_world_readable(&repo.join(rel), &run.path(&format!("src/{rel}")));
    }
    // The stdenv under test, with the directory it imports files from.
    let stdenv = stdenv_nix();
    copy_world_readable(stdenv.parent().unwrap(), &run.path("src/stdenv"));
    run.stdenv = run.path("src/stdenv").join(stdenv.file_name().unwrap());
    // The real nixpkgs stdenv (shared/realstdenv) reads its shell files from
    // `NIXPKGS_STDENV_FILES`, else from `../nixpkgs-stdenv` beside its own directory; the
    // copy must have them too, under either rule.
    let default_files = stdenv
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("nixpkgs-stdenv"));
    let files = std::env::var_os("NIXPKGS_STDENV_FILES")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or(default_files.filter(|d| d.is_dir()));
    if let Some(files) = files {
        copy_world_readable(&files, &run.path("src/nixpkgs-files"));
        run.nixpkgs_files = Some(run.path("src/nixpkgs-files"));
    }
    run.builder = run.path("src/checkpoint-builder");
    copy_world_readable(&builder, &run.builder);
    ok(Command::new("chmod")
        .arg("-R")
        .arg("a+rX")
        .arg(run.path("src")));
    for owned in ["home", "cache"] {
        std::fs::create_dir(run.path(owned)).unwrap();
        std::os::unix::fs::chown(run.path(owned), Some(user.0), Some(user.1)).unwrap();
    }
    ok(root("nix-store")
        .args(["--generate-binary-cache-key", KEY_NAME])
        .arg(run.path("key.sec"))
        .arg(run.path("key.pub")));
    std::os::unix::fs::chown(run.path("key.sec"), Some(user.0), Some(user.1)).unwrap();
    std::fs::create_dir(run.path("store2")).unwrap();

    run.daemon = Some(Daemon::start(&dir));

    // 0. The daemon builds in the sandbox as a nixbld user, for a user that is not root.
    let probe = run.path("src/probe.nix");
    std::fs::write(&probe, PROBE).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o644)).unwrap();
    let probe_drv = single(
        lines(&ok(run
            .as_user("nix-instantiate")
            .arg(&probe)
            .args(["--argstr", "nonce", &format!("{id}-{nanos}")])
            .args(["--argstr", "hostDir"])
            .arg(&dir))),
        "probe",
    );
    let probe_outs = lines(&ok(run
        .as_user("nix-store")
        .args(["-q", "--outputs"])
        .arg(&probe_drv)));
    run.made.push(probe_drv.clone());
    run.made.extend(probe_outs.iter().cloned());
    let probe_result = output_of(
        run.as_user("nix-build")
            .args(["--no-out-link", "--log-format", "internal-json", "-v"])
            .arg(&probe_drv),
    );
    let probe_build = Built::new("probe", probe_drv, probe_outs, &probe_result);
    let probe_line = |key: &str| {
        probe_build
            .log
            .lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("probe {key}: ")).map(str::to_owned))
            .unwrap_or_else(|| panic!("no `probe {key}` line: {:?}", probe_build.log.lines))
    };
    let uid_map: Vec<u32> = probe_line("uid_map")
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    assert!(
        uid_map.len() == 3 && nixbld_uids.contains(&uid_map[1]),
        "the build's uid maps to {uid_map:?}, not to one of the {BUILD_GROUP} users {nixbld_uids:?}"
    );
    assert_eq!(
        probe_line("host dir"),
        "hidden",
        "the sandbox shows the host's {}",
        dir.display()
    );
    eprintln!(
        "daemon test: builds run sandboxed as uid {} ({BUILD_GROUP}), mapped to {} inside",
        uid_map[1], uid_map[0]
    );

    // 1. First build, then the one-line source change over its checkpoint, then a clean one.
    let a_case = run.case("a", "a", None);
    let a = run.user_build("a", &a_case);
    assert!(a.ran("buildPhase"), "{}", a.tail(40));
    assert_eq!(a.compiles().len(), 3, "{:?}", a.compiles());
    let a_out = a.output(false);
    let a_ck = a.output(true);
    for p in [&a_out, &a_ck] {
        assert_root_owned_read_only(Path::new(p));
    }

    let s_case = run.case("source-from-a", "source", Some(&a_ck));
    let s = run.user_build("source-from-a", &s_case);
    s.assert_incremental();
    let s_out = s.output(false);
    assert_root_owned_read_only(Path::new(&s_out));

    let clean_case = run.case("source-clean", "source", None);
    let clean = run.user_build("source-clean", &clean_case);
    assert_eq!(clean.compiles().len(), 3, "{:?}", clean.compiles());
    let clean_out = clean.output(false);
    let clean_nar = normalised_nar(Path::new(&clean_out), Path::new(&clean_out));
    assert!(
        normalised_nar(Path::new(&s_out), Path::new(&s_out)) == clean_nar,
        "the incremental out differs from a clean build: {s_out} vs {clean_out}"
    );
    let greet = ok(&mut Command::new(format!("{s_out}/bin/greet")));
    assert!(greet.starts_with("Hello, changed world"), "{greet}");

    // 2. The user publishes out and checkpoint to a signed file:// binary cache.
    let cache_url = format!(
        "file://{}?secret-key={}",
        run.path("cache").display(),
        run.path("key.sec").display()
    );
    ok(run
        .as_user("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "copy",
            "--to",
        ])
        .arg(&cache_url)
        .arg(&a_out)
        .arg(&a_ck));
    for p in [&a_out, &a_ck] {
        let hash = &Path::new(p).file_name().unwrap().to_string_lossy()[..32];
        let narinfo = std::fs::read_to_string(run.path(&format!("cache/{hash}.narinfo")))
            .unwrap_or_else(|e| panic!("{p} is not in the cache: {e}"));
        assert!(
            narinfo.contains(&format!("StorePath: {p}"))
                && narinfo.contains(&format!("Sig: {KEY_NAME}:")),
            "{narinfo}"
        );
    }

    // 3. A second store: evaluating the "source" variant substitutes the checkpoint from
    //    the cache (signature checked), then the build there is incremental as well.
    let store2_real = |p: &str| run.path(&format!("store2{p}"));
    assert!(!store2_real(&a_ck).exists());
    let mut inst = root("nix-instantiate");
    run.store2_args(&mut inst);
    run.harness_args(&mut inst, &s_case);
    let inst_out = output_of(&mut inst);
    let inst_err = String::from_utf8_lossy(&inst_out.stderr);
    assert!(
        inst_out.status.success(),
        "instantiating in the second store failed:\n{inst_err}"
    );
    let drv2 = single(lines(&String::from_utf8_lossy(&inst_out.stdout)), "store2");
    assert_eq!(drv2, s.drv, "the second store evaluates another derivation");
    assert!(
        inst_err.contains(&format!("copying path '{a_ck}' from 'file://")),
        "the checkpoint was not substituted from the cache:\n{inst_err}"
    );
    ok(root("nix-store")
        .arg("--store")
        .arg(run.path("store2"))
        .args(["--verify-path", &a_ck]));
    let verify = output_of(Command::new(&builder).arg("verify").arg(store2_real(&a_ck)));
    assert!(
        verify.status.success(),
        "checkpoint-builder verify failed in the second store:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    let store2_started = Instant::now();
    let mut build2 = root("nix-build");
    run.store2_args(&mut build2);
    build2
        .args(["--no-out-link", "--log-format", "internal-json", "-v"])
        .arg(&drv2);
    let s2 = Built::new(
        "store2-source-from-a",
        drv2,
        s.outs.clone(),
        &output_of(&mut build2),
    );
    eprintln!(
        "daemon test: second store built in {:.1}s",
        store2_started.elapsed().as_secs_f64()
    );
    s2.assert_incremental();
    let s2_real = store2_real(&s_out);
    assert!(s2_real.exists(), "{} is missing", s2_real.display());
    assert!(
        dump(&s2_real).unwrap() == dump(Path::new(&s_out)).unwrap(),
        "the second store's out differs from the daemon's incremental build of the same derivation"
    );
    assert!(normalised_nar(Path::new(&s_out), &s2_real) == clean_nar);

    // 4. Stop the daemon (that PID only) and check it served our user and is gone.
    let log = run.daemon().log_text();
    assert!(
        log.contains("accepted connection from pid") && log.contains(TEST_USER),
        "the daemon's log shows no connection from {TEST_USER}:\n{log}"
    );
    let mut daemon = run.daemon.take().unwrap();
    let pid = daemon.child.id();
    let status = daemon.stop();
    assert!(status.is_some(), "nix-daemon {pid} did not stop");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| !c.contains("nix-daemon"))
                .unwrap_or(true),
        "nix-daemon {pid} is still running"
    );
    drop(daemon);
    drop(run);
    assert!(!dir.exists(), "{} was not removed", dir.display());
    eprintln!(
        "daemon test: done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
