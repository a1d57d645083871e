//! `berth volume …`: docker's volume commands and flags.

use clap::{ArgAction, Args, Subcommand};

use super::{parse_bool, parse_filter};

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    #[command(override_usage = "berth volume create [OPTIONS] [VOLUME]")]
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list", override_usage = "berth volume ls [OPTIONS]")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    #[command(override_usage = "berth volume inspect [OPTIONS] VOLUME [VOLUME...]")]
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(
        visible_alias = "remove",
        override_usage = "berth volume rm [OPTIONS] VOLUME [VOLUME...]"
    )]
    Rm(VolumeRmArgs),
    /// Remove unused local volumes
    #[command(override_usage = "berth volume prune [OPTIONS]")]
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    /// Only display volume names
    #[arg(short = 'q', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub force: bool,
    #[arg(value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long, value_name = "filter", value_parser = parse_filter)]
    pub filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub force: bool,
}
