//! Demo settings: the short process durations drive the whole lifecycle in seconds, each step
//! at exactly its configured offset.

use crossdock_sim_erp::clock::parse_time;
use crossdock_sim_erp::config::SECOND_MS;
use serde_json::{Value, json};

use crate::support::TestErp;

const SKU: &str = "SKU-00001";

fn ms(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(parse_time)
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

/// `(status, ms after `origin`)` of each milestone of a shipment.
fn offsets(shipment: &Value, origin: i64) -> Vec<(String, i64)> {
    shipment["milestones"]
        .as_array()
        .expect("milestones")
        .iter()
        .map(|m| {
            (
                m["status"].as_str().unwrap_or("").to_owned(),
                ms(&m["at"]) - origin,
            )
        })
        .collect()
}

fn steps(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(s, at)| ((*s).to_owned(), *at)).collect()
}

#[tokio::test]
async fn demo_timings_move_an_order_from_booking_to_payment_and_return_in_seconds() {
    let mut config = TestErp::config(9).with_demo_timings();
    config.payments.on_time_share = 1.0;
    config.payments.late_share = 0.0;
    let erp = TestErp::start(config).await;
    erp.rich_customer("SF-ACC-D").await; // region NORTH, like WH-01
    erp.set_stock(SKU, "WH-01", 2).await;
    let order = erp
        .post(
            "/api/v1/orders",
            json!({ "external_ref": "SF-ORD-D", "customer": "SF-ACC-D", "locations": ["WH-01"],
                    "lines": [{ "sku": SKU, "quantity": 3 }] }),
        )
        .await;
    assert_eq!(order.status, 201, "{:?}", order.body);
    assert_eq!(order.body["lines"][0]["backordered"], 1);
    let booked = ms(&order.body["booked_at"]);

    let mut rma_at = None;
    for second in 1..=60 {
        erp.advance(SECOND_MS).await;
        if second == 10 {
            let rma = erp
                .post(
                    "/api/v1/rmas",
                    json!({ "external_ref": "SF-CASE-D", "order": "SF-ORD-D", "lines": [{ "line": 1, "quantity": 1 }] }),
                )
                .await;
            assert_eq!(rma.status, 201, "delivered after 9 s: {:?}", rma.body);
            rma_at = Some(ms(&rma.body["authorised_at"]));
        }
    }

    let shipments = erp.get("/api/v1/orders/SF-ORD-D/shipments").await.body;
    let shipments = shipments["shipments"]
        .as_array()
        .expect("shipments")
        .clone();
    assert_eq!(shipments.len(), 2, "{shipments:?}");
    // Pick 1 s, pack 1 s, ship 2 s, transit 5 s within the region.
    assert_eq!(
        offsets(&shipments[0], booked),
        steps(&[
            ("allocated", 0),
            ("picked", 1_000),
            ("packed", 2_000),
            ("shipped", 4_000),
            ("delivered", 9_000)
        ])
    );
    // The backorder: replenishment after 15 s, then the same steps.
    assert_eq!(shipments[1]["backorder"], true);
    assert_eq!(
        offsets(&shipments[1], booked),
        steps(&[
            ("allocated", 15_000),
            ("picked", 16_000),
            ("packed", 17_000),
            ("shipped", 19_000),
            ("delivered", 24_000)
        ])
    );
    // Each invoice is paid 5–30 s after it was issued.
    let invoices = erp.get("/api/v1/orders/SF-ORD-D/invoices").await.body;
    let invoices = invoices["invoices"].as_array().expect("invoices").clone();
    assert_eq!(invoices.len(), 2);
    for invoice in &invoices {
        assert_eq!(invoice["status"], "paid", "{invoice}");
        let payment = invoice["payments"][0].as_str().expect("a payment");
        let paid_at = erp.handle.inspect(|s| {
            s.events()
                .find(|e| e.kind == "payment.received" && e.data["payment"] == payment)
                .map(|e| e.occurred_at)
                .expect("payment event")
        });
        let delay = paid_at - ms(&invoice["issued_at"]);
        assert!(
            (5_000..=30_000).contains(&delay),
            "paid {delay} ms after issue"
        );
    }
    // The return arrives by itself 10 s after authorisation.
    let rma = erp.get("/api/v1/rmas/SF-CASE-D").await.body;
    assert_eq!(rma["status"], "received");
    let rma_at = rma_at.expect("authorised");
    assert_eq!(ms(&rma["receipts"][0]["received_at"]) - rma_at, 10_000);
    erp.handle.shutdown().await;
}
