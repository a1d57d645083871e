//! `WWW-Authenticate` parsing (RFC 7235 §4.1, with RFC 7230 quoted strings).

use std::collections::BTreeMap;

/// One challenge: the scheme lowercased and its parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] == b' ' || self.s[self.i] == b'\t') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.i < self.s.len() && is_tchar(self.s[self.i]) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// A token68 may end in '=' padding; accepts token chars plus '/' and '='.
    fn token68(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len() && (is_tchar(self.s[self.i]) || b"/=".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    /// An unquoted parameter value. RFC 7235 allows only a token, but registries send bare
    /// URLs (`realm=https://…`), so anything up to a comma or whitespace is taken.
    fn bare_value(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len() && !b", \t".contains(&self.s[self.i]) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> Option<String> {
        // Called on the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' if self.i + 1 < self.s.len() => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        None
    }
    /// Whether the input at the cursor is `token [ws] =` but not `token==` (token68 padding):
    /// tells a parameter from the next challenge's scheme.
    fn at_param(&self) -> bool {
        let mut j = self.i;
        while j < self.s.len() && is_tchar(self.s[j]) {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while j < self.s.len() && (self.s[j] == b' ' || self.s[j] == b'\t') {
            j += 1;
        }
        j < self.s.len() && self.s[j] == b'=' && self.s.get(j + 1) != Some(&b'=')
    }
}

/// Parses every challenge in a `WWW-Authenticate` value. Malformed trailing input is dropped
/// rather than failing the whole header: registries in the wild send odd things, and one
/// usable challenge is enough.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut lx = Lexer {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        lx.skip_ws();
        while lx.peek() == Some(b',') {
            lx.i += 1;
            lx.skip_ws();
        }
        let Some(scheme) = lx.token() else { break };
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        lx.skip_ws();
        if !lx.at_param() && lx.peek().is_some_and(|c| c != b',') {
            let t = lx.token68();
            if !t.is_empty() {
                ch.params.insert(String::new(), t);
            }
        }
        // auth-params, comma separated, until something that is not `name=`.
        loop {
            lx.skip_ws();
            if !lx.at_param() {
                if lx.peek() == Some(b',') {
                    // Either more params follow the comma, or a new challenge does.
                    let save = lx.i;
                    lx.i += 1;
                    lx.skip_ws();
                    while lx.peek() == Some(b',') {
                        lx.i += 1;
                        lx.skip_ws();
                    }
                    if lx.at_param() {
                        continue;
                    }
                    lx.i = save;
                }
                break;
            }
            let Some(name) = lx.token() else { break };
            lx.skip_ws();
            lx.i += 1; // '='
            lx.skip_ws();
            let value = if lx.peek() == Some(b'"') {
                match lx.quoted() {
                    Some(v) => v,
                    None => break,
                }
            } else {
                lx.bare_value()
            };
            ch.params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(ch);
        if lx.i >= lx.s.len() {
            break;
        }
        let before = lx.i;
        lx.skip_ws();
        if lx.peek() != Some(b',') && lx.i == before {
            // Unparseable junk: stop rather than loop.
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn scope_with_commas_and_escapes_in_quotes() {
        let c = parse_challenges(
            r#"Bearer realm="https://h/token", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope", x="a\"b\\c""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].param("scope"),
            Some("repository:a:pull,push repository:b:pull")
        );
        assert_eq!(c[0].param("error"), Some("insufficient_scope"));
        assert_eq!(c[0].param("x"), Some(r#"a"b\c"#));
    }

    #[test]
    fn several_challenges_and_case() {
        let c = parse_challenges(
            r#"Basic realm="Registry Realm", BEARER Realm=https://h/t,Service=reg , Negotiate abc=="#,
        );
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("https://h/t"));
        assert_eq!(c[1].param("service"), Some("reg"));
        assert_eq!(c[2].scheme, "negotiate");
        assert_eq!(c[2].param(""), Some("abc=="));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for s in [
            "",
            ",,,",
            "Bearer",
            "Bearer realm=",
            "Bearer realm=\"unterminated",
            "Bearer ,realm=x",
            "=== Basic",
            "Basic realm=\"x\",,, ,",
        ] {
            let _ = parse_challenges(s);
        }
        let c = parse_challenges("Bearer ,realm=x");
        assert_eq!(c[0].param("realm"), Some("x"));
        assert_eq!(parse_challenges("Basic")[0].scheme, "basic");
    }
}
