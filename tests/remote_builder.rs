//! Checkpointed builds on a real remote builder (issue 16): Debian's sshd started by the test
//! on a free loopback port (own config, host key and client key), a second Nix store in its
//! own root on the "remote" side, reached as `ssh://…?remote-program=WRAPPER` (the wrapper
//! runs `nix-store --serve --write --store <tmp>/store`) or `ssh-ng://…` (the wrapper runs
//! `nix-daemon --stdio --store <tmp>/store`), sandbox on, settings given by the wrapper so no
//! nix.conf is edited; used through `--builders` and `--max-jobs 0`. Builds remotely a
//! checkpointed build, an incremental one whose base was built remotely, and one whose base
//! was built locally; each base is deleted from the remote store first so Nix has to copy it
//! there as an input. Outputs are compared with local builds of the same derivations.
//! Over `ssh-ng://` the restored phases also reach the local log as `setPhase` results; over
//! `ssh://` the remote `nix-store --serve` keeps every `@nix` line to itself (run phases'
//! too), so only the plain lines are checked there. Docs: docs/nix-tools.md.
//!
//! The test cleans up on every exit (sshd killed by its PID, the temporary directory with
//! keys and the remote store removed) through a guard's `Drop`.

use integration_tests::checkpoint::{remove_tree, Scratch};
use integration_tests::log;
use integration_tests::nix::instantiate;
use integration_tests::outputs::{normalised_nar, output};
use integration_tests::reuse_cases::{base_attr, case_file};
use integration_tests::{builder_binary, nix_build, BuildResult};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const NAME: &str = "remote-cproject";
const SANDBOX_PATHS: &str = "/bin /usr /lib /lib64 /etc/alternatives";
const BUILD_GROUP: &str = "nixbld";

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}\n{}", text(&o));
    o
}

/// sshd and the directory holding its config, keys and the remote store; all gone on drop.
struct Remote {
    dir: PathBuf,
    port: u16,
    sshd: Option<Child>,
    /// `ssh` (`nix-store --serve` remotely) or `ssh-ng` (`nix-daemon --stdio` remotely).
    protocol: &'static str,
}

impl Remote {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn start(protocol: &'static str) -> Remote {
        let scratch = Scratch::new("remote-builder").unwrap();
        let dir = scratch.path().to_path_buf();
        std::mem::forget(scratch); // removed by Remote's Drop, also on panic
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut remote = Remote {
            dir,
            port,
            sshd: None,
            protocol,
        };
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "checkpoint-test",
                    "-f",
                ])
                .arg(remote.path(key)));
        }
        std::fs::copy(
            remote.path("client_key.pub"),
            remote.path("authorized_keys"),
        )
        .unwrap();
        std::fs::create_dir(remote.path("store")).unwrap();
        // The remote side: nix-store --serve (ssh) or nix-daemon --stdio (ssh-ng) on the
        // second store, sandbox on, settings here.
        let wrapper = remote.path("remote-nix");
        let program = if protocol == "ssh" {
            "nix-store"
        } else {
            "nix-daemon"
        };
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/{program} \"$@\" --store '{}' \
                 --option build-users-group {BUILD_GROUP} --option sandbox true \
                 --option extra-sandbox-paths '{SANDBOX_PATHS}' --option substituters ''\n",
                remote.path("store").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            remote.path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nLogLevel VERBOSE\n",
                remote.path("host_key").display(),
                remote.path("authorized_keys").display(),
                remote.path("sshd.pid").display(),
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(remote.path("host_key.pub")).unwrap();
        let mut fields = host_pub.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        std::fs::write(
            remote.path("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .unwrap();
        // sshd wants its privilege separation directory (the package's unit creates it).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(remote.path("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(remote.path("sshd_config"))
            .stderr(log)
            .spawn()
            .unwrap();
        remote.sshd = Some(child);
        let started = Instant::now();
        loop {
            let probe = remote.ssh().arg("true").output().unwrap();
            if probe.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sshd did not accept the test key\n{}\n{}",
                text(&probe),
                std::fs::read_to_string(remote.path("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        remote
    }

    /// What Nix passes to ssh (`NIX_SSHOPTS`): port, known hosts, no user config.
    fn ssh_opts(&self) -> String {
        format!(
            "-F /dev/null -p {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes",
            self.port,
            self.path("known_hosts").display()
        )
    }

    fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(self.ssh_opts().split(' '))
            .arg("-i")
            .arg(self.path("client_key"))
            .arg("root@127.0.0.1");
        cmd
    }

    /// The `--builders` line: URI, system, key, jobs, speed, features.
    fn builders(&self) -> String {
        format!(
            "{}://root@127.0.0.1?remote-program={} x86_64-linux {} 1 1 - - -",
            self.protocol,
            self.path("remote-nix").display(),
            self.path("client_key").display()
        )
    }

    /// A store path as a file of the remote store.
    fn real(&self, store_path: &Path) -> PathBuf {
        self.path("store")
            .join(store_path.strip_prefix("/").unwrap())
    }

    fn remote_store(&self, args: &[&str]) -> Output {
        Command::new("nix-store")
            .args(args)
            .arg("--store")
            .arg(self.path("store"))
            .output()
            .unwrap()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(mut child) = self.sshd.take() {
            let _ = child.kill(); // SIGKILL to that PID only
            let _ = child.wait();
        }
        if let Err(e) = remove_tree(&self.dir) {
            eprintln!("could not remove {}: {e}", self.dir.display());
        }
    }
}

/// A case file; `protocol` makes the package name, so the two tests never share derivations.
fn case(protocol: &str, label: &str, variant: &str, base: Option<&Path>) -> PathBuf {
    let name = format!("{NAME}-{}", protocol.replace('-', ""));
    let attrs = format!(
        "variant = \"{variant}\"; name = \"{name}\"; {}",
        base_attr(base)
    );
    case_file(
        "remote-cases",
        &format!("{protocol}-{label}"),
        "cproject",
        &attrs,
    )
}

/// A remote build of the case: outputs, the log of that derivation, nix-build's stderr.
fn build_remote(remote: &Remote, case_file: &Path) -> (Vec<PathBuf>, log::BuildLog, String) {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let drv = instantiate(case_file, Some(builder)).unwrap_or_else(|e| panic!("{e}"));
    let o = Command::new("nix-build")
        .env("NIX_SSHOPTS", remote.ssh_opts())
        .args(["--option", "build-users-group", ""])
        .args(["--option", "substituters", ""])
        .args(["--option", "builders-use-substitutes", "false"])
        .args(["--builders", &remote.builders()])
        .args(["--max-jobs", "0"])
        .args(["--no-out-link", "--log-format", "internal-json", "-v"])
        .arg(&drv)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let parsed = log::parse(&stderr, &drv);
    assert!(
        o.status.success(),
        "remote build of {drv} failed\n{}\n{}",
        parsed.lines.join("\n"),
        stderr.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    // nix-build prints the default output only; the checkpoint is another output.
    let q = run(Command::new("nix-store").args(["-q", "--outputs", &drv]));
    let outs = String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    (outs, parsed, stderr)
}

fn build_local(case_file: &Path) -> BuildResult {
    let builder = builder_binary().unwrap_or_else(|e| panic!("{e}"));
    let r = nix_build(case_file, Some(builder)).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.success, "{}\n{}", r.log_tail(60), r.errors.join("\n"));
    r
}

fn decision<'a>(log: &'a log::BuildLog, phase: &str) -> Option<&'a str> {
    let prefix = format!("checkpoint-builder: {phase} ");
    log.lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix).map(str::trim_start))
}

/// The remote store's copy of `out` equals the local store's (same path, same NAR).
fn assert_same(remote: &Remote, out: &Path) {
    assert!(
        normalised_nar(out, &remote.real(out)) == normalised_nar(out, out),
        "{} differs between the remote and the local build",
        out.display()
    );
}

#[test]
fn checkpointed_builds_run_on_a_remote_builder() {
    remote_flow("ssh");
}

#[test]
fn checkpointed_builds_run_on_an_ssh_ng_remote_builder() {
    remote_flow("ssh-ng");
}

fn remote_flow(protocol: &'static str) {
    let group = Command::new("getent")
        .args(["group", BUILD_GROUP])
        .output()
        .unwrap();
    assert!(
        group.status.success(),
        "the `{BUILD_GROUP}` group is missing (nix-bin creates it; tests/daemon.rs too)"
    );
    let remote = Remote::start(protocol);

    // 1. A checkpointed build, remotely.
    let a_case = case(protocol, "a", "a", None);
    let (a_outs, a_log, a_err) = build_remote(&remote, &a_case);
    assert!(
        a_err.contains(&format!("{protocol}://root@127.0.0.1")),
        "the build did not go to the remote builder:\n{a_err}"
    );
    let a_ck = a_outs
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-checkpoint"))
        .expect("a checkpoint output")
        .clone();
    assert!(
        remote.real(&a_ck).exists(),
        "the checkpoint was built in the remote store"
    );
    // Over ssh:// (Nix 2.8) the remote nix-store consumes the builder's `@nix` lines: no
    // setPhase reaches this side for any phase, stock or restored; the plain lines do.
    assert!(
        a_log.lines.iter().any(|l| l == "Running phase: buildPhase"),
        "{}",
        a_log.lines.join("\n")
    );

    // 2. Incremental, remotely, from the remote-built base, after removing the base from the
    //    remote store: Nix copies it there from the local store as an input.
    let b_case = case(protocol, "b", "source", Some(&a_ck));
    let o = remote.remote_store(&["--delete", &a_ck.to_string_lossy()]);
    assert!(!remote.real(&a_ck).exists(), "{}", text(&o));
    let (b_outs, b_log, _) = build_remote(&remote, &b_case);
    assert!(
        remote.real(&a_ck).exists(),
        "the base was copied to the remote"
    );
    let conf = decision(&b_log, "configurePhase").unwrap_or_default();
    assert!(
        conf.starts_with("restored (incremental)"),
        "{conf}\n{}",
        b_log.lines.join("\n")
    );
    assert!(
        b_log
            .lines
            .iter()
            .any(|l| l.starts_with("Restored phase: configurePhase (restored (incremental)")),
        "{}",
        b_log.lines.join("\n")
    );
    if protocol == "ssh-ng" {
        // Through a remote nix-daemon the builder's `@nix` lines reach this side: the
        // restored phases are phases here too, in a clean build's order.
        assert_eq!(b_log.phases, a_log.phases, "{}", b_log.lines.join("\n"));
        assert!(b_log.phases.iter().any(|p| p == "configurePhase"));
    }
    let b_out = b_outs
        .iter()
        .find(|p| !p.to_string_lossy().ends_with("-checkpoint"))
        .unwrap()
        .clone();
    // The same derivation built locally (the harness deletes the copied outputs first).
    let b_local = build_local(&b_case);
    assert_eq!(output(&b_local, false), b_out);
    assert_same(&remote, &b_out);

    // 3. Base built locally (b's checkpoint, rebuilt just now), incremental build remotely.
    let b_ck = output(&b_local, true);
    let _ = remote.remote_store(&["--delete", &b_ck.to_string_lossy()]);
    assert!(!remote.real(&b_ck).exists());
    // Same variant as b, new base. (b's configure and build layers were taken over by an
    // incremental restore, so they are rerun rather than restored; unpack and patch are.)
    let c_case = case(protocol, "c", "source", Some(&b_ck));
    let (c_outs, c_log, _) = build_remote(&remote, &c_case);
    assert!(
        remote.real(&b_ck).exists(),
        "the local base was copied to the remote"
    );
    for phase in ["unpackPhase", "patchPhase"] {
        let d = decision(&c_log, phase).unwrap_or_default();
        assert!(
            d.starts_with("restored"),
            "{phase}: {d}\n{}",
            c_log.lines.join("\n")
        );
        assert!(
            c_log
                .lines
                .iter()
                .any(|l| l.starts_with(&format!("Restored phase: {phase} ("))),
            "{}",
            c_log.lines.join("\n")
        );
    }
    let c_out = c_outs
        .iter()
        .find(|p| !p.to_string_lossy().ends_with("-checkpoint"))
        .unwrap()
        .clone();
    let c_local = build_local(&c_case);
    assert_eq!(output(&c_local, false), c_out);
    assert_same(&remote, &c_out);
}
