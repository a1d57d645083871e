//! `berth`: one binary that is the daemon (`berth daemon`), each container's shim
//! (`berth shim <bundle>`, spawned by the daemon) and the Docker-compatible CLI (everything else).

mod daemon;

use std::ffi::OsString;
use std::path::Path;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let code = match args.get(1).and_then(|a| a.to_str()) {
        // The shim path initialises nothing else: it lives as long as its container and must
        // stay small.
        Some("shim") => match args.get(2) {
            Some(bundle) => berth_runtime::shim::main(Path::new(bundle)),
            None => {
                eprintln!("usage: berth shim <bundle>");
                2
            }
        },
        Some("daemon") => daemon::main(args),
        _ => berth_cli::main(args),
    };
    std::process::exit(code);
}
