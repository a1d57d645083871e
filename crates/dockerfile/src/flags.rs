//! Instruction flags (`--from=build`, `--link`), checked as BuildKit's `BFlags` checks them.

use crate::error::{suggest, Reason};

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Bool,
    String,
    /// May be repeated; every value is kept.
    Strings,
}

/// The values given for the flags an instruction accepts.
pub(crate) struct Flags {
    specs: Vec<(&'static str, Kind)>,
    values: Vec<(&'static str, String)>,
}

impl Flags {
    /// Checks `args` (`--name[=value]` words) against the accepted `specs`.
    pub(crate) fn parse(args: &[String], specs: &[(&'static str, Kind)]) -> Result<Flags, Reason> {
        let mut flags = Flags {
            specs: specs.to_vec(),
            values: Vec::new(),
        };
        for arg in args {
            if arg == "--" {
                break;
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(Reason::FlagWithoutDashes(arg.clone()));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag_name = format!("--{name}");
            let Some(&(spec_name, kind)) = specs.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = specs.iter().map(|(n, _)| *n).collect();
                return Err(Reason::UnknownFlag {
                    flag: flag_name,
                    suggestion: suggest(name, &names, true),
                });
            };
            if kind != Kind::Strings && flags.values.iter().any(|(n, _)| *n == spec_name) {
                return Err(Reason::DuplicateFlag(flag_name));
            }
            let value = match kind {
                Kind::Bool => match value {
                    Some("") => return Err(Reason::MissingFlagValue(flag_name)),
                    None => "true".to_string(),
                    Some(v) => match v.to_lowercase().as_str() {
                        "true" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => {
                            return Err(Reason::NotBoolean {
                                flag: flag_name,
                                value: v.to_string(),
                            })
                        }
                    },
                },
                Kind::String | Kind::Strings => match value {
                    Some(v) => v.to_string(),
                    None => return Err(Reason::MissingFlagValue(flag_name)),
                },
            };
            flags.values.push((spec_name, value));
        }
        Ok(flags)
    }

    fn last(&self, name: &str) -> Option<&str> {
        debug_assert!(self.specs.iter().any(|(n, _)| *n == name));
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A string flag's value; `None` when absent or empty (Docker treats both alike).
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.last(name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// A string flag's value when given at all, empty included.
    pub(crate) fn given(&self, name: &str) -> Option<String> {
        self.last(name).map(str::to_string)
    }

    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A bool flag: `None` when not given.
    pub(crate) fn bool_opt(&self, name: &str) -> Option<bool> {
        self.last(name).map(|v| v == "true")
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.bool_opt(name).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[(&str, Kind)] = &[
        ("from", Kind::String),
        ("link", Kind::Bool),
        ("exclude", Kind::Strings),
    ];

    fn parse(args: &[&str]) -> Result<Flags, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Flags::parse(&args, SPECS).map_err(|e| e.to_string())
    }

    #[test]
    fn values() {
        let f = parse(&["--from=a", "--link", "--exclude=x", "--exclude=y"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.all("exclude"), ["x", "y"]);
        let f = parse(&["--link=FALSE", "--", "--bogus"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.bool_opt("link"), Some(false));
    }

    #[test]
    fn errors() {
        let err = |args: &[&str]| parse(args).err().unwrap_or_default();
        assert_eq!(
            err(&["--frm=x"]),
            "unknown flag: --frm (did you mean from?)"
        );
        assert_eq!(err(&["--bogus"]), "unknown flag: --bogus");
        assert_eq!(err(&["--foo"]), "unknown flag: --foo (did you mean from?)");
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            err(&["--link=yes"]),
            "expecting boolean value for flag --link, not: yes"
        );
    }
}
