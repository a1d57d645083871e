//! Here-documents: `RUN <<EOF`, `<<-EOF` (leading tabs stripped), `<<'EOF'` (no expansion),
//! `3<<EOF` (file descriptor), several on one line, `COPY <<EOF /dest`.

use serde::Serialize;

use crate::lex::{ExpandError, Lexer, NoVars};

/// One here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<"EOF"`); also the file name of a
    /// `COPY <<name` source.
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when none.
    pub fd: u64,
    /// False when any part of the delimiter was quoted: the body is then taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from each body line and from the delimiter line.
    pub chomp: bool,
    /// The body, each line with its newline, without the delimiter line.
    pub content: String,
}

/// Strips leading tabs from every line, as `<<-` asks.
pub(crate) fn chomp(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for line in content.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

/// The heredoc a single word introduces (`<<EOF`, `2<<-"END"`), if it is one.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ExpandError> {
    let digits_end = word
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(word.len(), |(i, _)| i);
    let (digits, rest) = word.split_at(digits_end);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\u{c}']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    // Go's ParseUint: no digits is 0, too many is the maximum.
    let fd = if digits.is_empty() {
        0
    } else {
        digits.parse().unwrap_or(u64::MAX)
    };
    let lex = Lexer::new('\\').skip_unset(true);
    let words = lex.process_words(rest, &NoVars)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lex.raw_quotes(true).process_words(rest, &NoVars)?;
    let Some(raw_name) = raw.first().filter(|_| raw.len() == 1) else {
        return Ok(None);
    };
    // Quotes that the unquoting pass removed mean part of the word was quoted.
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        fd,
        expand: quotes(name) == quotes(raw_name),
        chomp,
        content: String::new(),
    }))
}

/// The heredocs a logical line introduces, in order. Words are lexed with `\` as escape
/// whatever `# escape=` says, as BuildKit does; a line that does not lex has none.
pub(crate) fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, ExpandError> {
    let lex = Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset(true);
    let words = lex.process_words(line, &NoVars).unwrap_or_default();
    let mut docs = Vec::new();
    for w in &words {
        if let Some(h) = parse_heredoc(w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(word: &str) -> Option<(String, u64, bool, bool)> {
        parse_heredoc(word)
            .ok()
            .flatten()
            .map(|h| (h.name, h.fd, h.expand, h.chomp))
    }

    #[test]
    fn words() {
        assert_eq!(doc("<<EOF"), Some(("EOF".into(), 0, true, false)));
        assert_eq!(doc("<<-EOF"), Some(("EOF".into(), 0, true, true)));
        assert_eq!(doc("3<<EOF"), Some(("EOF".into(), 3, true, false)));
        assert_eq!(doc("<<'EOF'"), Some(("EOF".into(), 0, false, false)));
        assert_eq!(doc("<<eo'f'"), Some(("eof".into(), 0, false, false)));
        assert_eq!(doc("<<eo\\'f"), Some(("eo'f".into(), 0, true, false)));
        assert_eq!(doc("<<'e'o\\'f"), Some(("eo'f".into(), 0, false, false)));
        assert_eq!(
            doc("<<'one two'"),
            Some(("one two".into(), 0, false, false))
        );
        assert_eq!(doc("<<$EOF"), Some(("$EOF".into(), 0, true, false)));
        assert_eq!(doc("<<  EOF"), Some(("EOF".into(), 0, true, false)));
        assert_eq!(doc("<<"), None);
        assert_eq!(doc("<<a<b"), None);
        assert_eq!(doc("x<<EOF"), None);
        assert_eq!(doc("<<one two"), None);
    }

    #[test]
    fn lines() {
        let names = |l: &str| -> Vec<String> {
            heredocs_in_line(l)
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("COPY <<FILE1 <<FILE2 /dest"), ["FILE1", "FILE2"]);
        assert_eq!(names("RUN \"<<NOHEREDOC\""), Vec::<String>::new());
        assert_eq!(names("RUN <<  EOF  > foo"), ["EOF"]);
        assert_eq!(names("RUN cat <<EOF 'unterminated"), Vec::<String>::new());
    }

    #[test]
    fn chomps_tabs_only() {
        assert_eq!(chomp("\t\ta\n  b\n\tc"), "a\n  b\nc");
    }
}
