//! `crossdock`: the integration hub binary. This is the composition root: it parses the
//! command line and wires concrete stores, connectors and servers together.

mod cli;
mod commands;
mod config;
mod hub;
mod progress;
mod reconcile;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    commands::run(cli)
}
