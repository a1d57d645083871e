//! Flags of the system commands.

use clap::Args;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,

    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,

    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter", value_parser = super::parse_filter)]
    pub filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}
