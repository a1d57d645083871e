//! Errors, worded as Docker (BuildKit's Dockerfile frontend) words them, so that `berth build`
//! prints what `docker build` prints for the same broken Dockerfile.

use std::fmt::Write as _;

use crate::lex::ExpandError;

/// Everything that can go wrong while reading a Dockerfile or evaluating its instructions.
///
/// Every error is the user's input being wrong (an API would answer 400). Messages keep
/// Docker's wording, capitals included, rather than this project's lowercase habit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A line could not be parsed.
    #[error("dockerfile parse error on line {line}: {reason}")]
    Syntax {
        /// 1-based line where the offending instruction starts.
        line: usize,
        /// What is wrong.
        reason: Reason,
    },
    /// Variable substitution failed (`${X:?}` unset, bad `${}` syntax, ...).
    #[error("dockerfile parse error on line {line}: {source}")]
    Expand {
        /// 1-based line where the instruction starts.
        line: usize,
        /// What is wrong with the word.
        source: ExpandError,
    },
    /// Zero bytes of input.
    #[error("the Dockerfile cannot be empty")]
    Empty,
    /// Only comments and blank lines.
    #[error("file with no instructions")]
    NoInstructions,
    /// Only `ARG`s, no `FROM`.
    #[error("dockerfile contains no stages to build")]
    NoStages,
}

impl Error {
    /// The 1-based line the error is about, when it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Syntax { line, .. } | Error::Expand { line, .. } => Some(*line),
            Error::Empty | Error::NoInstructions | Error::NoStages => None,
        }
    }

    pub(crate) fn syntax(line: usize, reason: Reason) -> Self {
        Error::Syntax { line, reason }
    }
}

/// Why a line is not a valid Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
    #[error(
        "dockerfile line greater than max allowed size of {}",
        crate::raw::MAX_LINE_LEN
    )]
    LineTooLong,
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("unknown instruction: {name}{}", suggestion_suffix(.suggestion))]
    UnknownInstruction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("no build stage in current context")]
    NoBuildStage,
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination(&'static str),
    #[error("{command} cannot accept a heredoc as {what}")]
    BadHeredoc {
        command: &'static str,
        what: &'static str,
    },
    #[error("{0} names can not be blank")]
    BlankNames(&'static str),
    #[error("{0} must have two arguments")]
    MustHaveTwoArguments(&'static str),
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(.0))]
    MissingEquals(String),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {}, name can't start with a number or contain symbols",
        go_quote(.0)
    )]
    InvalidStageName(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("onbuild trigger should be a single expression")]
    OnbuildNotSingle,
    #[error("arg should start with -- : {0}")]
    FlagWithoutDashes(String),
    #[error("unknown flag: {flag}{}", suggestion_suffix(.suggestion))]
    UnknownFlag {
        flag: String,
        suggestion: Option<String>,
    },
    #[error("duplicate flag specified: {0}")]
    DuplicateFlag(String),
    #[error("missing a value on flag: {0}")]
    MissingFlagValue(String),
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    NotBoolean { flag: String, value: String },
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    #[error("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(.0))]
    HealthcheckType(String),
    /// A Go `time.ParseDuration` error, e.g. `time: invalid duration "x"`.
    #[error("{0}")]
    Duration(String),
    #[error("Interval {} cannot be less than 1ms", go_quote(.0))]
    IntervalTooShort(String),
    /// A Go `strconv.ParseInt` error for `--retries`.
    #[error("strconv.ParseInt: parsing {}: {reason}", go_quote(.value))]
    Retries { value: String, reason: &'static str },
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    #[error("invalid network mode {}", go_quote(.0))]
    InvalidNetwork(String),
    #[error("security {} is not valid", go_quote(.0))]
    InvalidSecurity(String),
    #[error(
        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
    )]
    CopyFromVariable,
    /// A `RUN --mount` value Docker refuses; the text is Docker's.
    #[error("{0}")]
    Mount(String),
    #[error("base name ({0}) should not be blank")]
    BlankBaseName(String),
    #[error("empty platform value from expression {0}")]
    EmptyPlatform(String),
    /// Lexing a word failed while looking for heredocs or checking `--from`.
    #[error("{0}")]
    Lex(ExpandError),
}

fn suggestion_suffix(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

/// Go's `%q`: Docker's messages quote user text this way, and our messages must match theirs.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// BuildKit's "did you mean" helper: the closest option within an edit distance of 2.
pub(crate) fn suggest(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    // Long words cannot be within distance 2 of a short option; skipping them also keeps the
    // quadratic distance cheap on hostile input.
    let longest = options.iter().map(|o| o.chars().count()).max().unwrap_or(0);
    if value.chars().count() > longest + 2 {
        return None;
    }
    let val = if case_sensitive {
        value.to_string()
    } else {
        value.to_lowercase()
    };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let opt = if case_sensitive {
            opt.to_string()
        } else {
            opt.to_lowercase()
        };
        if val == opt {
            return None;
        }
        let d = levenshtein(&val, &opt);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                opt
            } else {
                match_case(&opt, value)
            });
        }
    }
    best
}

fn match_case(option: &str, original: &str) -> String {
    if original == original.to_lowercase() {
        option.to_lowercase()
    } else if original == original.to_uppercase() {
        option.to_uppercase()
    } else {
        option.to_string()
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (cb, pair) in b.iter().zip(prev.windows(2)) {
            let (diag, up) = match pair {
                [d, u] => (*d, *u),
                _ => continue,
            };
            let left = cur.last().copied().unwrap_or(0);
            cur.push((diag + usize::from(ca != *cb)).min(up + 1).min(left + 1));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }

    #[test]
    fn suggestions() {
        let names = ["from", "run", "copy"];
        assert_eq!(suggest("FORM", &names, false).as_deref(), Some("FROM"));
        assert_eq!(suggest("form", &names, false).as_deref(), Some("from"));
        assert_eq!(suggest("Form", &names, false).as_deref(), Some("from"));
        assert_eq!(suggest("from", &names, false), None);
        assert_eq!(suggest("xyzzy", &names, false), None);
        assert_eq!(
            suggest("chwn", &["chown", "from"], true).as_deref(),
            Some("chown")
        );
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn messages() {
        let e = Error::syntax(
            3,
            Reason::UnknownInstruction {
                name: "FORM".into(),
                suggestion: Some("FROM".into()),
            },
        );
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 3: unknown instruction: FORM (did you mean FROM?)"
        );
        assert_eq!(e.line(), Some(3));
    }
}
