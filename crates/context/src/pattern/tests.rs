//! Data-driven tables: moby's own test cases, Go's filepath.Match cases, and the corners
//! where moby's RE2 translation gives patterns meanings of their own.

use super::*;

fn pm(patterns: &[&str]) -> PatternMatcher {
    PatternMatcher::new(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
}

/// What a walk sees: each parent directory is matched first and hands its info down.
fn walk_matches(m: &PatternMatcher, path: &str) -> bool {
    let mut info = MatchInfo::default();
    let parts: Vec<&str> = path.split('/').collect();
    for i in 1..parts.len() {
        info = m.matches_with_parent(&parts[..i].join("/"), &info).1;
    }
    m.matches_with_parent(path, &info).0
}

/// moby's TestMatches table: (pattern, path, excluded).
const MOBY_MATCHES: &[(&str, &str, bool)] = &[
    ("**", "file", true),
    ("**", "file/", true),
    ("**/", "file", true),
    ("**/", "file/", true),
    ("**", "/", true),
    ("**/", "/", true),
    ("**", "dir/file", true),
    ("**/", "dir/file", true),
    ("**", "dir/file/", true),
    ("**/", "dir/file/", true),
    ("**/**", "dir/file", true),
    ("**/**", "dir/file/", true),
    ("dir/**", "dir/file", true),
    ("dir/**", "dir/file/", true),
    ("dir/**", "dir/dir2/file", true),
    ("dir/**", "dir/dir2/file/", true),
    ("**/dir", "dir", true),
    ("**/dir", "dir/file", true),
    ("**/dir2/*", "dir/dir2/file", true),
    ("**/dir2/*", "dir/dir2/file/", true),
    ("**/dir2/**", "dir/dir2/dir3/file", true),
    ("**/dir2/**", "dir/dir2/dir3/file/", true),
    ("**file", "file", true),
    ("**file", "dir/file", true),
    ("**/file", "dir/file", true),
    ("**file", "dir/dir/file", true),
    ("**/file", "dir/dir/file", true),
    ("**/file*", "dir/dir/file", true),
    ("**/file*", "dir/dir/file.txt", true),
    ("**/file*txt", "dir/dir/file.txt", true),
    ("**/file*.txt", "dir/dir/file.txt", true),
    ("**/file*.txt*", "dir/dir/file.txt", true),
    ("**/**/*.txt", "dir/dir/file.txt", true),
    ("**/**/*.txt2", "dir/dir/file.txt", false),
    ("**/*.txt", "file.txt", true),
    ("**/**/*.txt", "file.txt", true),
    ("a**/*.txt", "a/file.txt", true),
    ("a**/*.txt", "a/dir/file.txt", true),
    ("a**/*.txt", "a/dir/dir/file.txt", true),
    ("a/*.txt", "a/dir/file.txt", false),
    ("a/*.txt", "a/file.txt", true),
    ("a/*.txt**", "a/file.txt", true),
    ("a[b-d]e", "ae", false),
    ("a[b-d]e", "ace", true),
    ("a[b-d]e", "aae", false),
    ("a[^b-d]e", "aze", true),
    (".*", ".foo", true),
    (".*", "foo", false),
    ("abc.def", "abcdef", false),
    ("abc.def", "abc.def", true),
    ("abc.def", "abcZdef", false),
    ("abc?def", "abcZdef", true),
    ("abc?def", "abcdef", false),
    ("a\\\\", "a\\", true),
    ("**/foo/bar", "foo/bar", true),
    ("**/foo/bar", "dir/foo/bar", true),
    ("**/foo/bar", "dir/dir2/foo/bar", true),
    ("abc/**", "abc", false),
    ("abc/**", "abc/def", true),
    ("abc/**", "abc/def/ghi", true),
    ("**/.foo", ".foo", true),
    ("**/.foo", "bar.foo", false),
    ("a(b)c/def", "a(b)c/def", true),
    ("a(b)c/def", "a(b)c/xyz", false),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
    (
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (
        "dist/*.whl",
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    ("a\\*b", "a*b", true),
];

/// moby's multi-pattern cases: later patterns win, exceptions re-include.
const MOBY_MULTI: &[(&[&str], &str, bool)] = &[
    (&["**", "!util/docker/web"], "util/docker/web/foo", false),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        true,
    ),
    (
        &[
            "**",
            "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        ],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    // moby's folder-exception tests.
    (&["docs", "!docs/README.md"], "docs/README.md", false),
    (&["docs/", "!docs/README.md"], "docs/README.md", false),
    (&["docs/*", "!docs/README.md"], "docs/README.md", false),
    (&["!fileutils.go", "*.go"], "fileutils.go", true),
    (&["*.go", "!fileutils.go"], "fileutils.go", false),
    (&["*"], "fileutils.go", true),
    (&[], "any/path/there", false),
];

#[test]
fn moby_match_table() {
    for &(pattern, path, want) in MOBY_MATCHES {
        let m = pm(&[pattern]);
        assert_eq!(m.matches(path), want, "{pattern:?} vs {path:?}");
        assert_eq!(
            walk_matches(&m, path),
            want,
            "walk: {pattern:?} vs {path:?}"
        );
        assert_eq!(
            m.matches_with_parent(path, &MatchInfo::default()).0,
            want,
            "no context: {pattern:?} vs {path:?}"
        );
    }
    for &(patterns, path, want) in MOBY_MULTI {
        let m = pm(patterns);
        assert_eq!(m.matches(path), want, "{patterns:?} vs {path:?}");
        assert_eq!(
            walk_matches(&m, path),
            want,
            "walk: {patterns:?} vs {path:?}"
        );
    }
}

/// Go's filepath.Match cases that moby runs: (pattern, path, matches, syntax error).
const GO_MATCH: &[(&str, &str, bool, bool)] = &[
    ("abc", "abc", true, false),
    ("*", "abc", true, false),
    ("*c", "abc", true, false),
    ("a*", "a", true, false),
    ("a*", "abc", true, false),
    ("a*", "ab/c", true, false),
    ("a*/b", "abc/b", true, false),
    ("a*/b", "a/c/b", false, false),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", true, false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false),
    ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
    ("a*b?c*x", "abxbbxdbxebxczzy", false, false),
    ("ab[c]", "abc", true, false),
    ("ab[b-d]", "abc", true, false),
    ("ab[e-g]", "abc", false, false),
    ("ab[^c]", "abc", false, false),
    ("ab[^b-d]", "abc", false, false),
    ("ab[^e-g]", "abc", true, false),
    ("a\\*b", "a*b", true, false),
    ("a\\*b", "ab", false, false),
    ("a?b", "a☺b", true, false),
    ("a[^a]b", "a☺b", true, false),
    ("a???b", "a☺b", false, false),
    ("a[^a][^a][^a]b", "a☺b", false, false),
    ("[a-ζ]*", "α", true, false),
    ("*[a-ζ]", "A", false, false),
    ("a?b", "a/b", false, false),
    ("a*b", "a/b", false, false),
    ("[\\]a]", "]", true, false),
    ("[\\-]", "-", true, false),
    ("[x\\-]", "x", true, false),
    ("[x\\-]", "-", true, false),
    ("[x\\-]", "z", false, false),
    ("[\\-x]", "x", true, false),
    ("[\\-x]", "-", true, false),
    ("[\\-x]", "a", false, false),
    ("[]a]", "]", false, true),
    ("[-]", "-", false, true),
    ("[x-]", "x", false, true),
    ("[x-]", "-", false, true),
    ("[x-]", "z", false, true),
    ("[-x]", "x", false, true),
    ("[-x]", "-", false, true),
    ("[-x]", "a", false, true),
    ("\\", "a", false, true),
    ("[a-b-c]", "a", false, true),
    ("[", "a", false, true),
    ("[^", "a", false, true),
    ("[^bc", "a", false, true),
    ("a[", "a", false, true),
    ("a[", "ab", false, true),
    ("*x", "xxx", true, false),
];

#[test]
fn go_filepath_match_table() {
    for &(pattern, path, want, bad) in GO_MATCH {
        match PatternMatcher::new([pattern]) {
            Ok(m) => {
                assert!(!bad, "{pattern:?} should be a syntax error");
                assert_eq!(m.matches(path), want, "{pattern:?} vs {path:?}");
            }
            Err(e) => {
                assert!(bad, "{pattern:?}: unexpected {e}");
                assert_eq!(e.to_string(), "syntax error in pattern");
            }
        }
    }
}

/// moby's TestCompile table: the match type and the RE2 text it builds.
#[test]
fn compiles_like_moby() {
    use MatchType::*;
    let cases: &[(&str, MatchType, &str)] = &[
        ("*", Regexp, "^[^/]*$"),
        ("file*", Regexp, "^file[^/]*$"),
        ("*file", Regexp, "^[^/]*file$"),
        ("a*/b", Regexp, "^a[^/]*/b$"),
        ("**", Suffix, ""),
        ("**/**", Regexp, "^(.*/)?.*$"),
        ("dir/**", Prefix, ""),
        ("**/dir", Suffix, ""),
        ("**/dir2/*", Regexp, "^(.*/)?dir2/[^/]*$"),
        ("**/dir2/**", Regexp, "^(.*/)?dir2/.*$"),
        ("**file", Suffix, ""),
        ("**/file*txt", Regexp, "^(.*/)?file[^/]*txt$"),
        ("**/**/*.txt", Regexp, "^(.*/)?(.*/)?[^/]*\\.txt$"),
        ("a[b-d]e", Regexp, "^a[b-d]e$"),
        (".*", Regexp, "^\\.[^/]*$"),
        ("abc.def", Exact, ""),
        ("abc?def", Regexp, "^abc[^/]def$"),
        ("**/foo/bar", Suffix, ""),
        ("a(b)c/def", Exact, ""),
        ("a.|)$(}+{bc", Exact, ""),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Exact,
            "",
        ),
    ];
    for &(pattern, ty, re) in cases {
        let (got_ty, got_re) = moby_regex(&clean(pattern));
        assert_eq!(got_ty, ty, "{pattern}");
        if ty == Regexp {
            assert_eq!(got_re, re, "{pattern}");
        }
    }
}

/// Patterns whose meaning comes from how moby hands classes to RE2, and other corners.
#[test]
fn tricky_patterns() {
    // "[*]" is RE2's `[[^/]*]`: any run of '[', '^', '/' followed by ']'.
    let m = pm(&["[*]"]);
    assert!(m.matches("]"));
    assert!(m.matches("[^]"));
    assert!(!m.matches("*"));
    // A '^' in the middle is an anchor: the pattern matches nothing.
    let m = pm(&["a^b*"]);
    assert!(!m.matches("a^b"));
    // Escaped punctuation is literal, an escaped digit class is RE2's (ASCII).
    let m = pm(&["v\\d.txt"]);
    assert!(m.matches("v1.txt") && !m.matches("vd.txt") && !m.matches("v٣.txt"));
    let m = pm(&["\\[x\\]"]);
    assert!(m.matches("[x]") && !m.matches("x"));
    // A POSIX class inside a class.
    let m = pm(&["[[:digit:]]*"]);
    assert!(m.matches("1abc") && !m.matches("abc"));
    // '&&' and '--' are plain members for RE2.
    let m = pm(&["[&&]x"]);
    assert!(m.matches("&x"));
    let m = pm(&["a[\\--/]"]);
    assert!(m.matches("a-") && m.matches("a.") && !m.matches("a0"));
    // A reversed range: Go compiles it lazily and fails; here it is refused at once.
    for bad in ["[Local-Only]/", "[z-a]"] {
        assert!(matches!(
            PatternMatcher::new([bad]),
            Err(PatternError::Syntax { .. })
        ));
    }
    assert_eq!(
        PatternMatcher::new(["!"]).map(|_| ()),
        Err(PatternError::LoneExclamation)
    );
    assert_eq!(
        PatternError::LoneExclamation.to_string(),
        "illegal exclusion pattern: \"!\""
    );
    // The root is never excluded; patterns are cleaned.
    assert!(!pm(&["*"]).matches("."));
    assert!(pm(&["./a/../b/"]).matches("b/c"));
    let m = pm(&["  docs  "]);
    assert!(m.matches("docs/a") && !m.has_exclusions());
}

/// Where a walk with parent info and the per-path check part ways (buildx#850): the walk
/// is what decides what docker sends.
#[test]
fn walk_uses_parent_results() {
    let m = pm(&["a", "!a/b", "a/b/c"]);
    assert!(walk_matches(&m, "a/b/c/d"));
    assert!(!walk_matches(&m, "a/b/x"));
    assert!(walk_matches(&m, "a/x"));
    // An exception that names a path below lets the walk descend.
    let m = pm(&["secret", "!secret/keep/me"]);
    assert!(m.may_include_inside("secret"));
    assert!(m.may_include_inside("secret/keep"));
    assert!(!m.may_include_inside("secret/other"));
    assert!(!pm(&["x", "!**/keep"]).may_include_inside("x"));
}

#[test]
fn reads_ignore_files_like_moby() {
    let text = "\u{feff}test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! \r\n  #not a comment\n./x/../y/\r\n/\n";
    assert_eq!(
        parse_ignore(text.as_bytes()),
        [
            "test1",
            "test2",
            "a/file/here",
            "lastfile",
            "!inverted/abs/path",
            "!",
            "!",
            "#not a comment",
            "y",
            "/",
        ]
    );
    assert!(parse_ignore(b"").is_empty());
}

#[test]
fn cleans_like_go() {
    for (input, want) in [
        ("", "."),
        ("a/b/", "a/b"),
        ("a//b/./c", "a/b/c"),
        ("a/../..", ".."),
        ("../a/..", ".."),
        ("/../a", "/a"),
        ("/", "/"),
        ("./", "."),
        ("!./a", "!./a"),
    ] {
        assert_eq!(clean(input), want, "{input:?}");
    }
}
