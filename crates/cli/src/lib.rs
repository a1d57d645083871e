//! The `berth` command line: a Docker Engine API client that behaves like the
//! docker CLI (same commands, flags, output and exit codes).

mod args;
mod client;
mod jsonfmt;
mod reference;
mod stdcopy;
mod tabwriter;
mod template;
mod timefmt;
mod units;

/// Runs the CLI with the given argv (argv[0] included); returns the process exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let _ = args;
    0
}
