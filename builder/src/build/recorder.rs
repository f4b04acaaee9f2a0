//! Records a layer after every completed step into the `checkpoint` output (design §2, §5).
//!
//! Effectful: owns the checkpoint writer and the snapshotter. The roots are the build
//! directory (`build`) and every output except `checkpoint` itself. Each layer carries the
//! step's shell state and its keyed inputs (see [`crate::reuse::keys`]) as attachments.

use crate::build::signals;
use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointWriter, ContentHash, Gate, Holding, LayerMeta,
    LayerSummary, PriorTrees, ReadLayer, RelPath, RestoreReport, RewritePair, Snapshotter, State,
};
use crate::meta::{attachment, BuildMeta, LayerInfo};
use crate::reuse::base::{resume_trees, BaseCheckpoint};
use crate::reuse::incremental::ninja::{LogReport, NinjaLogs};
use crate::reuse::incremental::Recording;
use crate::reuse::keys::{
    later_phase_variables, layer_inputs, layer_key, phase_variables, LayerInputs, KEY_FORMAT,
};
use crate::reuse::trust;
use crate::shell::{ByteString, ShellState};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The name of the output the builder writes its layers to.
pub const CHECKPOINT_OUTPUT: &str = "checkpoint";

/// Writes one layer per step.
pub struct Recorder {
    writer: CheckpointWriter,
    snapshotter: Snapshotter,
    output_paths: Vec<Vec<u8>>,
    /// The build directory, masked in keys ([`layer_key`]).
    build_top: Vec<u8>,
    parent_key: String,
    /// The checkpoint-wide metadata, with the chain ([`trust::chain_link`]) of the layers so
    /// far, rewritten with every layer, and `restored_layers` after a resume.
    meta: BuildMeta,
    chain: Vec<String>,
    /// What [`Recorder::restart`] needs to start over.
    roots: Vec<(String, PathBuf)>,
    strict: bool,
    /// The build's phase list (known after setup), for the later-phase exclusion rule.
    pub phases: Vec<String>,
    /// Marks the next recorded layer as taken over by an incremental restore: its tree is not
    /// the tree its phase left (it also holds build products), so no later build restores it
    /// as that phase's result.
    pub next_layer_taken_over: bool,
    /// Time spent snapshotting, for the report.
    pub snapshot_time: Duration,
    /// Time spent restoring earlier layers (resume, incremental restore), for the report.
    pub restore_time: Duration,
    /// CPU time ([`cpu_time`]) of the snapshots and of the restores.
    pub snapshot_cpu: Duration,
    pub restore_cpu: Duration,
    /// Wall and CPU time of an incremental restore's decisions (comparing trees, dependency
    /// records, pieces of earlier paths, includers), beyond its imports and restores.
    pub analysis_time: Duration,
    pub analysis_cpu: Duration,
    /// Wall and CPU time of opening and checking the earlier checkpoints the build may
    /// continue, and of checking the blobs of the chosen one that no restore read (after
    /// the restores).
    pub base_check_time: Duration,
    pub base_check_cpu: Duration,
    /// What imports of an earlier checkpoint did to ninja's build logs.
    ninja_logs: Arc<NinjaLogs>,
    /// One line per restore of earlier layers (what it imported, wrote and kept, and how
    /// long each part took), for the builder's own-time report.
    pub restore_notes: Vec<String>,
    /// One line per snapshot (its time, what it hashed), for the same report.
    pub snapshot_notes: Vec<String>,
    /// Set when the last layer came from a walk of the trees that began with no process of
    /// the build running, to the number of step processes started by then
    /// ([`signals::steps_started`]); cleared by anything of the builder's own that writes
    /// the trees. While it holds and no step has started since, the trees are as that walk
    /// saw them, and the next layer is recorded without walking them again.
    quiet_walk: Option<u64>,
}

/// A moment of the build, as far as the trees are concerned: how many step processes had
/// started by then ([`signals::steps_started`]), and whether none of the build's processes
/// was running ([`signals::no_descendants`]).
#[derive(Clone, Copy, Debug)]
pub struct TreeMoment {
    steps: u64,
    quiet: bool,
}

impl TreeMoment {
    /// This moment.
    pub fn now() -> Self {
        TreeMoment {
            steps: signals::steps_started(),
            quiet: signals::no_descendants(),
        }
    }

    /// Whether the trees at this moment are as the walk that set `quiet_walk` saw them
    /// ([`Recorder::unchanged_at`]).
    fn unchanged_since(self, quiet_walk: Option<u64>) -> bool {
        quiet_walk == Some(self.steps) && self.quiet
    }
}

/// A layer [`Recorder::read_layer`] read, for [`Recorder::store_layer`].
pub struct ReadRecord {
    step: String,
    key: String,
    layer: ReadOrWritten,
    read_time: Duration,
    read_cpu: Duration,
}

impl ReadRecord {
    /// The step whose layer it is.
    pub fn step(&self) -> &str {
        &self.step
    }
}

enum ReadOrWritten {
    /// Read: its held contents and the layer are still to write.
    Read(ReadLayer),
    /// Written already (the trees were unchanged).
    Written(LayerSummary),
}

/// What [`Recorder::store_layer`] did, for [`Recorder::note_stored`].
pub struct StoredRecord {
    step: String,
    /// The layer written.
    pub summary: LayerSummary,
    unchanged: bool,
    held_bytes: u64,
    read_time: Duration,
    read_cpu: Duration,
    store_time: Duration,
    store_cpu: Duration,
}

impl StoredRecord {
    /// The step whose layer it is.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// How long its walk and reads took ([`Recorder::read_layer`]).
    pub fn read_time(&self) -> Duration {
        self.read_time
    }
}

/// The CPU time this process (every thread of the builder, not its children) has used so
/// far: on a loaded machine it measures the builder's own work where wall time does not.
pub fn cpu_time() -> Duration {
    // The process CPU-time clock: user plus system time of every thread, as getrusage's
    // `RUSAGE_SELF` sums them.
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// What a restore wrote, for [`Recorder::restore_notes`].
fn written(report: &RestoreReport) -> String {
    format!(
        "{} entries set, {} files / {:.1} MB written, {} entries kept",
        report.entries,
        report.files_written,
        report.bytes_written as f64 / 1e6,
        report.kept
    )
}

impl Recorder {
    /// Starts a checkpoint at `dir` covering `build_top` and `outputs`.
    pub fn start(
        dir: &Path,
        build_top: &Path,
        outputs: &[(String, PathBuf)],
        meta: BuildMeta,
        strict: bool,
    ) -> Result<Self, CheckpointError> {
        let mut writer = CheckpointWriter::create(dir)?;
        writer.set_meta(meta.to_json())?;
        let ninja_logs = Arc::new(NinjaLogs::default());
        writer.set_translator(ninja_logs.clone());
        let mut roots = vec![("build".to_owned(), build_top.to_path_buf())];
        roots.extend(outputs.iter().cloned());
        let snapshotter = Snapshotter::new(roots.clone())?;
        let mut output_paths: Vec<Vec<u8>> = outputs
            .iter()
            .map(|(_, p)| p.as_os_str().as_bytes().to_vec())
            .collect();
        output_paths.push(dir.as_os_str().as_bytes().to_vec());
        Ok(Recorder {
            writer,
            snapshotter,
            output_paths,
            build_top: build_top.as_os_str().as_bytes().to_vec(),
            parent_key: KEY_FORMAT.to_owned(),
            meta,
            chain: Vec::new(),
            roots,
            strict,
            phases: Vec::new(),
            next_layer_taken_over: false,
            snapshot_time: Duration::ZERO,
            restore_time: Duration::ZERO,
            snapshot_cpu: Duration::ZERO,
            restore_cpu: Duration::ZERO,
            analysis_time: Duration::ZERO,
            analysis_cpu: Duration::ZERO,
            base_check_time: Duration::ZERO,
            base_check_cpu: Duration::ZERO,
            ninja_logs,
            restore_notes: Vec::new(),
            snapshot_notes: Vec::new(),
            quiet_walk: None,
        })
    }

    /// Records the layer after `step`, given the state before it (None for setup) and after
    /// it, in two parts. This one must see the trees: the layer's inputs and state, and the
    /// snapshot's walk and reads ([`Snapshotter::read_layer`], new contents held in memory
    /// as far as `holding` has room). The trees may change once it returns;
    /// [`Recorder::store_layer`] must come next, before anything else uses the recorder.
    ///
    /// `at` is when the step ended: the layer is the last one's trees, not walked again,
    /// when [`Recorder::unchanged_at`] says so.
    pub fn read_layer(
        &mut self,
        step: &str,
        (before, after, status, seconds): (Option<&ShellState>, &ShellState, i32, Option<f64>),
        at: TreeMoment,
        holding: &Holding,
    ) -> Result<ReadRecord, CheckpointError> {
        let started = std::time::Instant::now();
        let cpu = cpu_time();
        let excluded = match self.phases.iter().position(|p| p == step) {
            Some(i) => later_phase_variables(&self.phases, i),
            // setup: every phase is later.
            None => self
                .phases
                .iter()
                .flat_map(|p| phase_variables(p))
                .collect(),
        };
        let inputs = layer_inputs(step, before, &self.output_paths, self.strict, &excluded);
        let key = layer_key(&self.parent_key, &inputs, &self.build_top);
        let inputs_blob = self.writer.put_blob(
            &serde_json::to_vec(&LayerInputs {
                functions: ByteString::default(),
                ..inputs.clone()
            })
            .expect("inputs serialise"),
        )?;
        let input_functions_blob = self.writer.put_blob(inputs.functions.as_bytes())?;
        let state_blob = self
            .writer
            .put_blob(&serde_json::to_vec(&after.without_functions()).expect("state serialises"))?;
        let functions_blob = self.writer.put_blob(after.functions.as_bytes())?;
        let meta = LayerMeta {
            name: step.to_owned(),
            attachments: [
                (attachment::INPUTS.to_owned(), inputs_blob),
                (attachment::INPUT_FUNCTIONS.to_owned(), input_functions_blob),
                (attachment::SHELL_STATE.to_owned(), state_blob),
                (attachment::SHELL_FUNCTIONS.to_owned(), functions_blob),
            ]
            .into_iter()
            .collect(),
            meta: LayerInfo {
                key: Some(key.clone()),
                parent_key: Some(self.parent_key.clone()),
                status: Some(status),
                seconds,
                taken_over: std::mem::take(&mut self.next_layer_taken_over),
            }
            .to_json(),
        };
        // Never a staging directory in a layer (each restore removes its own).
        self.writer.end_staging()?;
        let layer = if self.unchanged_at(at) {
            ReadOrWritten::Written(
                self.snapshotter
                    .snapshot_unchanged(&mut self.writer, meta)?,
            )
        } else {
            let read = self
                .snapshotter
                .read_layer(&mut self.writer, meta, holding)?;
            self.quiet_walk = at.quiet.then_some(at.steps);
            ReadOrWritten::Read(read)
        };
        self.parent_key = key.clone();
        let read_time = started.elapsed();
        self.snapshot_time += read_time;
        let cpu = cpu_time().saturating_sub(cpu);
        self.snapshot_cpu += cpu;
        Ok(ReadRecord {
            step: step.to_owned(),
            key,
            layer,
            read_time,
            read_cpu: cpu,
        })
    }

    /// Whether the trees at `at` are as the last walk saw them: a phase that started no
    /// process (the stdenv's runPhase returns at once), with none left running since that
    /// walk, changed nothing, and its layer is the last one's trees, recorded without
    /// walking them again.
    pub fn unchanged_at(&self, at: TreeMoment) -> bool {
        at.unchanged_since(self.quiet_walk)
    }

    /// [`Recorder::unchanged_at`] as of now, for a caller that holds no recorder: only a
    /// walk changes the answer.
    pub fn unchanged_since_last_walk(&self) -> impl Fn(TreeMoment) -> bool + 'static {
        let walk = self.quiet_walk;
        move |at| at.unchanged_since(walk)
    }

    /// The rest of recording a layer, after [`Recorder::read_layer`]: stores the contents
    /// it held, writes the layer and links it into the chain. May run `beside` the next
    /// phase, on half the cores, so that the phase keeps the others, and on all of them
    /// once the gate opens (the build waits for the store: the phase has ended); what it
    /// took is reported by [`Recorder::note_stored`].
    pub fn store_layer(
        &mut self,
        read: ReadRecord,
        beside: Option<&Gate>,
    ) -> Result<StoredRecord, CheckpointError> {
        let started = std::time::Instant::now();
        let cpu = cpu_time();
        let ReadRecord {
            step,
            key,
            layer,
            read_time,
            read_cpu,
        } = read;
        let (summary, held_bytes, unchanged) = match layer {
            ReadOrWritten::Written(summary) => (summary, 0, true),
            ReadOrWritten::Read(read) => {
                let held = read.held_bytes();
                let all = self.snapshotter.threads();
                let (threads, widen) = match beside {
                    Some(gate) => ((all / 2).max(1), Some((all, gate))),
                    None => (all, None),
                };
                let summary =
                    self.snapshotter
                        .store_layer(&mut self.writer, read, threads, widen)?;
                (summary, held, false)
            }
        };
        let link = trust::chain_link(
            self.chain.last().map_or("", String::as_str),
            &key,
            &summary.layer.blake3,
        );
        self.chain.push(link);
        self.write_chain()?;
        Ok(StoredRecord {
            step,
            summary,
            unchanged,
            held_bytes,
            read_time,
            read_cpu,
            store_time: started.elapsed(),
            store_cpu: cpu_time().saturating_sub(cpu),
        })
    }

    /// Reports a layer [`Recorder::store_layer`] wrote: the snapshot's line, and the time
    /// the build `waited` for the store (all of it when nothing ran beside it) added to the
    /// snapshots' time.
    pub fn note_stored(&mut self, stored: StoredRecord, waited: Duration) {
        let s = &stored;
        self.snapshot_time += waited;
        self.snapshot_cpu += s.store_cpu;
        let (step, summary) = (&s.step, &s.summary);
        let line = if s.unchanged {
            format!(
                "snapshot after {step}: {:.3}s, CPU {:.3}s (unchanged: no process ran since the last walk)",
                (s.read_time + s.store_time).as_secs_f64(),
                (s.read_cpu + s.store_cpu).as_secs_f64(),
            )
        } else if s.store_time <= waited {
            // Nothing ran beside the store.
            format!(
                "snapshot after {step}: {:.3}s, CPU {:.3}s ({} files / {:.1} MB hashed, {} reused)",
                (s.read_time + s.store_time).as_secs_f64(),
                (s.read_cpu + s.store_cpu).as_secs_f64(),
                summary.files_hashed,
                summary.bytes_hashed as f64 / 1e6,
                summary.files_reused
            )
        } else {
            format!(
                "snapshot after {step}: {:.3}s, CPU {:.3}s ({} files / {:.1} MB hashed, {} reused), \
                 then {:.1} MB stored beside the next step: {:.3}s, CPU {:.3}s, waited for {:.3}s",
                s.read_time.as_secs_f64(),
                s.read_cpu.as_secs_f64(),
                summary.files_hashed,
                summary.bytes_hashed as f64 / 1e6,
                summary.files_reused,
                s.held_bytes as f64 / 1e6,
                s.store_time.as_secs_f64(),
                s.store_cpu.as_secs_f64(),
                waited.as_secs_f64(),
            )
        };
        self.snapshot_notes.push(line);
    }

    /// Writes the chain of the layers so far into the index's meta.
    fn write_chain(&mut self) -> Result<(), CheckpointError> {
        self.meta.chain = Some(self.chain.clone());
        self.writer.set_meta(self.meta.to_json())
    }

    /// Recomputes the chain over every layer written so far (after an import, whose layer
    /// files are new: rewritten to this build's paths).
    fn reseal(&mut self) -> Result<(), CheckpointError> {
        let written = Checkpoint::open(self.writer.dir())?;
        let keys: Vec<String> = written
            .layers()
            .iter()
            .map(|l| {
                LayerInfo::of(l)
                    .ok()
                    .and_then(|i| i.key)
                    .unwrap_or_default()
            })
            .collect();
        self.chain = trust::chain_of(
            keys.iter()
                .map(String::as_str)
                .zip(written.index().layers.iter().map(|r| r.blake3)),
        );
        self.write_chain()
    }

    /// Throws away every layer written so far (the checkpoint directory is emptied) and
    /// starts again with none, as [`Recorder::start`] left it: the fallback to a clean build
    /// after a problem with an earlier checkpoint (docs/trust.md).
    pub fn restart(&mut self) -> Result<(), CheckpointError> {
        self.quiet_walk = None;
        let dir = self.writer.dir().to_path_buf();
        crate::reuse::base::remove_tree(&dir)?;
        let mut writer = CheckpointWriter::create(&dir)?;
        let ninja_logs = Arc::new(NinjaLogs::default());
        writer.set_translator(ninja_logs.clone());
        self.meta.chain = None;
        self.meta.restored_layers = None;
        writer.set_meta(self.meta.to_json())?;
        self.writer = writer;
        self.snapshotter = Snapshotter::new(self.roots.clone())?;
        self.ninja_logs = ninja_logs;
        self.parent_key = KEY_FORMAT.to_owned();
        self.chain.clear();
        self.next_layer_taken_over = false;
        Ok(())
    }

    /// From now on, the snapshots may store a new content from `base`'s blobs: copied when
    /// it holds the same content, a patch over what the same path held there when they
    /// differ in a few bytes ([`PriorTrees`]). Until [`Recorder::restart`].
    pub fn store_against(&mut self, base: &BaseCheckpoint) {
        self.snapshotter
            .store_against(PriorTrees::of(&base.checkpoint).ok());
    }

    /// Continues from layer `depth` of an earlier build: its layers become this checkpoint's
    /// first ones (rewritten to this build's paths), its trees are restored into the build
    /// directory and outputs, and the key chain goes on from its last key.
    pub fn resume(
        &mut self,
        base: &BaseCheckpoint,
        depth: u32,
        rewrites: &[(Vec<u8>, Vec<u8>)],
        build_top: &Path,
        outputs: &[(String, PathBuf)],
    ) -> Result<(), CheckpointError> {
        self.quiet_walk = None;
        let started = std::time::Instant::now();
        let cpu = cpu_time();
        let (_, cost) = resume_trees(
            base,
            depth,
            rewrites,
            &mut self.writer,
            &mut self.snapshotter,
            build_top,
            outputs,
        )?;
        let cpu = cpu_time().saturating_sub(cpu);
        self.restore_cpu += cpu;
        self.restore_notes.push(format!(
            "resume at layer {depth}: import {:.3}s, restore {:.3}s, CPU {:.3}s in all ({})",
            cost.import.as_secs_f64(),
            cost.write.as_secs_f64(),
            cpu.as_secs_f64(),
            written(&cost.report)
        ));
        if let Some(key) = base
            .checkpoint
            .layer(depth)
            .map(LayerInfo::of)?
            .ok()
            .and_then(|i| i.key)
        {
            self.parent_key = key;
        }
        // Layers 0..=depth were restored, not run: readers (the OCI export's history) can
        // only tell from here, the imported layers keep the earlier build's meta. `reseal`
        // writes the meta with the chain.
        self.meta.restored_layers = Some(depth + 1);
        self.reseal()?;
        self.restore_time += started.elapsed();
        Ok(())
    }
}

/// What an incremental restore ([`crate::reuse::incremental`]) reads and writes of the
/// checkpoint being recorded.
impl Recording for Recorder {
    fn output_paths(&self) -> &[Vec<u8>] {
        Recorder::output_paths(self)
    }

    fn strict(&self) -> bool {
        Recorder::strict(self)
    }

    /// The earlier build's state after its layer `upto`, rewritten to this build's paths,
    /// with every blob it references brought into this checkpoint (so that it can be
    /// restored from here and the next snapshots find its contents already stored).
    fn import_base_state(
        &mut self,
        base: &BaseCheckpoint,
        upto: u32,
        rewrites: &[RewritePair],
        leave_out: &[RelPath],
    ) -> Result<State, CheckpointError> {
        self.quiet_walk = None;
        let started = std::time::Instant::now();
        let cpu = cpu_time();
        // The contents read are staged in the build directory for `bring_trees_to`, which
        // links them into place (or `end_staging` drops them).
        if !self.writer.is_staging() {
            let build = &self.roots[0].1;
            self.writer.stage_in(build)?;
        }
        let leave_out: Vec<(String, RelPath)> = leave_out
            .iter()
            .map(|p| ("build".to_owned(), p.clone()))
            .collect();
        let state =
            self.writer
                .import_state_rewritten(&base.checkpoint, upto, rewrites, &leave_out);
        self.restore_time += started.elapsed();
        let cpu = cpu_time().saturating_sub(cpu);
        self.restore_cpu += cpu;
        self.restore_notes.push(format!(
            "import of the state after layer {upto}: {:.3}s, CPU {:.3}s",
            started.elapsed().as_secs_f64(),
            cpu.as_secs_f64()
        ));
        state
    }

    /// The content of a blob this checkpoint holds (imported or written), verified.
    fn read_blob(&self, hash: &ContentHash) -> Result<Vec<u8>, CheckpointError> {
        self.writer.read_content(hash)
    }

    /// The same, in chunks, of any size.
    fn stream_blob(
        &self,
        hash: &ContentHash,
        sink: &mut dyn FnMut(&[u8]) -> std::ops::ControlFlow<()>,
    ) -> Result<(), CheckpointError> {
        self.writer.stream_content(hash, sink)
    }

    /// What the last recorded layer saw of each root.
    fn recorded_state(&self) -> &State {
        self.snapshotter.state()
    }

    /// Brings the build directory from what the last layer recorded to `want`'s `build`
    /// root in place (writing only what differs, contents from this checkpoint's blobs),
    /// restores every output root of `want` that does not exist yet, and lets the next
    /// snapshot trust what was written instead of rehashing it.
    fn bring_trees_to(
        &mut self,
        want: &State,
        build_top: &Path,
        outputs: &[(String, PathBuf)],
    ) -> Result<(), CheckpointError> {
        self.quiet_walk = None;
        let started = std::time::Instant::now();
        let cpu = cpu_time();
        let applied = (|| {
            let mut report = self.writer.apply_state_over(
                self.snapshotter.state().root("build"),
                want.root("build"),
                build_top,
            )?;
            for (name, path) in outputs {
                let root = want.root(name);
                if !root.is_empty() && !path.exists() {
                    report.absorb(self.writer.restore_state(root, path)?);
                }
            }
            Ok(report)
        })();
        let ended = self.writer.end_staging();
        let report = applied?;
        ended?;
        self.snapshotter.trust(want);
        self.restore_time += started.elapsed();
        let cpu = cpu_time().saturating_sub(cpu);
        self.restore_cpu += cpu;
        self.restore_notes.push(format!(
            "in-place restore over the live tree: {:.3}s, CPU {:.3}s ({})",
            started.elapsed().as_secs_f64(),
            cpu.as_secs_f64(),
            written(&report)
        ));
        Ok(())
    }
}

impl Recorder {
    /// Removes what the imports staged for a restore that did not come (see
    /// [`CheckpointWriter::stage_in`]): nothing may be left in the build directory when a
    /// phase runs or a snapshot is taken.
    pub fn end_staging(&mut self) -> Result<(), CheckpointError> {
        self.writer.end_staging()
    }

    /// The ninja build logs imports translated or could not, for the build log.
    pub fn ninja_log_reports(&self) -> Vec<LogReport> {
        self.ninja_logs.reports()
    }

    pub fn strict(&self) -> bool {
        self.strict
    }

    /// This build's output paths (and the checkpoint's), as normalisation masks them.
    pub fn output_paths(&self) -> &[Vec<u8>] {
        &self.output_paths
    }

    pub fn finish(self) -> Result<PathBuf, CheckpointError> {
        self.writer.finish()
    }
}

/// The derivation's outputs (name, path) as Nix announced them, in declaration order.
pub fn declared_outputs(
    env: &crate::build::environment::BuildEnvironment,
) -> Vec<(String, PathBuf)> {
    if let Some(json) = &env.structured_attrs {
        if let Some(map) = json.get("outputs").and_then(|o| o.as_object()) {
            return map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), PathBuf::from(v.as_str()?))))
                .collect();
        }
        return Vec::new();
    }
    let names = env.attribute("outputs").unwrap_or_else(|| "out".to_owned());
    names
        .split_whitespace()
        .filter_map(|n| Some((n.to_owned(), PathBuf::from(env.attribute(n)?))))
        .collect()
}
