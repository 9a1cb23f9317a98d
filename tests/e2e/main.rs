//! End-to-end tests: the real `crossdock` binary as separate processes.

mod crash;
mod demo;
mod demo_tryton;
mod instances;
mod kill_loop;
mod references;
mod resume;

/// `crossdock demo --orders N --seed S --exit` on a free port with its data in `data`, plus
/// `extra` arguments.
fn demo_args(orders: u32, seed: u64, data: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "demo",
        "--orders",
        &orders.to_string(),
        "--seed",
        &seed.to_string(),
        "--exit",
        "--port",
        &crossdock_testkit::free_port().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}
