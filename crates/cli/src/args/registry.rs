//! Flags of the registry commands: `login`, `logout`, `search`.

use clap::{ArgAction, Args};

use super::{parse_bool, parse_filter, parse_int};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    pub username: Option<String>,

    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long, value_name = "string")]
    pub password: Option<String>,

    /// Take the Password or Personal Access Token (PAT) from stdin
    // `None` when not given: docker tells "set" from "set to false".
    #[arg(long = "password-stdin", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = parse_bool, action = ArgAction::Set)]
    pub password_stdin: Option<bool>,

    #[arg(value_name = "SERVER")]
    pub server: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,

    /// Pretty-print search using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,

    /// Max number of search results
    #[arg(long, value_name = "int", default_value = "0", value_parser = parse_int, allow_hyphen_values = true)]
    pub limit: i64,

    /// Don't truncate output
    #[arg(long = "no-trunc", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub no_trunc: bool,

    #[arg(value_name = "TERM")]
    pub term: Vec<String>,
}
