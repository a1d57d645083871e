//! docker's `formatter.Context`: renders rows through a `--format` template,
//! as a tab-aligned table with a header row when the format starts with
//! `table`, and the helpers its contexts share (ID truncation, ellipsis,
//! Go string quoting).

pub mod container;
pub mod image;
pub mod network;

use std::rc::Rc;

use crate::tabwriter;
use crate::template::{ExecOptions, Method, Struct, Template, TemplateError, Value};

/// The user's format with docker's shorthands resolved: `table` (the
/// command's default table), `json`, or a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(pub String);

impl Format {
    pub fn is_table(&self) -> bool {
        self.0.starts_with("table")
    }

    /// The template text: `table` prefix removed, `\t`/`\n` escapes expanded.
    pub fn template_string(&self) -> String {
        match self.0.as_str() {
            "table" => return String::new(),
            "json" => return "{{json .}}".to_string(),
            _ => {}
        }
        let s = self.0.strip_prefix("table").unwrap_or(&self.0);
        s.trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n")
    }

    pub fn parse(&self) -> Result<Template, TemplateError> {
        Template::parse(&self.template_string())
    }
}

/// Renders `rows` with `format`; `header` is the field-name→column-title
/// context used for the table header. Errors read "template parsing error: …".
pub fn render(format: &Format, header: &Value, rows: &[Value]) -> Result<String, String> {
    let tmpl = format
        .parse()
        .map_err(|e| format!("template parsing error: {e}"))?;
    render_with(format, &tmpl, header, rows)
}

/// Like [`render`] with an already parsed template.
pub fn render_with(
    format: &Format,
    tmpl: &Template,
    header: &Value,
    rows: &[Value],
) -> Result<String, String> {
    let mut body = String::new();
    for row in rows {
        let line = tmpl
            .execute(row, &ExecOptions::default())
            .map_err(|e| format!("template parsing error: {e}"))?;
        body.push_str(&line);
        body.push('\n');
    }
    if !format.is_table() {
        return Ok(body);
    }
    let header_opts = ExecOptions {
        header: true,
        ..ExecOptions::default()
    };
    // docker ignores header rendering errors; the table still prints.
    let mut text = tmpl.execute(header, &header_opts).unwrap_or_default();
    text.push('\n');
    text.push_str(&body);
    Ok(tabwriter::align(&text, 10, 3))
}

/// A header context: field name → column title, plus docker's `Label`
/// method, which titles `{{.Label "com.example.my-key"}}` as "my key".
pub fn header(fields: &[(&str, &str)]) -> Value {
    let label: Method = Rc::new(|args: &[Value]| {
        let name = match args {
            [v] => v.as_str().unwrap_or_default(),
            _ => {
                return Err(format!(
                    "wrong number of args for Label: want 1 got {}",
                    args.len()
                ))
            }
        };
        let last = name.rsplit('.').next().unwrap_or_default();
        Ok(Value::from(last.replace(['-', '_'], " ")))
    });
    let mut s = Struct::new("formatter.SubHeaderContext");
    for (k, v) in fields {
        s = s.field(k, *v);
    }
    Value::from(s.method("Label", label))
}

/// `stringid.TruncateID`: drops the algorithm prefix and keeps 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, hex)| hex);
    id.chars().take(12).collect()
}

/// docker's `formatter.Ellipsis`: at most `max` columns, ending in "…" when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max == 1 {
        return chars.first().map(char::to_string).unwrap_or_default();
    }
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars[..max - 1].iter().collect();
    out.push('…');
    out
}

/// `sortorder.NaturalLess`, which docker sorts names and port lines with: runs of digits
/// compare as numbers ("net9" before "net10"), digits before other bytes.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (start_a, start_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        // Without leading zeros, the shorter number is the smaller one.
        let by_value = (i - start_a)
            .cmp(&(j - start_b))
            .then_with(|| a[start_a..i].cmp(&b[start_b..j]))
            // Equal numbers: fewer leading zeros first.
            .then_with(|| start_a.cmp(&start_b));
        if by_value != Ordering::Equal {
            return by_value;
        }
    }
    a.len().cmp(&b.len())
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_cmp("net9", "net10"), Less);
        assert_eq!(natural_cmp("9/tcp -> x", "53/udp -> x"), Less);
        assert_eq!(natural_cmp("a", "1"), Greater);
        assert_eq!(natural_cmp("a01", "a1"), Greater);
        assert_eq!(natural_cmp("a1", "a1b"), Less);
        assert_eq!(natural_cmp("abc", "abc"), Equal);
        let mut v = vec!["web10", "db", "web2", "Web1", "web02"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["Web1", "db", "web2", "web02", "web10"]);
    }

    #[test]
    fn format_strings() {
        assert_eq!(
            Format("table {{.ID}}\\t{{.Names}}".into()).template_string(),
            "{{.ID}}\t{{.Names}}"
        );
        assert!(Format("table {{.ID}}".into()).is_table());
        assert_eq!(Format("json".into()).template_string(), "{{json .}}");
        assert_eq!(
            Format("  {{.ID}}\\n ".into()).template_string(),
            "{{.ID}}\n"
        );
    }

    #[test]
    fn renders_table_with_header() {
        let h = header(&[("ID", "CONTAINER ID"), ("Names", "NAMES")]);
        let rows = vec![
            Value::from(Struct::new("*c").field("ID", "abc").field("Names", "web")),
            Value::from(
                Struct::new("*c")
                    .field("ID", "defdefdefdef")
                    .field("Names", "db"),
            ),
        ];
        let f = Format("table {{.ID}}\t{{.Names}}".into());
        assert_eq!(
            render(&f, &h, &rows),
            Ok("CONTAINER ID   NAMES\nabc            web\ndefdefdefdef   db\n".to_string())
        );
        // No rows: the header alone.
        assert_eq!(
            render(&f, &h, &[]),
            Ok("CONTAINER ID   NAMES\n".to_string())
        );
        // Without `table`: no header, no alignment.
        let f = Format("{{.ID}}\t{{.Names}}".into());
        assert_eq!(
            render(&f, &h, &rows),
            Ok("abc\tweb\ndefdefdefdef\tdb\n".to_string())
        );
    }

    #[test]
    fn render_errors() {
        let h = header(&[("ID", "ID")]);
        let rows = vec![Value::from(
            Struct::new("*formatter.imageContext").field("ID", "x"),
        )];
        assert_eq!(
            render(&Format("{{.Foo}}".into()), &h, &rows),
            Err("template parsing error: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.imageContext".to_string())
        );
        assert_eq!(
            render(&Format("{{.ID".into()), &h, &rows),
            Err("template parsing error: template: :1: unclosed action".to_string())
        );
    }

    #[test]
    fn label_header() {
        let h = header(&[]);
        let f = Format("table {{.Label \"com.example.my-key\"}}".into());
        assert_eq!(render(&f, &h, &[]), Ok("my key\n".to_string()));
    }

    #[test]
    fn helpers() {
        assert_eq!(
            truncate_id("sha256:d644867353d275c95044321018dbe521"),
            "d644867353d2"
        );
        assert_eq!(truncate_id("8be5fa009a45d4fa3420"), "8be5fa009a45");
        assert_eq!(
            ellipsis("sh -c 'while true; do sleep 1; done'", 20),
            "sh -c 'while true; …"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(ellipsis("abc", 1), "a");
        assert_eq!(go_quote("sh -c 'exit 3'"), "\"sh -c 'exit 3'\"");
        assert_eq!(go_quote("a\"b\\c\n\u{1}…"), "\"a\\\"b\\\\c\\n\\x01…\"");
    }
}
