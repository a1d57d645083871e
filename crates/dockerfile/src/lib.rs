//! The Dockerfile parser of berth's image builder.
//!
//! Three layers, each usable alone:
//!
//! 1. [`parse_raw`]: text to [`RawInstruction`]s — parser directives, comments, line
//!    continuations, heredoc bodies, `--flags`, and arguments split by the rule of each keyword
//!    (JSON exec form, whitespace words, `ENV`/`LABEL` pairs). BuildKit's `parser` package.
//! 2. [`parse`]: raw instructions to a typed [`Dockerfile`] of [`Stage`]s, every instruction and
//!    flag checked as Docker checks it, still unsubstituted. BuildKit's `instructions` package.
//! 3. Substitution while building, stage by stage, as Docker does: a [`GlobalScope`] holds the
//!    build arguments and the `ARG`s before the first `FROM` (usable only in `FROM` lines) and
//!    expands each `FROM`; a [`StageScope`] tracks a stage's `ARG`s and `ENV`s (an `ARG` must be
//!    redeclared in the stage to be seen there; `ENV` wins over `ARG`) and expands each
//!    instruction just before it runs. [`expand`] and [`Lexer`] substitute in any word.
//!
//! ```
//! use std::collections::BTreeMap;
//! use berth_dockerfile::{builtin_args, parse, GlobalScope, Instruction, Platform};
//!
//! let df = parse("ARG TAG=1.36\nFROM busybox:$TAG AS base\nARG TAG\nWORKDIR /src/$TAG\n")?;
//! let platform = Platform::new("linux", "amd64", None);
//! let mut global = GlobalScope::new(BTreeMap::new(), builtin_args(&platform, &platform, None));
//! global.declare(&df)?;
//! for stage in &df.stages {
//!     let from = global.expand_from(&stage.from, df.escape())?;
//!     assert_eq!(from.image, "busybox:1.36");
//!     let mut scope = global.stage(Vec::new(), df.escape());
//!     for (n, step) in stage.instructions.iter().enumerate() {
//!         let ins = scope.evaluate(step)?;
//!         if let Instruction::Workdir { path } = &ins {
//!             assert_eq!(path, "/src/1.36");
//!             assert_eq!(step.original, "WORKDIR /src/$TAG");
//!             assert_eq!((n, step.location.start_line), (1, 4));
//!         }
//!     }
//! }
//! # Ok::<(), berth_dockerfile::Error>(())
//! ```
//!
//! # Why not a crate from crates.io
//!
//! `parse-dockerfile` (maintained, with spans, flags, heredocs and directives) was evaluated
//! and not used: its error type is an opaque message whose wording is not Docker's (so
//! `berth build` could not print what `docker build` prints); `ENV`, `LABEL` and `ARG` are left
//! as one unsplit string; shell-form commands keep their continuation backslashes and
//! comment lines; flags are not checked; a heredoc-only `RUN` loses its `<<EOF` command text;
//! and there is no variable substitution or ARG/ENV scoping. Wrapping it would have meant
//! re-lexing nearly every line, so the parser is written here, following the structure and
//! rules of BuildKit's Dockerfile frontend (read, not translated). `dockerfile-parser` is
//! unmaintained.
//!
//! # Bounded work
//!
//! No input panics. Physical lines longer than [`MAX_LINE_LEN`] are refused (as Docker's
//! scanner refuses them), `ONBUILD` chains stop at the first nesting, and substitution is
//! bounded in nesting depth ([`lex::MAX_NESTING`]) and result size ([`lex::MAX_EXPANDED_LEN`]).

mod duration;
mod error;
mod flags;
mod heredoc;
mod instruction;
pub mod lex;
mod mount;
mod raw;
mod scope;
mod words;

use serde::Serialize;

pub use error::{Error, Reason};
pub use heredoc::Heredoc;
pub use instruction::{
    Add, ArgDecl, CommandLine, Copy, From, Healthcheck, Instruction, KeyValue, Network, Onbuild,
    Run, Security, Source, INSTRUCTIONS,
};
pub use lex::{expand, expand_words, ExpandError, ExpandReason, Lexer, NoVars, Vars};
pub use mount::{Mount, MountField, MountSpec, MountType, Sharing};
pub use raw::{
    parse_raw, Directives, Location, RawArgs, RawDockerfile, RawInstruction, RawKeyValue, Warning,
    MAX_LINE_LEN,
};
pub use scope::{builtin_args, GlobalScope, Platform, StageScope, PROXY_ARGS};

/// A value with the place it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    pub value: T,
    pub location: Location,
    /// The instruction as written, continuations joined (Docker's `Step N/M : <original>`).
    pub original: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub directives: Directives,
    /// `ARG`s before the first `FROM`: usable in `FROM` lines, and as defaults of the same
    /// `ARG` redeclared in a stage.
    pub meta_args: Vec<Spanned<Vec<ArgDecl>>>,
    pub stages: Vec<Stage>,
    /// What Docker warns about (empty continuation lines, duplicate stage names).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The escape character (`# escape=`), which substitution needs.
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// The stage a `--target` or `COPY --from` names: a name (any case) or an index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }

    /// Every `ARG` name declared anywhere, for Docker's "build-args were not consumed" warning.
    pub fn declared_args(&self) -> std::collections::BTreeSet<String> {
        let meta = self.meta_args.iter().flat_map(|m| m.value.iter());
        let staged = self.stages.iter().flat_map(|s| {
            s.instructions.iter().flat_map(|i| match &i.value {
                Instruction::Arg { args } => args.as_slice(),
                _ => &[],
            })
        });
        meta.chain(staged).map(|a| a.name.clone()).collect()
    }
}

/// A build stage: a `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub from: Spanned<From>,
    pub instructions: Vec<Spanned<Instruction>>,
}

impl Stage {
    /// `AS name`, lowercased.
    pub fn name(&self) -> Option<&str> {
        self.from.value.name.as_deref()
    }

    /// The base as written (image, earlier stage or `scratch`), unsubstituted.
    pub fn base(&self) -> &str {
        &self.from.value.image
    }

    /// `--platform` as written, unsubstituted.
    pub fn platform(&self) -> Option<&str> {
        self.from.value.platform.as_deref()
    }
}

/// Parses a whole Dockerfile into stages of checked, unsubstituted instructions.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    if text.is_empty() {
        return Err(Error::Empty);
    }
    let raw = parse_raw(text)?;
    let escape = raw.directives.escape;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut warnings = raw.warnings;
    for inst in raw.instructions {
        let line = inst.location.start_line;
        let err = |r| Error::syntax(line, r);
        let location = inst.location;
        let original = inst.original.clone();
        fn spanned<T>(value: T, location: Location, original: String) -> Spanned<T> {
            Spanned {
                value,
                location,
                original,
            }
        }
        if instruction::is_from(&inst).map_err(err)? {
            let from = instruction::from_raw(&inst).map_err(err)?;
            if let Some(name) = &from.name {
                if !names.insert(name.clone()) {
                    warnings.push(Warning {
                        line,
                        message: format!(
                            "Duplicate stage name {}, stage names should be unique",
                            error::go_quote(name)
                        ),
                    });
                }
            }
            stages.push(Stage {
                from: spanned(from, location, original),
                instructions: Vec::new(),
            });
            continue;
        }
        let value = instruction::instruction_from_raw(&inst, escape).map_err(err)?;
        match (stages.last_mut(), value) {
            (Some(stage), value) => stage.instructions.push(spanned(value, location, original)),
            (None, Instruction::Arg { args }) => meta_args.push(spanned(args, location, original)),
            (None, _) => return Err(err(Reason::NoBuildStage)),
        }
    }
    if stages.is_empty() {
        return Err(Error::NoStages);
    }
    Ok(Dockerfile {
        directives: raw.directives,
        meta_args,
        stages,
        warnings,
    })
}

/// Parses an `ONBUILD` trigger stored in a base image (`RUN make`, heredocs included) into the
/// instruction a child build runs before its own first instruction.
pub fn parse_trigger(expression: &str) -> Result<Spanned<Instruction>, Error> {
    let raw = parse_raw(expression)?;
    let mut instructions = raw.instructions.into_iter();
    let (Some(inst), None) = (instructions.next(), instructions.next()) else {
        return Err(Error::syntax(1, Reason::OnbuildNotSingle));
    };
    let line = inst.location.start_line;
    let err = |r| Error::syntax(line, r);
    let kw = inst.keyword.to_ascii_uppercase();
    match kw.as_str() {
        "ONBUILD" => return Err(err(Reason::OnbuildChain)),
        "FROM" | "MAINTAINER" => return Err(err(Reason::OnbuildTrigger(kw))),
        _ => {}
    }
    let value = instruction::instruction_from_raw(&inst, raw.directives.escape).map_err(err)?;
    Ok(Spanned {
        value,
        location: inst.location,
        original: inst.original,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn df(text: &str) -> Dockerfile {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn stages_by_name_or_index() {
        let d = df("ARG A\nFROM x AS Build\nARG B=1\nFROM build\nARG A\n");
        assert_eq!(d.stage("BUILD").map(Stage::base), Some("x"));
        assert_eq!(d.stage("1").map(Stage::base), Some("build"));
        assert!(d.stage("2").is_none());
        let names: Vec<String> = d.declared_args().into_iter().collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(d.stages[0].instructions[0].location.start_line, 3);
    }

    #[test]
    fn triggers() {
        let t = parse_trigger("RUN <<EOF\necho on build\nEOF").unwrap_or_else(|e| panic!("{e}"));
        let Instruction::Run(run) = &t.value else {
            panic!("not a RUN: {t:?}");
        };
        assert_eq!(run.heredocs[0].content, "echo on build\n");
        assert_eq!(
            parse_trigger("FROM x").map_err(|e| e.to_string()),
            Err(
                "dockerfile parse error on line 1: FROM isn't allowed as an ONBUILD trigger".into()
            )
        );
        assert!(parse_trigger("RUN a\nRUN b").is_err());
        assert!(parse_trigger("FOO x").is_err());
        // A trigger stored by a parent round-trips through its expression.
        let d = df("FROM a\nONBUILD COPY <<EOF /x\nhi\nEOF\n");
        let Instruction::Onbuild(o) = &d.stages[0].instructions[0].value else {
            panic!("not ONBUILD");
        };
        let t = parse_trigger(&o.expression).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&t.value, Instruction::Copy(c) if c.dest == "/x"));
    }

    #[test]
    fn raw_layer_keeps_what_was_written() {
        let raw = parse_raw("FROM a\nrun --network=none echo \\\n  $HOME\nFORM x\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let run = &raw.instructions[1];
        assert_eq!(run.keyword, "run");
        assert_eq!(run.flags, ["--network=none"]);
        assert_eq!(run.args, RawArgs::Text("echo   $HOME".into()));
        assert_eq!(run.original, "run --network=none echo   $HOME");
        // Unknown keywords pass the raw layer; the typed layer refuses them.
        assert_eq!(raw.instructions[2].keyword, "FORM");
        assert_eq!(
            parse("").map_err(|e| e.to_string()),
            Err("the Dockerfile cannot be empty".into())
        );
    }
}
