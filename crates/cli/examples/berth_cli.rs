//! Runs the berth CLI on its own, for trying it against a daemon:
//! `cargo run -p berth-cli --example berth_cli -- -H unix:///path.sock ps`.

fn main() {
    std::process::exit(berth_cli::main(std::env::args_os().collect()));
}
