//! `.dockerignore` patterns, matched exactly as moby's `patternmatcher` (and its `ignorefile`
//! reader) match them, so a context holds the same files whichever CLI sent it.
//!
//! - [`parse_ignore`] reads an ignore file: a UTF-8 BOM is dropped, lines starting with `#`
//!   are comments, the rest are trimmed, cleaned (`filepath.Clean`) and made relative to the
//!   context root (a leading `/` is dropped), `!` kept in front.
//! - [`PatternMatcher::new`] checks each pattern as Go's `filepath.Match` would ("syntax error
//!   in pattern"), then classifies it as moby does: exact (`a.txt`), prefix (`dir/**`),
//!   suffix (`**/x`) or a regular expression (`*`, `?`, `[...]`, `\x`, inner `**`).
//! - Matching goes through the patterns in order: a later pattern overrides an earlier one, an
//!   exception (`!p`) only re-includes what was excluded. A pattern also matches a path when it
//!   matches one of the path's parent directories (`docs` excludes `docs/a.md`).
//!
//! moby turns the non-literal patterns into an RE2 expression (Go's `regexp`), passing the
//! characters of a `[...]` class through one by one, which gives a few patterns meanings of
//! their own (`[*]` is a class holding `[`, `^` and `/`, repeated, then `]`). To get those same
//! meanings, the RE2 text is built exactly as moby builds it (the tests compare it with moby's)
//! and then rewritten into the `regex` crate's syntax, class by class. Where the two engines
//! differ, the rewrite refuses the pattern as a syntax error: escapes RE2 has and `regex` lacks
//! (`\Q…\E`, `\C`, octal) and classes moby would only reject when first matched (`[z-a]`), which
//! are refused here at once.

use regex::Regex;

use crate::ErrorKind;

/// Why a pattern list was refused. The messages are moby's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// Go's `filepath.ErrBadPattern`; the pattern is kept for logs.
    #[error("syntax error in pattern")]
    Syntax { pattern: String },
}

impl PatternError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Go's `filepath.Clean` for `/`-separated paths: the shortest equivalent path, `.` for
/// nothing, `..` kept where it cannot be resolved in a relative path.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(element),
        }
    }
    let body = parts.join("/");
    if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_string()
    } else {
        body
    }
}

/// Go's `filepath.Dir` of a cleaned relative path: everything before the last `/`, or `.`.
fn parent_of(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_string(),
    }
}

/// Reads an ignore file's patterns as moby's `ignorefile.ReadAll` does. Bytes that are not
/// UTF-8 are replaced (Go would keep them; such patterns match no UTF-8 name either way).
pub fn parse_ignore(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut patterns = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        // bufio.ScanLines drops the \r of a CRLF line end.
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if i == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        // Comments are recognised before trimming: " #x" is a pattern.
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        patterns.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    patterns
}

/// How one pattern is matched (moby's `matchType`).
#[derive(Debug, Clone)]
enum Kind {
    /// The path equals the pattern.
    Exact,
    /// `dir/**`: the path starts with the pattern minus its `**`.
    Prefix,
    /// `**/x`: the path ends with the pattern minus its `**`.
    Suffix,
    Regex(Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its `!`.
    text: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// The cleaned pattern, without the `!` of an exception.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is an exception (`!pattern`).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            // Both kinds are only chosen for patterns ending or starting with "**".
            Kind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.text[2..];
                // "**/foo" also matches "foo" itself.
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

/// What [`PatternMatcher::matches_with_parent`] learnt about a directory, for its children:
/// which patterns matched it (or one of its parents). The empty value means "nothing known".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo(Vec<bool>);

/// An ordered list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles `patterns` (moby's `patternmatcher.New`): each is trimmed and cleaned, blank
    /// ones are skipped.
    pub fn new<I, S>(patterns: I) -> Result<PatternMatcher, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut pm = PatternMatcher::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut text = clean(p);
            let exclusion = text.starts_with('!');
            if exclusion {
                if text.len() == 1 {
                    return Err(PatternError::LoneExclamation);
                }
                text.remove(0);
                pm.exclusions = true;
            }
            let syntax = || PatternError::Syntax {
                pattern: p.to_string(),
            };
            if !glob_is_valid(text.as_bytes()) {
                return Err(syntax());
            }
            let kind = match moby_regex(&text) {
                (MatchType::Exact, _) => Kind::Exact,
                (MatchType::Prefix, _) => Kind::Prefix,
                (MatchType::Suffix, _) => Kind::Suffix,
                (MatchType::Regexp, re2) => {
                    let rust = rust_regex(&re2).ok_or_else(syntax)?;
                    Kind::Regex(Regex::new(&rust).map_err(|_| syntax())?)
                }
            };
            pm.patterns.push(Pattern {
                text,
                exclusion,
                kind,
            });
        }
        Ok(pm)
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception (`!pattern`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` (relative to the context root, `/`-separated) is excluded, looking at
    /// the path and each of its parent directories (moby's `MatchesOrParentMatches`). The root
    /// itself is never excluded.
    pub fn matches(&self, path: &str) -> bool {
        let file = clean(path);
        if file == "." {
            return false;
        }
        let parent = parent_of(&file);
        let mut matched = false;
        for p in &self.patterns {
            // An inclusion cannot change a match, an exception cannot change a non-match.
            if p.exclusion != matched {
                continue;
            }
            if p.matches(&file) || (parent != "." && matches_a_prefix(p, &parent)) {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Like [`PatternMatcher::matches`] during a walk (moby's `MatchesUsingParentResults`):
    /// `parent` is what this returned for the path's directory, so a pattern that matched the
    /// directory counts as matching without being evaluated again. This is what `docker build`
    /// uses to decide what goes into the context. Given [`MatchInfo::default`], the parents are
    /// checked one by one instead; info from another matcher counts as none.
    pub fn matches_with_parent(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let known = parent.0.len() == self.patterns.len() && !parent.0.is_empty();
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = known && parent.0[i];
            if !hit {
                if p.exclusion != matched {
                    continue;
                }
                hit = p.matches(path);
                if !hit && !known {
                    let dir = parent_of(path);
                    hit = dir != "." && matches_a_prefix(p, &dir);
                }
            }
            info[i] = hit;
            if hit {
                matched = !p.exclusion;
            }
        }
        (matched, MatchInfo(info))
    }

    /// Whether an exception could re-include something inside the excluded directory `dir`:
    /// one of them names `dir` or starts with `dir/`. moby walks into an excluded directory
    /// only then; an exception such as `!**/keep` does not count (a literal prefix check).
    pub fn may_include_inside(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.text).starts_with(&dir_slash))
    }
}

/// Whether `p` matches `dir` or one of its leading parts ("a", "a/b", ... "a/b/c").
fn matches_a_prefix(p: &Pattern, dir: &str) -> bool {
    dir.match_indices('/')
        .map(|(i, _)| &dir[..i])
        .chain(std::iter::once(dir))
        .any(|prefix| p.matches(prefix))
}

// ------------------------------------------------------------------ Go's filepath.Match syntax

/// Whether Go's `filepath.Match(pattern, ".")` would not report `ErrBadPattern`: it checks
/// every chunk (the text between unbracketed `*`s), so this checks them all.
fn glob_is_valid(mut pattern: &[u8]) -> bool {
    while !pattern.is_empty() {
        while pattern.first() == Some(&b'*') {
            pattern = &pattern[1..];
        }
        let (chunk, rest) = scan_chunk(pattern);
        if !chunk_is_valid(chunk) {
            return false;
        }
        pattern = rest;
    }
    true
}

/// Go's `scanChunk` without the leading stars: up to the next `*` outside brackets.
fn scan_chunk(pattern: &[u8]) -> (&[u8], &[u8]) {
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    pattern.split_at(i)
}

/// The syntax checks of Go's `matchChunk`.
fn chunk_is_valid(mut chunk: &[u8]) -> bool {
    while let Some(&c) = chunk.first() {
        match c {
            b'[' => {
                chunk = &chunk[1..];
                if chunk.first() == Some(&b'^') {
                    chunk = &chunk[1..];
                }
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Some(rest) = class_escape(chunk) else {
                        return false;
                    };
                    chunk = rest;
                    if chunk.first() == Some(&b'-') {
                        let Some(rest) = class_escape(&chunk[1..]) else {
                            return false;
                        };
                        chunk = rest;
                    }
                    ranges += 1;
                }
            }
            b'\\' => {
                if chunk.len() < 2 {
                    return false;
                }
                chunk = &chunk[2..];
            }
            _ => chunk = &chunk[1..],
        }
    }
    true
}

/// Go's `getEsc`: one (possibly escaped) character of a class, which must be followed by more.
fn class_escape(mut chunk: &[u8]) -> Option<&[u8]> {
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return None,
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return None;
            }
        }
        Some(_) => {}
    }
    let width = utf8_width(chunk[0]);
    if width == 0 || chunk.len() < width || std::str::from_utf8(&chunk[..width]).is_err() {
        return None;
    }
    let rest = &chunk[width..];
    (!rest.is_empty()).then_some(rest)
}

fn utf8_width(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 0,
    }
}

// ------------------------------------------------------------------ moby's compile

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// Characters moby escapes: regexp syntax that means nothing to `filepath.Match`.
fn should_escape(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$')
}

/// moby's `Pattern.compile` for `/`: the match type and, for regexps, the RE2 expression.
fn moby_regex(pattern: &str) -> (MatchType, String) {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut ty = MatchType::Exact;
    let mut pos = 0;
    let mut step = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        if ch == '*' {
            if chars.get(pos) == Some(&'*') {
                pos += 1;
                // "**/" is "**": the slash is eaten.
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    // A trailing "**" accepts everything below, as in .gitignore.
                    if ty == MatchType::Exact {
                        ty = MatchType::Prefix;
                    } else {
                        re.push_str(".*");
                        ty = MatchType::Regexp;
                    }
                } else {
                    // Any number of directories, none included.
                    re.push_str("(.*/)?");
                    ty = MatchType::Regexp;
                }
                if step == 0 {
                    ty = MatchType::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                ty = MatchType::Regexp;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            ty = MatchType::Regexp;
        } else if should_escape(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.get(pos) {
                Some(&next) => {
                    re.push('\\');
                    re.push(next);
                    pos += 1;
                    ty = MatchType::Regexp;
                }
                None => re.push('\\'),
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            ty = MatchType::Regexp;
        } else {
            re.push(ch);
        }
        step += 1;
    }
    if ty == MatchType::Regexp {
        re.push('$');
    }
    (ty, re)
}

// ------------------------------------------------------------------ RE2 → regex crate

/// Rewrites an RE2 expression of the forms [`moby_regex`] produces into the `regex` crate's
/// syntax with RE2's meaning, or `None` where the two cannot agree.
fn rust_regex(re2: &str) -> Option<String> {
    let c: Vec<char> = re2.chars().collect();
    let mut out = String::with_capacity(re2.len() * 2);
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => {
                push_escape(&mut out, *c.get(i + 1)?)?;
                i += 2;
            }
            '[' => i = push_class(&c, i, &mut out)?,
            // Only moby's own syntax reaches these unescaped (and `^`, an anchor in RE2 too).
            ch @ ('^' | '$' | '(' | ')' | '?' | '*' | '.' | '|') => {
                out.push(ch);
                i += 1;
            }
            ch => {
                push_literal(&mut out, ch);
                i += 1;
            }
        }
    }
    Some(out)
}

fn push_literal(out: &mut String, ch: char) {
    out.push_str(&regex::escape(ch.encode_utf8(&mut [0; 4])));
}

/// An RE2 escape outside a class. RE2's perl classes are ASCII; `regex`'s are Unicode, so they
/// are spelled out.
fn push_escape(out: &mut String, e: char) -> Option<()> {
    if e.is_ascii_punctuation() {
        push_literal(out, e);
        return Some(());
    }
    let text = match e {
        'a' | 'f' | 't' | 'n' | 'r' | 'v' | 'A' | 'z' | 'b' | 'B' | 'x' | 'p' | 'P' => {
            out.push('\\');
            out.push(e);
            return Some(());
        }
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\f\\r ]",
        'S' => "[^\\t\\n\\f\\r ]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        _ => return None,
    };
    out.push_str(text);
    Some(())
}

/// RE2's POSIX class names.
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Copies the RE2 class starting at `c[start]` (a `[`), parsed as Go's `parseClass` does: a
/// `]` right after `[` or `[^` is a member, `[` is a plain member unless it opens `[:name:]`,
/// `a-]` is `a` and `-`. Members are escaped for `regex`, which gives `[`, `&&`, `--`, `~~`
/// meanings inside classes. Returns the index after the class.
fn push_class(c: &[char], start: usize, out: &mut String) -> Option<usize> {
    let mut i = start + 1;
    out.push('[');
    if c.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let ch = *c.get(i)?;
        if ch == ']' && !first {
            out.push(']');
            return Some(i + 1);
        }
        first = false;
        if ch == '[' && c.get(i + 1) == Some(&':') {
            if let Some(end) = find(c, i + 2, &[':', ']']) {
                let inner: String = c[i + 2..end].iter().collect();
                let name = inner.strip_prefix('^').unwrap_or(&inner);
                if !POSIX_CLASSES.contains(&name) {
                    return None;
                }
                out.push_str(&format!("[:{inner}:]"));
                i = end + 2;
                continue;
            }
        }
        if ch == '\\' {
            let spelled = match c.get(i + 1) {
                Some('d') => Some("0-9"),
                Some('s') => Some("\\t\\n\\f\\r "),
                Some('w') => Some("0-9A-Za-z_"),
                Some('D') => Some("\\D"),
                Some('S') => Some("\\S"),
                Some('W') => Some("\\W"),
                _ => None,
            };
            if let Some(s) = spelled {
                out.push_str(s);
                i += 2;
                continue;
            }
            if let Some(&p @ ('p' | 'P')) = c.get(i + 1) {
                let name = *c.get(i + 2).filter(|n| n.is_ascii_alphabetic())?;
                out.push('\\');
                out.push(p);
                out.push(name);
                i += 3;
                continue;
            }
        }
        let lo = class_char(c, &mut i)?;
        let mut hi = lo;
        if c.get(i) == Some(&'-') && c.get(i + 1).is_some_and(|n| *n != ']') {
            i += 1;
            hi = class_char(c, &mut i)?;
            if hi < lo {
                return None;
            }
        }
        push_class_member(out, lo);
        if hi != lo {
            out.push('-');
            push_class_member(out, hi);
        }
    }
}

/// Where `needle` next occurs in `c` at or after `from`.
fn find(c: &[char], from: usize, needle: &[char]) -> Option<usize> {
    (from..c.len().saturating_sub(needle.len() - 1)).find(|&j| c[j..].starts_with(needle))
}

/// One member character of an RE2 class, escapes decoded.
fn class_char(c: &[char], i: &mut usize) -> Option<char> {
    let ch = *c.get(*i)?;
    if ch != '\\' {
        *i += 1;
        return Some(ch);
    }
    let e = *c.get(*i + 1)?;
    *i += 2;
    if e.is_ascii_punctuation() {
        return Some(e);
    }
    Some(match e {
        'a' => '\u{7}',
        'f' => '\u{c}',
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'v' => '\u{b}',
        'x' => {
            let hex: String = c.get(*i..*i + 2)?.iter().collect();
            *i += 2;
            char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
        }
        _ => return None,
    })
}

fn push_class_member(out: &mut String, ch: char) {
    if matches!(ch, '\\' | '[' | ']' | '^' | '-' | '&' | '~') {
        out.push('\\');
    }
    out.push(ch);
}

#[cfg(test)]
mod tests;
