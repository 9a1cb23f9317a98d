//! The ERP port conformance suite against the ERP simulator through the generic REST
//! adapter, configured by `examples/rest-erp-sim.toml` (no simulator-specific Rust).

use std::sync::Arc;

use crossdock_erp::conformance::Subject;
use crossdock_erp::conformance::sim::SimWarehouse;
use crossdock_erp::{rest, sim};
use crossdock_ports::Erp;

/// The committed example configuration, pointed at `base_url`.
fn example_config(base_url: &str) -> rest::Config {
    let text = include_str!("../examples/rest-erp-sim.toml");
    let mut config = rest::Config::from_toml(text).expect("the example configuration parses");
    config.base_url = base_url.to_owned();
    config
}

async fn rest_subject() -> Subject {
    let handle = crossdock_sim_erp::Simulator::start(crossdock_sim_erp::Config::default())
        .await
        .expect("start the ERP simulator");
    let warehouse = SimWarehouse::prepare(&sim::Config::new(handle.base_url()))
        .await
        .expect("prepare the conformance seeds in the simulator");
    let erp: Arc<dyn Erp> =
        Arc::new(rest::Adapter::new(&example_config(&handle.base_url())).expect("REST adapter"));
    Subject {
        erp,
        warehouse: Arc::new(warehouse),
        keep_alive: Some(Box::new(handle)),
    }
}

crossdock_erp::erp_conformance_tests!(rest_subject());

#[test]
fn the_example_configuration_is_valid_and_maps_every_operation() {
    let config = example_config("http://127.0.0.1:7070");
    config.validate().expect("valid");
    assert_eq!(
        config.operations.iter().count(),
        14,
        "every port operation is mapped"
    );
}
