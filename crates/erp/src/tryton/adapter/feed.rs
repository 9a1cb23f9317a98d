//! The change feed, by polling `last_modified_at` (Tryton 8.0: write date, else create
//! date; naive UTC) on sales, customer shipments, return shipments and invoices.
//!
//! Each poll re-reads an overlap window before its cursor, because a long transaction can
//! commit after a later-stamped short one, and drops the records it already reported: the
//! cursor carries the keys `(model, id, last_modified_at)` seen inside the window, so the
//! same cursor always yields the same changes (no hidden state in the adapter). Change ids
//! name the record and the state reached (`tryton:shipment:12:shipped`), so a record
//! modified again re-reports the same facts under the same ids and the inbox drops them.

use std::collections::{BTreeMap, BTreeSet};

use crossdock_domain::ids::{LineNo, RmaId};
use crossdock_ports::Failure;
use crossdock_ports::erp::{Allocation, ChangeBatch, ChangeKind, ErpChange};
use crossdock_ports::failure::Result;
use serde_json::json;
use time::OffsetDateTime;

use super::Adapter;
use super::snapshot::{Invoice, ReturnShipment, Sale, Shipment};
use crate::tryton::value;

/// Polled models and their short codes in cursor keys.
const MODELS: [(&str, &str); 4] = [
    ("so", "sale.sale"),
    ("sh", "stock.shipment.out"),
    ("sr", "stock.shipment.out.return"),
    ("in", "account.invoice"),
];

const CURSOR_VERSION: &str = "v1";

/// Pages of records that produce no change read in one poll before it returns.
const MAX_QUIET_PAGES: usize = 10;

/// Where a poll continues: the newest stamp reported and the records seen in the overlap
/// window before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Unix microseconds of the newest record reported; `None` from the beginning.
    pub since: Option<i128>,
    /// Keys `<code><id>@<micros>` of records already reported.
    pub seen: BTreeSet<String>,
}

fn micros(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000
}

fn from_micros(value: i128) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(value.checked_mul(1_000)?).ok()
}

fn key_micros(key: &str) -> Option<i128> {
    key.rsplit_once('@')?.1.parse().ok()
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        let since = self.since.map_or_else(String::new, |s| s.to_string());
        let seen: Vec<&str> = self.seen.iter().map(String::as_str).collect();
        format!("{CURSOR_VERSION};{since};{}", seen.join(","))
    }

    pub(crate) fn decode(text: &str) -> Result<Self> {
        let bad = || {
            Failure::permanent(format!(
                "malformed Tryton change cursor `{}`",
                text.chars().take(60).collect::<String>()
            ))
        };
        let mut parts = text.splitn(3, ';');
        if parts.next() != Some(CURSOR_VERSION) {
            return Err(bad());
        }
        let since = match parts.next().ok_or_else(bad)? {
            "" => None,
            value => Some(value.parse::<i128>().map_err(|_| bad())?),
        };
        if since.is_some_and(|s| from_micros(s).is_none()) {
            return Err(bad());
        }
        let mut seen = BTreeSet::new();
        for key in parts
            .next()
            .ok_or_else(bad)?
            .split(',')
            .filter(|k| !k.is_empty())
        {
            if key_micros(key).is_none() {
                return Err(bad());
            }
            seen.insert(key.to_owned());
        }
        Ok(Self { since, seen })
    }
}

/// A record that changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Touched {
    at: i128,
    code: &'static str,
    id: i64,
}

impl Touched {
    fn key(&self) -> String {
        format!("{}{}@{}", self.code, self.id, self.at)
    }
}

fn change(id: String, at: OffsetDateTime, kind: ChangeKind) -> ErpChange {
    ErpChange { id, at, kind }
}

impl Adapter {
    /// A change-feed cursor that starts at `at`: the first poll returns what changed from
    /// `at` (minus the overlap window) on. Use it to replay from a point in time.
    pub fn feed_cursor_at(&self, at: OffsetDateTime) -> String {
        Cursor {
            since: Some(micros(at)),
            seen: BTreeSet::new(),
        }
        .encode()
    }

    /// Changes after `cursor`. Pages whose records produce no change (draft invoices,
    /// waiting shipments) are skipped, so an empty batch means the feed is caught up.
    pub(super) async fn poll_changes(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ChangeBatch> {
        let mut cursor = match cursor {
            Some(text) => Cursor::decode(text)?,
            None => Cursor::default(),
        };
        for _ in 0..MAX_QUIET_PAGES {
            let (changes, next, read_any) = self.poll_page(&cursor, limit.max(1)).await?;
            cursor = next;
            if !changes.is_empty() || !read_any {
                return Ok(ChangeBatch {
                    changes,
                    cursor: cursor.encode(),
                });
            }
        }
        // Still only quiet records: hand back the progress made; the next poll goes on.
        Ok(ChangeBatch {
            changes: Vec::new(),
            cursor: cursor.encode(),
        })
    }

    /// One page: the changes, the cursor after it, and whether any record was read.
    async fn poll_page(
        &self,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<(Vec<ErpChange>, Cursor, bool)> {
        let overlap = i128::from(self.config.feed_overlap_secs) * 1_000_000;
        let from = cursor.since.map_or(0, |s| (s - overlap).max(0));
        let from_at = from_micros(from).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let query_limit = u64::try_from(limit + cursor.seen.len()).unwrap_or(u64::MAX);

        let mut candidates = Vec::new();
        let mut horizon: Option<i128> = None;
        for (code, model) in MODELS {
            let mut domain = vec![json!(["last_modified_at", ">=", value::datetime(from_at)])];
            if model == "account.invoice" {
                domain.push(json!(["type", "=", "out"]));
            }
            let records = self
                .client
                .search_read(
                    model,
                    json!(domain),
                    0,
                    Some(query_limit),
                    Some(json!([["last_modified_at", "ASC"], ["id", "ASC"]])),
                    &["last_modified_at"],
                    None,
                )
                .await?;
            let full = u64::try_from(records.len()).unwrap_or(u64::MAX) >= query_limit;
            let mut last = None;
            for record in &records {
                let at = micros(record.datetime("last_modified_at")?);
                last = Some(at);
                candidates.push(Touched {
                    at,
                    code,
                    id: record.id()?,
                });
            }
            // A full page may hide older records of this model past its last stamp.
            if full && let Some(last) = last {
                horizon = Some(horizon.map_or(last, |h| h.min(last)));
            }
        }
        candidates.retain(|t| horizon.is_none_or(|h| t.at <= h) && !cursor.seen.contains(&t.key()));
        candidates.sort();
        candidates.dedup();
        candidates.truncate(limit);

        let Some(newest) = candidates.iter().map(|t| t.at).max() else {
            return Ok((Vec::new(), cursor.clone(), false));
        };
        let changes = self.changes_of(&candidates).await?;

        let since = cursor.since.map_or(newest, |s| s.max(newest));
        let keep_from = since - overlap;
        let seen = cursor
            .seen
            .iter()
            .cloned()
            .chain(candidates.iter().map(Touched::key))
            .filter(|k| key_micros(k).is_some_and(|at| at >= keep_from))
            .collect();
        Ok((
            changes,
            Cursor {
                since: Some(since),
                seen,
            },
            true,
        ))
    }

    /// The sales the touched records belong to.
    async fn sales_of(&self, touched: &[Touched]) -> Result<Vec<Sale>> {
        let ids_of = |code: &str| -> Vec<i64> {
            touched
                .iter()
                .filter(|t| t.code == code)
                .map(|t| t.id)
                .collect()
        };
        let mut sale_ids = ids_of("so");
        for (code, field) in [
            ("sh", "shipments"),
            ("sr", "shipment_returns"),
            ("in", "invoices"),
        ] {
            let ids = ids_of(code);
            if !ids.is_empty() {
                sale_ids.extend(
                    self.client
                        .search(
                            "sale.sale",
                            json!([[field, "in", ids]]),
                            0,
                            None,
                            None,
                            None,
                        )
                        .await?,
                );
            }
        }
        sale_ids.sort_unstable();
        sale_ids.dedup();
        self.load_sales(&sale_ids).await
    }

    async fn changes_of(&self, touched: &[Touched]) -> Result<Vec<ErpChange>> {
        let sales = self.sales_of(touched).await?;
        let mut changes = Vec::new();
        for t in touched {
            match t.code {
                "so" => {
                    if let Some(sale) = sales.iter().find(|s| s.id == t.id) {
                        changes.extend(self.sale_changes(sale));
                    }
                }
                "sh" => {
                    for sale in &sales {
                        if let Some(shipment) = sale.shipments.iter().find(|s| s.id == t.id) {
                            changes.extend(self.shipment_changes(sale, shipment));
                        }
                    }
                }
                "sr" => {
                    for sale in sales.iter().filter(|s| s.is_return()) {
                        if let Some(shipment) = sale.returns.iter().find(|s| s.id == t.id) {
                            changes.extend(Self::return_changes(sale, shipment));
                        }
                    }
                }
                _ => {
                    for sale in &sales {
                        if let Some(invoice) = sale.invoices.iter().find(|i| i.id == t.id) {
                            changes.extend(Self::invoice_changes(sale, invoice));
                        }
                    }
                }
            }
        }
        // Oldest first; same instant in a stable order.
        changes.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        changes.dedup_by(|a, b| a.id == b.id);
        Ok(changes)
    }

    fn sale_changes(&self, sale: &Sale) -> Vec<ErpChange> {
        let mut changes = Vec::new();
        if sale.is_return() {
            if sale.is_booked() {
                changes.push(change(
                    format!("tryton:return:{}:authorised", sale.id),
                    sale.modified,
                    ChangeKind::ReturnAuthorised {
                        rma: RmaId::new(sale.order_id().as_str()),
                        erp_ref: sale.number_or_id(),
                    },
                ));
            }
            return changes;
        }
        if sale.is_cancelled() {
            changes.push(change(
                format!("tryton:sale:{}:cancelled", sale.id),
                sale.modified,
                ChangeKind::OrderCancelled {
                    reference: sale.order_id(),
                    reason: "cancelled in Tryton".to_owned(),
                },
            ));
        } else if sale.is_booked() {
            changes.push(change(
                format!("tryton:sale:{}:booked", sale.id),
                sale.modified,
                ChangeKind::OrderBooked {
                    reference: sale.order_id(),
                    erp_ref: sale.number_or_id(),
                },
            ));
        }
        changes
    }

    fn shipment_changes(&self, sale: &Sale, shipment: &Shipment) -> Vec<ErpChange> {
        if sale.is_return() || shipment.state == "cancelled" {
            return Vec::new();
        }
        let mut changes = Vec::new();
        let reference = sale.order_id();
        if let Some(view) = self.shipment_view(sale, shipment) {
            changes.push(change(
                format!(
                    "tryton:shipment:{}:{}",
                    shipment.id,
                    view.milestone.as_str()
                ),
                shipment.modified,
                ChangeKind::Shipment {
                    reference: reference.clone(),
                    shipment: view,
                },
            ));
        }
        if let (Some(warehouse), true) = (
            shipment.warehouse,
            matches!(
                shipment.state.as_str(),
                "assigned" | "picked" | "packed" | "shipped" | "done"
            ),
        ) {
            // Allocations are totals per line and location over the order's shipments.
            let mut totals: BTreeMap<LineNo, u32> = BTreeMap::new();
            for other in sale.shipments.iter().filter(|s| {
                s.warehouse == Some(warehouse)
                    && matches!(
                        s.state.as_str(),
                        "assigned" | "picked" | "packed" | "shipped" | "done"
                    )
            }) {
                for (line, quantity) in sale.shipment_lines(other) {
                    *totals.entry(line).or_default() += quantity;
                }
            }
            let location = self.location_of(warehouse);
            for (line, _) in sale.shipment_lines(shipment) {
                let quantity = totals.get(&line).copied().unwrap_or(0);
                changes.push(change(
                    format!(
                        "tryton:sale:{}:allocated:{line}:{location}:{quantity}",
                        sale.id
                    ),
                    shipment.modified,
                    ChangeKind::LineAllocated {
                        reference: reference.clone(),
                        allocation: Allocation {
                            line,
                            location: location.clone(),
                            quantity,
                        },
                    },
                ));
            }
        }
        for (line, quantity) in sale.unassigned_lines(shipment) {
            changes.push(change(
                format!(
                    "tryton:shipment:{}:backordered:{line}:{quantity}",
                    shipment.id
                ),
                shipment.modified,
                ChangeKind::LineBackordered {
                    reference: reference.clone(),
                    line,
                    quantity,
                },
            ));
        }
        changes
    }

    fn return_changes(sale: &Sale, shipment: &ReturnShipment) -> Vec<ErpChange> {
        if !matches!(shipment.state.as_str(), "received" | "done") {
            return Vec::new();
        }
        vec![change(
            format!("tryton:return-shipment:{}:received", shipment.id),
            shipment.modified,
            ChangeKind::ReturnReceived {
                rma: RmaId::new(sale.order_id().as_str()),
                receipt: sale.receipt(shipment),
            },
        )]
    }

    fn invoice_changes(sale: &Sale, invoice: &Invoice) -> Vec<ErpChange> {
        if !invoice.is_issued() {
            return Vec::new();
        }
        let paid = invoice.state == "paid";
        let mut changes = Vec::new();
        if sale.is_return() && invoice.is_credit_note() {
            let rma = RmaId::new(sale.order_id().as_str());
            let memo = crossdock_ports::erp::CreditMemo {
                id: invoice.number_or_id(),
                number: invoice.number_or_id(),
                amount: -invoice.total,
            };
            changes.push(change(
                format!("tryton:invoice:{}:credit-memo", invoice.id),
                invoice.modified,
                ChangeKind::CreditMemoIssued {
                    rma: rma.clone(),
                    credit_memo: memo,
                },
            ));
            if paid {
                changes.push(change(
                    format!("tryton:invoice:{}:refunded", invoice.id),
                    invoice.modified,
                    ChangeKind::RefundIssued {
                        rma,
                        credit_memo: invoice.number_or_id(),
                        refund: crossdock_ports::erp::Refund {
                            id: invoice.payment_id(),
                            amount: -invoice.total,
                        },
                    },
                ));
            }
        } else if !sale.is_return() && !invoice.is_credit_note() {
            let reference = sale.order_id();
            changes.push(change(
                format!("tryton:invoice:{}:issued", invoice.id),
                invoice.modified,
                ChangeKind::InvoiceIssued {
                    reference: reference.clone(),
                    invoice: Self::invoice_view(sale, invoice),
                },
            ));
            if paid {
                changes.push(change(
                    format!("tryton:invoice:{}:paid", invoice.id),
                    invoice.modified,
                    ChangeKind::PaymentReceived {
                        reference,
                        payment: invoice.payment_id(),
                        invoice: Some(invoice.number_or_id()),
                        amount: invoice.total,
                    },
                ));
            }
        }
        changes
    }
}
