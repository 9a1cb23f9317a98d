//! The Salesforce port: the writes the engine asks of Salesforce. Write-backs are
//! state-based (the current summary, not a delta) and batched: each call takes up to one
//! collections call's worth of records and answers per record, in input order.

use async_trait::async_trait;
use crossdock_domain::catalog::InventoryLevel;
use crossdock_domain::ids::RmaId;
use crossdock_domain::order::OrderDraft;
use crossdock_domain::summary::OrderSummary;
use serde::{Deserialize, Serialize};

use crate::erp::CreditReport;
use crate::failure::Result;

/// Most records one write call takes (the sObject Collections limit).
pub const MAX_BATCH: usize = 200;

/// API calls used and allowed in the current 24-hour window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiUsage {
    /// Calls used.
    pub used: u64,
    /// Daily limit.
    pub limit: u64,
}

impl ApiUsage {
    /// Calls left.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// Writes the hub makes to Salesforce.
#[async_trait]
pub trait Salesforce: Send + Sync + 'static {
    /// Writes each order's current state (status, ERP number, fulfilment, invoices, payments,
    /// per-line quantities). One result per order, in input order.
    async fn write_orders(&self, orders: &[OrderSummary]) -> Vec<Result<()>>;

    /// Writes each return's state to its case. One result per entry, in input order.
    async fn write_returns(&self, returns: &[(OrderSummary, RmaId)]) -> Vec<Result<()>>;

    /// Writes availability per product and location. One result per level, in input order.
    async fn write_inventory(&self, levels: &[InventoryLevel]) -> Vec<Result<()>>;

    /// Writes customers' credit standing to their accounts. One result per report.
    async fn write_credit(&self, reports: &[CreditReport]) -> Vec<Result<()>>;

    /// Reads an order with its items (to capture it, or to re-read it after a gap event).
    async fn read_order(&self, sf_id: &str) -> Result<OrderDraft>;

    /// API usage as last reported by Salesforce.
    fn usage(&self) -> Option<ApiUsage>;
}
