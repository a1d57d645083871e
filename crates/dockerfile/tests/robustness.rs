//! Hostile and random input: nothing may panic, and every input is handled in bounded time.
//! Stands in for a fuzz target (`cargo fuzz` needs a nightly toolchain): a fixed-seed
//! generator mutates the golden inputs with Dockerfile-significant fragments, and every
//! result is driven through parsing, scoping, substitution, mount checks and trigger parsing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_dockerfile::{
    builtin_args, expand, expand_words, parse, parse_raw, parse_trigger, Instruction, Lexer,
    NoVars, Platform,
};

/// Per-input ceiling; real inputs take microseconds and the worst hostile one well under a
/// second in a debug build, so this only catches blow-ups (and tolerates a loaded machine).
const PER_CASE: Duration = Duration::from_secs(10);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const FRAGMENTS: &[&str] = &[
    "\\\n",
    "\\",
    "`",
    "`\n",
    "\n",
    "\r\n",
    "\t",
    " ",
    "#",
    "# escape=`\n",
    "# syntax=x\n",
    "\u{feff}",
    "<<EOF\n",
    "<<-EOF\n",
    "<<'EOF'\n",
    "EOF\n",
    "\tEOF\n",
    "3<<",
    "<<",
    "\"",
    "'",
    "${",
    "}",
    "$",
    "${A:-",
    "${A:?",
    ":+",
    "##",
    "%%",
    "//",
    "[",
    "]",
    "[\"a\", \"b\"]",
    "[1]",
    "--",
    "--mount=",
    "--mount=type=cache,target=/x ",
    "--from=",
    "--link ",
    "=",
    ",",
    "FROM ",
    "FROM a AS b\n",
    "RUN ",
    "COPY ",
    "ADD ",
    "ARG ",
    "ENV ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "NONE",
    "SHELL ",
    "VOLUME ",
    "EXPOSE ",
    "USER ",
    "WORKDIR ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "AS ",
    "scratch",
    "é",
    "\u{0}",
    "\u{85}",
    "\u{a0}",
    "ü\u{301}",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut s: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(6) {
        let pos = rng.below(s.len() + 1);
        match rng.below(5) {
            0 | 1 => {
                let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
                s.splice(pos..pos, frag.chars());
            }
            2 => {
                let end = (pos + rng.below(20)).min(s.len());
                s.drain(pos..end);
            }
            3 => {
                let end = (pos + rng.below(40)).min(s.len());
                let copy: Vec<char> = s[pos..end].to_vec();
                s.splice(pos..pos, copy);
            }
            _ => {
                if pos < s.len() {
                    s[pos] = char::from(rng.below(128) as u8);
                }
            }
        }
    }
    s.into_iter().collect()
}

/// Everything the builder would do with a Dockerfile, minus running it.
fn exercise(text: &str) {
    let _ = parse_raw(text);
    let Ok(df) = parse(text) else {
        return;
    };
    let p = Platform::new("linux", "amd64", None);
    let build_args: BTreeMap<String, String> = [("A", "x y"), ("HTTP_PROXY", "p")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut global = berth_dockerfile::GlobalScope::new(build_args, builtin_args(&p, &p, None));
    let _ = global.declare(&df);
    for stage in &df.stages {
        let _ = global.expand_from(&stage.from, df.escape());
        let mut scope = global.stage(vec![("PATH".into(), "/bin".into())], df.escape());
        for step in &stage.instructions {
            match scope.evaluate(step) {
                Ok(Instruction::Run(run)) => {
                    for m in &run.mounts {
                        let _ = m.to_mount();
                    }
                }
                Ok(Instruction::Onbuild(o)) => {
                    let _ = parse_trigger(&o.expression);
                }
                _ => {}
            }
        }
        let _ = scope.run_env();
    }
    let _ = df.declared_args();
    let _ = serde_json::to_string(&df);
}

fn timed(what: &str, text: &str) {
    let start = Instant::now();
    exercise(text);
    let took = start.elapsed();
    if std::env::var_os("BERTH_ROBUST_TIMES").is_some() {
        eprintln!("{what}: {took:?}");
    }
    assert!(
        took < PER_CASE,
        "{what} took {took:?}: {:?}",
        text.get(..200)
    );
}

fn seeds() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "Dockerfile"));
    paths.sort();
    let mut seeds: Vec<String> = paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    seeds.push(String::new());
    seeds
}

#[test]
fn mutated_dockerfiles() {
    let seeds = seeds();
    assert!(seeds.len() > 30);
    let mut rng = Rng(0x5eed_0fd0_c4e7_1000);
    let start = Instant::now();
    for case in 0..6000 {
        let seed = &seeds[rng.below(seeds.len())];
        let mut text = mutate(&mut rng, seed);
        // Now and then, splice two inputs together to mix their constructs.
        if case % 7 == 0 {
            let other = &seeds[rng.below(seeds.len())];
            text.push_str(&mutate(&mut rng, other));
        }
        timed(&format!("case {case}"), &text);
    }
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn random_words_expand() {
    let mut rng = Rng(42);
    let vars: BTreeMap<String, String> = [("A", "1"), ("B", ""), ("C", "a b/c.d")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for _ in 0..20_000 {
        let mut word = String::new();
        for _ in 0..rng.below(12) {
            word.push_str(match rng.below(16) {
                0 => "$",
                1 => "{",
                2 => "}",
                3 => "A",
                4 => "C",
                5 => ":",
                6 => "-",
                7 => "+",
                8 => "?",
                9 => "#",
                10 => "%",
                11 => "/",
                12 => "\\",
                13 => "'",
                14 => "\"",
                _ => "*",
            });
        }
        for escape in ['\\', '`'] {
            let _ = expand(&word, &vars, escape);
            let _ = expand_words(&word, &vars, escape);
            let _ = Lexer::new(escape)
                .raw_quotes(true)
                .raw_escapes(true)
                .skip_unset(true)
                .process_words(&word, &NoVars);
        }
    }
}

#[test]
fn hostile_inputs() {
    let many = |s: &str, n: usize| s.repeat(n);
    let cases: Vec<(&str, String)> = vec![
        (
            "deep ${}",
            format!(
                "FROM a\nENV A={}x{}\n",
                many("${A:-", 50_000),
                many("}", 50_000)
            ),
        ),
        (
            "deep quotes",
            format!("FROM a\nENV A={}\n", many("\"'", 30_000)),
        ),
        (
            "doubling ENV",
            format!(
                "FROM a\nENV A=xxxxxxxxxxxxxxxx\n{}",
                many("ENV A=$A$A$A$A\n", 40)
            ),
        ),
        (
            "deep JSON",
            format!("FROM a\nCMD {}{}\n", many("[", 30_000), many("]", 30_000)),
        ),
        (
            "ONBUILD chain",
            format!("FROM a\n{}RUN x\n", many("ONBUILD ", 8000)),
        ),
        (
            "continuations",
            format!("FROM a\nRUN x{}\n", many(" \\\n y", 100_000)),
        ),
        (
            "comment lines in continuation",
            format!("FROM a\nRUN x \\\n{}y\n", many("# c\n", 100_000)),
        ),
        (
            "many heredocs",
            format!("FROM a\nRUN {}\n{}", many("<<E ", 5000), many("E\n", 5000)),
        ),
        (
            "unterminated heredocs",
            format!("FROM a\nRUN {}\n", many("<<E ", 10_000)),
        ),
        ("many stages", many("FROM a AS b\n", 50_000)),
        (
            "many ENV pairs",
            format!(
                "FROM a\nENV {}\nWORKDIR /$K9999\n",
                (0..20_000)
                    .map(|i| format!("K{i}={i} "))
                    .collect::<String>()
            ),
        ),
        (
            "many flags",
            format!("FROM a\nCOPY {} a b\n", many("--exclude=x ", 20_000)),
        ),
        ("long line", format!("FROM a\nRUN {}\n", many("x", 65_531))),
        (
            "too long line",
            format!("FROM a\nRUN {}\n", many("x", 200_000)),
        ),
        ("long keyword", format!("FROM a\n{} x\n", many("R", 60_000))),
        (
            "long flag name",
            format!("FROM a\nCOPY --{}=1 a b\n", many("f", 60_000)),
        ),
        (
            "pattern",
            format!(
                "FROM a\nENV A={}\nWORKDIR ${{A//{}/x}}\n",
                many("ab", 30_000),
                many("*", 20_000)
            ),
        ),
        (
            "backslashes",
            format!("FROM a\nRUN {}\n", many("\\", 60_000)),
        ),
        (
            "nul and controls",
            "FROM a\u{0}\nRUN \u{1}\u{7f}\u{0}\nENV \u{0}=\u{0}\n".to_string(),
        ),
        ("only continuation", "\\".to_string()),
        ("directive soup", many("# escape=`\n", 1000)),
    ];
    for (what, text) in cases {
        timed(what, &text);
    }
}
