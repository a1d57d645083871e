//! Which variables an instruction sees, following Docker's rules:
//!
//! - build arguments (`--build-arg`) take effect only where an `ARG` declares them;
//! - `ARG`s before the first `FROM` (and the platform arguments) are visible in `FROM` lines
//!   only; a stage sees one only after redeclaring it (`ARG NAME` without a default);
//! - in a stage, `ENV` (and the base image's environment) always wins over an `ARG` of the
//!   same name;
//! - the proxy arguments (`HTTP_PROXY`, ...) need no `ARG` to reach `RUN`'s environment.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Reason};
use crate::instruction::{ArgDecl, From, Instruction};
use crate::lex::{ExpandError, Lexer, Vars};
use crate::{Dockerfile, Spanned};

/// Build arguments Docker predefines: passed to `RUN` without an `ARG`, kept out of history.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An OS/architecture pair, for the automatic platform arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// `linux/arm64/v8`.
    pub fn format(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// The automatic global arguments: `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH`, `BUILDVARIANT`,
/// `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`, `TARGETVARIANT` (and the `*OSVERSION` pair,
/// empty), and `TARGETSTAGE` (`default` without `--target`).
pub fn builtin_args(
    build: &Platform,
    target: &Platform,
    target_stage: Option<&str>,
) -> BTreeMap<String, String> {
    let variant = |p: &Platform| p.variant.clone().unwrap_or_default();
    [
        ("BUILDPLATFORM", build.format()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", variant(build)),
        ("TARGETPLATFORM", target.format()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", variant(target)),
        ("TARGETSTAGE", target_stage.unwrap_or("default").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The variables of `FROM` lines, and what stages inherit when they redeclare an `ARG`.
#[derive(Debug, Clone)]
pub struct GlobalScope {
    build_args: BTreeMap<String, String>,
    globals: BTreeMap<String, String>,
}

impl GlobalScope {
    /// `build_args` are the user's `--build-arg`s; `builtins` usually [`builtin_args`]. A build
    /// argument named like a builtin overrides it.
    pub fn new(build_args: BTreeMap<String, String>, builtins: BTreeMap<String, String>) -> Self {
        let mut globals = builtins;
        for (k, v) in globals.iter_mut() {
            if let Some(o) = build_args.get(k) {
                v.clone_from(o);
            }
        }
        GlobalScope {
            build_args,
            globals,
        }
    }

    /// Evaluates the `ARG`s before the first `FROM`, in order.
    pub fn declare(&mut self, dockerfile: &Dockerfile) -> Result<(), Error> {
        for meta in &dockerfile.meta_args {
            self.declare_args(&meta.value, dockerfile.escape())
                .map_err(|source| Error::Expand {
                    line: meta.location.start_line,
                    source,
                })?;
        }
        Ok(())
    }

    /// One meta `ARG`: the build argument if given, else the default expanded with the globals
    /// so far; declared without either, it stays unset.
    pub fn declare_args(&mut self, args: &[ArgDecl], escape: char) -> Result<(), ExpandError> {
        for arg in args {
            let value = match (self.build_args.get(&arg.name), &arg.value) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => {
                    Some(Lexer::new(escape).process_word(default, &self.globals)?)
                }
                (None, None) => None,
            };
            if let Some(v) = value {
                self.globals.insert(arg.name.clone(), v);
            }
        }
        Ok(())
    }

    /// A global's value (a meta `ARG` or a builtin).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.globals.get(name).map(String::as_str)
    }

    /// The user's build arguments.
    pub fn build_args(&self) -> &BTreeMap<String, String> {
        &self.build_args
    }

    /// A stage's `FROM` with its base and platform substituted.
    pub fn expand_from(&self, from: &Spanned<From>, escape: char) -> Result<From, Error> {
        let line = from.location.start_line;
        let lex = Lexer::new(escape);
        let expand_err = |source| Error::Expand { line, source };
        let image = lex
            .process_word(&from.value.image, &self.globals)
            .map_err(expand_err)?;
        if image.is_empty() {
            return Err(Error::syntax(
                line,
                Reason::BlankBaseName(from.value.image.clone()),
            ));
        }
        let platform = match &from.value.platform {
            Some(p) => {
                let v = lex.process_word(p, &self.globals).map_err(expand_err)?;
                if v.is_empty() {
                    return Err(Error::syntax(line, Reason::EmptyPlatform(p.clone())));
                }
                Some(v)
            }
            None => None,
        };
        Ok(From {
            image,
            name: from.value.name.clone(),
            platform,
        })
    }

    /// The scope of a stage whose base image has environment `image_env` (`KEY=VALUE`
    /// entries of its config split, in order).
    pub fn stage(&self, image_env: Vec<(String, String)>, escape: char) -> StageScope<'_> {
        let mut env = OrderedVars::default();
        for (k, v) in image_env {
            env.set(&k, v);
        }
        StageScope {
            global: self,
            escape,
            env,
            args: OrderedVars::default(),
        }
    }
}

/// The variables of one stage as its instructions run.
#[derive(Debug, Clone)]
pub struct StageScope<'g> {
    global: &'g GlobalScope,
    escape: char,
    env: OrderedVars,
    args: OrderedVars,
}

/// Variables in first-set order, with an index so that thousands of `ENV`s stay linear.
#[derive(Debug, Clone, Default)]
struct OrderedVars {
    list: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedVars {
    fn set(&mut self, key: &str, value: String) {
        match self.index.get(key).and_then(|&i| self.list.get_mut(i)) {
            Some((_, v)) => *v = value,
            None => {
                self.index.insert(key.to_string(), self.list.len());
                self.list.push((key.to_string(), value));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        let i = *self.index.get(key)?;
        self.list.get(i).map(|(_, v)| v.as_str())
    }
}

impl Vars for StageScope<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.env.get(name).or_else(|| self.args.get(name))
    }
}

impl StageScope<'_> {
    /// Substitutes `step` with the variables in effect, then applies its effect on them
    /// (`ARG` declares, `ENV` sets). An `ARG` comes back with the values it resolved to.
    pub fn evaluate(&mut self, step: &Spanned<Instruction>) -> Result<Instruction, Error> {
        let line = step.location.start_line;
        let expand_err = |source| Error::Expand { line, source };
        match &step.value {
            Instruction::Arg { args } => {
                let mut resolved = Vec::with_capacity(args.len());
                for arg in args {
                    let value = match (self.global.build_args.get(&arg.name), &arg.value) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(default)) => Some(
                            Lexer::new(self.escape)
                                .process_word(default, &*self)
                                .map_err(expand_err)?,
                        ),
                        (None, None) => self.global.get(&arg.name).map(str::to_string),
                    };
                    if let Some(v) = &value {
                        self.args.set(&arg.name, v.clone());
                    }
                    resolved.push(ArgDecl {
                        name: arg.name.clone(),
                        value,
                    });
                }
                Ok(Instruction::Arg { args: resolved })
            }
            other => {
                let expanded = other.expand(&*self, self.escape).map_err(expand_err)?;
                match &expanded {
                    Instruction::Env { vars } => {
                        for kv in vars {
                            self.env.set(&kv.key, kv.value.clone());
                        }
                    }
                    Instruction::Run(run) => {
                        for m in &run.mounts {
                            m.to_mount()
                                .map_err(|e| Error::syntax(line, Reason::Mount(e)))?;
                        }
                    }
                    _ => {}
                }
                Ok(expanded)
            }
        }
    }

    /// The environment the image config records: the base image's plus `ENV`s, in order.
    pub fn image_env(&self) -> &[(String, String)] {
        &self.env.list
    }

    /// The environment of a `RUN`: the image environment, then the stage's `ARG`s that no
    /// `ENV` overrides, then the proxy build arguments not otherwise set.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.list.clone();
        for (k, v) in &self.args.list {
            if self.env.get(k).is_none() {
                out.push((k.clone(), v.clone()));
            }
        }
        for name in PROXY_ARGS {
            if let Some(v) = self.global.build_args.get(name) {
                if self.lookup(name).is_none() {
                    out.push((name.to_string(), v.clone()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(text: &str, build_args: &[(&str, &str)]) -> Result<Vec<Vec<Instruction>>, Error> {
        let df = parse(text)?;
        let amd64 = Platform::new("linux", "amd64", None);
        let mut global = GlobalScope::new(args(build_args), builtin_args(&amd64, &amd64, None));
        global.declare(&df)?;
        let mut out = Vec::new();
        for stage in &df.stages {
            global.expand_from(&stage.from, df.escape())?;
            let mut scope = global.stage(vec![("PATH".into(), "/bin".into())], df.escape());
            let mut steps = Vec::new();
            for step in &stage.instructions {
                steps.push(scope.evaluate(step)?);
            }
            out.push(steps);
        }
        Ok(out)
    }

    fn workdirs(text: &str, build_args: &[(&str, &str)]) -> Vec<String> {
        run(text, build_args)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .flatten()
            .filter_map(|i| match i {
                Instruction::Workdir { path } => Some(path),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn meta_args_only_in_from_until_redeclared() {
        let text = "ARG V=1\nFROM a:$V\nWORKDIR /$V\nARG V\nWORKDIR /$V\n";
        assert_eq!(workdirs(text, &[]), ["/", "/1"]);
        assert_eq!(workdirs(text, &[("V", "2")]), ["/", "/2"]);
    }

    #[test]
    fn build_args_need_a_declaration() {
        let text = "FROM a\nWORKDIR /$X\nARG X\nWORKDIR /$X\nARG Y=dflt\nWORKDIR /$Y\n";
        assert_eq!(workdirs(text, &[("X", "x")]), ["/", "/x", "/dflt"]);
        assert_eq!(workdirs(text, &[("Y", "given")]), ["/", "/", "/given"]);
    }

    #[test]
    fn env_wins_over_arg() {
        let text = "FROM a\nARG V=arg\nENV V=env\nWORKDIR /$V\nARG V=again\nWORKDIR /$V\nARG PATH=x\nWORKDIR $PATH\n";
        assert_eq!(workdirs(text, &[("V", "cli")]), ["/env", "/env", "/bin"]);
    }

    #[test]
    fn env_pairs_see_previous_values() {
        let text = "FROM a\nENV A=1\nENV A=2 B=$A\nWORKDIR /$A$B\n";
        assert_eq!(workdirs(text, &[]), ["/21"]);
    }

    #[test]
    fn builtins() {
        let text = "FROM --platform=$BUILDPLATFORM a\nWORKDIR /$TARGETARCH\nARG TARGETARCH\nWORKDIR /$TARGETARCH\n";
        assert_eq!(workdirs(text, &[]), ["/", "/amd64"]);
        let df = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let amd64 = Platform::new("linux", "arm64", Some("v8"));
        let global = GlobalScope::new(args(&[]), builtin_args(&amd64, &amd64, None));
        let from = global
            .expand_from(&df.stages[0].from, '\\')
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from.platform.as_deref(), Some("linux/arm64/v8"));
    }

    #[test]
    fn from_errors() {
        let e = run("ARG X\nFROM $X\n", &[]).expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: base name ($X) should not be blank"
        );
        let e = run("FROM --platform=$P a\n", &[]).expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 1: empty platform value from expression $P"
        );
        let e = run("FROM a\nENV A=\"${B:?B is required}\"\n", &[]).expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: failed to process \"\\\"${B:?B is required}\\\"\": B: B is required"
        );
    }

    #[test]
    fn run_env() {
        let df = parse("FROM a\nARG A=1\nENV B=2\nARG B=3\n").unwrap_or_else(|e| panic!("{e}"));
        let amd64 = Platform::new("linux", "amd64", None);
        let global = GlobalScope::new(
            args(&[("HTTP_PROXY", "http://p"), ("OTHER", "x")]),
            builtin_args(&amd64, &amd64, None),
        );
        let mut scope = global.stage(Vec::new(), '\\');
        for step in &df.stages[0].instructions {
            scope.evaluate(step).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(scope.image_env(), [("B".to_string(), "2".to_string())]);
        let env = scope.run_env();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["B", "A", "HTTP_PROXY"]);
    }

    #[test]
    fn mounts_checked_after_substitution() {
        let text = "FROM a\nARG T=cache\nRUN --mount=type=$T,target=/c true\nARG U=bogus\nRUN --mount=type=$U true\n";
        let e = run(text, &[]).expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 5: unsupported mount type \"bogus\""
        );
        let Ok(out) = run(
            "FROM a\nARG T=cache\nRUN --mount=type=$T,target=/c true\n",
            &[],
        ) else {
            panic!("mount");
        };
        let Some(Instruction::Run(r)) = out[0].get(1) else {
            panic!("no run");
        };
        let m = r.mounts[0].to_mount().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.kind, crate::MountType::Cache);
    }
}
