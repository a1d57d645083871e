//! Splitting an instruction line into its keyword, its `--flags` and its arguments, the way
//! BuildKit's parser does before any variable is substituted. Quotes and escapes inside
//! arguments are kept (they are removed by [`crate::lex`] when the instruction is expanded).

/// The whitespace of BuildKit's `[\t\v\f\r ]+` splitter: ASCII only, no newline.
pub(crate) fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits `s` at runs of [`is_split_space`], at most `limit` pieces (`None`: no limit), as Go's
/// `regexp.Split` does.
pub(crate) fn split_ws(s: &str, limit: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if limit.is_some_and(|l| out.len() + 1 >= l) {
            out.push(rest.to_string());
            return out;
        }
        match rest.find(is_split_space) {
            Some(i) => {
                let (head, tail) = rest.split_at(i);
                out.push(head.to_string());
                rest = tail.trim_start_matches(is_split_space);
            }
            None => {
                out.push(rest.to_string());
                return out;
            }
        }
    }
}

/// Like BuildKit's `parseStringsWhitespaceDelimited`: no words for an empty string.
pub(crate) fn whitespace_words(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        split_ws(s, None)
    }
}

/// `(keyword, flags, arguments)` of a logical line.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_ws(line.trim(), Some(2));
    let mut parts = parts.into_iter();
    let cmd = parts.next().unwrap_or_default();
    match parts.next() {
        Some(rest) => {
            let (args, flags) = extract_flags(&rest, escape);
            (cmd, flags, args.trim().to_string())
        }
        None => (cmd, Vec::new(), String::new()),
    }
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Leading `--name[=value]` words (quotes removed, escapes applied) and the text after them.
/// A bare `--` ends the flags.
fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let Some(&(pos, mut ch)) = chars.get(i) else {
            if phase != Phase::Spaces && buf != "--" && (blank_ok || !buf.is_empty()) {
                words.push(buf);
            }
            return (String::new(), words);
        };
        let next_ch = chars.get(i + 1).map(|&(_, c)| c);
        i += 1;
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            if ch != '-' || next_ch != Some('-') {
                return (line.get(pos..).unwrap_or_default().to_string(), words);
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if buf == "--" {
                        return (line.get(pos..).unwrap_or_default().to_string(), words);
                    }
                    if blank_ok || !buf.is_empty() {
                        words.push(std::mem::take(&mut buf));
                    }
                    buf.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                    continue;
                }
                if ch == escape {
                    match next_ch {
                        None => continue,
                        Some(n) => {
                            i += 1;
                            ch = n;
                        }
                    }
                }
                buf.push(ch);
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                    continue;
                }
                if ch == escape {
                    match next_ch {
                        None => {
                            phase = Phase::Word;
                            continue;
                        }
                        Some(n) => {
                            i += 1;
                            ch = n;
                        }
                    }
                }
                buf.push(ch);
            }
            Phase::Spaces => {}
        }
    }
}

/// Words separated by whitespace, with quoted strings kept whole and quotes and escapes kept in
/// the words (BuildKit's `parseWords`, used for `ARG`, `ENV`, `LABEL`).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut i = 0;
    loop {
        let Some(&c) = chars.get(i) else {
            if phase != Phase::Spaces && (blank_ok || !buf.is_empty()) {
                words.push(buf);
            }
            return words;
        };
        let at_last = i + 1 == chars.len();
        let mut ch = c;
        i += 1;
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !buf.is_empty() {
                        words.push(std::mem::take(&mut buf));
                    }
                    buf.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                }
                if ch == escape {
                    if at_last {
                        continue;
                    }
                    // An escaped character is kept with its escape, even a quote.
                    buf.push(ch);
                    if let Some(&n) = chars.get(i) {
                        ch = n;
                        i += 1;
                    }
                }
                buf.push(ch);
            }
            Phase::Quote => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    if at_last {
                        phase = Phase::Word;
                        continue;
                    }
                    buf.push(ch);
                    if let Some(&n) = chars.get(i) {
                        ch = n;
                        i += 1;
                    }
                }
                buf.push(ch);
            }
            Phase::Spaces => {}
        }
    }
}

/// The outcome of trying the exec (JSON) form.
pub(crate) enum Json {
    /// A JSON array of strings.
    Array(Vec<String>),
    /// Valid JSON array, but not all strings: an error in Docker.
    NotStrings,
    /// Not a JSON array: the caller falls back to the shell form.
    No,
}

pub(crate) fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::No;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
        Err(_) => Json::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_flags() {
        let (cmd, flags, args) =
            split_command("  COPY --from=build --chown=\"a b\" src dst ", '\\');
        assert_eq!(cmd, "COPY");
        assert_eq!(flags, ["--from=build", "--chown=a b"]);
        assert_eq!(args, "src dst");
        let (_, flags, args) = split_command("RUN --network=none -- --not-a-flag", '\\');
        assert_eq!(flags, ["--network=none"]);
        assert_eq!(args, "--not-a-flag");
        let (_, flags, args) = split_command("COPY --link", '\\');
        assert_eq!(flags, ["--link"]);
        assert_eq!(args, "");
        let (_, flags, args) = split_command("RUN -x", '\\');
        assert!(flags.is_empty());
        assert_eq!(args, "-x");
        let (cmd, flags, args) = split_command("RUN", '\\');
        assert_eq!((cmd.as_str(), flags.len(), args.as_str()), ("RUN", 0, ""));
        let (_, flags, _) = split_command("RUN --mount=a\\ b x", '\\');
        assert_eq!(flags, ["--mount=a b"]);
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words("A=1 B=\"x y\" C='p q' D=a\\ b", '\\'),
            ["A=1", "B=\"x y\"", "C='p q'", "D=a\\ b"]
        );
        assert_eq!(parse_words("E=\"\" F=", '\\'), ["E=\"\"", "F="]);
        assert_eq!(parse_words("x\\", '\\'), ["x"]);
        assert_eq!(parse_words("  ", '\\'), Vec::<String>::new());
    }

    #[test]
    fn whitespace_split() {
        assert_eq!(split_ws("a  b\tc", None), ["a", "b", "c"]);
        assert_eq!(split_ws("a  b\tc", Some(2)), ["a", "b\tc"]);
        assert!(whitespace_words("").is_empty());
    }

    #[test]
    fn json() {
        assert!(matches!(parse_json(r#" ["a", "b c"] "#), Json::Array(v) if v == ["a", "b c"]));
        assert!(matches!(parse_json(r#"["a", 1]"#), Json::NotStrings));
        assert!(matches!(parse_json(r#"["a", b]"#), Json::No));
        assert!(matches!(parse_json("['a']"), Json::No));
        assert!(matches!(parse_json("echo [x]"), Json::No));
        assert!(matches!(parse_json("[]"), Json::Array(v) if v.is_empty()));
    }
}
