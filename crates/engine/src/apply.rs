//! Applying commands to an order: load its stream, decide, evolve, react, and turn the
//! result into one store [`Decision`] (events, follow-up tasks, summary row, timeline, ids).

use crossdock_domain::ids::{OrderId, System};
use crossdock_domain::order::{
    Command, Effect, Event, Lane as LaneName, Order, decide, evolve, react,
};
use crossdock_store::{
    Binding, Decision, ExternalRef, JsonText, NewEvent, NewTask, OrderRow, SharedStore,
    StreamAppend, TimelineEntry,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::config::{BookingOrder, EngineConfig};
use crate::describe::describe;

/// Stream id of an order.
pub fn stream_id(order: &OrderId) -> String {
    format!("order:{order}")
}

/// An order's state and the version it was read at.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// State.
    pub state: Order,
    /// Number of events in the stream.
    pub version: i64,
}

/// Why loading an order failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crossdock_store::Error),
    /// A stored event could not be decoded.
    #[error("event {version} of {stream} cannot be decoded: {error}")]
    Corrupt {
        /// Stream.
        stream: String,
        /// Event version.
        version: i64,
        /// Decoder message.
        error: String,
    },
}

/// Reads an order's events and folds them into its state.
///
/// # Errors
/// Store failures and undecodable events.
pub async fn load(store: &SharedStore, order: &OrderId) -> Result<Loaded, LoadError> {
    let stream = stream_id(order);
    let events = store.read_stream(&stream).await?;
    let mut state = Order::default();
    let mut version = 0;
    for stored in events {
        let event: Event =
            serde_json::from_value(stored.payload).map_err(|e| LoadError::Corrupt {
                stream: stream.clone(),
                version: stored.version,
                error: e.to_string(),
            })?;
        evolve(&mut state, &event);
        version = stored.version;
    }
    Ok(Loaded { state, version })
}

/// Where a change comes from, for the timeline and causation.
#[derive(Debug, Clone)]
pub struct Cause {
    /// System whose message or answer this is.
    pub system: System,
    /// What caused it (inbox row, task idempotency key).
    pub causation: String,
    /// Correlation id.
    pub correlation: Option<String>,
}

/// The outcome of applying commands.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Writes to commit.
    pub decision: Decision,
    /// New events.
    pub events: Vec<Event>,
    /// State after the events.
    pub state: Order,
    /// Stream version after the events.
    pub version: i64,
}

/// Decides `commands` in turn against `loaded` and builds the decision.
///
/// # Errors
/// The first lifecycle violation; nothing is written then.
pub fn apply(
    order: &OrderId,
    loaded: &Loaded,
    commands: &[Command],
    cause: &Cause,
    config: &EngineConfig,
    now: OffsetDateTime,
) -> Result<Applied, crossdock_domain::Error> {
    let mut state = loaded.state.clone();
    let mut events = Vec::new();
    let mut effects: Vec<Effect> = Vec::new();
    for command in commands {
        for event in decide(command, &state)? {
            evolve(&mut state, &event);
            for effect in react(&event, &state) {
                if !effects.contains(&effect) {
                    effects.push(effect);
                }
            }
            events.push(event);
        }
    }
    effects.retain(|effect| effect.is_still_needed(&state));

    let mut decision = Decision::default();
    if events.is_empty() {
        return Ok(Applied {
            decision,
            events,
            state,
            version: loaded.version,
        });
    }
    let version = loaded.version + i64::try_from(events.len()).unwrap_or(i64::MAX);
    decision.append = Some(StreamAppend {
        stream: stream_id(order),
        expected_version: loaded.version,
        events: events
            .iter()
            .map(|event| NewEvent {
                kind: event.name().to_owned(),
                // Rendered straight from the typed event, no JSON tree in between.
                payload: JsonText::of(event).unwrap_or_default(),
                occurred_at: event.at(),
                causation: Some(cause.causation.clone()),
                correlation: cause.correlation.clone(),
            })
            .collect(),
    });
    decision.tasks = effects
        .iter()
        .map(|effect| task_for(effect, order, &state, version, config, now, cause))
        .collect();
    decision.timeline = events
        .iter()
        .map(|event| TimelineEntry {
            order_id: order.to_string(),
            at: now,
            kind: "event".to_owned(),
            summary: describe(event),
            detail: json!({ "type": event.name(), "occurred_at": event.at().to_string() }),
            system: Some(cause.system.as_str().to_owned()),
            outcome: None,
            latency_ms: None,
            correlation: cause.correlation.clone(),
        })
        .collect();
    decision.order = order_row(order, &state, version, now);
    // Only references the events added (the others are stored already), and the cause's.
    let known = refs(order, &loaded.state, None);
    decision.refs = refs(order, &state, cause.correlation.as_deref());
    decision
        .refs
        .retain(|r| r.namespace == "correlation" || !known.contains(r));
    // References the events bind: each must name this order alone (the store refuses the
    // decision when another order holds one).
    let bound = bindings(order, &loaded.state);
    decision.bind = bindings(order, &state);
    decision.bind.retain(|b| !bound.contains(b));
    Ok(Applied {
        decision,
        events,
        state,
        version,
    })
}

/// The task that carries out an effect, decided at stream `version` of the order (the task
/// never runs on an older state of it).
pub fn task_for(
    effect: &Effect,
    order: &OrderId,
    state: &Order,
    version: i64,
    config: &EngineConfig,
    now: OffsetDateTime,
    cause: &Cause,
) -> NewTask {
    let lane = effect.lane();
    let account = state.draft.as_ref().map(|d| d.account.to_string());
    let key = match (effect, config.booking_order, account) {
        (Effect::ValidateOrder | Effect::BookOrder, BookingOrder::PerAccount, Some(account)) => {
            format!("erp-account:{account}")
        }
        _ => match lane {
            LaneName::Erp => format!("erp:{order}"),
            LaneName::Salesforce => format!("sf:{order}"),
            LaneName::Hub => format!("order:{order}"),
        },
    };
    let state_based = effect.is_state_based();
    let due_at = if lane == LaneName::Salesforce {
        now + time::Duration::try_from(config.sf_sync_delay).unwrap_or_default()
    } else {
        now
    };
    NewTask {
        lane: lane.as_str().to_owned(),
        kind: effect.step_kind().to_owned(),
        key,
        dedupe: state_based.then(|| effect.idempotency_key(order)),
        idempotency_key: effect.idempotency_key(order),
        payload: json!({
            "order": order,
            "effect": effect,
            "version": version,
            "correlation": cause.correlation,
        }),
        due_at,
        blocking: !state_based,
        order_id: Some(order.to_string()),
    }
}

/// Kind names of effect tasks (used for dead-letter filters and auto-resolution).
pub trait StepKind {
    /// Task kind.
    fn step_kind(&self) -> &'static str;
}

impl StepKind for Effect {
    fn step_kind(&self) -> &'static str {
        match self {
            Effect::ValidateOrder => "validate",
            Effect::BookOrder => "book",
            Effect::CancelInErp => "erp-cancel",
            Effect::SyncOrder => "sf-sync",
            Effect::CloseOrder => "close",
            Effect::AuthoriseReturn { .. } => "rma-authorise",
            Effect::IssueCreditMemo { .. } => "rma-credit-memo",
            Effect::IssueRefund { .. } => "rma-refund",
            Effect::SyncReturn { .. } => "sf-return",
            Effect::CloseReturn { .. } => "rma-close",
        }
    }
}

/// The order's summary row at `version`.
pub fn order_row(
    order: &OrderId,
    state: &Order,
    version: i64,
    now: OffsetDateTime,
) -> Option<OrderRow> {
    let summary = state.summary()?;
    let times = summary.times;
    Some(OrderRow {
        order_id: order.to_string(),
        sf_id: summary.refs.sf_id.clone(),
        sf_number: summary.refs.sf_number.clone(),
        erp_ref: summary.refs.erp_ref.clone(),
        account: summary.account.to_string(),
        channel: summary.channel.as_str().to_owned(),
        status: summary.status.name().to_owned(),
        total: summary.total.to_string(),
        currency: summary.currency.to_string(),
        captured_at: times.captured,
        booked_at: times.booked,
        shipped_at: times.shipped,
        delivered_at: times.delivered,
        invoiced_at: times.invoiced,
        paid_at: times.paid,
        ended_at: times.closed.or(times.cancelled).or_else(|| {
            state
                .rejection
                .as_ref()
                .filter(|_| state.booking.is_none())
                .map(|r| r.at)
        }),
        updated_at: now,
        version,
        body: summary
            .to_json()
            .map(JsonText::rendered)
            .unwrap_or_default(),
        sf_synced_status: None,
        sf_synced_version: None,
        sf_synced_at: None,
    })
}

fn refs(order: &OrderId, state: &Order, correlation: Option<&str>) -> Vec<ExternalRef> {
    let mut refs = Vec::new();
    let mut add = |namespace: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            refs.push(ExternalRef {
                namespace: namespace.to_owned(),
                value: value.to_owned(),
                order_id: order.to_string(),
            });
        }
    };
    if let Some(draft) = &state.draft {
        add("sf_id", draft.refs.sf_id.as_deref());
        add("sf_number", draft.refs.sf_number.as_deref());
    }
    add(
        "erp_ref",
        state.booking.as_ref().map(|b| b.erp_ref.as_str()),
    );
    add("correlation", correlation);
    for (rma, facts) in &state.returns {
        add("rma", Some(rma.as_str()));
        if let Some(request) = &facts.request {
            add("case", request.case.sf_id.as_deref());
            add("case_number", request.case.sf_number.as_deref());
        }
        add(
            "erp_rma",
            facts.authorisation.as_ref().map(|a| a.erp_ref.as_str()),
        );
    }
    refs
}

/// The external references an order holds, each of which names it alone: its Salesforce
/// record id, and the ERP's order number, shipment, invoice, return and credit memo ids.
pub fn bindings(order: &OrderId, state: &Order) -> Vec<Binding> {
    let mut bindings = Vec::new();
    let mut add = |system: System, kind: &str, reference: &str| {
        if !reference.is_empty() {
            bindings.push(Binding {
                system: system.as_str().to_owned(),
                kind: kind.to_owned(),
                reference: reference.to_owned(),
                order_id: order.to_string(),
            });
        }
    };
    if let Some(sf_id) = state.draft.as_ref().and_then(|d| d.refs.sf_id.as_deref()) {
        add(System::Salesforce, "order", sf_id);
    }
    if let Some(booking) = &state.booking {
        add(System::Erp, "order", &booking.erp_ref);
    }
    for shipment in state.shipments.keys() {
        add(System::Erp, "shipment", shipment.as_str());
    }
    for invoice in state.invoices.keys() {
        add(System::Erp, "invoice", invoice.as_str());
    }
    for facts in state.returns.values() {
        if let Some(authorisation) = &facts.authorisation {
            add(System::Erp, "return", &authorisation.erp_ref);
        }
        for memo in facts.credit_memos.keys() {
            add(System::Erp, "credit-memo", memo.as_str());
        }
    }
    bindings
}
