//! The Dockerfile builder (Docker's legacy builder, as `docker build` with `DOCKER_BUILDKIT=0`
//! shows it): parse with `berth-dockerfile`, build the stages the target needs in order, each
//! instruction one step on the engine's primitives:
//!
//! - `RUN`: a container of the current image runs the command (its output streamed), and is
//!   committed with the image's config kept, then removed;
//! - `COPY`/`ADD`: a created (never started) container receives the files, resolved inside
//!   the context (sources) and inside the container root (destination), and is committed;
//! - every other instruction changes the config only: a new image with an empty-layer
//!   history entry (`Engine::derive_image`).
//!
//! A step is taken from the cache when its key is known: the parent image, the instruction
//! with its variables expanded, the build arguments a `RUN` sees and, for `COPY`/`ADD`, a
//! hash of the sources' contents and metadata. Output follows the legacy builder line for
//! line (`Step 2/5 : RUN …`, ` ---> Using cache`, ` ---> 3f2a…`, `Successfully built …`), as
//! `stream` messages of the JSON progress stream, so the docker CLI shows it unchanged.

mod context;
mod remote;
mod steps;

use std::collections::BTreeMap;

use berth_dockerfile::{builtin_args, parse, Dockerfile, GlobalScope, Platform};
use berth_engine::types::{HostConfig, Progress, PullOptions, RegistryAuth};
use berth_engine::{Engine, EngineError, ProgressSink, StepHistory};
use berth_reference::Digest;

pub use context::{unpack_context, Context};
pub use remote::fetch_remote;

type Result<T> = std::result::Result<T, EngineError>;

/// What a build is asked to do, besides the context it builds from.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path inside the context (`Dockerfile` by default).
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    /// Only the image ID is reported (`-q`).
    pub quiet: bool,
    /// Credentials for base image pulls, by registry.
    pub auth: RegistryAuth,
    /// What every RUN container gets: `--memory`, `--memory-swap`, `--cpu-shares`,
    /// `--shm-size`, `--ulimit`.
    pub run_host: HostConfig,
}

/// Where a build is in its steps, for `Step N/M` (stages may run at the same time).
struct Counter {
    done: std::sync::atomic::AtomicUsize,
    total: usize,
}

impl Counter {
    fn next(&self) -> usize {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

pub(crate) struct Out {
    sink: ProgressSink,
    quiet: bool,
}

impl Out {
    pub(crate) async fn line(&self, text: impl Into<String>) {
        if !self.quiet {
            let mut t = text.into();
            t.push('\n');
            self.sink.send(Progress::Stream(t)).await;
        }
    }

    pub(crate) async fn raw(&self, text: String) {
        if !self.quiet {
            self.sink.send(Progress::Stream(text)).await;
        }
    }
}

pub(crate) fn short(id: &Digest) -> String {
    id.hex().chars().take(12).collect()
}

/// Builds the Dockerfile found in `context` and tags the result; returns the image ID.
pub async fn build(
    engine: &Engine,
    context: &Context,
    opts: BuildOptions,
    progress: ProgressSink,
) -> Result<Digest> {
    let out = Out {
        sink: progress.clone(),
        quiet: opts.quiet,
    };
    let name = if opts.dockerfile.is_empty() {
        "Dockerfile"
    } else {
        opts.dockerfile.as_str()
    };
    let text = context::read_dockerfile(&context.root, name)?;
    let df = parse(&text).map_err(|e| EngineError::invalid(e.to_string()))?;
    for w in &df.warnings {
        out.line(format!("[WARNING]: {} (line {})", w.message, w.line))
            .await;
    }
    let target = match &opts.target {
        Some(t) if !t.is_empty() => df.stage(t).map(|s| position(&df, s)).ok_or_else(|| {
            EngineError::invalid(format!("failed to reach build target {t} in Dockerfile"))
        })?,
        _ => df.stages.len().saturating_sub(1),
    };
    let needed = needed_stages(&df, target);
    let host = Platform::new("linux", host_arch(), None);
    let mut global = GlobalScope::new(
        opts.build_args.clone(),
        builtin_args(&host, &host, opts.target.as_deref()),
    );
    global
        .declare(&df)
        .map_err(|e| EngineError::invalid(e.to_string()))?;

    let counter = Counter {
        done: Default::default(),
        total: needed
            .iter()
            .map(|&i| 1 + df.stages[i].instructions.len())
            .sum(),
    };
    let mut run = steps::Run {
        engine,
        context,
        out: &out,
        opts: &opts,
        df: &df,
        global: &global,
        results: vec![None; df.stages.len()],
    };
    // Stages whose dependencies are built run together: independent stages take as long as
    // the slowest of them, not their sum.
    let mut remaining = needed.clone();
    while !remaining.is_empty() {
        let (ready, later): (Vec<usize>, Vec<usize>) = remaining
            .iter()
            .partition(|&&i| stage_deps(&df, i).iter().all(|d| run.results[*d].is_some()));
        if ready.is_empty() {
            return Err(EngineError::internal("stage dependencies form a cycle"));
        }
        let built = {
            let run = &run;
            let counter = &counter;
            futures_util::future::join_all(ready.iter().map(|&i| run.stage(i, counter))).await
        };
        for (i, id) in ready.into_iter().zip(built) {
            run.results[i] = Some(id?);
        }
        remaining = later;
    }
    let mut id = run.results[target]
        .clone()
        .ok_or_else(|| EngineError::internal("the target stage was not built"))?;
    if !opts.labels.is_empty() {
        let labels = opts.labels.clone();
        id = engine.derive_image(
            Some(&id),
            move |c| c.labels.extend(labels),
            StepHistory {
                created_by: "LABEL (from --label)".into(),
                created: steps::created_at(&opts.build_args),
                ..Default::default()
            },
        )?;
    }
    progress
        .send(Progress::Aux(serde_json::json!({ "ID": id.to_string() })))
        .await;
    if opts.quiet {
        // dockerd's quiet build streams only the ID, which the docker CLI prints as is.
        progress.send(Progress::Stream(format!("{id}\n"))).await;
    }
    out.line(format!("Successfully built {}", short(&id))).await;
    for tag in &opts.tags {
        let r = berth_reference::Reference::parse_normalized(tag)
            .map_err(|e| EngineError::invalid(format!("invalid tag {tag:?}: {e}")))?;
        let repo = r.name();
        engine.tag_image(&id.to_string(), &repo, r.tag())?;
        out.line(format!(
            "Successfully tagged {}",
            r.with_default_tag().familiar_string()
        ))
        .await;
    }
    Ok(id)
}

fn position(df: &Dockerfile, stage: &berth_dockerfile::Stage) -> usize {
    df.stages
        .iter()
        .position(|s| std::ptr::eq(s, stage))
        .unwrap_or(0)
}

/// The earlier stages stage `i` builds on: its base and its `COPY --from` sources.
fn stage_deps(df: &Dockerfile, i: usize) -> Vec<usize> {
    let Some(stage) = df.stages.get(i) else {
        return Vec::new();
    };
    let mut refs: Vec<String> = vec![stage.base().to_lowercase()];
    for ins in &stage.instructions {
        if let berth_dockerfile::Instruction::Copy(c) = &ins.value {
            if let Some(from) = &c.from {
                refs.push(from.to_lowercase());
            }
        }
    }
    refs.iter().filter_map(|r| stage_ref(df, r, i)).collect()
}

/// The target and every stage it builds on, in order.
fn needed_stages(df: &Dockerfile, target: usize) -> Vec<usize> {
    let mut need = vec![false; df.stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if i >= need.len() || need[i] {
            continue;
        }
        need[i] = true;
        todo.extend(stage_deps(df, i));
    }
    (0..df.stages.len()).filter(|&i| need[i]).collect()
}

/// An earlier stage named (or numbered) `r`, as seen from stage `before`.
pub(crate) fn stage_ref(df: &Dockerfile, r: &str, before: usize) -> Option<usize> {
    let by_name = df.stages[..before.min(df.stages.len())]
        .iter()
        .position(|s| s.name() == Some(r));
    by_name.or_else(|| r.parse::<usize>().ok().filter(|&j| j < before))
}

pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Pulls `name` when it is missing, when it is not for `platform` (`FROM --platform`), or
/// always with `--pull`, with the pull's progress in the build's stream; returns the image ID.
pub(crate) async fn base_image(
    engine: &Engine,
    name: &str,
    platform: Option<&str>,
    pull: bool,
    auth: &RegistryAuth,
    sink: &ProgressSink,
) -> Result<Digest> {
    if !pull {
        if let Ok(img) = engine.inspect_image(name) {
            let wanted_arch = platform.and_then(|p| p.split('/').nth(1));
            if wanted_arch.is_none_or(|a| a == img.architecture) {
                return Ok(img.id);
            }
        }
    }
    engine
        .pull_image(
            name,
            PullOptions {
                platform: platform.map(str::to_string),
                auth: auth.clone(),
            },
            sink.clone(),
        )
        .await
}
