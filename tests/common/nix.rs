//! Running Nix for the tests: locating the builder binary and the stdenv, instantiating a
//! case through `tests/nix/harness.nix`, building it with the harness options, and dumping
//! its outputs as normalised NARs. Everything that spawns a process lives here.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::error::HarnessError;
use crate::log::{self, BuildLog};
use crate::nar;

/// nix-build options of every test build: single-user root store, sandbox on, host tools
/// bound in, no binary cache, two cores, one job.
pub const NIX_BUILD_OPTIONS: &[&str] = &[
    "--option",
    "build-users-group",
    "",
    "--option",
    "sandbox",
    "true",
    "--option",
    "extra-sandbox-paths",
    "/bin /usr /lib /lib64 /etc/alternatives",
    "--option",
    "substituters",
    "",
    "--cores",
    "2",
    "--max-jobs",
    "1",
];

/// How often a build is retried when another process built the derivation first.
const BUILD_ATTEMPTS: u32 = 3;

/// Environment variable naming the builder binary (else `scripts/build-static.sh` builds it).
pub const BUILDER_ENV: &str = "CHECKPOINT_BUILDER";
/// Environment variable naming the stdenv file (else `tests/stdenv/stdenv.nix`).
pub const STDENV_ENV: &str = "CHECKPOINT_TEST_STDENV";

/// The outcome of one `nix-build` of a case.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The case file that was built.
    pub case_file: PathBuf,
    /// The builder binary, or `None` for the stock bash builder.
    pub builder: Option<PathBuf>,
    /// The derivation that was built.
    pub drv_path: String,
    /// Whether nix-build succeeded.
    pub success: bool,
    /// `N` of "failed with exit code N", when the builder failed.
    pub exit_code: Option<i32>,
    /// All output paths of the derivation, in the order `nix-store -q --outputs` gives.
    pub out_paths: Vec<PathBuf>,
    /// Store paths whose hash parts are normalised in this build's NARs: the outputs of
    /// every derivation in the closure of `drv_path`.
    pub closure_outputs: Vec<String>,
    /// Phases announced on `NIX_LOG_FD`, in order.
    pub phases: Vec<String>,
    /// The build's log lines.
    pub log_lines: Vec<String>,
    /// Nix's error messages about this derivation.
    pub errors: Vec<String>,
    /// nix-build's complete stderr (internal-json).
    pub stderr: String,
}

impl BuildResult {
    /// A short description for reports: builder, derivation, status.
    pub fn describe(&self) -> String {
        let builder = self
            .builder
            .as_ref()
            .map_or_else(|| "stock".to_owned(), |b| b.display().to_string());
        let status = if self.success {
            "succeeded".to_owned()
        } else {
            format!("failed (exit code {:?})", self.exit_code)
        };
        format!("{} with {builder}: {status}", self.drv_path)
    }

    /// The last `n` log lines, for failure reports.
    pub fn log_tail(&self, n: usize) -> String {
        let start = self.log_lines.len().saturating_sub(n);
        self.log_lines[start..].join("\n")
    }

    /// Whether the log shows stdenv's `Running phase: PHASE` header.
    pub fn ran_phase(&self, phase: &str) -> bool {
        let header = format!("Running phase: {phase}");
        self.log_lines.iter().any(|l| l.trim() == header)
    }

    /// The builder's explanation line for `phase` (`checkpoint-builder: PHASE  restored…` or
    /// `… ran…`, from the block that ends the log), if there is one.
    pub fn decision_line(&self, phase: &str) -> Option<&str> {
        let prefix = format!("checkpoint-builder: {phase} ");
        self.log_lines.iter().rev().find_map(|l| {
            let reason = l.strip_prefix(&prefix)?.trim_start();
            (reason.starts_with("restored") || reason.starts_with("ran")).then_some(l.as_str())
        })
    }
}

/// The repository root (parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

/// `tests/cases`.
pub fn cases_dir() -> PathBuf {
    repo_root().join("tests/cases")
}

/// The stdenv file the cases are built on: `$CHECKPOINT_TEST_STDENV` or ours.
pub fn stdenv_nix() -> PathBuf {
    std::env::var_os(STDENV_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/stdenv/stdenv.nix"))
}

/// Fails unless the tests can drive Nix: root (single-user store) and `nix-build`.
pub fn require_nix() -> Result<(), HarnessError> {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    CHECK
        .get_or_init(|| {
            let uid = std::fs::metadata("/proc/self")
                .map_err(|e| format!("cannot stat /proc/self: {e}"))?
                .uid();
            if uid != 0 {
                return Err(format!(
                    "the builds use a single-user store (build-users-group ''), so they must run \
                     as root; running as uid {uid}"
                ));
            }
            match Command::new("nix-build").arg("--version").output() {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!("`nix-build --version` failed: {}", o.status)),
                Err(e) => Err(format!("`nix-build` not found on PATH ({e})")),
            }
        })
        .clone()
        .map_err(HarnessError::Environment)
}

/// The checkpoint-builder binary: `$CHECKPOINT_BUILDER`, else the output of
/// `scripts/build-static.sh` (run once per test process).
pub fn builder_binary() -> Result<&'static Path, HarnessError> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os(BUILDER_ENV).filter(|v| !v.is_empty()) {
                return Ok(PathBuf::from(path));
            }
            let script = repo_root().join("scripts/build-static.sh");
            let output = run(Command::new(&script)).map_err(|e| e.to_string())?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let path = stdout
                .lines()
                .last()
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .ok_or_else(|| {
                    format!("{} printed no binary path: {stdout:?}", script.display())
                })?;
            Ok(path)
        })
        .as_deref()
        .map_err(|e| HarnessError::Environment(e.clone()))
}

/// A command as a shell line, for messages (`(cd DIR && …)` when it runs elsewhere).
pub fn render(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(' ') {
            format!("'{a}'")
        } else {
            a.into_owned()
        }
    }));
    let line = parts.join(" ");
    match cmd.get_current_dir() {
        Some(dir) => format!("(cd {} && {line})", dir.display()),
        None => line,
    }
}

/// Runs a harness command and requires success.
pub fn run(mut cmd: Command) -> Result<Output, HarnessError> {
    let output = cmd.output().map_err(|source| HarnessError::Spawn {
        command: render(&cmd),
        source,
    })?;
    if !output.status.success() {
        return Err(HarnessError::Command {
            command: render(&cmd),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output)
}

/// The non-empty lines of a command's standard output.
pub fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Instantiates `case_file` through the harness with `builder` (None: stock).
pub fn instantiate(case_file: &Path, builder: Option<&Path>) -> Result<String, HarnessError> {
    let mut cmd = Command::new("nix-instantiate");
    cmd.arg(repo_root().join("tests/nix/harness.nix"))
        .arg("--arg")
        .arg("case")
        .arg(case_file)
        .arg("--arg")
        .arg("stdenvNix")
        .arg(stdenv_nix());
    if let Some(builder) = builder {
        cmd.arg("--arg").arg("builder").arg(builder);
    }
    let command = render(&cmd);
    let drvs = stdout_lines(&run(cmd)?);
    match drvs.as_slice() {
        [drv] => Ok(drv.clone()),
        _ => Err(HarnessError::Unexpected {
            command,
            detail: format!("expected exactly one derivation, got {drvs:?}"),
        }),
    }
}

/// `nix-store -q <flag> <paths>`.
fn query(flag: &str, paths: &[String]) -> Result<Vec<String>, HarnessError> {
    let mut cmd = Command::new("nix-store");
    cmd.arg("-q").arg(flag).args(paths);
    Ok(stdout_lines(&run(cmd)?))
}

/// Deletes the derivation's outputs left by an earlier run, so the build really runs (and
/// logs its phases) again.
fn clear_outputs(outputs: &[String]) -> Result<(), HarnessError> {
    let present: Vec<&String> = outputs.iter().filter(|p| Path::new(p).exists()).collect();
    if present.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("nix-store");
    cmd.arg("--delete").args(&present);
    let command = render(&cmd);
    let attempt = run(cmd);
    if let Some(still) = outputs.iter().find(|p| Path::new(p).exists()) {
        return Err(HarnessError::Unexpected {
            command,
            detail: format!(
                "{still} is still valid, so the build would not run again (is it a GC root, \
                 e.g. a `result` symlink?): {attempt:?}"
            ),
        });
    }
    Ok(())
}

/// Builds `case_file` with `builder` (None: the stock bash builder) and reports the result.
pub fn nix_build(case_file: &Path, builder: Option<&Path>) -> Result<BuildResult, HarnessError> {
    nix_build_with_paths(case_file, builder, &[])
}

/// [`nix_build`] with more host paths bound into the sandbox (a development cache).
pub fn nix_build_with_paths(
    case_file: &Path,
    builder: Option<&Path>,
    sandbox_paths: &[&Path],
) -> Result<BuildResult, HarnessError> {
    build_case(case_file, builder, sandbox_paths, &[])
}

/// [`nix_build`] with `nix-build` started with `signals` (names as `trap` takes them: `HUP`,
/// `INT`, …) ignored, as `nohup`, a background job of a non-interactive shell or a CI runner
/// starts it; the builder inherits that.
pub fn nix_build_ignoring_signals(
    case_file: &Path,
    builder: Option<&Path>,
    signals: &[&str],
) -> Result<BuildResult, HarnessError> {
    build_case(case_file, builder, &[], signals)
}

fn build_case(
    case_file: &Path,
    builder: Option<&Path>,
    sandbox_paths: &[&Path],
    ignored_signals: &[&str],
) -> Result<BuildResult, HarnessError> {
    require_nix()?;
    let mut options: Vec<String> = NIX_BUILD_OPTIONS.iter().map(|s| s.to_string()).collect();
    if !sandbox_paths.is_empty() {
        let at = options
            .iter()
            .position(|o| o == "extra-sandbox-paths")
            .expect("the sandbox paths option")
            + 1;
        for p in sandbox_paths {
            options[at].push(' ');
            options[at].push_str(&p.to_string_lossy());
        }
    }
    let drv_path = instantiate(case_file, builder)?;
    let out_paths = query("--outputs", std::slice::from_ref(&drv_path))?;
    let closure_drvs: Vec<String> = query("-R", std::slice::from_ref(&drv_path))?
        .into_iter()
        .filter(|p| p.ends_with(".drv"))
        .collect();
    let closure_outputs = query("--outputs", &closure_drvs)?;
    // Another process (a concurrent test run) may build the same derivation between our
    // deleting its outputs and our nix-build, or hold them alive; then nothing was built
    // here and the log has no phases. Try again a few times.
    let mut attempt = 0;
    let (output, stderr, parsed) = loop {
        attempt += 1;
        if let Err(e) = clear_outputs(&out_paths) {
            // Still in use by another process (a temporary GC root): wait and retry.
            if attempt == BUILD_ATTEMPTS {
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
            continue;
        }
        let mut cmd = if ignored_signals.is_empty() {
            Command::new("nix-build")
        } else {
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c")
                .arg(format!(
                    "trap '' {}; exec nix-build \"$@\"",
                    ignored_signals.join(" ")
                ))
                .arg("sh");
            sh
        };
        cmd.args(&options)
            .args(["--no-out-link", "--log-format", "internal-json", "-v"])
            .arg(&drv_path);
        let output = cmd.output().map_err(|source| HarnessError::Spawn {
            command: render(&cmd),
            source,
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let parsed = log::parse(&stderr, &drv_path);
        if parsed.built || !output.status.success() {
            break (output, stderr, parsed);
        }
        if attempt == BUILD_ATTEMPTS {
            return Err(HarnessError::Unexpected {
                command: render(&cmd),
                detail: format!(
                    "{drv_path} was never built by this process in {BUILD_ATTEMPTS} attempts \
                     (another process keeps building it?)"
                ),
            });
        }
    };
    let BuildLog {
        phases,
        lines,
        exit_code,
        errors,
        built: _,
    } = parsed;
    Ok(BuildResult {
        case_file: case_file.to_path_buf(),
        builder: builder.map(Path::to_path_buf),
        drv_path,
        success: output.status.success(),
        exit_code,
        out_paths: out_paths.into_iter().map(PathBuf::from).collect(),
        closure_outputs,
        phases,
        log_lines: lines,
        errors,
        stderr,
    })
}

/// `nix-store --dump` of one store path.
pub fn dump(path: &Path) -> Result<Vec<u8>, HarnessError> {
    let mut cmd = Command::new("nix-store");
    cmd.arg("--dump").arg(path);
    Ok(run(cmd)?.stdout)
}

/// The NAR of each output of `result` (name of the output path, normalised NAR), with the
/// hash parts of all the build's own output paths (and of its dependencies' outputs)
/// replaced by same-length placeholders.
pub fn nar_normalised(result: &BuildResult) -> Result<Vec<(String, Vec<u8>)>, HarnessError> {
    let rewrites = nar::rewrites_for(
        result
            .closure_outputs
            .iter()
            .map(String::as_str)
            .chain(result.out_paths.iter().filter_map(|p| p.to_str())),
    );
    let mut outputs: Vec<&PathBuf> = result.out_paths.iter().collect();
    outputs.sort_by_key(|p| p.to_str().and_then(nar::split_store_path).map(|(_, n)| n));
    outputs
        .into_iter()
        .map(|path| {
            let name = path
                .to_str()
                .and_then(nar::split_store_path)
                .map_or_else(|| path.display().to_string(), |(_, name)| name.to_owned());
            Ok((name, nar::normalise(&dump(path)?, &rewrites)))
        })
        .collect()
}

/// Unpacks a NAR into `dest` (which must not exist) with `nix-store --restore`.
pub fn restore(nar: &[u8], dest: &Path) -> Result<(), HarnessError> {
    use std::io::Write;
    use std::process::Stdio;
    let mut cmd = Command::new("nix-store");
    cmd.arg("--restore")
        .arg(dest)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let command = render(&cmd);
    let mut child = cmd.spawn().map_err(|source| HarnessError::Spawn {
        command: command.clone(),
        source,
    })?;
    let write = child.stdin.take().expect("stdin is piped").write_all(nar);
    let output = child
        .wait_with_output()
        .map_err(|source| HarnessError::Spawn {
            command: command.clone(),
            source,
        })?;
    if let Err(source) = write {
        return Err(HarnessError::Spawn { command, source });
    }
    if !output.status.success() {
        return Err(HarnessError::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}
