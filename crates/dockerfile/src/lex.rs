//! Shell-like word processing: quote removal, escapes and `$VAR` substitution, as BuildKit's
//! `shell.Lex` does it (Docker's "environment replacement").
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//! `${VAR/pat/repl}`, `${VAR//pat/repl}`, single and double quotes, and the escape character
//! (`\` or the backtick of `# escape=`).
//!
//! Work is bounded: `${}` nesting deeper than [`MAX_NESTING`] and results longer than
//! [`MAX_EXPANDED_LEN`] are errors, so `ENV A=$A$A` repeated cannot exhaust memory.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::error::go_quote;

/// Deepest `${a:-${b:-...}}` nesting accepted; recursion is on the stack.
pub const MAX_NESTING: usize = 64;

/// Longest result of one expansion, in bytes. Linux refuses environment strings over 128 KiB
/// (`MAX_ARG_STRLEN`) anyway, so a longer value could not reach a `RUN`.
pub const MAX_EXPANDED_LEN: usize = 1 << 20;

/// A variable lookup for substitution.
pub trait Vars {
    /// The value of `name`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> Vars for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Vars for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// A list of `(name, value)` pairs; the last pair with a name wins, as in an env list.
impl Vars for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// No variables at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVars;

impl Vars for NoVars {
    fn lookup(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A word could not be expanded. Displays as Docker does: `failed to process "<word>": <why>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {}: {reason}", go_quote(.word))]
pub struct ExpandError {
    /// The word as written.
    pub word: String,
    /// What is wrong with it.
    pub reason: ExpandReason,
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandReason {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR:?message}` with VAR unset or empty.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    #[error("invalid pattern ({pattern}) in substitution: {message}")]
    InvalidPattern { pattern: String, message: String },
    #[error("substitution nested deeper than {MAX_NESTING} levels")]
    TooDeep,
    #[error("expanded value longer than {MAX_EXPANDED_LEN} bytes")]
    TooLong,
}

/// How words are processed. [`Lexer::new`] gives the settings of Docker's instruction expansion.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset: bool,
}

impl Lexer {
    /// A lexer with `escape` as escape character (`\` unless `# escape=` said otherwise).
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset: false,
        }
    }

    /// Keep quote characters in the result.
    pub fn raw_quotes(mut self, yes: bool) -> Self {
        self.raw_quotes = yes;
        self
    }

    /// Keep escape characters in the result.
    pub fn raw_escapes(mut self, yes: bool) -> Self {
        self.raw_escapes = yes;
        self
    }

    /// Treat quotes as ordinary characters (heredoc bodies are expanded this way).
    pub fn skip_process_quotes(mut self, yes: bool) -> Self {
        self.skip_process_quotes = yes;
        self
    }

    /// Leave references to unset variables as written instead of replacing them with "".
    pub fn skip_unset(mut self, yes: bool) -> Self {
        self.skip_unset = yes;
        self
    }

    /// Expand `word` into one string (spaces kept), as for `ENV`, `WORKDIR`, `COPY` paths.
    pub fn process_word(&self, word: &str, vars: &dyn Vars) -> Result<String, ExpandError> {
        self.run(word, vars, false).map(|(s, _)| s)
    }

    /// Expand `word` and split the result into words at unquoted whitespace, as for `EXPOSE`.
    pub fn process_words(&self, word: &str, vars: &dyn Vars) -> Result<Vec<String>, ExpandError> {
        self.run(word, vars, true).map(|(_, w)| w)
    }

    fn run(
        &self,
        word: &str,
        vars: &dyn Vars,
        split: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut sw = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            vars,
            raw_escapes: self.raw_escapes,
            depth: 0,
            split,
        };
        sw.process_stop_on(None, self.raw_escapes)
            .map_err(|reason| ExpandError {
                word: word.to_string(),
                reason,
            })
    }
}

/// Expand one word with Docker's default settings for the given escape character.
pub fn expand(word: &str, vars: &dyn Vars, escape: char) -> Result<String, ExpandError> {
    Lexer::new(escape).process_word(word, vars)
}

/// Expand one word and split it into words, as Docker does for `EXPOSE`.
pub fn expand_words(word: &str, vars: &dyn Vars, escape: char) -> Result<Vec<String>, ExpandError> {
    Lexer::new(escape).process_words(word, vars)
}

type Res<T> = Result<T, ExpandReason>;

struct ShellWord<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
    raw_escapes: bool,
    depth: usize,
    /// Whether the caller wants words; splitting is skipped (half the work) when not.
    split: bool,
}

/// The word splitter that runs alongside expansion: substituted text is split at whitespace,
/// quoted and escaped text is not.
struct Words {
    enabled: bool,
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn new(enabled: bool) -> Self {
        Words {
            enabled,
            buf: String::new(),
            words: Vec::new(),
            in_word: false,
        }
    }

    fn add_char(&mut self, ch: char) {
        if !self.enabled {
            return;
        }
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        if !self.enabled {
            return;
        }
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        if !self.enabled {
            return;
        }
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        if !self.enabled {
            return;
        }
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

fn check_len(s: &str) -> Res<()> {
    if s.len() > MAX_EXPANDED_LEN {
        Err(ExpandReason::TooLong)
    } else {
        Ok(())
    }
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.chars.get(self.pos).copied();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.lookup(name).map(str::to_string)
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Res<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        // Words of nested `${...}` words are never used: only the top level splits.
        let mut words = Words::new(self.split && self.depth == 0);
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp);
                }
                '<' => {
                    let tmp = self.process_possible_heredoc();
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '\'' if !self.lex.skip_process_quotes => {
                    let tmp = self.process_single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '"' if !self.lex.skip_process_quotes => {
                    let tmp = self.process_double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(escaped) = self.next() else {
                            break;
                        };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
            check_len(&result)?;
        }
        match stop {
            Some(c) => Err(ExpandReason::UnexpectedEnd(c)),
            None => Ok((result, words.finish())),
        }
    }

    fn process_single_quote(&mut self) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandReason::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandReason::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(_) => {
                    let Some(mut ch) = self.next() else {
                        continue;
                    };
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape at the very end is dropped; the loop then reports the
                            // missing quote.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.lex.escape => {
                                self.next();
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
            check_len(&result)?;
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut result = "<<".to_string();
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            result.push(c);
            self.next();
        }
        result
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> Res<String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExpandReason::TooDeep);
        }
        let r = self.dollar_inner();
        self.depth -= 1;
        r
    }

    fn dollar_inner(&mut self) -> Res<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandReason::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandReason::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err(ExpandReason::MissingBrace);
        };
        let mut modifier = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => {
                return Ok(match self.lookup(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            '/' => return self.process_replace(&name),
            ':' => {
                null_is_unset = true;
                match self.next() {
                    Some(c) => {
                        ch = c;
                        modifier.push(c);
                    }
                    None => return Err(ExpandReason::MissingBrace),
                }
            }
            '+' | '-' | '?' | '#' | '%' => {}
            _ => return Err(ExpandReason::UnsupportedModifier(modifier)),
        }
        let pattern_op = ch == '#' || ch == '%';
        if null_is_unset && pattern_op {
            return Err(ExpandReason::UnsupportedModifier(modifier));
        }
        let word = match self.process_stop_on(Some('}'), pattern_op) {
            Ok((w, _)) => w,
            Err(ExpandReason::UnexpectedEnd(_)) => return Err(ExpandReason::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.lookup(&name);
        if self.lex.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match ch {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => match value {
                None => Err(ExpandReason::Required {
                    name,
                    message: if word.is_empty() {
                        "is not allowed to be unset".into()
                    } else {
                        word
                    },
                }),
                Some(v) if null_is_unset && v.is_empty() => Err(ExpandReason::Required {
                    name,
                    message: if word.is_empty() {
                        "is not allowed to be empty".into()
                    } else {
                        word
                    },
                }),
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match word.strip_prefix(ch) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                if ch == '%' {
                    trim_suffix(&pattern, &value, greedy)
                } else {
                    trim_prefix(&pattern, &value, greedy)
                }
            }
            _ => Err(ExpandReason::UnsupportedModifier(modifier)),
        }
    }

    fn process_replace(&mut self, name: &str) -> Res<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(ExpandReason::UnexpectedEnd(_)) => return Err(ExpandReason::MissingSlash),
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(ExpandReason::UnexpectedEnd(_)) => return Err(ExpandReason::MissingBrace),
            Err(e) => return Err(e),
        };
        let Some(value) = self.lookup(name) else {
            if self.lex.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let re = pattern_regex(&pattern, true, false)?;
        let out = if all {
            re.replace_all(&value, regex::NoExpand(&replacement))
                .into_owned()
        } else {
            re.replace(&value, regex::NoExpand(&replacement))
                .into_owned()
        };
        check_len(&out)?;
        Ok(out)
    }
}

/// A shell pattern (`*`, `?`, `\` escapes; no bracket expressions, like BuildKit) as a regex.
fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Res<regex::Regex> {
    let invalid = |message: String| ExpandReason::InvalidPattern {
        pattern: pattern.to_string(),
        message,
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => match chars.peek().copied() {
                // `}` and `/` are escaped only to get them past the `${}` parser.
                Some('}' | '/') => {}
                Some(e @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push_str(&regex::escape(&e.to_string()));
                }
                Some(e) => return Err(invalid(format!("invalid escape '\\{e}'"))),
                None => return Err(invalid("invalid escape '\\'".into())),
            },
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    regex::Regex::new(&out).map_err(|e| invalid(e.to_string()))
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Res<String> {
    let re = pattern_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value.get(m.end()..).unwrap_or_default().to_string(),
        None => value.to_string(),
    })
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Res<String> {
    // A regex cannot find the shortest match that ends at the end, so match the reversed
    // pattern against the reversed value from the start instead.
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern but keeps each `\x` escape pair in order.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut pieces: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match (c, chars.get(i + 1)) {
            ('\\', Some(&next)) => {
                pieces.push(format!("\\{next}"));
                i += 2;
            }
            _ => {
                pieces.push(c.to_string());
                i += 1;
            }
        }
    }
    pieces.into_iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("NULL", ""),
            ("SPACE", "abc  def"),
            ("LEADING", "  ab c"),
            ("PATHV", "/usr/local/bin/tool.tar.gz"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn word(w: &str) -> Result<String, ExpandReason> {
        expand(w, &env(), '\\').map_err(|e| e.reason)
    }

    #[test]
    fn quotes_and_escapes() {
        let ok = [
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he\\'llo", "he'llo"),
            ("abc\\tdef", "abctdef"),
            ("\"abc\\tdef\"", "abc\\tdef"),
            ("\"abc\\\\tdef\"", "abc\\tdef"),
            ("'abc\\tdef'", "abc\\tdef"),
            ("hello\\", "hello"),
            ("hello\\\\", "hello\\"),
            ("\"hel'lo\"", "hel'lo"),
            ("'hello\\'", "hello\\"),
            ("\"''\"", "''"),
            ("안'녕'하세요", "안녕하세요"),
        ];
        for (input, want) in ok {
            assert_eq!(word(input).as_deref(), Ok(want), "{input}");
        }
        for bad in ["he'llo", "he\\\\'llo", "\"hello", "\"hello\\\"", "'hello"] {
            assert!(word(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn substitution() {
        let ok = [
            ("$.", "$."),
            ("he$1x", "hex"),
            ("he$.x", "he$.x"),
            ("he$pwd.", "he."),
            ("he$PWD", "he/home"),
            ("he\\$PWD", "he$PWD"),
            ("he\\\\$PWD", "he\\/home"),
            ("\"he\\$PWD\"", "he$PWD"),
            ("\\${}", "${}"),
            ("he${hi}xx", "hexx"),
            ("he${XXX:-000}xx", "he000xx"),
            ("he${PWD:-000}xx", "he/homexx"),
            ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
            ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
            ("he${PWD?}", "he/home"),
            ("he${NULL?}", "he"),
            ("he${NULL-x}", "he"),
            ("he${NULL:-x}", "hex"),
            ("he${NULL+x}", "hex"),
            ("he${NULL:+x}", "he"),
            ("he${XXX:+${PWD}}xx", "hexx"),
            ("he${PWD:+${SHELL}}xx", "hebashxx"),
            ("'he${XX}'", "he${XX}"),
            ("\"he'$PWD'\"", "he'/home'"),
            ("he${PWD:+${PWD}:}xx", "he/home:xx"),
            ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
            ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
            ("안녕$KOREAN", "안녕한국어"),
            ("${aaa}}", "}"),
            ("${aaa:-bbb {foo}", "bbb {foo"),
            ("$1", ""),
            ("${1:-bbb}", "bbb"),
            ("${PATHV#*/}", "usr/local/bin/tool.tar.gz"),
            ("${PATHV##*/}", "tool.tar.gz"),
            ("${PATHV%.*}", "/usr/local/bin/tool.tar"),
            ("${PATHV%%.*}", "/usr/local/bin/tool"),
            ("${PATHV/local/opt}", "/usr/opt/bin/tool.tar.gz"),
            ("${PATHV//o/0}", "/usr/l0cal/bin/t00l.tar.gz"),
            ("${PATHV/\\//:}", ":usr/local/bin/tool.tar.gz"),
            ("${PATHV#\\*}", "/usr/local/bin/tool.tar.gz"),
        ];
        for (input, want) in ok {
            assert_eq!(word(input).as_deref(), Ok(want), "{input}");
        }
        for bad in [
            "${}",
            "he${}xx",
            "he${.}",
            "he${XXX:YYY}",
            "he${XXX?}",
            "he${XXX:?}",
            "he${NULL:?}",
            "he${PWD",
            "he${PWD:=000}xx",
            "${{aaa}",
            "${aaa:-bbb",
            "${aaa:-bbb ${foo}",
            "${:}",
            "${:-bbb}",
            "${PATHV:#x}",
            "${PATHV/x",
            "${PATHV#\\a}",
        ] {
            assert!(word(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn docker_messages() {
        let e = expand("${FOO:?you must set FOO}", &NoVars, '\\').expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "failed to process \"${FOO:?you must set FOO}\": FOO: you must set FOO"
        );
        let e = expand("${FOO?}", &NoVars, '\\').expect_err("must fail");
        assert_eq!(e.reason.to_string(), "FOO: is not allowed to be unset");
        let e = expand("${FOO", &NoVars, '\\').expect_err("must fail");
        assert_eq!(e.reason.to_string(), "syntax error: missing '}'");
        let e = expand("${FOO:=x}", &NoVars, '\\').expect_err("must fail");
        assert_eq!(
            e.reason.to_string(),
            "unsupported modifier (:=) in substitution"
        );
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(
            expand("c:\\dir`$X", &NoVars, '`').as_deref(),
            Ok("c:\\dir$X")
        );
        assert_eq!(expand("\"a`\"b\"", &NoVars, '`').as_deref(), Ok("a\"b"));
    }

    #[test]
    fn words() {
        let w = |s: &str| expand_words(s, &env(), '\\').unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w("hello${SPACE}bye"), ["helloabc", "defbye"]);
        assert_eq!(w("hello\"${SPACE}\"bye"), ["helloabc  defbye"]);
        assert_eq!(w("hello${LEADING}def"), ["hello", "ab", "cdef"]);
        assert_eq!(w("hello\\ there"), ["hello there"]);
        assert_eq!(w("hello\\\" there"), ["hello\"", "there"]);
        assert_eq!(w("a \"\" b"), ["a", "b"]);
        assert_eq!(w("80/tcp  443"), ["80/tcp", "443"]);
        assert_eq!(w("cat << EOF"), ["cat", "<< EOF"]);
    }

    #[test]
    fn skip_unset_and_raw() {
        let lex = Lexer::new('\\')
            .raw_quotes(true)
            .raw_escapes(true)
            .skip_unset(true);
        assert_eq!(
            lex.process_word("'a' \"$X\" \\$ ${Y:-z} ${Z}", &NoVars)
                .as_deref(),
            Ok("'a' \"$X\" \\$ ${Y:-z} ${Z}")
        );
        let lex = Lexer::new('\\').skip_process_quotes(true);
        assert_eq!(
            lex.process_word("'$PWD' \"$PWD\"", &env()).as_deref(),
            Ok("'/home' \"/home\"")
        );
    }

    #[test]
    fn bounded() {
        let deep = format!("{}x{}", "${A:-".repeat(10_000), "}".repeat(10_000));
        assert_eq!(word(&deep), Err(ExpandReason::TooDeep));
        let mut vars = BTreeMap::new();
        vars.insert("A".to_string(), "x".repeat(600_000));
        assert_eq!(
            expand("$A$A", &vars, '\\').map_err(|e| e.reason),
            Err(ExpandReason::TooLong)
        );
        let slice = vec![
            ("A".to_string(), "1".to_string()),
            ("A".to_string(), "2".to_string()),
        ];
        assert_eq!(expand("$A", &slice, '\\').as_deref(), Ok("2"));
    }
}
