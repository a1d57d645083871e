//! Data-driven tests: every `tests/golden/*.Dockerfile` is parsed and each stage evaluated,
//! and the rendering is compared with the `.out` file beside it.
//!
//! `BERTH_GOLDEN_UPDATE=1 cargo test -p berth-dockerfile --test golden` rewrites the `.out`
//! files; review the diff before committing it.
//!
//! Lines `# golden-build-arg: NAME=VALUE` anywhere in an input are build arguments for the
//! evaluation (put them after the first instruction: a comment at the top ends the parser
//! directives). Evaluation runs for linux/amd64 with base-image environment `PATH=/usr/bin`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use berth_dockerfile::{builtin_args, parse, Dockerfile, GlobalScope, Platform};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("<unserializable: {e}>"))
}

fn build_args(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("# golden-build-arg:"))
        .filter_map(|a| a.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn render_parse(df: &Dockerfile, out: &mut String) {
    let _ = writeln!(out, "directives: {}", json(&df.directives));
    for w in &df.warnings {
        let _ = writeln!(out, "warning line {}: {}", w.line, w.message);
    }
    for m in &df.meta_args {
        let _ = writeln!(
            out,
            "meta {}-{} {}\n    => {}",
            m.location.start_line,
            m.location.end_line,
            m.original,
            json(&m.value)
        );
    }
    for (i, stage) in df.stages.iter().enumerate() {
        let f = &stage.from;
        let _ = writeln!(
            out,
            "stage {i} {}-{} {}\n    => {}",
            f.location.start_line,
            f.location.end_line,
            f.original,
            json(&f.value)
        );
        for step in &stage.instructions {
            let _ = writeln!(
                out,
                "  {}-{} {}\n      => {}",
                step.location.start_line,
                step.location.end_line,
                step.original,
                json(&step.value)
            );
        }
    }
}

fn render_evaluation(df: &Dockerfile, args: BTreeMap<String, String>, out: &mut String) {
    let amd64 = Platform::new("linux", "amd64", None);
    let arm64 = Platform::new("linux", "arm64", Some("v8"));
    let _ = writeln!(out, "== evaluated, build args {}", json(&args));
    let mut global = GlobalScope::new(args, builtin_args(&amd64, &arm64, None));
    if let Err(e) = global.declare(df) {
        let _ = writeln!(out, "error: {e}");
        return;
    }
    for (i, stage) in df.stages.iter().enumerate() {
        match global.expand_from(&stage.from, df.escape()) {
            Ok(from) => {
                let _ = writeln!(out, "stage {i} FROM {}", json(&from));
            }
            Err(e) => {
                let _ = writeln!(out, "stage {i} error: {e}");
                continue;
            }
        }
        let mut scope = global.stage(vec![("PATH".into(), "/usr/bin".into())], df.escape());
        for step in &stage.instructions {
            match scope.evaluate(step) {
                Ok(ins) => {
                    let _ = writeln!(out, "  {} {}", step.location.start_line, json(&ins));
                }
                Err(e) => {
                    let _ = writeln!(out, "  error: {e}");
                    break;
                }
            }
        }
        let _ = writeln!(out, "  run env: {}", json(&scope.run_env()));
    }
}

fn render(text: &str) -> String {
    let mut out = String::new();
    match parse(text) {
        Ok(df) => {
            render_parse(&df, &mut out);
            render_evaluation(&df, build_args(text), &mut out);
        }
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
        }
    }
    out
}

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "Dockerfile"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden() {
    let update = std::env::var_os("BERTH_GOLDEN_UPDATE").is_some();
    let files = inputs();
    assert!(files.len() >= 30, "golden inputs missing: {}", files.len());
    let mut failures = Vec::new();
    for input in files {
        let bytes = std::fs::read(&input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let text = String::from_utf8_lossy(&bytes);
        let got = render(&text);
        let expected_path = input.with_extension("out");
        if update {
            std::fs::write(&expected_path, &got)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{}: rendering differs from {}\n--- got\n{got}--- want\n{want}",
                input.display(),
                expected_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(BERTH_GOLDEN_UPDATE=1 rewrites the .out files)",
        failures.join("\n")
    );
}
