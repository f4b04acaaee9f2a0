//! Real upstream projects (GNU hello, Lua 5.4, zstd from Debian's orig tarballs; zstd also
//! through its CMake build, for ninja and for make) as harness
//! cases: fetching their sources with `scripts/fetch-sources.sh`, turning
//! `tests/projects/<name>.nix` into a `{ mkDrv }:` case file for [`crate::nix_build`], and
//! running the built programs. It never decides whether two builds agree; [`crate::compare`]
//! does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::error::{HarnessError, IoContext};
use crate::nix::repo_root;

/// A real project of `tests/projects/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Project {
    /// GNU hello: autotools, every default phase including `checkPhase`.
    Hello,
    /// Lua 5.4: a plain Makefile, no configure.
    Lua,
    /// zstd: a plain Makefile, a shared library and a program; the largest build.
    Zstd,
    /// zstd's own CMake build (`build/cmake`), generated for and built by ninja, from the
    /// same tarball (`tests/projects/zstd-cmake.nix`).
    ZstdCmake,
    /// The same CMake build generated for make (`generator = "Unix Makefiles"`), nixpkgs'
    /// default for a CMake package without ninja.
    ZstdCmakeMake,
}

impl Project {
    /// Every project with a source package of its own, in build-size order (the CMake
    /// builds use zstd's tarball).
    pub const ALL: [Project; 3] = [Project::Lua, Project::Hello, Project::Zstd];

    /// The attribute name in `tests/projects/default.nix` (its file: [`Project::file_stem`]).
    pub fn name(self) -> &'static str {
        match self {
            Project::Hello => "hello",
            Project::Lua => "lua",
            Project::Zstd => "zstd",
            Project::ZstdCmake => "zstd-cmake",
            Project::ZstdCmakeMake => "zstd-cmake-make",
        }
    }

    /// The file under `tests/projects/` that defines it, without `.nix`.
    pub fn file_stem(self) -> &'static str {
        match self {
            Project::ZstdCmakeMake => "zstd-cmake",
            p => p.name(),
        }
    }

    /// Attributes its file takes besides `mkDrv`, `sources` and `variant`, as Nix text.
    pub fn extra_attrs(self) -> &'static str {
        match self {
            Project::ZstdCmakeMake => "generator = \"Unix Makefiles\";",
            _ => "",
        }
    }

    /// The commands run from a built output, each with its standard input and what its
    /// standard output must be.
    pub fn smoke_checks(self) -> Vec<SmokeCheck> {
        match self {
            Project::Hello => vec![
                SmokeCheck::new("bin/hello", &[], Expect::Exactly("Hello, world!\n")),
                SmokeCheck::new(
                    "bin/hello",
                    &["--greeting=checkpoint"],
                    Expect::Exactly("checkpoint\n"),
                ),
                SmokeCheck::new(
                    "bin/hello",
                    &["--version"],
                    Expect::StartsWith("hello (GNU Hello) 2.10\n"),
                ),
            ],
            Project::Lua => vec![
                SmokeCheck::new("bin/lua", &["-v"], Expect::StartsWith("Lua 5.4.4  ")),
                SmokeCheck::new(
                    "bin/lua",
                    &[
                        "-e",
                        r#"print(("ab"):rep(3), 2^10, string.format("%d", 6 * 7))"#,
                    ],
                    Expect::Exactly("ababab\t1024.0\t42\n"),
                ),
            ],
            Project::Zstd | Project::ZstdCmake | Project::ZstdCmakeMake => vec![
                SmokeCheck::new("bin/zstd", &["--version"], Expect::Contains("v1.5.4")),
                SmokeCheck::new("bin/zstd", &["-q", "-19", "-c"], Expect::RoundTrip),
            ],
        }
    }
}

/// What a smoke check's standard output must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this text.
    Exactly(&'static str),
    /// Text starting with this.
    StartsWith(&'static str),
    /// Text containing this.
    Contains(&'static str),
    /// The program compresses [`ROUND_TRIP_INPUT`]; `<program> -d -c` must give it back.
    RoundTrip,
}

/// The input of [`Expect::RoundTrip`] checks: repetitive enough to compress, varied enough
/// to exercise more than one block type.
pub const ROUND_TRIP_INPUT: &str = "checkpoint-builder round trip: \
    the quick brown fox jumps over the lazy dog 0123456789\n";

/// One program run from a built output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeCheck {
    /// The program, relative to the output path.
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<&'static str>,
    /// What its standard output must be.
    pub expect: Expect,
}

impl SmokeCheck {
    fn new(program: &'static str, args: &[&'static str], expect: Expect) -> Self {
        SmokeCheck {
            program,
            args: args.to_vec(),
            expect,
        }
    }

    /// Runs the check against the output at `out`; `Ok` describes what ran, `Err` what
    /// went wrong (command, status, stdout, stderr).
    pub fn run(&self, out: &Path) -> Result<String, String> {
        let program = out.join(self.program);
        let command = format!("{} {}", program.display(), self.args.join(" "));
        let input = match self.expect {
            Expect::RoundTrip => ROUND_TRIP_INPUT.repeat(64).into_bytes(),
            _ => Vec::new(),
        };
        let stdout = run_with_input(Command::new(&program).args(&self.args), &input, &command)?;
        let text = String::from_utf8_lossy(&stdout);
        let ok = match self.expect {
            Expect::Exactly(want) => text == want,
            Expect::StartsWith(want) => text.starts_with(want),
            Expect::Contains(want) => text.contains(want),
            Expect::RoundTrip => {
                let back_command = format!("{} -d -c", program.display());
                let back = run_with_input(
                    Command::new(&program).args(["-d", "-c"]),
                    &stdout,
                    &back_command,
                )?;
                if back != input {
                    return Err(format!(
                        "`{command} | {back_command}` gave {} bytes, not the {} bytes put in",
                        back.len(),
                        input.len()
                    ));
                }
                stdout.len() < input.len()
            }
        };
        if ok {
            Ok(format!("`{command}`: ok"))
        } else {
            Err(format!(
                "`{command}` printed {text:?}, expected {:?}",
                self.expect
            ))
        }
    }
}

/// Runs `cmd` with `input` on its standard input; its standard output if it succeeds.
fn run_with_input(cmd: &mut Command, input: &[u8], command: &str) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run `{command}`: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Write from a thread: a program that answers before reading everything must not
    // deadlock against a full pipe.
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `{command}`: {e}"))?;
    let written = writer.join().expect("the stdin writer does not panic");
    if !output.status.success() {
        return Err(format!(
            "`{command}` failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    written.map_err(|e| format!("writing the input of `{command}`: {e}"))?;
    Ok(output.stdout)
}

/// The directory holding the orig tarballs, filled by `scripts/fetch-sources.sh` (run once
/// per test process; it honours `$CHECKPOINT_SOURCES`). An error says how to fix it.
pub fn sources_dir() -> Result<&'static Path, HarnessError> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo_root().join("scripts/fetch-sources.sh");
        // Only the pins the tests build: one that has left the archive fails nothing else.
        let output = Command::new(&script)
            .args(Project::ALL.map(Project::name))
            .output()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}); the real-project tests need the Debian source packages of \
                 hello, lua5.4 and zstd (run scripts/install-deps.sh as root to enable deb-src):\n{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        parse_fetch_output(&String::from_utf8_lossy(&output.stdout))
    })
    .as_deref()
    .map_err(|e| HarnessError::Environment(e.clone()))
}

/// The tarballs' directory from `fetch-sources.sh`'s `<project> <tarball>` lines: every
/// project must be listed, all in one directory.
pub fn parse_fetch_output(stdout: &str) -> Result<PathBuf, String> {
    let mut dir: Option<PathBuf> = None;
    for project in Project::ALL {
        let tarball = stdout
            .lines()
            .find_map(|l| l.strip_prefix(project.name())?.strip_prefix(' '))
            .ok_or_else(|| {
                format!(
                    "fetch-sources.sh listed no tarball for {}: {stdout:?}",
                    project.name()
                )
            })?;
        let parent = Path::new(tarball)
            .parent()
            .filter(|p| p.is_absolute())
            .ok_or_else(|| format!("not an absolute tarball path: {tarball:?}"))?;
        match &dir {
            Some(d) if d != parent => {
                return Err(format!(
                    "tarballs in two directories: {} and {}",
                    d.display(),
                    parent.display()
                ))
            }
            _ => dir = Some(parent.to_path_buf()),
        }
    }
    dir.ok_or_else(|| "no projects".to_owned())
}

/// A Nix string literal holding `text` (`\`, `"` and `$` escaped).
pub fn nix_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The text of the case file for `project` with the tarballs in `sources`.
pub fn case_text(project: Project, projects_dir: &Path, sources: &Path) -> String {
    let file = projects_dir.join(format!("{}.nix", project.file_stem()));
    format!(
        "# Generated by tests/common/projects.rs: tests/projects/{stem}.nix as a harness case.\n\
         {{ mkDrv }}:\n\
         import (/. + {file}) {{\n  inherit mkDrv;\n  sources = {sources};\n  {extra}\n}}\n",
        stem = project.file_stem(),
        file = nix_string(&file.to_string_lossy()),
        sources = nix_string(&sources.to_string_lossy()),
        extra = project.extra_attrs(),
    )
}

/// Fetches the sources and writes `target/real-projects/<name>.nix`, a `{ mkDrv }:` case
/// for [`crate::nix_build`] (which builds it through `tests/nix/harness.nix`).
pub fn case_file(project: Project) -> Result<PathBuf, HarnessError> {
    let sources = sources_dir()?;
    let dir = repo_root().join("target/real-projects");
    std::fs::create_dir_all(&dir).io_context("creating", &dir)?;
    let file = dir.join(format!("{}.nix", project.name()));
    let text = case_text(project, &repo_root().join("tests/projects"), sources);
    if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
        let partial = dir.join(format!(".{}.nix.{}", project.name(), std::process::id()));
        std::fs::write(&partial, &text).io_context("writing", &partial)?;
        std::fs::rename(&partial, &file).io_context("renaming into place", &file)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_output_gives_the_common_directory() {
        let out = "hello /s/hello_2.10.orig.tar.gz\nlua /s/lua5.4_5.4.4.orig.tar.gz\n\
                   zstd /s/libzstd_1.5.4+dfsg2.orig.tar.xz\n";
        assert_eq!(parse_fetch_output(out), Ok(PathBuf::from("/s")));
    }

    #[test]
    fn fetch_output_missing_or_split_is_an_error() {
        let missing = "hello /s/h.tar.gz\nlua /s/l.tar.gz\n";
        assert!(parse_fetch_output(missing).unwrap_err().contains("zstd"));
        let split = "hello /s/h.tar.gz\nlua /t/l.tar.gz\nzstd /s/z.tar.xz\n";
        assert!(parse_fetch_output(split)
            .unwrap_err()
            .contains("two directories"));
        let relative = "hello h.tar.gz\nlua l.tar.gz\nzstd z.tar.xz\n";
        assert!(parse_fetch_output(relative).is_err());
    }

    #[test]
    fn nix_strings_are_escaped() {
        assert_eq!(nix_string(r#"/a b/"x"/${y}\"#), r#""/a b/\"x\"/\${y}\\""#);
    }

    #[test]
    fn case_imports_the_project_with_its_sources() {
        let text = case_text(
            Project::Zstd,
            Path::new("/r/tests/projects"),
            Path::new("/s"),
        );
        assert!(text.contains("{ mkDrv }:\nimport (/. + \"/r/tests/projects/zstd.nix\")"));
        assert!(text.contains("sources = \"/s\";"));
    }

    #[test]
    fn every_project_has_a_nix_file_and_checks() {
        for project in Project::ALL {
            let file = repo_root().join(format!("tests/projects/{}.nix", project.name()));
            assert!(file.is_file(), "{} is missing", file.display());
            assert!(!project.smoke_checks().is_empty());
        }
    }
}
