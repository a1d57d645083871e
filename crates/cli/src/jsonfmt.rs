//! Re-indents raw JSON text without decoding it, like Go's `json.Indent` and
//! `json.Compact`: key order, number spelling and string escapes stay exactly
//! as the daemon sent them, which is what `docker inspect` prints.

/// Go's `json.Indent(dst, src, "", indent)`. `src` must be valid JSON.
pub fn indent(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    // Set after `{`/`[`: the newline is written lazily so that empty
    // containers stay `{}` / `[]`.
    let mut need_indent = false;
    let mut chars = src.trim_start().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    while let Some(c) = chars.next() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        if need_indent && c != ']' && c != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '"' => {
                out.push('"');
                copy_string_rest(&mut chars, &mut out);
            }
            '{' | '[' => {
                out.push(c);
                need_indent = true;
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out
}

/// Go's `json.Compact`: drops insignificant whitespace.
pub fn compact(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                out.push('"');
                copy_string_rest(&mut chars, &mut out);
            }
            other => out.push(other),
        }
    }
    out
}

/// Copies the rest of a JSON string (after its opening quote) verbatim.
fn copy_string_rest(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    while let Some(c) = chars.next() {
        out.push(c);
        match c {
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            '"' => return,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let src = "[{\"Id\":\"abc\",\"Args\":[],\"Env\":[\"A=1\",\"B=\\\"2\\\"\"],\"State\":{},\"N\":1.50,\"Html\":\"\\u003c\"}\n]";
        let want = r#"[
    {
        "Id": "abc",
        "Args": [],
        "Env": [
            "A=1",
            "B=\"2\""
        ],
        "State": {},
        "N": 1.50,
        "Html": "\u003c"
    }
]"#;
        assert_eq!(indent(src, "    "), want);
    }

    #[test]
    fn empty_and_nested() {
        assert_eq!(indent("[]", "    "), "[]");
        assert_eq!(
            indent("  {\"a\" : [ 1 , {\"b\":null} ] }", "  "),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ]\n}"
        );
        assert_eq!(
            indent(r#"{"k":"a,b:{c}"}"#, " "),
            "{\n \"k\": \"a,b:{c}\"\n}"
        );
    }

    #[test]
    fn compacts() {
        assert_eq!(
            compact("[ {\"a\": \"x y\" ,\n \"b\" : [1, 2]}\n]"),
            r#"[{"a":"x y","b":[1,2]}]"#
        );
    }
}
