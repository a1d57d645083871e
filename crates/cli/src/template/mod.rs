//! A Go `text/template` subset, enough for docker's `--format` flags:
//! `{{.Field}}`, `{{.A.B}}`, pipelines, `if`/`else`/`range`/`with`, variables,
//! the builtins (`index`, `len`, `eq`, `printf`, ...) and docker's own
//! functions (`json`, `join`, `split`, `upper`, `lower`, `title`, `pad`,
//! `truncate`). Errors are returned with Go's wording; nothing panics.

mod exec;
mod funcs;
mod parse;
mod value;

pub use value::{Method, Struct, Value};

/// A template error, already worded as Go's (`template: :1:2: executing ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// How to execute a template.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Missing map keys are errors (`missingkey=error`), as for `inspect -f`
    /// on raw JSON; otherwise they print `<no value>`.
    pub missing_key_error: bool,
    /// Rendering a table header: unknown fields give `<no value>` and the
    /// string functions pass their argument through, as docker's
    /// `HeaderFunctions` do.
    pub header: bool,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    root: parse::List,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            src: src.to_string(),
            root: parse::parse(src)?,
        })
    }

    pub fn execute(&self, data: &Value, opts: &ExecOptions) -> Result<String, TemplateError> {
        let mut ex = exec::Exec {
            src: &self.src,
            opts,
            vars: vec![("$".to_string(), data.clone())],
            out: String::new(),
        };
        ex.run(data, &self.root)?;
        Ok(ex.out)
    }

    /// Whether executing this template on a docker context would read field
    /// `name` of the top-level value: directly (`.Size`), or through
    /// `{{json .}}`, which marshals every field. `ps` uses this to ask the
    /// daemon for sizes only when they are shown.
    pub fn reads_field(&self, name: &str) -> bool {
        fn in_list(list: &parse::List, name: &str) -> bool {
            list.iter().any(|n| match n {
                parse::Node::Text(_) | parse::Node::Break | parse::Node::Continue => false,
                parse::Node::Action(p) => in_pipe(p, name),
                parse::Node::If(b) | parse::Node::Range(b) | parse::Node::With(b) => {
                    in_pipe(&b.pipe, name)
                        || in_list(&b.list, name)
                        || b.else_list.as_ref().is_some_and(|l| in_list(l, name))
                }
            })
        }
        fn in_pipe(p: &parse::Pipe, name: &str) -> bool {
            p.cmds.iter().any(|c| {
                let json_of_dot = matches!(&c.args[0].kind, parse::Term::Ident(f) if f == "json")
                    && c.args[1..]
                        .iter()
                        .any(|a| matches!(a.kind, parse::Term::Dot));
                json_of_dot || c.args.iter().any(|a| in_operand(a, name))
            })
        }
        fn in_operand(a: &parse::Operand, name: &str) -> bool {
            match &a.kind {
                parse::Term::Field(chain) => chain.first().is_some_and(|f| f == name),
                parse::Term::Variable(v, chain) => {
                    v == "$" && chain.first().is_some_and(|f| f == name)
                }
                parse::Term::Pipe(p, _) => in_pipe(p, name),
                _ => false,
            }
        }
        in_list(&self.root, name)
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    fn data() -> Value {
        Value::from_json(
            r#"{
                "Id": "abc123",
                "Name": "/web",
                "State": {"Status": "running", "Running": true, "ExitCode": 0, "Pid": 42},
                "Config": {"Image": "busybox", "Env": ["A=1", "B=2"], "Labels": {"k": "v", "a.b": "<x>"}, "Cmd": null},
                "Mounts": [],
                "Count": 3,
                "Ratio": 0.5
            }"#,
        )
        .expect("valid json")
    }

    fn run(src: &str) -> Result<String, String> {
        let t = Template::parse(src).map_err(|e| e.0)?;
        t.execute(&data(), &ExecOptions::default()).map_err(|e| e.0)
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("plain text", "plain text"),
            ("{{.Id}}", "abc123"),
            ("{{.State.Status}}", "running"),
            ("{{ .State.Status }}", "running"),
            ("{{.State.Pid}}", "42"),
            ("{{.Ratio}}", "0.5"),
            ("{{.State.Running}}", "true"),
            ("{{.Config.Cmd}}", "<nil>"),
            ("{{.Config.Env}}", "[A=1 B=2]"),
            ("{{.Config.Labels}}", "map[a.b:<x> k:v]"),
            ("{{.Missing}}", "<no value>"),
            ("{{.Missing.Deeper}}", "<no value>"),
            ("{{json .Config.Labels}}", r#"{"k":"v","a.b":"<x>"}"#),
            (
                "{{json .State}}",
                r#"{"Status":"running","Running":true,"ExitCode":0,"Pid":42}"#,
            ),
            (
                "{{.Config | json}}",
                r#"{"Image":"busybox","Env":["A=1","B=2"],"Labels":{"k":"v","a.b":"<x>"},"Cmd":null}"#,
            ),
            ("{{json .Id}}", r#""abc123""#),
            (r#"{{index .Config.Labels "k"}}"#, "v"),
            (r#"{{index .Config.Labels "nope"}}"#, ""),
            ("{{index .Config.Env 1}}", "B=2"),
            ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
            (
                "{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}",
                "0=A=1;1=B=2;",
            ),
            (
                "{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}} {{end}}",
                "a.b:<x> k:v ",
            ),
            ("{{range .Mounts}}x{{else}}none{{end}}", "none"),
            (
                "{{range .Config.Env}}{{if eq . \"B=2\"}}{{break}}{{end}}{{.}}{{end}}",
                "A=1",
            ),
            (
                "{{range .Config.Env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}",
                "B=2",
            ),
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            ("{{if .Mounts}}m{{else if .Count}}c{{else}}n{{end}}", "c"),
            ("{{if not .State.Running}}a{{else}}b{{end}}", "b"),
            ("{{if and .State.Running .Count}}y{{end}}", "y"),
            ("{{or .Mounts .Id}}", "abc123"),
            ("{{with .State}}{{.Status}}{{end}}", "running"),
            ("{{with .Mounts}}x{{else}}empty{{end}}", "empty"),
            ("{{$x := .Id}}{{$x}}", "abc123"),
            ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
            ("{{$.Id}}", "abc123"),
            ("{{with .State}}{{$.Id}}{{end}}", "abc123"),
            ("{{eq .State.ExitCode 0}}", "true"),
            ("{{ne .State.Status \"exited\"}}", "true"),
            ("{{eq .Count 1 2 3}}", "true"),
            (
                "{{lt .Count 5}} {{ge .Count 3}} {{gt .Ratio 1}}",
                "true true false",
            ),
            ("{{len .Config.Env}}", "2"),
            ("{{upper .State.Status}}", "RUNNING"),
            ("{{.State.Status | upper}}", "RUNNING"),
            ("{{lower \"ABC\"}}", "abc"),
            ("{{title \"hello world\"}}", "Hello World"),
            ("{{join .Config.Env \",\"}}", "A=1,B=2"),
            ("{{split \"a:b:c\" \":\"}}", "[a b c]"),
            ("{{index (split \"a:b:c\" \":\") 1}}", "b"),
            ("{{pad .Id 2 1}}|", "  abc123 |"),
            ("{{pad \"\" 2 1}}|", "|"),
            ("{{truncate .Id 3}}", "abc"),
            ("{{truncate .Id 30}}", "abc123"),
            ("{{printf \"%s-%d\" .Id .Count}}", "abc123-3"),
            (
                "{{printf \"%-8s|%5d|%.2f|%q\" \"ab\" 7 .Ratio \"x\"}}",
                "ab      |    7|0.50|\"x\"",
            ),
            ("{{print \"a\" 1 2 \"b\"}}", "a1 2b"),
            ("{{println \"a\" 1}}", "a 1\n"),
            ("{{(index .Config.Env 0)}}", "A=1"),
            ("{{len (index .Config.Labels \"k\")}}", "1"),
            ("a {{- \" b \" -}} c", "a b c"),
            ("a  {{- /* comment */ -}}  b", "ab"),
            ("x{{/* c */}}y", "xy"),
            ("{{`raw\\t`}}", "raw\\t"),
            ("{{\"esc\\tq\\\"\"}}", "esc\tq\""),
            ("{{'a'}}", "97"),
            ("{{0x10}} {{-3}} {{1.5}}", "16 -3 1.5"),
            ("{{slice .Id 1 3}}", "bc"),
            ("{{range 3}}{{.}}{{end}}", "012"),
            (
                "{{if eq .State.Status \"running\" \"paused\"}}active{{end}}",
                "active",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(run(src).as_deref(), Ok(*want), "template {src:?}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            ("{{.ID", "template: :1: unclosed action"),
            ("{{if .A}}x", "template: :1: unexpected EOF"),
            ("{{end}}", "template: :1: unexpected {{end}}"),
            ("{{else}}", "template: :1: unexpected {{else}}"),
            (
                "{{nosuch .A}}",
                "template: :1: function \"nosuch\" not defined",
            ),
            ("{{$x}}", "template: :1: undefined variable \"$x\""),
            ("a\n{{.A | }}", "template: :2: missing command"),
            ("{{}}", "template: :1: missing value for command"),
            ("{{break}}", "template: :1: {{break}} outside {{range}}"),
            ("{{\"abc}}", "template: :1: unterminated quoted string"),
            (
                "{{.A ^}}",
                "template: :1: unrecognized character in action: '^'",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(
                Template::parse(src).map(|_| ()).map_err(|e| e.0),
                Err(want.to_string()),
                "{src:?}"
            );
        }
    }

    #[test]
    fn exec_errors() {
        let strict = ExecOptions {
            missing_key_error: true,
            ..Default::default()
        };
        let t = Template::parse("{{.Foo}}").expect("parses");
        assert_eq!(
            t.execute(&data(), &strict).map_err(|e| e.0),
            Err(
                "template: :1:2: executing \"\" at <.Foo>: map has no entry for key \"Foo\""
                    .to_string()
            )
        );
        let ctx = Value::from(Struct::new("*formatter.ContainerContext").field("ID", "x"));
        let t = Template::parse("{{.ID}} {{.Foo}}").expect("parses");
        assert_eq!(
            t.execute(&ctx, &ExecOptions::default()).map_err(|e| e.0),
            Err("template: :1:10: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext".to_string())
        );
        assert!(run("{{index .Config.Env 5}}")
            .is_err_and(|e| e.contains("error calling index: index out of range: 5")));
        assert!(run("{{.Id.Foo}}")
            .is_err_and(|e| e.contains("can't evaluate field Foo in type string")));
        assert!(run("{{.Config.Cmd.X}}")
            .is_err_and(|e| e.contains("nil pointer evaluating interface {}.X")));
        assert!(run("{{json}}")
            .is_err_and(|e| e.contains("wrong number of args for json: want 1 got 0")));
        assert!(run("{{range .Id}}{{end}}")
            .is_err_and(|e| e.contains("range can't iterate over abc123")));
        assert!(
            run("{{\"x\" 1}}").is_err_and(|e| e.contains("can't give argument to non-function"))
        );
        assert!(run("{{nil}}").is_err_and(|e| e.contains("nil is not a command")));
    }

    #[test]
    fn struct_context_and_headers() {
        let label: Method = Rc::new(|args: &[Value]| match args {
            [Value::String(k)] if k == "com.x" => Ok(Value::from("yes")),
            [Value::String(_)] => Ok(Value::from("")),
            _ => Err("wrong number of args".to_string()),
        });
        let row = Value::from(
            Struct::new("*formatter.ContainerContext")
                .field("ID", "abc")
                .field("Names", "web")
                .method("Label", label),
        );
        let t = Template::parse("{{.ID}}\t{{.Label \"com.x\"}}\t{{json .}}").expect("parses");
        assert_eq!(
            t.execute(&row, &ExecOptions::default()).map_err(|e| e.0),
            Ok("abc\tyes\t{\"ID\":\"abc\",\"Names\":\"web\"}".to_string())
        );

        let header_label: Method = Rc::new(|args: &[Value]| {
            let name = args.first().and_then(Value::as_str).unwrap_or_default();
            let last = name.rsplit('.').next().unwrap_or_default();
            Ok(Value::from(last.replace(['-', '_'], " ")))
        });
        let header = Value::from(
            Struct::new("formatter.SubHeaderContext")
                .field("ID", "CONTAINER ID")
                .field("Names", "NAMES")
                .method("Label", header_label),
        );
        let header_opts = ExecOptions {
            header: true,
            ..Default::default()
        };
        let t = Template::parse(
            "{{.ID}}\t{{.Label \"com.my-label\"}}\t{{upper .Names}}\t{{json .Names}}\t{{.Nope}}",
        )
        .expect("parses");
        assert_eq!(
            t.execute(&header, &header_opts).map_err(|e| e.0),
            Ok("CONTAINER ID\tmy label\tNAMES\tNAMES\t<no value>".to_string())
        );
    }

    #[test]
    fn reads_field() {
        let t = |s: &str| Template::parse(s).expect("parses");
        assert!(t("{{.ID}}\t{{.Size}}").reads_field("Size"));
        assert!(t("{{json .}}").reads_field("Size"));
        assert!(t("{{if .Size}}{{end}}").reads_field("Size"));
        assert!(!t("{{.ID}}").reads_field("Size"));
        assert!(!t("{{json .Names}}").reads_field("Size"));
    }
}
