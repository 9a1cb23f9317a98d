//! The content of each dashboard page, rendered from plain data (no I/O), so pages are cheap
//! to render and easy to test. Every page is a `maud` template: values are escaped where they
//! are written, in text and in attributes alike.

use std::collections::BTreeMap;

use crossdock_domain::flow::{Criticality, Flow};
use crossdock_engine::metrics::{LATENCY_BUCKETS, Snapshot};
use crossdock_store::LaneDepth;
use maud::{Markup, html};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::page::{pill, url};
use crate::ops::alerts::ActiveAlert;
use crate::ops::exceptions::{ExceptionView, Filter, RefusedMessage, ReplayReport};
use crate::ops::format::{ago, duration, late, money};
use crate::ops::health::HealthReport;
use crate::ops::roi::Roi;
use crate::ops::trace::Trace;

/// A flow name for people (`order-capture` → `Order capture`).
pub fn flow_name(name: &str) -> String {
    let mut words = name.replace('-', " ");
    if let Some(first) = words.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    words
}

fn criticality(c: Criticality) -> &'static str {
    match c {
        Criticality::Critical => "Critical",
        Criticality::High => "High",
        Criticality::Medium => "Medium",
        Criticality::Low => "Low",
    }
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn since(now: OffsetDateTime, at: OffsetDateTime) -> Markup {
    html! {
        span title=(crate::views::rfc3339(at)) { (ago((now - at).whole_seconds())) }
    }
}

fn order_link(id: &str) -> Markup {
    html! { a href={ "/dashboard/orders/" (url(id)) } { (id) } }
}

fn at_risk(values: &BTreeMap<String, Decimal>) -> String {
    if values.is_empty() {
        return money(Decimal::ZERO, "");
    }
    values
        .iter()
        .map(|(c, v)| money(*v, c))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn status_label(status: &str) -> &'static str {
    match status {
        "ok" => "On track",
        "late" => "Late",
        _ => "Failing",
    }
}

/// The "retry / edit / close" buttons of an open dead letter.
fn dead_letter_actions(id: i64) -> Markup {
    html! {
        button.primary data-action="retry" data-id=(id) { "Retry" }
        " "
        a href={ "/dashboard/exceptions/" (id) } { "Edit…" }
        " "
        button data-action="resolve" data-id=(id) { "Close…" }
    }
}

/// The health overview.
pub fn overview(
    report: &HealthReport,
    alerts: &[ActiveAlert],
    open_dead_letters: u64,
    now: OffsetDateTime,
) -> String {
    let stuck = report.exceptions.len();
    let ok_or = |ok: bool, otherwise: &str| {
        if ok {
            "tile ok".to_owned()
        } else {
            format!("tile {otherwise}")
        }
    };
    html! {
        h1 { "Business health" }
        p.lead {
            "What is stuck right now, most costly first. Updated "
            (ago((now - report.computed_at).whole_seconds()))
            @if !report.complete {
                " — still reading older history, some return and payment problems may be missing"
            }
            "."
        }
        div.tiles {
            div class=(ok_or(stuck == 0, "bad")) data-testid="stuck-count" {
                div.n { (stuck) } div.l { "items stuck past their target" }
            }
            div class=(ok_or(report.value_at_risk.is_empty(), "bad")) {
                div.n { (at_risk(&report.value_at_risk)) } div.l { "money at risk" }
            }
            div class=(ok_or(open_dead_letters == 0, "warn")) {
                div.n { (open_dead_letters) }
                div.l { a href="/dashboard/exceptions" { "failed steps waiting for someone" } }
            }
            div class=(ok_or(alerts.is_empty(), "bad")) {
                div.n { (alerts.len()) } div.l { "alerts firing" }
            }
        }
        @if !alerts.is_empty() {
            h2 { "Alerts" }
            table {
                tr { th { "Severity" } th { "What" } th { "Since" } }
                @for a in alerts {
                    tr {
                        td { (pill(&a.severity, &a.severity)) }
                        td { (a.summary) }
                        td { (since(now, a.since)) }
                    }
                }
            }
        }
        h2 { "Business processes" }
        div.cards {
            @for f in &report.flows {
                div.card data-flow=(f.flow) {
                    h3 { (flow_name(&f.flow)) " " (pill(&f.status, status_label(&f.status))) }
                    div."small muted" {
                        (criticality(f.criticality)) " priority · target "
                        (duration(secs(f.latency_target_secs)))
                    }
                    div {
                        @if f.exceptions == 0 {
                            "Nothing stuck"
                        } @else {
                            (f.exceptions) " stuck, worst " (late(f.worst_late_by_secs))
                        }
                    }
                }
            }
        }
        h2 { "Stuck items, by business impact" }
        @if report.exceptions.is_empty() {
            div.empty {
                "Nothing is stuck. Every order, return, payment and stock update is within its target."
            }
        } @else {
            table #exceptions {
                tr {
                    th.num { "#" } th { "Problem" } th { "Order / item" } th { "Customer" }
                    th.num { "Value at risk" } th { "How late" } th { "Why" }
                }
                @for e in report.exceptions.iter().take(200) {
                    tr data-exception=(serde_json::to_value(e.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default())
                        data-order=(e.order_id.as_deref().unwrap_or(""))
                        data-rank=(e.rank) {
                        td.num { (e.rank) }
                        td { (e.title) div."small muted" { (flow_name(&e.flow)) } }
                        td {
                            @match &e.order_id {
                                Some(order) => {
                                    (order_link(order))
                                    @if let Some(n) = e.sf_number.as_ref().filter(|n| *n != order) {
                                        div."small muted" { "Salesforce " (n) }
                                    }
                                    @if e.subject != *order {
                                        div."small muted" { (e.subject) }
                                    }
                                }
                                None => { (e.subject) }
                            }
                        }
                        td {
                            @match (&e.account_name, &e.account) {
                                (Some(name), _) => {
                                    (name)
                                    @if let Some(t) = e.tier { " " (pill("info", t.as_str())) }
                                }
                                (None, Some(account)) => { (account) }
                                _ => { span.muted { "—" } }
                            }
                        }
                        td.num data-value=(e.value_at_risk) {
                            @if e.value_at_risk.is_zero() {
                                "—"
                            } @else {
                                (money(e.value_at_risk, &e.currency))
                            }
                        }
                        td { (late(e.late_by_secs)) }
                        td.small {
                            (e.why.as_deref().unwrap_or(""))
                            @if !e.dead_letters.is_empty() {
                                " "
                                a href={ "/dashboard/exceptions?order=" (url(e.order_id.as_deref().unwrap_or(""))) } { "fix" }
                            }
                        }
                    }
                }
            }
            @if report.exceptions.len() > 200 {
                p.muted { "and " (report.exceptions.len() - 200) " more." }
            }
        }
    }
    .into_string()
}

/// Approximate quantile (seconds) from a cumulative histogram: the upper bound of the bucket
/// that holds it.
fn bucket_quantile(buckets: &[u64; 12], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let want = (q * count as f64).ceil() as u64;
    LATENCY_BUCKETS
        .iter()
        .zip(buckets)
        .find(|(_, c)| **c >= want)
        .map_or(Some(f64::INFINITY), |(b, _)| Some(*b))
}

fn seconds_text(value: Option<f64>) -> String {
    match value {
        None => "—".to_owned(),
        Some(v) if v.is_infinite() => "over 10 s".to_owned(),
        Some(v) if v < 1.0 => format!("≤ {} ms", (v * 1000.0).round()),
        Some(v) => format!("≤ {v} s"),
    }
}

/// Flows: throughput and latency against targets.
pub fn flows(flows: &[Flow], report: &HealthReport, snapshot: &Snapshot) -> String {
    html! {
        h1 { "Flows" }
        p.lead {
            "Each business process, how much it has done, how fast its steps answer, and whether it meets its target."
        }
        table {
            tr {
                th { "Flow" } th { "Priority" } th { "Target" } th.num { "Steps done" }
                th { "Step answer time (median / 95%)" } th { "Status" }
            }
            @for f in flows {
                @let done: u64 = f
                    .steps
                    .iter()
                    .map(|s| snapshot.steps.get(s).copied().unwrap_or(0))
                    .sum();
                @let (buckets, count) = flow_latency(f, snapshot);
                @let health = report.flows.iter().find(|x| x.flow == f.name);
                @let status = health.map_or("ok", |x| x.status.as_str());
                tr {
                    td { b { (flow_name(&f.name)) } div."small muted" { (f.trigger) } }
                    td { (criticality(f.classification.criticality)) }
                    td {
                        (duration(secs(f.classification.latency_target_secs)))
                        " (recover within "
                        (duration(secs(f.classification.recovery_objective_secs)))
                        ")"
                    }
                    td.num { (done) }
                    td {
                        (seconds_text(bucket_quantile(&buckets, count, 0.5)))
                        " / "
                        (seconds_text(bucket_quantile(&buckets, count, 0.95)))
                    }
                    td {
                        (pill(status, status_label(status)))
                        @if let Some(x) = health.filter(|x| x.exceptions > 0) {
                            " " span.small { (x.exceptions) " stuck" }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The latency histogram of a flow's steps, summed: (cumulative buckets, count).
fn flow_latency(f: &Flow, snapshot: &Snapshot) -> ([u64; 12], u64) {
    let mut buckets = [0u64; 12];
    let mut count = 0;
    for ((_, step), hist) in &snapshot.latency {
        if f.owns_step(step) {
            for (b, c) in buckets.iter_mut().zip(hist.buckets) {
                *b += c;
            }
            count += hist.count;
        }
    }
    (buckets, count)
}

/// The order search form.
pub fn order_search(asked: Option<&str>) -> String {
    html! {
        h1 { "Find an order" }
        p.lead {
            "Type any of its numbers: Salesforce order number or id, ERP order number, hub id, return or case number, or a correlation id."
        }
        form.filters method="get" action="/dashboard/orders" {
            label { "Order" input name="id" autofocus size="40"; }
            button.primary { "Show its history" }
        }
        @if let Some(asked) = asked {
            div."msg bad" { "No order is known by “" (asked) "”." }
        }
    }
    .into_string()
}

fn outcome_pill(outcome: Option<&str>) -> Markup {
    match outcome {
        None => html! {},
        Some("ok") => pill("ok", "succeeded"),
        Some("transient") => pill("warning", "failed, will retry"),
        Some("throttled") => pill("warning", "slowed down"),
        Some("conflict") => pill("warning", "busy, will retry"),
        Some("deferred") => pill("info", "waiting for earlier news"),
        Some("refused") => pill("bad", "refused"),
        Some("permanent") => pill("bad", "failed"),
        Some("open") => pill("bad", "waiting for someone"),
        Some("auto_resolved") => pill("ok", "fixed by a later attempt"),
        Some("resolved") => pill("info", "closed by someone"),
        Some("retried") => pill("info", "sent again"),
        Some(other) => pill("warning", other),
    }
}

/// One order's trace.
pub fn trace(t: &Trace, now: OffsetDateTime, can_write: bool) -> String {
    let status = t
        .status
        .as_deref()
        .map(crate::views::status_label)
        .unwrap_or_default();
    let value = match (&t.total, &t.currency) {
        (Some(total), Some(c)) => money(total.parse().unwrap_or_default(), c),
        _ => "—".to_owned(),
    };
    let synced = t
        .sf_synced_status
        .as_deref()
        .map(crate::views::status_label)
        .unwrap_or_else(|| "nothing yet".to_owned());
    let open: Vec<_> = t
        .dead_letters
        .iter()
        .filter(|d| d.status == "open")
        .collect();
    html! {
        h1 { "Order " (t.sf_number.as_deref().unwrap_or(&t.order_id)) }
        p.lead { "Everything that happened to this order in every system, oldest first." }
        div.tiles {
            div.tile { div.n { (status) } div.l { "status in the hub" } }
            div.tile { div.n { (value) } div.l { "order value" } }
            div.tile { div.n { (synced) } div.l { "Salesforce shows" } }
            div.tile { div.n { (t.erp_ref.as_deref().unwrap_or("not booked")) } div.l { "ERP order number" } }
        }
        p."small muted" {
            "Hub id " (t.order_id)
            " · Salesforce id " (t.sf_id.as_deref().unwrap_or("—"))
            " · customer " (t.account.as_deref().unwrap_or("—"))
        }
        div #result hidden {}
        @if !open.is_empty() {
            h2 { "Failed steps waiting for someone" }
            table {
                tr { th { "Step" } th { "Error" } th.num { "Attempts" } th { "Failed" } th {} }
                @for d in open {
                    tr data-dead-letter=(d.id) {
                        td { (crate::ops::health::step_words(&d.kind)) }
                        td.small { (d.error) }
                        td.num { (d.attempts) }
                        td { (since(now, d.created_at)) }
                        td { @if can_write { (dead_letter_actions(d.id)) } }
                    }
                }
            }
        }
        @if !t.queued.is_empty() {
            h2 { "Waiting to run" }
            table {
                tr { th { "Step" } th { "Queue" } th { "State" } th.num { "Attempts" } th { "Last error" } }
                @for q in &t.queued {
                    tr {
                        td { (crate::ops::health::step_words(&q.kind)) }
                        td { (q.lane) }
                        td {
                            @match q.state.as_str() {
                                "pending" => "waiting",
                                "leased" => "running",
                                _ => "failed, holding later steps",
                            }
                        }
                        td.num { (q.attempts) }
                        td.small { (q.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "History" }
        table #timeline {
            tr { th { "When" } th { "System" } th { "What happened" } th { "Result" } th.num { "Took" } }
            @for e in &t.entries {
                tr data-kind=(e.kind) {
                    td.small { (since(now, e.at)) }
                    td { (system_name(e.system.as_deref())) }
                    td { (e.summary) }
                    td { (outcome_pill(e.outcome.as_deref())) }
                    td."num small" { @if let Some(ms) = e.latency_ms { (ms) " ms" } }
                }
            }
        }
    }
    .into_string()
}

fn system_name(system: Option<&str>) -> String {
    match system {
        Some("salesforce") => "Salesforce".to_owned(),
        Some("erp") => "ERP".to_owned(),
        Some("hub") => "Hub".to_owned(),
        Some("api") => "API".to_owned(),
        Some(other) => other.to_owned(),
        None => "—".to_owned(),
    }
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(&str, &str)]) -> Markup {
    html! {
        label {
            (label)
            select name=(name) {
                @for (value, text) in options {
                    option value=(value)
                        selected[current == Some(*value) || (current.is_none() && value.is_empty())] {
                        (text)
                    }
                }
            }
        }
    }
}

/// The exception queue.
pub fn exceptions(
    items: &[ExceptionView],
    filter: &Filter,
    flows: &[Flow],
    refused: &[RefusedMessage],
    now: OffsetDateTime,
    can_write: bool,
) -> String {
    let flow_options: Vec<(String, String)> = std::iter::once((String::new(), "Any".to_owned()))
        .chain(flows.iter().map(|f| (f.name.clone(), flow_name(&f.name))))
        .collect();
    let flow_refs: Vec<(&str, &str)> = flow_options
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let replay_filter =
        (can_write && filter.status.as_deref().is_none_or(|s| s == "open")).then(|| {
            let replay = Filter {
                status: None,
                limit: None,
                ..filter.clone()
            };
            serde_json::to_string(&replay).unwrap_or_else(|_| "{}".to_owned())
        });
    html! {
        h1 { "Failed work" }
        p.lead {
            "Steps the hub gave up on, and messages it refused. Send them again (corrected if needed) or close them with a reason. Everything you do here is recorded."
        }
        form.filters method="get" action="/dashboard/exceptions" {
            (select("status", "State", filter.status.as_deref(), &[
                ("open", "Waiting for someone"),
                ("auto_resolved", "Fixed by a later attempt"),
                ("resolved", "Closed by someone"),
                ("retried", "Sent again"),
                ("", "Any"),
            ]))
            (select("flow", "Process", filter.flow.as_deref(), &flow_refs))
            (select("lane", "System", filter.lane.as_deref(), &[
                ("", "Any"),
                ("erp", "ERP"),
                ("salesforce", "Salesforce"),
                ("hub", "Hub"),
            ]))
            (select("class", "Kind of failure", filter.class.as_deref(), &[
                ("", "Any"),
                ("permanent", "Refused by the system"),
                ("unknown", "Unclear answer"),
                ("transient", "System unavailable"),
                ("throttled", "Too many calls"),
                ("conflict", "Record busy"),
            ]))
            label { "Order" input name="order" value=(filter.order.as_deref().unwrap_or("")) size="16"; }
            button { "Show" }
        }
        div #result hidden {}
        @if let Some(json) = &replay_filter {
            p {
                button data-action="preview" data-filter=(json) { "Replay everything shown…" }
                " "
                span."small muted" {
                    "You will see the list first; items go through the normal queues, each order keeping its step order."
                }
            }
            div #replay-box {}
        }
        @if items.is_empty() {
            div.empty { "No failed work matches." }
        } @else {
            table #dead-letters {
                tr {
                    th.num { "#" } th { "Failed" } th { "Order" } th { "Step" } th { "Error" }
                    th.num { "Attempts" } th { "State" } th {}
                }
                @for d in items {
                    tr data-dead-letter=(d.id) data-order=(d.order_id.as_deref().unwrap_or("")) {
                        td.num { (d.id) }
                        td.small { (since(now, d.created_at)) }
                        td {
                            @match d.order_id.as_deref() {
                                Some(order) => { (order_link(order)) }
                                None => { "—" }
                            }
                        }
                        td { (d.step) div."small muted" { (d.flow.as_deref().map(flow_name).unwrap_or_default()) } }
                        td.small { (d.error) }
                        td.num { (d.attempts) }
                        td {
                            (outcome_pill(Some(&d.status)))
                            @if let Some(r) = &d.resolution { div."small muted" { (r) } }
                        }
                        td {
                            @if can_write && d.status == "open" {
                                (dead_letter_actions(d.id))
                            } @else {
                                a href={ "/dashboard/exceptions/" (d.id) } { "Details" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Refused messages" }
        @if refused.is_empty() {
            div.empty { "No incoming message was refused." }
        } @else {
            table {
                tr { th { "Received" } th { "From" } th { "Kind" } th { "Why" } th { "Message (secrets hidden)" } }
                @for r in refused.iter().take(100) {
                    tr {
                        td.small { (since(now, r.received_at)) }
                        td { (system_name(Some(&r.source))) }
                        td { (r.kind) }
                        td.small { (r.error.as_deref().unwrap_or(&r.status)) }
                        td { pre { (r.raw.chars().take(2_000).collect::<String>()) } }
                    }
                }
            }
        }
    }
    .into_string()
}

/// One dead letter, with its payload for editing.
pub fn exception_detail(d: &ExceptionView, now: OffsetDateTime, can_write: bool) -> String {
    let payload = serde_json::to_string_pretty(&d.payload).unwrap_or_default();
    html! {
        h1 { "Failed step #" (d.id) }
        p.lead {
            (d.step) " for "
            @match d.order_id.as_deref() {
                Some(order) => { (order_link(order)) }
                None => { "no order" }
            }
            " failed " (since(now, d.created_at)) ": " (d.error)
        }
        table {
            tr {
                th { "State" }
                td {
                    (outcome_pill(Some(&d.status)))
                    @if let Some(r) = &d.resolution { " " span."small muted" { (r) } }
                }
            }
            tr { th { "Process" } td { (d.flow.as_deref().map(flow_name).unwrap_or_default()) } }
            tr { th { "System" } td { (system_name(Some(&d.lane))) } }
            tr { th { "Kind of failure" } td { (d.class) " — " (d.reason) } }
            tr { th { "Attempts" } td { (d.attempts) } }
            tr {
                th { "Holds back later steps" }
                td {
                    @if d.blocking { "yes: this order waits until it is sent again or closed" } @else { "no" }
                }
            }
        }
        div #result hidden {}
        @if can_write && d.status == "open" {
            h2 { "What will be sent" }
            p."small muted" {
                "Correct it if needed; the change is checked against what this step accepts before it is sent. Hidden secrets ([redacted]) must be left out or replaced."
            }
            textarea id={ "payload-" (d.id) } spellcheck="false" { (payload) }
            p {
                button.primary data-action="edit-retry" data-id=(d.id) { "Send corrected version" }
                " "
                button data-action="retry" data-id=(d.id) { "Send again unchanged" }
                " "
                button.danger data-action="resolve" data-id=(d.id) { "Close with a reason…" }
            }
        } @else {
            h2 { "Payload" }
            pre { (payload) }
        }
    }
    .into_string()
}

/// A replay report.
pub fn replay_report(r: &ReplayReport, now: OffsetDateTime) -> String {
    html! {
        h1 { "Replay " (r.id) }
        p.lead {
            "Started " (since(now, r.started_at)) ". "
            (r.succeeded) " succeeded, " (r.waiting) " still waiting, " (r.failed_again) " failed again."
        }
        table {
            tr { th { "Failed step" } th { "Order" } th { "Step" } th { "Outcome" } th { "Details" } }
            @for i in &r.items {
                tr {
                    td { "#" (i.item.dead_letter) }
                    td { @if let Some(order) = i.item.order_id.as_deref() { (order_link(order)) } }
                    td { (crate::ops::health::step_words(&i.item.kind)) }
                    td {
                        @match i.outcome.as_str() {
                            "succeeded" => { (pill("ok", "succeeded")) }
                            "waiting" => { (pill("info", "waiting")) }
                            "failed_again" => { (pill("bad", "failed again")) }
                            _ => { (pill("warning", "not sent")) }
                        }
                    }
                    td.small { (i.error.as_deref().unwrap_or("")) }
                }
            }
        }
    }
    .into_string()
}

/// Connected systems: lanes and API usage.
pub fn systems(
    lanes: &[(
        String,
        crossdock_engine::BreakerState,
        bool,
        Option<LaneDepth>,
    )],
    usage: Option<crossdock_ports::salesforce::ApiUsage>,
    erp_name: &str,
    now: OffsetDateTime,
) -> String {
    html! {
        h1 { "Connected systems" }
        p.lead {
            "Each system the hub talks to has its own queue, so a slow system never slows the others."
        }
        table {
            tr {
                th { "System" } th { "Connection" } th.num { "Waiting" } th.num { "Ready now" }
                th.num { "In progress" } th.num { "Held back by a failure" } th { "Oldest waiting" }
            }
            @for (name, breaker, paused, depth) in lanes {
                @let d = depth.clone().unwrap_or(LaneDepth {
                    lane: name.clone(),
                    pending: 0,
                    due: 0,
                    leased: 0,
                    blocked: 0,
                    oldest_pending: None,
                });
                tr data-lane=(name) {
                    td {
                        b {
                            @match name.as_str() {
                                "erp" => { "ERP (" (erp_name) ")" }
                                "salesforce" => { "Salesforce" }
                                "hub" => { "Hub (internal)" }
                                other => { (other) }
                            }
                        }
                    }
                    td {
                        @match (breaker, paused) {
                            (_, true) => { (pill("warning", "Slowed down (asked to wait)")) }
                            (crossdock_engine::BreakerState::Closed, _) => { (pill("ok", "Working")) }
                            (crossdock_engine::BreakerState::HalfOpen, _) => { (pill("warning", "Testing recovery")) }
                            (crossdock_engine::BreakerState::Open, _) => { (pill("failing", "Failing — calls paused")) }
                        }
                    }
                    td.num { (d.pending) }
                    td.num { (d.due) }
                    td.num { (d.leased) }
                    td.num { (d.blocked) }
                    td {
                        @match d.oldest_pending {
                            Some(at) => { (ago((now - at).whole_seconds())) }
                            None => { "—" }
                        }
                    }
                }
            }
        }
        h2 { "Salesforce API limit" }
        @match usage {
            Some(u) if u.limit > 0 => {
                @let pct = (u.used.min(u.limit) * 100) / u.limit;
                div.card {
                    div { (u.used) " of " (u.limit) " calls used in the last 24 hours (" (u.remaining()) " left)" }
                    progress.bar max="100" value=(pct) { (pct) "%" }
                }
            }
            _ => {
                div.empty { "Salesforce has not reported its API usage yet." }
            }
        }
    }
    .into_string()
}

/// ROI evidence.
pub fn roi(
    r: &Roi,
    recent: &[(OffsetDateTime, String, String, String)],
    now: OffsetDateTime,
) -> String {
    let auto_pct = (r.auto_resolved * 100)
        .checked_div(r.exceptions_raised)
        .map_or_else(|| "—".to_owned(), |p| format!("{p}%"));
    let dash = || "—".to_owned();
    html! {
        h1 { "Results" }
        p.lead { "How long orders take, how often things go wrong, and how often they fix themselves." }
        div.tiles {
            div.tile { div.n { (r.exceptions_raised) } div.l { "failures set aside" } }
            div."tile ok" {
                div.n { (r.auto_resolved) " " small { "(" (auto_pct) ")" } }
                div.l { "fixed by a later attempt, nobody needed" }
            }
            div.tile { div.n { (r.interventions_total) } div.l { "manual interventions" } }
            div.tile {
                div.n { (r.inventory_accuracy_pct.map_or_else(dash, |p| format!("{p}%"))) }
                div.l {
                    "stock accuracy in Salesforce ("
                    (r.stock_levels - r.stock_levels_drifted.min(r.stock_levels))
                    " of " (r.stock_levels) " levels current)"
                }
            }
        }
        h2 { "Order cycle times" }
        table {
            tr { th { "Stage" } th.num { "Orders" } th.num { "Typical (median)" } th.num { "Slow (95%)" } }
            @for c in &r.cycle_times {
                tr {
                    td { (c.label) }
                    td.num { (c.samples) }
                    td.num { (c.p50_secs.map_or_else(dash, |s| duration(i64::from(s)))) }
                    td.num { (c.p95_secs.map_or_else(dash, |s| duration(i64::from(s)))) }
                }
            }
        }
        h2 { "Failures" }
        table {
            tr { th { "Set aside" } th { "Fixed by a later attempt" } th { "Handled by someone" } th { "Still open" } }
            tr {
                td { (r.exceptions_raised) } td { (r.auto_resolved) }
                td { (r.handled_by_people) } td { (r.open) }
            }
        }
        h2 { "Latest manual interventions" }
        @if recent.is_empty() {
            div.empty { "Nobody had to step in." }
        } @else {
            table {
                tr { th { "When" } th { "Who" } th { "What" } th { "On" } }
                @for (at, actor, action, target) in recent {
                    tr {
                        td { (since(now, *at)) }
                        td { (actor) }
                        td { (action) }
                        td { (target) }
                    }
                }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_other_systems_are_escaped_in_text_and_attributes() {
        let hostile = "\"><script>window.pwned=1</script>";
        let html = order_search(Some(hostile));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
        let now = OffsetDateTime::UNIX_EPOCH;
        let trace_html = trace(
            &Trace {
                order_id: hostile.to_owned(),
                asked: hostile.to_owned(),
                sf_id: Some(hostile.to_owned()),
                sf_number: None,
                erp_ref: Some(hostile.to_owned()),
                account: Some(hostile.to_owned()),
                status: None,
                total: None,
                currency: None,
                sf_synced_status: None,
                entries: vec![crate::ops::trace::TraceEntry {
                    at: now,
                    kind: hostile.to_owned(),
                    system: Some(hostile.to_owned()),
                    summary: hostile.to_owned(),
                    outcome: Some(hostile.to_owned()),
                    latency_ms: None,
                    correlation: None,
                    detail: serde_json::Value::Null,
                }],
                dead_letters: vec![crate::ops::trace::TraceDeadLetter {
                    id: 7,
                    kind: hostile.to_owned(),
                    class: hostile.to_owned(),
                    error: hostile.to_owned(),
                    status: "open".to_owned(),
                    resolution: None,
                    attempts: 1,
                    created_at: now,
                }],
                queued: Vec::new(),
            },
            now,
            true,
        );
        assert!(!trace_html.contains("<script>"), "{trace_html}");
        assert!(
            trace_html.contains("data-kind=\"&quot;&gt;&lt;script&gt;"),
            "attribute values are escaped: {trace_html}"
        );
        assert!(trace_html.contains("data-action=\"retry\" data-id=\"7\""));
    }

    #[test]
    fn flow_names_read_as_words() {
        assert_eq!(flow_name("order-capture"), "Order capture");
        assert_eq!(flow_name("invoicing-payment"), "Invoicing payment");
    }

    #[test]
    fn histogram_quantiles_use_bucket_bounds() {
        let mut buckets = [0u64; 12];
        // 10 observations ≤ 5 ms, 10 more ≤ 100 ms.
        for (i, b) in buckets.iter_mut().enumerate() {
            *b = if i < 2 {
                0
            } else if i < 6 {
                10
            } else {
                20
            };
        }
        assert_eq!(bucket_quantile(&buckets, 20, 0.5), Some(0.005));
        assert_eq!(bucket_quantile(&buckets, 20, 0.95), Some(0.1));
        assert_eq!(bucket_quantile(&buckets, 0, 0.5), None);
        assert_eq!(bucket_quantile(&buckets, 25, 0.99), Some(f64::INFINITY));
    }
}
