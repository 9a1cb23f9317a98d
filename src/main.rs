//! `crossdock`: the integration hub binary. This is the composition root: it parses the
//! command line and wires concrete stores, connectors and servers together.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod config;
mod hub;
mod progress;
mod reconcile;

use clap::Parser;

/// mimalloc for every allocation, SQLite's included (`override`): the hub allocates and
/// frees JSON documents and strings on different threads (workers, the store's writer and
/// reply threads), where glibc's malloc took about two fifths of the runtime threads' CPU samples.
/// Built without transparent huge pages (`no_thp`): mimalloc returns freed memory to the
/// system after a second and, on a huge page, the next touch faulted in and zeroed 2 MiB —
/// about a tenth of `crossdock bench`'s CPU samples; without them the benchmark's peak RSS is
/// ~105 MiB instead of ~165 MiB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    commands::run(cli)
}
