//! The first pass: text to raw instructions, as BuildKit's `parser` package does it.
//!
//! Physical lines are joined at line continuations, comments and blank lines are dropped,
//! parser directives are read from the top, heredoc bodies are attached to the instruction
//! that introduces them, and each instruction's arguments are split by the rule of its
//! keyword. Nothing is substituted and no instruction is checked beyond what that splitting
//! needs: [`crate::instruction`] does that.

use serde::Serialize;

use crate::error::{Error, Reason};
use crate::heredoc::{heredocs_in_line, Heredoc};
use crate::words::{parse_json, parse_words, split_command, split_ws, whitespace_words, Json};

/// Longest physical line, in bytes: Go's `bufio.Scanner` limit, which Docker inherits.
pub const MAX_LINE_LEN: usize = 65535;

/// Parser directives from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=`: recorded, never acted on (berth has one frontend).
    pub syntax: Option<String>,
    /// `# escape=`: `\` (the default) or `` ` ``.
    pub escape: char,
    /// `# check=`: recorded, ignored (berth runs no build checks).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// Lines of the source an instruction spans, 1-based and inclusive, heredoc bodies included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub start_line: usize,
    pub end_line: usize,
}

/// Something Docker warns about but builds anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// A file split into instructions, before any instruction is interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawDockerfile {
    pub directives: Directives,
    pub instructions: Vec<RawInstruction>,
    pub warnings: Vec<Warning>,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawInstruction {
    /// The keyword as written (`run`, `Copy`); unknown keywords are kept for the error.
    pub keyword: String,
    /// `--name[=value]` words after the keyword, quotes removed.
    pub flags: Vec<String>,
    pub args: RawArgs,
    /// Bodies of the heredocs the line introduces, in order, as read (tabs not stripped).
    pub heredocs: Vec<Heredoc>,
    /// The logical line: continuations joined, comment lines dropped, trimmed. Docker prints
    /// this in `Step N/M : ...`.
    pub original: String,
    pub location: Location,
}

/// The arguments of an instruction, split by the rule of its keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum RawArgs {
    /// Nothing after the keyword and flags (or an unknown keyword).
    Empty,
    /// The rest of the line as one string: shell form, `USER`, `WORKDIR`, ...
    Text(String),
    /// Whitespace-separated words (`FROM`, `EXPOSE`, non-JSON `COPY`), or quote-aware words
    /// with quotes kept (`ARG`).
    Words(Vec<String>),
    /// A JSON array of strings (exec form).
    Json(Vec<String>),
    /// `ENV`/`LABEL` pairs, values still quoted and escaped as written.
    KeyValues(Vec<RawKeyValue>),
    /// `HEALTHCHECK <kind> <command>`.
    Healthcheck { kind: String, command: Box<RawArgs> },
    /// `ONBUILD`'s trigger instruction.
    Sub(Box<RawInstruction>),
}

impl RawArgs {
    /// BuildKit's flattened argument list (`nodeArgs`).
    pub(crate) fn to_list(&self) -> Vec<String> {
        match self {
            RawArgs::Empty => Vec::new(),
            RawArgs::Text(s) => vec![s.clone()],
            RawArgs::Words(w) | RawArgs::Json(w) => w.clone(),
            RawArgs::KeyValues(kvs) => kvs
                .iter()
                .flat_map(|kv| [kv.key.clone(), kv.value.clone()])
                .collect(),
            RawArgs::Healthcheck { kind, command } => {
                let mut v = vec![kind.clone()];
                v.extend(command.to_list());
                v
            }
            RawArgs::Sub(sub) => {
                let mut v = vec![sub.keyword.clone()];
                v.extend(sub.args.to_list());
                v
            }
        }
    }

    pub(crate) fn is_json(&self) -> bool {
        match self {
            RawArgs::Json(_) => true,
            RawArgs::Healthcheck { command, .. } => command.is_json(),
            _ => false,
        }
    }
}

/// One `ENV`/`LABEL` pair as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawKeyValue {
    pub key: String,
    pub value: String,
    /// The old `ENV key value` form, without `=`.
    pub legacy: bool,
}

/// Splits `text` into raw instructions.
pub fn parse_raw(text: &str) -> Result<RawDockerfile, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Lines {
        rest: text,
        number: 0,
    };
    let mut directives = DirectiveParser::default();
    let mut instructions = Vec::new();
    let mut warnings = Vec::new();

    while let Some(physical) = lines.next_line()? {
        let line = trim_newline(physical).trim_start();
        directives.parse_line(line, lines.number)?;
        let escape = directives.directives.escape;
        let line = if is_comment(line) { "" } else { line };
        let start_line = lines.number;
        let (first, mut complete) = trim_continuation(line, escape);
        if complete && first.is_empty() {
            continue;
        }
        let mut logical = first.to_string();
        let mut empty_continuation = false;
        while !complete {
            let Some(physical) = lines.next_line()? else {
                break;
            };
            if is_comment(physical) {
                continue;
            }
            let line = trim_newline(physical);
            if line.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, done) = trim_continuation(line, escape);
            logical.push_str(part);
            complete = done;
        }
        if empty_continuation {
            warnings.push(Warning {
                line: lines.number,
                message: format!("Empty continuation line found in: {logical}"),
            });
        }

        let mut inst =
            node_from_line(&logical, escape, 0).map_err(|r| Error::syntax(start_line, r))?;
        if can_contain_heredoc(&inst) && logical.contains("<<") {
            let docs = heredocs_in_line(&logical)
                .map_err(|e| Error::syntax(start_line, Reason::Lex(e)))?;
            for mut doc in docs {
                doc.content = read_heredoc_body(&mut lines, &doc.name, doc.chomp)?
                    .ok_or(Error::syntax(start_line, Reason::UnterminatedHeredoc))?;
                inst.heredocs.push(doc);
            }
        }
        inst.location = Location {
            start_line,
            end_line: lines.number,
        };
        instructions.push(inst);
    }

    if instructions.is_empty() {
        return Err(Error::NoInstructions);
    }
    Ok(RawDockerfile {
        directives: directives.directives,
        instructions,
        warnings,
    })
}

/// `None` when the file ends before the delimiter.
fn read_heredoc_body(
    lines: &mut Lines<'_>,
    name: &str,
    chomp: bool,
) -> Result<Option<String>, Error> {
    let mut content = String::new();
    while let Some(physical) = lines.next_line()? {
        let mut candidate = trim_newline(physical);
        if chomp {
            candidate = candidate.trim_start_matches('\t');
        }
        if candidate == name {
            return Ok(Some(content));
        }
        content.push_str(physical);
    }
    Ok(None)
}

struct Lines<'a> {
    rest: &'a str,
    /// 1-based number of the line last returned.
    number: usize,
}

impl<'a> Lines<'a> {
    /// The next physical line with its line ending.
    fn next_line(&mut self) -> Result<Option<&'a str>, Error> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        self.number += 1;
        if line.trim_end_matches('\n').len() > MAX_LINE_LEN {
            return Err(Error::syntax(self.number, Reason::LineTooLong));
        }
        Ok(Some(line))
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// `(line without the continuation, whether the instruction ends here)`. A line continues
/// when its last non-blank character is the escape character and the one before it is not
/// (Docker's regex cannot see an escaped escape further back, neither can we).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(before) if before.is_empty() || !before.ends_with(escape) => (before, false),
        _ => (line, true),
    }
}

#[derive(Default)]
struct DirectiveParser {
    done: bool,
    directives: Directives,
    seen_syntax: bool,
    seen_escape: bool,
    seen_check: bool,
}

impl DirectiveParser {
    /// Reads `# key=value` lines until the first line that is not one.
    fn parse_line(&mut self, line: &str, number: usize) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let seen = match key.as_str() {
            "syntax" => &mut self.seen_syntax,
            "escape" => &mut self.seen_escape,
            "check" => &mut self.seen_check,
            _ => {
                self.done = true;
                return Ok(());
            }
        };
        if std::mem::replace(seen, true) {
            return Err(Error::syntax(number, Reason::DuplicateDirective(key)));
        }
        match key.as_str() {
            "syntax" => self.directives.syntax = Some(value.to_string()),
            "check" => self.directives.check = Some(value.to_string()),
            _ => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(Error::syntax(
                            number,
                            Reason::InvalidEscapeToken(value.to_string()),
                        ))
                    }
                };
            }
        }
        Ok(())
    }
}

/// `# key = value`: key is a letter then letters or digits, lowercased; value trimmed.
fn directive(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_end = rest
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(rest.len(), |(i, _)| i);
    let (key, rest) = rest.split_at(key_end);
    if !key.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value))
}

/// Keywords whose lines may introduce heredocs (ONBUILD through its trigger).
fn can_contain_heredoc(inst: &RawInstruction) -> bool {
    let inst = match &inst.args {
        RawArgs::Sub(sub) if inst.keyword.eq_ignore_ascii_case("onbuild") => sub,
        _ => inst,
    };
    let kw = inst.keyword.to_ascii_lowercase();
    matches!(kw.as_str(), "add" | "copy" | "run") && !inst.args.is_json()
}

/// One logical line to a raw instruction, arguments split by the rule of the keyword.
pub(crate) fn node_from_line(
    line: &str,
    escape: char,
    depth: usize,
) -> Result<RawInstruction, Reason> {
    let (keyword, flags, rest) = split_command(line, escape);
    let args = match keyword.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => maybe_json_list(&rest)?,
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(&rest)?,
        "arg" => {
            let words = parse_words(&rest, escape);
            if words.is_empty() {
                RawArgs::Empty
            } else {
                RawArgs::Words(words)
            }
        }
        "env" => name_values(&rest, "ENV", escape)?,
        "label" => name_values(&rest, "LABEL", escape)?,
        "expose" | "from" => words_or_empty(whitespace_words(&rest)),
        "healthcheck" => healthcheck(&rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => text_or_empty(&rest),
        "onbuild" => {
            if rest.is_empty() {
                RawArgs::Empty
            } else {
                // Chains are refused later anyway; refusing them here keeps the recursion
                // (and so the stack) shallow on `ONBUILD ONBUILD ONBUILD ...`.
                if depth > 0 {
                    return Err(Reason::OnbuildChain);
                }
                RawArgs::Sub(Box::new(node_from_line(&rest, escape, depth + 1)?))
            }
        }
        _ => RawArgs::Empty,
    };
    Ok(RawInstruction {
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
        original: line.trim().to_string(),
        location: Location {
            start_line: 0,
            end_line: 0,
        },
    })
}

fn words_or_empty(words: Vec<String>) -> RawArgs {
    if words.is_empty() {
        RawArgs::Empty
    } else {
        RawArgs::Words(words)
    }
}

fn text_or_empty(rest: &str) -> RawArgs {
    if rest.is_empty() {
        RawArgs::Empty
    } else {
        RawArgs::Text(rest.to_string())
    }
}

fn maybe_json(rest: &str) -> Result<RawArgs, Reason> {
    if rest.is_empty() {
        return Ok(RawArgs::Empty);
    }
    match parse_json(rest) {
        Json::Array(v) => Ok(RawArgs::Json(v)),
        Json::NotStrings => Err(Reason::NotStringArray),
        Json::No => Ok(RawArgs::Text(rest.to_string())),
    }
}

fn maybe_json_list(rest: &str) -> Result<RawArgs, Reason> {
    match parse_json(rest) {
        Json::Array(v) => Ok(RawArgs::Json(v)),
        Json::NotStrings => Err(Reason::NotStringArray),
        Json::No => Ok(words_or_empty(whitespace_words(rest))),
    }
}

fn healthcheck(rest: &str) -> Result<RawArgs, Reason> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(RawArgs::Empty);
    }
    let (kind, command) = rest.split_at(sep);
    Ok(RawArgs::Healthcheck {
        kind: kind.to_string(),
        command: Box::new(maybe_json(command.trim_start())?),
    })
}

/// `ENV`/`LABEL`: `key value` (old form, when the first word has no `=`) or `k=v k2="v 2"`.
fn name_values(rest: &str, command: &'static str, escape: char) -> Result<RawArgs, Reason> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(RawArgs::Empty);
    };
    if !first.contains('=') {
        let mut parts = split_ws(rest, Some(2)).into_iter();
        return match (parts.next(), parts.next()) {
            (Some(key), Some(value)) => Ok(RawArgs::KeyValues(vec![RawKeyValue {
                key,
                value,
                legacy: true,
            }])),
            _ => Err(Reason::MustHaveTwoArguments(command)),
        };
    }
    let mut pairs = Vec::with_capacity(words.len());
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(Reason::MissingEquals(word));
        };
        pairs.push(RawKeyValue {
            key: key.to_string(),
            value: value.to_string(),
            legacy: false,
        });
    }
    Ok(RawArgs::KeyValues(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawDockerfile {
        parse_raw(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn continuations_and_comments() {
        let df = raw("FROM a\nRUN echo a \\\n# comment\n   \n  b \\  \n c\n");
        let run = &df.instructions[1];
        assert_eq!(run.args, RawArgs::Text("echo a   b  c".into()));
        assert_eq!(
            run.location,
            Location {
                start_line: 2,
                end_line: 6
            }
        );
        assert_eq!(df.warnings.len(), 1);
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        let df = raw("FROM a\nRUN echo \\\\\nRUN b\n");
        assert_eq!(df.instructions.len(), 3);
    }

    #[test]
    fn continuation_at_eof() {
        let df = raw("FROM a\nRUN something \\");
        assert_eq!(df.instructions[1].args, RawArgs::Text("something".into()));
    }

    #[test]
    fn directives() {
        let df = raw("# Syntax = docker/dockerfile:1\n#escape=`\n# check=skip=all\nFROM a\n");
        assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(df.directives.escape, '`');
        assert_eq!(df.directives.check.as_deref(), Some("skip=all"));
        // After a comment, a directive is only a comment.
        let df = raw("# hello\n# escape=`\nFROM a\n");
        assert_eq!(df.directives.escape, '\\');
        let df = raw("\n# escape=`\nFROM a\n");
        assert_eq!(df.directives.escape, '\\');
        let df = raw("# unknown=x\n# escape=`\nFROM a\n");
        assert_eq!(df.directives.escape, '\\');
        let e = parse_raw("# escape=`\n# escape=\\\nFROM a\n").expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: only one escape parser directive can be used"
        );
        assert!(parse_raw("# escape=x\nFROM a\n").is_err());
    }

    #[test]
    fn heredocs() {
        let df = raw("FROM a\nRUN <<-EOF cat\n\techo hi\n\tEOF\nCOPY <<A <<B /d\na\nA\nb\nB\n");
        let run = &df.instructions[1];
        assert_eq!(run.heredocs[0].content, "\techo hi\n");
        assert_eq!(
            run.location,
            Location {
                start_line: 2,
                end_line: 4
            }
        );
        let copy = &df.instructions[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[1].content, "b\n");
        let e = parse_raw("FROM a\nRUN <<EOF\necho\n").expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: unterminated heredoc"
        );
        // JSON form never has heredocs.
        let df = raw("FROM a\nRUN [\"<<EOF\"]\nRUN b\n");
        assert_eq!(df.instructions.len(), 3);
    }

    #[test]
    fn env_forms() {
        let df = raw("FROM a\nENV A 1 2\nENV B=\"x y\" C=z\n");
        assert_eq!(
            df.instructions[1].args,
            RawArgs::KeyValues(vec![RawKeyValue {
                key: "A".into(),
                value: "1 2".into(),
                legacy: true
            }])
        );
        let RawArgs::KeyValues(kvs) = &df.instructions[2].args else {
            panic!("not key values");
        };
        assert_eq!(kvs[0].value, "\"x y\"");
        assert!(parse_raw("FROM a\nENV PATH\n").is_err());
        assert!(parse_raw("FROM a\nENV A=1 B\n").is_err());
    }

    #[test]
    fn limits() {
        let long = format!("FROM a\nRUN {}\n", "x".repeat(MAX_LINE_LEN));
        assert_eq!(
            parse_raw(&long).expect_err("must fail").to_string(),
            "dockerfile parse error on line 2: dockerfile line greater than max allowed size of 65535"
        );
        let chain = format!("FROM a\n{}RUN x\n", "ONBUILD ".repeat(5000));
        assert!(parse_raw(&chain).is_err());
        assert_eq!(
            parse_raw("# only a comment\n\n").expect_err("must fail"),
            Error::NoInstructions
        );
    }
}
