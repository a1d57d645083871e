//! One stage, step by step (see the crate docs for what each kind of step does).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use berth_context::FileDigests;
use berth_dockerfile::{
    parse_trigger, CommandLine, Dockerfile, GlobalScope, Healthcheck, Instruction, Source,
};
use berth_engine::types::{
    AttachOptions, ContainerConfig, CreateRequest, HostConfig, WaitCondition,
};
use berth_engine::{CommitOptions, CopyOptions, Engine, EngineError, RunConfig, StepHistory};
use berth_reference::{Digest, Sha256Writer};
use serde_json::{json, Value};

use crate::context::{expand_pattern, resolve_in, Context, Resolved};
use crate::{base_image, short, stage_ref, BuildOptions, Counter, Out, Result};

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

pub(crate) struct Run<'a> {
    pub engine: &'a Engine,
    pub context: &'a Context,
    pub out: &'a Out,
    pub opts: &'a BuildOptions,
    pub df: &'a Dockerfile,
    pub global: &'a GlobalScope,
    /// Each stage's image, once built.
    pub results: Vec<Option<Digest>>,
}

/// What a stage has built so far.
struct State {
    image: Option<Digest>,
    config: RunConfig,
    /// `CMD` was set in this stage (an `ENTRYPOINT` then keeps it).
    cmd_set: bool,
}

impl State {
    fn shell(&self) -> Vec<String> {
        self.config
            .extra
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }
}

fn env_pairs(env: &[String]) -> Vec<(String, String)> {
    env.iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

fn argv(cmd: &CommandLine, shell: &[String]) -> Vec<String> {
    match cmd {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(e.to_string())
}

impl Run<'_> {
    pub(crate) async fn stage(&self, i: usize, counter: &Counter) -> Result<Digest> {
        let stage = &self.df.stages[i];
        self.out
            .line(format!(
                "Step {}/{} : {}",
                counter.next(),
                counter.total,
                stage.from.original
            ))
            .await;
        let from = self
            .global
            .expand_from(&stage.from, self.df.escape())
            .map_err(invalid)?;
        let image = if from.is_scratch() {
            None
        } else if let Some(j) = stage_ref(self.df, &from.image.to_lowercase(), i) {
            self.results.get(j).cloned().flatten()
        } else {
            Some(
                base_image(
                    self.engine,
                    &from.image,
                    from.platform.as_deref().filter(|p| !p.is_empty()),
                    self.opts.pull,
                    &self.opts.auth,
                    &self.out.sink,
                )
                .await?,
            )
        };
        if let Some(id) = &image {
            self.out.line(format!(" ---> {}", short(id))).await;
        }
        let config = match &image {
            Some(id) => self.engine.image_run_config(id)?,
            None => RunConfig::default(),
        };
        let mut st = State {
            image,
            config,
            cmd_set: false,
        };
        let mut scope = self
            .global
            .stage(env_pairs(&st.config.env), self.df.escape());

        // The base image's ONBUILD triggers run first, and are not inherited further.
        let triggers: Vec<String> = st
            .config
            .extra
            .remove("OnBuild")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if !triggers.is_empty() {
            self.out
                .line(format!("# Executing {} build trigger", triggers.len()))
                .await;
            for t in &triggers {
                let step = parse_trigger(t).map_err(invalid)?;
                let ins = scope.evaluate(&step).map_err(invalid)?;
                self.step(&mut st, &ins, &step.original, &scope.run_env(), &scope)
                    .await?;
            }
            // What the triggers built does not pass them on.
            if let Some(id) = st.image.clone() {
                let id = self.engine.derive_image(
                    Some(&id),
                    |c| {
                        c.extra.remove("OnBuild");
                    },
                    StepHistory::default(),
                )?;
                st.config = self.engine.image_run_config(&id)?;
                st.image = Some(id);
            }
        }

        for step in &stage.instructions {
            self.out
                .line(format!(
                    "Step {}/{} : {}",
                    counter.next(),
                    counter.total,
                    step.original
                ))
                .await;
            let ins = scope.evaluate(step).map_err(invalid)?;
            let run_env = scope.run_env();
            self.step(&mut st, &ins, &step.original, &run_env, &scope)
                .await?;
        }
        match st.image {
            Some(id) => Ok(id),
            // Only FROM scratch: an image with nothing in it.
            None => self.engine.derive_image(
                None,
                |_| {},
                StepHistory {
                    created: created_at(&self.opts.build_args),
                    ..Default::default()
                },
            ),
        }
    }

    async fn step(
        &self,
        st: &mut State,
        ins: &Instruction,
        original: &str,
        run_env: &[(String, String)],
        scope: &berth_dockerfile::StageScope<'_>,
    ) -> Result<()> {
        let parent = st.image.clone();
        let parent_key = parent.as_ref().map(|d| d.to_string()).unwrap_or_default();
        let next = match ins {
            Instruction::Arg { .. } => {
                if let Some(id) = &parent {
                    self.out.line(format!(" ---> {}", short(id))).await;
                }
                return Ok(());
            }
            Instruction::Run(run) => {
                let shell = st.shell();
                let argv = run_argv(run, &shell)?;
                // The build arguments a RUN sees are part of what it did.
                let image_env = env_pairs(&st.config.env);
                let args: Vec<String> = run_env
                    .iter()
                    .filter(|(k, _)| !image_env.iter().any(|(e, _)| e == k))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let created_by = if args.is_empty() {
                    argv.join(" ")
                } else {
                    format!("|{} {} {}", args.len(), args.join(" "), argv.join(" "))
                };
                let key = format!("RUN\n{parent_key}\n{}\n{}", json!(argv), json!(run_env));
                self.cached_or(&key, || self.run_step(st, argv, run_env, created_by))
                    .await?
            }
            Instruction::Copy(c) => {
                let sources = c.sources.clone();
                let key_base = format!(
                    "COPY\n{parent_key}\n{}\n{:?}\n{:?}\n{:?}",
                    c.dest, c.from, c.chown, c.chmod
                );
                self.copy_step(
                    st,
                    &sources,
                    &c.dest,
                    c.from.as_deref(),
                    c.chown.as_deref(),
                    c.chmod.as_deref(),
                    false,
                    &key_base,
                    original,
                )
                .await?
            }
            Instruction::Add(a) => {
                let key_base = format!(
                    "ADD\n{parent_key}\n{}\n{:?}\n{:?}",
                    a.dest, a.chown, a.chmod
                );
                self.copy_step(
                    st,
                    &a.sources,
                    &a.dest,
                    None,
                    a.chown.as_deref(),
                    a.chmod.as_deref(),
                    a.unpack != Some(false),
                    &key_base,
                    original,
                )
                .await?
            }
            Instruction::Workdir { path } => {
                let wd = if path.starts_with('/') {
                    path.clone()
                } else {
                    absolute_dest(path, &st.config.working_dir)
                        .trim_end_matches('/')
                        .to_string()
                };
                let key = format!("WORKDIR\n{parent_key}\n{wd}");
                match self.cache_hit(&key).await {
                    Some(id) => id,
                    None => {
                        let id = self.workdir_step(st, &wd, original).await?;
                        self.engine.build_cache_put(&key, &id)?;
                        id
                    }
                }
            }
            other => {
                let key = format!("CONFIG\n{parent_key}\n{}", json!(format!("{other:?}")));
                let edit = config_edit(other, st, scope)?;
                let author = match other {
                    Instruction::Maintainer { name } => Some(name.clone()),
                    _ => None,
                };
                let created_by = format!("/bin/sh -c #(nop)  {original}");
                let id = match self.cache_hit(&key).await {
                    Some(id) => id,
                    None => {
                        let id = self.engine.derive_image(
                            parent.as_ref(),
                            edit,
                            StepHistory {
                                created_by,
                                author,
                                created: created_at(&self.opts.build_args),
                                ..Default::default()
                            },
                        )?;
                        self.engine.build_cache_put(&key, &id)?;
                        id
                    }
                };
                id
            }
        };
        st.config = self.engine.image_run_config(&next)?;
        if matches!(ins, Instruction::Cmd { .. }) {
            st.cmd_set = true;
        }
        self.out.line(format!(" ---> {}", short(&next))).await;
        st.image = Some(next);
        Ok(())
    }

    async fn cache_hit(&self, key: &str) -> Option<Digest> {
        if self.opts.no_cache {
            return None;
        }
        let id = self.engine.build_cache_get(key)?;
        self.out.line(" ---> Using cache").await;
        Some(id)
    }

    async fn cached_or<F, Fut>(&self, key: &str, make: F) -> Result<Digest>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Digest>>,
    {
        if let Some(id) = self.cache_hit(key).await {
            return Ok(id);
        }
        let id = make().await?;
        self.engine.build_cache_put(key, &id)?;
        Ok(id)
    }

    /// A container of the current image that is never started, for COPY/ADD to write into.
    async fn scratch_container(&self, st: &mut State, cmd: Vec<String>) -> Result<String> {
        let image = match &st.image {
            Some(id) => id.clone(),
            // COPY into FROM scratch: an empty image to create the container from.
            None => {
                let id = self.engine.derive_image(
                    None,
                    |_| {},
                    StepHistory {
                        created: created_at(&self.opts.build_args),
                        ..Default::default()
                    },
                )?;
                st.image = Some(id.clone());
                id
            }
        };
        let resp = self
            .engine
            .create_container(CreateRequest {
                config: ContainerConfig {
                    image: image.to_string(),
                    cmd: Some(cmd),
                    entrypoint: Some(vec![String::new()]),
                    ..Default::default()
                },
                host_config: HostConfig::default(),
                ..Default::default()
            })
            .await?;
        Ok(resp.id)
    }

    async fn run_step(
        &self,
        st: &State,
        argv: Vec<String>,
        run_env: &[(String, String)],
        created_by: String,
    ) -> Result<Digest> {
        let Some(image) = &st.image else {
            return Err(EngineError::invalid(
                "RUN needs a base image: FROM scratch has no shell",
            ));
        };
        let resp = self
            .engine
            .create_container(CreateRequest {
                config: ContainerConfig {
                    image: image.to_string(),
                    cmd: Some(argv.clone()),
                    entrypoint: Some(vec![String::new()]),
                    env: run_env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    working_dir: st.config.working_dir.clone(),
                    user: st.config.user.clone(),
                    attach_stdout: true,
                    attach_stderr: true,
                    ..Default::default()
                },
                host_config: self.opts.run_host.clone(),
                ..Default::default()
            })
            .await?;
        let cid = resp.id;
        self.out
            .line(format!(" ---> Running in {}", &cid[..12]))
            .await;
        let result = self.run_container(&cid, &argv).await;
        let id = self
            .finish_step(&cid, result, created_by, Vec::new())
            .await?;
        self.out
            .line(format!("Removing intermediate container {}", &cid[..12]))
            .await;
        Ok(id)
    }

    /// Starts the step's container, streams its output, and fails on a non-zero exit.
    async fn run_container(&self, cid: &str, argv: &[String]) -> Result<()> {
        let mut attach = self
            .engine
            .attach_container(
                cid,
                AttachOptions {
                    stdout: true,
                    stderr: true,
                    stream: true,
                    ..Default::default()
                },
            )
            .await?;
        let wait = self
            .engine
            .wait_container(cid, WaitCondition::NextExit)
            .await?;
        self.engine.start_container(cid).await?;
        while let Some(rec) = attach.output.recv().await {
            self.out
                .raw(String::from_utf8_lossy(&rec.data).into_owned())
                .await;
        }
        let status = wait
            .await
            .map_err(|_| EngineError::internal("the step's container vanished"))?;
        if status.status_code != 0 {
            return Err(EngineError::invalid(format!(
                "The command '{}' returned a non-zero code: {}",
                argv.join(" "),
                status.status_code
            )));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_step(
        &self,
        st: &mut State,
        sources: &[Source],
        dest: &str,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
        unpack_archives: bool,
        key_base: &str,
        original: &str,
    ) -> Result<Digest> {
        let kind = if key_base.starts_with("ADD") {
            "ADD"
        } else {
            "COPY"
        };
        // The root sources are read from: the context, or an earlier stage's or an image's
        // filesystem for --from.
        let view = match from {
            Some(f) => {
                let idx = self
                    .df
                    .stages
                    .iter()
                    .position(|s| s.name() == Some(f.to_lowercase().as_str()))
                    .or_else(|| f.parse::<usize>().ok());
                let id = match idx {
                    Some(_) => self.stage_image(f).await?,
                    None => {
                        base_image(self.engine, f, None, false, &self.opts.auth, &self.out.sink)
                            .await?
                    }
                };
                Some(self.engine.image_view(&id)?)
            }
            None => None,
        };
        let root: &Path = view
            .as_ref()
            .map(|v| v.path())
            .unwrap_or(&self.context.root);
        let scratch = tempfile::tempdir().map_err(|e| EngineError::internal(e.to_string()))?;
        let mut resolved: Vec<Resolved> = Vec::new();
        // Which of `resolved` are files of the context, whose digests its extraction took.
        let mut in_context: Vec<bool> = Vec::new();
        for (n, s) in sources.iter().enumerate() {
            match s {
                Source::Path(p) if p.starts_with("http://") || p.starts_with("https://") => {
                    let name = p
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .filter(|n| !n.is_empty())
                        .unwrap_or("download")
                        .to_string();
                    let file = scratch.path().join(format!("url-{n}"));
                    std::fs::create_dir_all(&file)
                        .map_err(|e| EngineError::internal(e.to_string()))?;
                    let target = file.join(&name);
                    self.engine.download(p, &target).await?;
                    in_context.push(false);
                    resolved.push(
                        resolve_in(&file, &name)
                            .map_err(|e| EngineError::internal(e.to_string()))?,
                    );
                }
                Source::Path(p) => {
                    let matches = expand_pattern(root, p);
                    if matches.is_empty() {
                        return Err(EngineError::invalid(format!(
                            "{kind} failed: no source files were specified"
                        )));
                    }
                    for m in matches {
                        let r = resolve_in(root, &m).map_err(|_| {
                            EngineError::invalid(format!(
                                "{kind} failed: file not found in build context or excluded by .dockerignore: stat {m}: file does not exist"
                            ))
                        })?;
                        in_context.push(view.is_none());
                        resolved.push(r);
                    }
                }
                Source::Heredoc(h) => {
                    let dir = scratch.path().join(format!("heredoc-{n}"));
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| EngineError::internal(e.to_string()))?;
                    std::fs::write(dir.join(&h.name), h.content.as_bytes())
                        .map_err(|e| EngineError::internal(e.to_string()))?;
                    in_context.push(false);
                    resolved.push(
                        resolve_in(&dir, &h.name)
                            .map_err(|e| EngineError::internal(e.to_string()))?,
                    );
                }
            }
        }
        // ADD unpacks local tar archives into the destination directory.
        if unpack_archives {
            for (n, r) in resolved.iter_mut().enumerate() {
                if r.is_dir || !is_archive(&r.path) {
                    continue;
                }
                let dir = scratch.path().join(format!("archive-{n}"));
                std::fs::create_dir_all(&dir).map_err(|e| EngineError::internal(e.to_string()))?;
                let file = std::fs::File::open(&r.path)
                    .map_err(|e| EngineError::internal(e.to_string()))?;
                berth_context::extract(
                    decompress(file)?,
                    &dir,
                    &berth_context::ExtractOptions::default(),
                )
                .map_err(|e| EngineError::invalid(format!("invalid archive: {e}")))?;
                *r = resolve_in(&dir, ".").map_err(|e| EngineError::internal(e.to_string()))?;
                in_context[n] = false;
            }
        }
        let dest = absolute_dest(dest, &st.config.working_dir);
        if resolved.len() > 1 && !dest.ends_with('/') {
            return Err(EngineError::invalid(format!(
                "When using {kind} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let mut hasher = Sha256Writer::new();
        let none = FileDigests::default();
        for (r, known) in resolved.iter().zip(&in_context) {
            let digests = if *known { &self.context.digests } else { &none };
            hash_tree(&r.path, &r.name, digests, &mut hasher)
                .map_err(|e| EngineError::internal(e.to_string()))?;
        }
        let content = hasher.peek();
        let key = format!("{key_base}\n{dest}\n{content}");
        if let Some(id) = self.cache_hit(&key).await {
            return Ok(id);
        }
        let owner = match chown {
            Some(spec) if !spec.is_empty() => self.owner(st, spec)?,
            _ => (0, 0),
        };
        let mode = match chmod {
            Some(m) if !m.is_empty() => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| EngineError::invalid(format!("invalid chmod parameter: {m:?}")))?,
            ),
            _ => None,
        };
        let cid = self.scratch_container(st, vec!["/bin/sh".into()]).await?;
        let sources: Vec<_> = resolved
            .iter()
            .map(|r| (r.path.clone(), r.name.clone()))
            .collect();
        let copied = self
            .engine
            .copy_into_container(
                &cid,
                sources,
                dest.clone(),
                CopyOptions {
                    owner,
                    mode,
                    preserve: false,
                },
            )
            .await;
        let created_by = format!(
            "/bin/sh -c #(nop) {kind} {}:{} in {dest} ",
            if resolved.iter().any(|r| r.is_dir) {
                "dir"
            } else {
                "file"
            },
            content.hex()
        );
        let id = self
            .finish_step(&cid, copied.map(|_| ()), created_by, Vec::new())
            .await?;
        tracing::debug!(step = original, image = %id, "copied");
        self.engine.build_cache_put(&key, &id)?;
        Ok(id)
    }

    /// WORKDIR: the directory is created in the image when it is missing (as Docker's
    /// builder does), in the same step that sets it.
    async fn workdir_step(&self, st: &mut State, wd: &str, original: &str) -> Result<Digest> {
        let exists = match &st.image {
            Some(id) => {
                let view = self.engine.image_view(id)?;
                berth_runtime::user::open_in_root(view.path(), wd)
                    .and_then(|f| f.metadata())
                    .is_ok_and(|m| m.is_dir())
            }
            None => false,
        };
        let created_by = format!("/bin/sh -c #(nop) {original}");
        let change = format!("WORKDIR {wd}");
        if exists {
            let wd = wd.to_string();
            return self.engine.derive_image(
                st.image.as_ref(),
                move |c| c.working_dir = wd,
                StepHistory {
                    created_by,
                    created: created_at(&self.opts.build_args),
                    ..Default::default()
                },
            );
        }
        let empty = tempfile::tempdir().map_err(|e| EngineError::internal(e.to_string()))?;
        let cid = self.scratch_container(st, vec!["/bin/sh".into()]).await?;
        let made = self
            .engine
            .copy_into_container(
                &cid,
                vec![(empty.path().to_path_buf(), String::new())],
                wd.to_string(),
                CopyOptions::default(),
            )
            .await;
        self.finish_step(&cid, made.map(|_| ()), created_by, vec![change])
            .await
    }

    /// Commits a step's container when its work succeeded, then removes it either way.
    async fn finish_step(
        &self,
        cid: &str,
        work: Result<()>,
        created_by: String,
        changes: Vec<String>,
    ) -> Result<Digest> {
        let id = match work {
            Ok(()) => {
                self.engine
                    .commit_container(
                        cid,
                        CommitOptions {
                            created_by: Some(created_by),
                            keep_image_config: true,
                            changes,
                            mtime_clamp: source_date_epoch(&self.opts.build_args),
                            created: created_at(&self.opts.build_args),
                            ..Default::default()
                        },
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        let removed = self.engine.remove_container(cid, true, true).await;
        let id = id?;
        removed?;
        Ok(id)
    }

    /// The image an earlier stage produced, looked up by name or index.
    async fn stage_image(&self, f: &str) -> Result<Digest> {
        let lower = f.to_lowercase();
        let idx = self
            .df
            .stages
            .iter()
            .position(|s| s.name() == Some(lower.as_str()))
            .or_else(|| f.parse::<usize>().ok());
        idx.and_then(|i| self.results.get(i).cloned().flatten())
            .ok_or_else(|| {
                EngineError::invalid(format!(
                    "COPY --from={f}: no stage of that name or index was built before this one"
                ))
            })
    }

    /// `--chown`: numeric ids, or names looked up in the image's own /etc/passwd and group.
    fn owner(&self, st: &State, spec: &str) -> Result<(u32, u32)> {
        let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
        let num = |s: &str| s.parse::<u32>().ok();
        let gid = if g.is_empty() { num(u) } else { num(g) };
        if let (Some(uid), Some(gid)) = (num(u), gid) {
            return Ok((uid, gid));
        }
        let Some(image) = &st.image else {
            return Err(EngineError::invalid(format!(
                "unable to convert uid/gid chown string {spec:?} to host mapping: no /etc/passwd in scratch"
            )));
        };
        let view = self.engine.image_view(image)?;
        let user = berth_runtime::user::resolve(view.path(), spec).map_err(|e| {
            EngineError::invalid(format!(
                "unable to convert uid/gid chown string {spec:?}: {e}"
            ))
        })?;
        Ok((user.uid, user.gid))
    }
}

fn run_argv(run: &berth_dockerfile::Run, shell: &[String]) -> Result<Vec<String>> {
    // A heredoc-only RUN (`RUN <<EOF … EOF`) runs its body as the script.
    if let (CommandLine::Shell(s), Some(h)) = (&run.command, run.heredocs.first()) {
        if s.trim_start().starts_with("<<") && run.heredocs.len() == 1 {
            let mut v = shell.to_vec();
            v.push(h.content.clone());
            return Ok(v);
        }
    }
    Ok(argv(&run.command, shell))
}

/// Docker joins a relative destination to the WORKDIR, keeping a trailing slash.
fn absolute_dest(dest: &str, workdir: &str) -> String {
    if dest.starts_with('/') {
        return dest.to_string();
    }
    let base = if workdir.is_empty() { "/" } else { workdir };
    let d = dest.trim_start_matches("./");
    if d == "." || d.is_empty() {
        return format!("{}/", base.trim_end_matches('/'));
    }
    format!("{}/{d}", base.trim_end_matches('/'))
}

fn source_date_epoch(args: &BTreeMap<String, String>) -> Option<u64> {
    args.get("SOURCE_DATE_EPOCH")
        .and_then(|v| v.trim().parse().ok())
}

/// With SOURCE_DATE_EPOCH, every image records that time: the same inputs, the same image ID.
pub(crate) fn created_at(args: &BTreeMap<String, String>) -> Option<chrono::DateTime<chrono::Utc>> {
    source_date_epoch(args)
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
}

fn is_archive(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let n = f.read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

fn decompress(file: std::fs::File) -> Result<Box<dyn Read>> {
    let mut b = std::io::BufReader::new(file);
    let head =
        std::io::BufRead::fill_buf(&mut b).map_err(|e| EngineError::internal(e.to_string()))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(b)))
    } else {
        Ok(Box::new(b))
    }
}

/// A deterministic hash of a source tree: each entry's relative path, type, mode, size and
/// content digest (or link target), children sorted. Owners are left out: COPY sets its own.
/// Digests the context's extraction took are used instead of reading the files again.
fn hash_tree(
    path: &Path,
    rel: &str,
    digests: &FileDigests,
    h: &mut Sha256Writer,
) -> std::io::Result<()> {
    // The source itself is followed, as the copy follows it (it is a resolved
    // `/proc/self/fd/N` link); what is below it is hashed as it is.
    hash_entry(path, rel, digests, h, std::fs::metadata(path)?)
}

fn hash_entry(
    path: &Path,
    rel: &str,
    digests: &FileDigests,
    h: &mut Sha256Writer,
    meta: std::fs::Metadata,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let ft = meta.file_type();
    write!(h, "{rel}\0{}\0", meta.permissions().mode())?;
    if ft.is_symlink() {
        let t = std::fs::read_link(path)?;
        write!(h, "L{}\0", t.display())?;
    } else if ft.is_dir() {
        h.write_all(b"D\0")?;
        let mut names: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        for n in names {
            let child = format!("{rel}/{}", n.to_string_lossy());
            let p = path.join(&n);
            let m = std::fs::symlink_metadata(&p)?;
            hash_entry(&p, &child, digests, h, m)?;
        }
    } else if ft.is_file() {
        let digest = match digests.get(&meta) {
            Some(d) => d,
            None => berth_context::content_digest(path)?,
        };
        write!(h, "F{}\0", meta.len())?;
        h.write_all(&digest)?;
    }
    Ok(())
}

type ConfigEdit = Box<dyn FnOnce(&mut RunConfig) + Send>;

/// The config change of a non-filesystem instruction.
fn config_edit(
    ins: &Instruction,
    st: &State,
    scope: &berth_dockerfile::StageScope<'_>,
) -> Result<ConfigEdit> {
    let shell = st.shell();
    let cmd_set = st.cmd_set;
    Ok(match ins.clone() {
        Instruction::Cmd { command } => {
            let v = argv(&command, &shell);
            Box::new(move |c| c.cmd = Some(v))
        }
        Instruction::Entrypoint { command } => {
            let v = argv(&command, &shell);
            Box::new(move |c| {
                c.entrypoint = Some(v);
                // An ENTRYPOINT drops the base image's CMD unless this stage set one.
                if !cmd_set {
                    c.cmd = None;
                }
            })
        }
        Instruction::Env { .. } => {
            let env: Vec<String> = scope
                .image_env()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            Box::new(move |c| c.env = env)
        }
        Instruction::Expose { ports } => Box::new(move |c| {
            for p in ports {
                let p = if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                };
                c.exposed_ports.insert(p, json!({}));
            }
        }),
        Instruction::Volume { paths } => Box::new(move |c| {
            for p in paths {
                c.volumes.insert(p, json!({}));
            }
        }),
        Instruction::User { user } => Box::new(move |c| c.user = user),
        Instruction::Label { labels } => Box::new(move |c| {
            for kv in labels {
                c.labels.insert(kv.key, kv.value);
            }
        }),
        Instruction::Maintainer { .. } => Box::new(|_| {}),
        Instruction::Stopsignal { signal } => Box::new(move |c| c.stop_signal = Some(signal)),
        Instruction::Shell { shell } => Box::new(move |c| {
            c.extra.insert("Shell".into(), json!(shell));
        }),
        Instruction::Healthcheck(h) => {
            let v = match h {
                Healthcheck::None => json!({ "Test": ["NONE"] }),
                Healthcheck::Cmd {
                    test,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => {
                    let test = match test {
                        CommandLine::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v);
                            t
                        }
                        CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s],
                    };
                    let mut m = serde_json::Map::new();
                    m.insert("Test".into(), json!(test));
                    for (k, v) in [
                        ("Interval", interval),
                        ("Timeout", timeout),
                        ("StartPeriod", start_period),
                        ("StartInterval", start_interval),
                    ] {
                        if let Some(v) = v {
                            m.insert(k.into(), json!(v));
                        }
                    }
                    if let Some(r) = retries {
                        m.insert("Retries".into(), json!(r));
                    }
                    Value::Object(m)
                }
            };
            Box::new(move |c| {
                c.extra.insert("Healthcheck".into(), v);
            })
        }
        Instruction::Onbuild(o) => Box::new(move |c| {
            let list = c.extra.entry("OnBuild").or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(json!(o.expression));
            } else {
                *list = json!([o.expression]);
            }
        }),
        Instruction::Arg { .. }
        | Instruction::Run(_)
        | Instruction::Copy(_)
        | Instruction::Add(_)
        | Instruction::Workdir { .. } => {
            return Err(EngineError::internal("not a config instruction"))
        }
    })
}
