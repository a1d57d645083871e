//! The second pass: raw instructions to typed ones, checked as BuildKit's `instructions`
//! package checks them, and their variable substitution.
//!
//! Words of the instructions Docker substitutes in (`ENV`, `COPY`, `WORKDIR`, ...) are kept as
//! written, quotes and escapes included: quote removal is part of substitution, as in Docker,
//! so it happens in [`Instruction::expand`].

use serde::Serialize;

use crate::duration::parse_go_duration;
use crate::error::{suggest, Reason};
use crate::flags::{Flags, Kind};
use crate::heredoc::{chomp, parse_heredoc, Heredoc};
use crate::lex::{ExpandError, Lexer, NoVars, Vars};
use crate::mount::MountSpec;
use crate::raw::{RawArgs, RawInstruction};

/// Every instruction keyword Docker knows, lowercase.
pub const INSTRUCTIONS: [&str; 18] = [
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// A `FROM` line: the start of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// The base: an image reference, an earlier stage's name, or `scratch`; unsubstituted.
    pub image: String,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// `--platform=`, unsubstituted.
    pub platform: Option<String>,
}

impl From {
    /// `FROM scratch` (an empty base), compared as Docker does, ignoring case.
    pub fn is_scratch(&self) -> bool {
        self.image.eq_ignore_ascii_case("scratch")
    }
}

/// Any instruction after `FROM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum Instruction {
    Run(Run),
    Cmd {
        command: CommandLine,
    },
    Entrypoint {
        command: CommandLine,
    },
    Env {
        vars: Vec<KeyValue>,
    },
    Arg {
        args: Vec<ArgDecl>,
    },
    Workdir {
        path: String,
    },
    Copy(Copy),
    Add(Add),
    /// Ports as written (`80/tcp`); may hold variables until expanded.
    Expose {
        ports: Vec<String>,
    },
    Volume {
        paths: Vec<String>,
    },
    User {
        user: String,
    },
    Label {
        labels: Vec<KeyValue>,
    },
    Maintainer {
        name: String,
    },
    Healthcheck(Healthcheck),
    Stopsignal {
        signal: String,
    },
    Shell {
        shell: Vec<String>,
    },
    Onbuild(Onbuild),
}

impl Instruction {
    /// The keyword, uppercase.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Cmd { .. } => "CMD",
            Instruction::Entrypoint { .. } => "ENTRYPOINT",
            Instruction::Env { .. } => "ENV",
            Instruction::Arg { .. } => "ARG",
            Instruction::Workdir { .. } => "WORKDIR",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Expose { .. } => "EXPOSE",
            Instruction::Volume { .. } => "VOLUME",
            Instruction::User { .. } => "USER",
            Instruction::Label { .. } => "LABEL",
            Instruction::Maintainer { .. } => "MAINTAINER",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Stopsignal { .. } => "STOPSIGNAL",
            Instruction::Shell { .. } => "SHELL",
            Instruction::Onbuild(_) => "ONBUILD",
        }
    }
}

/// Exec form (JSON array, run as is) or shell form (run by the stage's `SHELL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", content = "args", rename_all = "lowercase")]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: CommandLine,
    /// Heredoc bodies the command line refers to, `<<-` tabs already stripped.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values; [`MountSpec::to_mount`] checks one once substituted.
    pub mounts: Vec<MountSpec>,
    pub network: Network,
    pub security: Security,
    /// `--device` values, as written.
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    /// The default as written; once evaluated by a scope, the value in effect.
    pub value: Option<String>,
}

/// A `COPY`/`ADD` source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Source {
    /// A path in the context (or stage, or a URL for `ADD`).
    Path(String),
    /// `<<name`: a file named `name` with the heredoc's body.
    Heredoc(Heredoc),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    /// `--from=`: a stage name or index, or an image.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    Cmd {
        /// Exec form is Docker's `["CMD", ...]`, shell form its `["CMD-SHELL", cmd]`.
        test: CommandLine,
        /// Nanoseconds; `None` when not given or zero (inherit).
        interval: Option<u64>,
        timeout: Option<u64>,
        start_period: Option<u64>,
        start_interval: Option<u64>,
        /// `None` when not given or zero.
        retries: Option<u32>,
    },
}

/// `ONBUILD <trigger>`: stored in the image and run by builds that use it as a base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger's keyword, uppercase (`RUN`).
    pub trigger: String,
    /// The trigger as Docker stores it in the image config's `OnBuild` (heredocs included);
    /// [`crate::parse_trigger`] parses it when a child build runs it.
    pub expression: String,
}

fn arg_count(args: &RawArgs) -> usize {
    match args {
        RawArgs::Empty => 0,
        RawArgs::Text(_) | RawArgs::Sub(_) => 1,
        RawArgs::Words(w) | RawArgs::Json(w) => w.len(),
        RawArgs::KeyValues(kv) => kv.len(),
        RawArgs::Healthcheck { command, .. } => 1 + arg_count(command),
    }
}

fn single_text(raw: &RawInstruction, name: &'static str) -> Result<String, Reason> {
    match &raw.args {
        RawArgs::Text(s) => Ok(s.clone()),
        _ => Err(Reason::ExactlyOneArgument(name)),
    }
}

fn no_flags(raw: &RawInstruction) -> Result<(), Reason> {
    Flags::parse(&raw.flags, &[]).map(|_| ())
}

/// `FROM`'s arguments. Errors carry no line: the caller adds it.
pub(crate) fn from_raw(raw: &RawInstruction) -> Result<From, Reason> {
    let args = raw.args.to_list();
    let name = match args.as_slice() {
        [_] => None,
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            let mut chars = lower.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(Reason::InvalidStageName(name.clone()));
            }
            Some(lower)
        }
        _ => return Err(Reason::FromArguments),
    };
    let flags = Flags::parse(&raw.flags, &[("platform", Kind::String)])?;
    Ok(From {
        image: args.into_iter().next().unwrap_or_default(),
        name,
        platform: flags.string("platform"),
    })
}

/// Whether `keyword` is `FROM`; unknown keywords are errors with Docker's suggestion.
pub(crate) fn is_from(raw: &RawInstruction) -> Result<bool, Reason> {
    let kw = raw.keyword.to_ascii_lowercase();
    if kw == "from" {
        return Ok(true);
    }
    if !INSTRUCTIONS.contains(&kw.as_str()) {
        return Err(Reason::UnknownInstruction {
            name: raw.keyword.clone(),
            suggestion: suggest(&raw.keyword, &INSTRUCTIONS, false),
        });
    }
    Ok(false)
}

/// Any instruction but `FROM` (which the caller handles with [`from_raw`]).
pub(crate) fn instruction_from_raw(
    raw: &RawInstruction,
    escape: char,
) -> Result<Instruction, Reason> {
    instruction_with_heredocs(raw, &raw.heredocs, escape)
}

fn instruction_with_heredocs(
    raw: &RawInstruction,
    heredocs: &[Heredoc],
    escape: char,
) -> Result<Instruction, Reason> {
    let kw = raw.keyword.to_ascii_lowercase();
    Ok(match kw.as_str() {
        "env" => {
            no_flags(raw)?;
            Instruction::Env {
                vars: key_values(raw, "ENV")?,
            }
        }
        "label" => {
            no_flags(raw)?;
            Instruction::Label {
                labels: key_values(raw, "LABEL")?,
            }
        }
        "maintainer" => {
            let name = single_text(raw, "MAINTAINER")?;
            no_flags(raw)?;
            Instruction::Maintainer { name }
        }
        "workdir" => {
            let path = single_text(raw, "WORKDIR")?;
            no_flags(raw)?;
            Instruction::Workdir { path }
        }
        "user" => {
            let user = single_text(raw, "USER")?;
            no_flags(raw)?;
            Instruction::User { user }
        }
        // Docker reads no flags for STOPSIGNAL and ARG: any given are ignored.
        "stopsignal" => Instruction::Stopsignal {
            signal: single_text(raw, "STOPSIGNAL")?,
        },
        "arg" => {
            let words = raw.args.to_list();
            if words.is_empty() {
                return Err(Reason::AtLeastOneArgument("ARG"));
            }
            let mut args = Vec::with_capacity(words.len());
            for w in words {
                let decl = match w.split_once('=') {
                    Some(("", _)) => return Err(Reason::BlankNames("ARG")),
                    Some((k, v)) => ArgDecl {
                        name: k.to_string(),
                        value: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        name: w,
                        value: None,
                    },
                };
                args.push(decl);
            }
            Instruction::Arg { args }
        }
        "expose" => {
            let ports = raw.args.to_list();
            if ports.is_empty() {
                return Err(Reason::AtLeastOneArgument("EXPOSE"));
            }
            no_flags(raw)?;
            Instruction::Expose { ports }
        }
        "volume" => {
            if arg_count(&raw.args) == 0 {
                return Err(Reason::AtLeastOneArgument("VOLUME"));
            }
            no_flags(raw)?;
            let mut paths = Vec::new();
            for v in raw.args.to_list() {
                let v = v.trim();
                if v.is_empty() {
                    return Err(Reason::EmptyVolume);
                }
                paths.push(v.to_string());
            }
            Instruction::Volume { paths }
        }
        "shell" => {
            no_flags(raw)?;
            match &raw.args {
                RawArgs::Json(v) if !v.is_empty() => Instruction::Shell { shell: v.clone() },
                RawArgs::Json(_) | RawArgs::Empty => {
                    return Err(Reason::AtLeastOneArgument("SHELL"))
                }
                _ => return Err(Reason::NotJson("SHELL")),
            }
        }
        "cmd" => {
            no_flags(raw)?;
            Instruction::Cmd {
                command: command_line(&raw.args),
            }
        }
        "entrypoint" => {
            no_flags(raw)?;
            Instruction::Entrypoint {
                command: command_line(&raw.args),
            }
        }
        "run" => Instruction::Run(run(raw, heredocs)?),
        "copy" => Instruction::Copy(copy(raw, heredocs, escape)?),
        "add" => Instruction::Add(add(raw, heredocs)?),
        "healthcheck" => Instruction::Healthcheck(healthcheck(raw)?),
        "onbuild" => Instruction::Onbuild(onbuild(raw, heredocs)?),
        "from" => return Err(Reason::NoBuildStage),
        _ => {
            return Err(Reason::UnknownInstruction {
                name: raw.keyword.clone(),
                suggestion: suggest(&raw.keyword, &INSTRUCTIONS, false),
            })
        }
    })
}

fn key_values(raw: &RawInstruction, name: &'static str) -> Result<Vec<KeyValue>, Reason> {
    let RawArgs::KeyValues(kvs) = &raw.args else {
        return Err(Reason::AtLeastOneArgument(name));
    };
    kvs.iter()
        .map(|kv| {
            if kv.key.is_empty() {
                Err(Reason::BlankNames(name))
            } else {
                Ok(KeyValue {
                    key: kv.key.clone(),
                    value: kv.value.clone(),
                })
            }
        })
        .collect()
}

fn command_line(args: &RawArgs) -> CommandLine {
    match args {
        RawArgs::Json(v) => CommandLine::Exec(v.clone()),
        other => CommandLine::Shell(other.to_list().join(" ")),
    }
}

fn chomped(docs: &[Heredoc]) -> Vec<Heredoc> {
    docs.iter()
        .map(|h| Heredoc {
            content: if h.chomp {
                chomp(&h.content)
            } else {
                h.content.clone()
            },
            ..h.clone()
        })
        .collect()
}

fn run(raw: &RawInstruction, heredocs: &[Heredoc]) -> Result<Run, Reason> {
    let flags = Flags::parse(
        &raw.flags,
        &[
            ("mount", Kind::Strings),
            ("network", Kind::String),
            ("security", Kind::String),
            ("device", Kind::Strings),
        ],
    )?;
    let network = match flags.given("network").as_deref() {
        None | Some("default") => Network::Default,
        Some("none") => Network::None,
        Some("host") => Network::Host,
        Some(other) => return Err(Reason::InvalidNetwork(other.to_string())),
    };
    let security = match flags.given("security").as_deref() {
        None | Some("sandbox") => Security::Sandbox,
        Some("insecure") => Security::Insecure,
        Some(other) => return Err(Reason::InvalidSecurity(other.to_string())),
    };
    let mut mounts = Vec::new();
    for value in flags.all("mount") {
        let spec = MountSpec::split(&value).map_err(Reason::Mount)?;
        spec.check_from().map_err(Reason::Mount)?;
        // Fully checkable now unless a value waits for substitution.
        if !spec.has_variables() {
            spec.to_mount().map_err(Reason::Mount)?;
        }
        mounts.push(spec);
    }
    // Docker accepts an empty RUN and fails when the shell gets no command; say so up front.
    if arg_count(&raw.args) == 0 {
        return Err(Reason::AtLeastOneArgument("RUN"));
    }
    Ok(Run {
        command: command_line(&raw.args),
        heredocs: chomped(heredocs),
        mounts,
        network,
        security,
        devices: flags.all("device"),
    })
}

fn sources_and_dest(
    raw: &RawInstruction,
    heredocs: &[Heredoc],
    command: &'static str,
) -> Result<(Vec<Source>, String), Reason> {
    let mut args = raw.args.to_list();
    let dest = args.pop().unwrap_or_default();
    if parse_heredoc(&dest).ok().flatten().is_some() {
        return Err(Reason::BadHeredoc {
            command,
            what: "a destination",
        });
    }
    let sources = args
        .into_iter()
        .map(|src| match parse_heredoc(&src).ok().flatten() {
            Some(h) => {
                // A `<<name` word without a body (exec form) is an empty file, as in Docker.
                let body = heredocs
                    .iter()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                let content = if h.chomp { chomp(&body) } else { body };
                Source::Heredoc(Heredoc { content, ..h })
            }
            None => Source::Path(src),
        })
        .collect();
    Ok((sources, dest))
}

fn copy(raw: &RawInstruction, heredocs: &[Heredoc], escape: char) -> Result<Copy, Reason> {
    if arg_count(&raw.args) < 2 {
        return Err(Reason::NoDestination("COPY"));
    }
    let flags = Flags::parse(
        &raw.flags,
        &[
            ("chown", Kind::String),
            ("from", Kind::String),
            ("chmod", Kind::String),
            ("link", Kind::Bool),
            ("exclude", Kind::Strings),
            ("parents", Kind::Bool),
        ],
    )?;
    let (sources, dest) = sources_and_dest(raw, heredocs, "COPY")?;
    let from = flags.string("from");
    if let Some(f) = &from {
        let plain = Lexer::new(escape)
            .process_word(f, &NoVars)
            .map_err(Reason::Lex)?;
        if &plain != f {
            return Err(Reason::CopyFromVariable);
        }
    }
    Ok(Copy {
        sources,
        dest,
        from,
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.all("exclude"),
    })
}

fn add(raw: &RawInstruction, heredocs: &[Heredoc]) -> Result<Add, Reason> {
    if arg_count(&raw.args) < 2 {
        return Err(Reason::NoDestination("ADD"));
    }
    let flags = Flags::parse(
        &raw.flags,
        &[
            ("chown", Kind::String),
            ("chmod", Kind::String),
            ("link", Kind::Bool),
            ("keep-git-dir", Kind::Bool),
            ("checksum", Kind::String),
            ("unpack", Kind::Bool),
            ("exclude", Kind::Strings),
        ],
    )?;
    let (sources, dest) = sources_and_dest(raw, heredocs, "ADD")?;
    Ok(Add {
        sources,
        dest,
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        keep_git_dir: flags.bool_opt("keep-git-dir"),
        checksum: flags.string("checksum"),
        unpack: flags.bool_opt("unpack"),
        exclude: flags.all("exclude"),
    })
}

fn healthcheck(raw: &RawInstruction) -> Result<Healthcheck, Reason> {
    let RawArgs::Healthcheck { kind, command } = &raw.args else {
        return Err(Reason::AtLeastOneArgument("HEALTHCHECK"));
    };
    let kind = kind.to_uppercase();
    if kind == "NONE" {
        if arg_count(command) != 0 {
            return Err(Reason::HealthcheckNoneArguments);
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse(
        &raw.flags,
        &[
            ("interval", Kind::String),
            ("timeout", Kind::String),
            ("start-period", Kind::String),
            ("start-interval", Kind::String),
            ("retries", Kind::String),
        ],
    )?;
    if kind != "CMD" {
        return Err(Reason::HealthcheckType(kind));
    }
    if arg_count(command) == 0 {
        return Err(Reason::HealthcheckMissingCommand);
    }
    let interval = |name: &str| -> Result<Option<u64>, Reason> {
        let Some(v) = flags.string(name) else {
            return Ok(None);
        };
        let ns = parse_go_duration(&v).map_err(Reason::Duration)?;
        if ns == 0 {
            return Ok(None);
        }
        if ns < 1_000_000 {
            return Err(Reason::IntervalTooShort(name.to_string()));
        }
        Ok(u64::try_from(ns).ok())
    };
    let retries = match flags.string("retries") {
        None => None,
        Some(v) => {
            let n = go_parse_int32(&v)?;
            if n < 0 {
                return Err(Reason::NegativeRetries(n));
            }
            u32::try_from(n).ok().filter(|n| *n != 0)
        }
    };
    Ok(Healthcheck::Cmd {
        test: command_line(command),
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    })
}

/// Go's `strconv.ParseInt(s, 10, 32)`.
fn go_parse_int32(s: &str) -> Result<i64, Reason> {
    let err = |reason| Reason::Retries {
        value: s.to_string(),
        reason,
    };
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("invalid syntax"));
    }
    match s.parse::<i64>() {
        Ok(n) if i32::try_from(n).is_ok() => Ok(n),
        _ => Err(err("value out of range")),
    }
}

fn onbuild(raw: &RawInstruction, heredocs: &[Heredoc]) -> Result<Onbuild, Reason> {
    let RawArgs::Sub(sub) = &raw.args else {
        return Err(Reason::AtLeastOneArgument("ONBUILD"));
    };
    no_flags(raw)?;
    let trigger = sub.keyword.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err(Reason::OnbuildChain),
        "MAINTAINER" | "FROM" => return Err(Reason::OnbuildTrigger(trigger)),
        _ => {}
    }
    let mut expression = strip_onbuild(&raw.original).to_string();
    for h in heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Onbuild {
        trigger,
        expression,
    })
}

/// The line without its leading `ONBUILD` keyword and the whitespace after it.
fn strip_onbuild(original: &str) -> &str {
    let s = original.trim_start();
    match s.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => {
            s.get(7..).unwrap_or_default().trim_start()
        }
        _ => s,
    }
}

fn expand_word(word: &str, vars: &dyn Vars, escape: char) -> Result<String, ExpandError> {
    Lexer::new(escape).process_word(word, vars)
}

fn expand_opt(
    word: &Option<String>,
    vars: &dyn Vars,
    escape: char,
) -> Result<Option<String>, ExpandError> {
    word.as_deref()
        .map(|w| expand_word(w, vars, escape))
        .transpose()
}

fn expand_sources(
    sources: &[Source],
    vars: &dyn Vars,
    escape: char,
) -> Result<Vec<Source>, ExpandError> {
    // Heredoc bodies are expanded with `\` and without quote processing whatever the escape
    // character, as Docker does; quoted delimiters turn expansion off.
    let body_lexer = Lexer::new('\\').skip_process_quotes(true);
    sources
        .iter()
        .map(|s| match s {
            Source::Path(p) => expand_word(p, vars, escape).map(Source::Path),
            Source::Heredoc(h) if h.expand => Ok(Source::Heredoc(Heredoc {
                content: body_lexer.process_word(&h.content, vars)?,
                ..h.clone()
            })),
            Source::Heredoc(h) => Ok(Source::Heredoc(h.clone())),
        })
        .collect()
}

fn expand_kvs(
    kvs: &[KeyValue],
    vars: &dyn Vars,
    escape: char,
) -> Result<Vec<KeyValue>, ExpandError> {
    kvs.iter()
        .map(|kv| {
            Ok(KeyValue {
                key: expand_word(&kv.key, vars, escape)?,
                value: expand_word(&kv.value, vars, escape)?,
            })
        })
        .collect()
}

impl Instruction {
    /// Substitutes variables where Docker does: `ADD`, `COPY` (sources, destination,
    /// `--chown`, `--chmod`, `--checksum`, heredoc bodies), `ENV`, `EXPOSE`, `LABEL`,
    /// `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR` and `RUN --mount` values. Shell-form commands
    /// are left to the shell, `ONBUILD` to the child build, and `ARG` to
    /// [`crate::StageScope::evaluate`] (its value depends on build arguments).
    pub fn expand(&self, vars: &dyn Vars, escape: char) -> Result<Instruction, ExpandError> {
        let w = |s: &str| expand_word(s, vars, escape);
        Ok(match self {
            Instruction::Env { vars: kvs } => Instruction::Env {
                vars: expand_kvs(kvs, vars, escape)?,
            },
            Instruction::Label { labels } => Instruction::Label {
                labels: expand_kvs(labels, vars, escape)?,
            },
            Instruction::Workdir { path } => Instruction::Workdir { path: w(path)? },
            Instruction::User { user } => Instruction::User { user: w(user)? },
            Instruction::Stopsignal { signal } => Instruction::Stopsignal { signal: w(signal)? },
            Instruction::Volume { paths } => Instruction::Volume {
                paths: paths.iter().map(|p| w(p)).collect::<Result<_, _>>()?,
            },
            Instruction::Expose { ports } => {
                let lex = Lexer::new(escape);
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lex.process_words(p, vars)?);
                }
                Instruction::Expose { ports: out }
            }
            Instruction::Copy(c) => Instruction::Copy(Copy {
                sources: expand_sources(&c.sources, vars, escape)?,
                dest: w(&c.dest)?,
                chown: expand_opt(&c.chown, vars, escape)?,
                chmod: expand_opt(&c.chmod, vars, escape)?,
                ..c.clone()
            }),
            Instruction::Add(a) => Instruction::Add(Add {
                sources: expand_sources(&a.sources, vars, escape)?,
                dest: w(&a.dest)?,
                chown: expand_opt(&a.chown, vars, escape)?,
                chmod: expand_opt(&a.chmod, vars, escape)?,
                checksum: expand_opt(&a.checksum, vars, escape)?,
                ..a.clone()
            }),
            Instruction::Run(r) => Instruction::Run(Run {
                mounts: r
                    .mounts
                    .iter()
                    .map(|m| {
                        Ok(MountSpec {
                            fields: m
                                .fields
                                .iter()
                                .map(|f| {
                                    Ok(crate::mount::MountField {
                                        key: f.key.clone(),
                                        value: expand_opt(&f.value, vars, escape)?,
                                    })
                                })
                                .collect::<Result<_, ExpandError>>()?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
                ..r.clone()
            }),
            other => other.clone(),
        })
    }
}
