//! The ERP port conformance suite against the ERP simulator (in-process, manual clock,
//! through the simulator adapter) and against a real Tryton server (through the Tryton
//! adapter; `scripts/setup/tryton.sh` starts one).

use std::collections::BTreeSet;
use std::sync::Arc;

use crossdock_erp::conformance::sim::SimWarehouse;
use crossdock_erp::conformance::{Subject, run_all};
use crossdock_erp::sim;
use crossdock_ports::Erp;
use crossdock_ports::erp::ChangeKind;

/// A fresh simulator with the given fault knobs and the conformance seeds, driven through
/// the simulator adapter.
async fn sim_subject_with(faults: crossdock_sim_erp::Faults) -> Subject {
    let handle = crossdock_sim_erp::Simulator::start(crossdock_sim_erp::Config {
        faults,
        ..crossdock_sim_erp::Config::default()
    })
    .await
    .expect("start the ERP simulator");
    let config = sim::Config::new(handle.base_url());
    let warehouse = SimWarehouse::prepare(&config)
        .await
        .expect("prepare the conformance seeds in the simulator");
    let erp: Arc<dyn Erp> = Arc::new(sim::Adapter::new(&config).expect("simulator adapter"));
    Subject {
        erp,
        warehouse: Arc::new(warehouse),
        keep_alive: Some(Box::new(handle)),
    }
}

async fn sim_subject() -> Subject {
    sim_subject_with(crossdock_sim_erp::Faults::default()).await
}

mod simulator {
    use super::*;

    crossdock_erp::erp_conformance_tests!(sim_subject());

    /// Every case again while the feed delivers many events twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn suite_passes_when_the_feed_repeats_events() {
        let subject = sim_subject_with(crossdock_sim_erp::Faults {
            duplicate_rate: 0.5,
            ..crossdock_sim_erp::Faults::default()
        })
        .await;
        let reports = run_all(&subject).await;
        let failed: Vec<_> = reports.iter().filter(|r| r.outcome.is_err()).collect();
        assert!(
            failed.is_empty(),
            "cases failed with a repeating feed: {failed:#?}"
        );
        assert_eq!(reports.len(), crossdock_erp::conformance::CASES.len());
    }

    /// Events held back and delivered after later ones are still read, page by page.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paging_loses_nothing_when_the_feed_reorders_events() {
        let handle = crossdock_sim_erp::Simulator::start(crossdock_sim_erp::Config {
            faults: crossdock_sim_erp::Faults {
                duplicate_rate: 0.3,
                reorder_rate: 0.5,
                reorder_window: 4,
                ..crossdock_sim_erp::Faults::default()
            },
            ..crossdock_sim_erp::Config::default()
        })
        .await
        .expect("start the ERP simulator");
        let config = sim::Config::new(handle.base_url());
        let warehouse = SimWarehouse::prepare(&config).await.expect("seeds");
        let erp = sim::Adapter::new(&config).expect("adapter");
        let seeds = crossdock_erp::conformance::Warehouse::seeds(&warehouse).clone();
        let mut references = BTreeSet::new();
        for n in 0..10 {
            let reference = format!("REORDER-{n}");
            let request = crossdock_ports::erp::BookingRequest {
                reference: reference.as_str().into(),
                sf_number: None,
                account: seeds.good_customer.clone(),
                currency: seeds.currency,
                lines: vec![crossdock_ports::erp::BookingLine {
                    line: crossdock_domain::ids::LineNo(1),
                    sku: seeds.plenty_item.clone(),
                    quantity: 1,
                    unit_price: rust_decimal::Decimal::ONE,
                }],
                fulfilment: None,
                region: None,
            };
            erp.book_order(&request, &format!("{reference}/book"))
                .await
                .expect("booking");
            references.insert(reference);
        }
        // Past the longest hold, every held event is released.
        handle.advance(120_000);
        let mut cursor: Option<String> = None;
        let mut booked = BTreeSet::new();
        let mut ids = Vec::new();
        for _ in 0..10_000 {
            let batch = erp.changes(cursor.as_deref(), 1).await.expect("page");
            if cursor.as_deref() == Some(batch.cursor.as_str()) {
                break;
            }
            for change in batch.changes {
                if let ChangeKind::OrderBooked { reference, .. } = &change.kind {
                    booked.insert(reference.to_string());
                }
                ids.push(change.id);
            }
            cursor = Some(batch.cursor);
        }
        assert_eq!(booked, references, "every booking is read");
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert!(
            unique.len() < ids.len(),
            "the feed repeated some events (duplicate_rate 0.3)"
        );
    }
}

mod tryton {
    use std::path::Path;

    use crossdock_erp::conformance::tryton::TrytonWarehouse;

    use super::*;

    /// Without the server's env file the Tryton leg fails and names the setup script.
    #[tokio::test]
    async fn a_missing_tryton_setup_is_named() {
        let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-dir/.tryton/env");
        let Err(message) = TrytonWarehouse::connect(&missing).await else {
            panic!("no server without its env file");
        };
        assert!(message.contains("scripts/setup/tryton.sh"), "{message}");
    }

    /// Every case against the local Tryton server, one after the other (it is one shared
    /// database): fails, naming the setup script, when the server was not set up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tryton_passes_the_conformance_suite() {
        let env = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tryton/env");
        let (adapter, warehouse) = TrytonWarehouse::connect(&env)
            .await
            .unwrap_or_else(|message| panic!("{message}"));
        let subject = Subject {
            erp: adapter,
            warehouse: Arc::new(warehouse),
            keep_alive: None,
        };
        let reports = run_all(&subject).await;
        for report in &reports {
            eprintln!(
                "{} {} ({:.1} s){}",
                if report.outcome.is_ok() {
                    "PASS"
                } else {
                    "FAIL"
                },
                report.name,
                report.elapsed.as_secs_f64(),
                report
                    .outcome
                    .as_ref()
                    .err()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        let failed: Vec<_> = reports.iter().filter(|r| r.outcome.is_err()).collect();
        assert!(
            failed.is_empty(),
            "Tryton failed conformance cases: {failed:#?}"
        );
    }
}
