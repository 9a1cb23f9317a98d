//! The content of each dashboard page, rendered from plain data (no I/O), so pages are cheap
//! to render and easy to test.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crossdock_domain::flow::{Criticality, Flow};
use crossdock_engine::metrics::{LATENCY_BUCKETS, Snapshot};
use crossdock_store::LaneDepth;
use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::page::{esc, pill, url};
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

fn since(now: OffsetDateTime, at: OffsetDateTime) -> String {
    format!(
        "<span title=\"{}\">{}</span>",
        esc(&crate::views::rfc3339(at)),
        esc(&ago((now - at).whole_seconds()))
    )
}

fn order_link(id: &str) -> String {
    format!("<a href=\"/dashboard/orders/{}\">{}</a>", url(id), esc(id))
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

/// The health overview.
pub fn overview(
    report: &HealthReport,
    alerts: &[ActiveAlert],
    open_dead_letters: u64,
    now: OffsetDateTime,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<h1>Business health</h1><p class=\"lead\">What is stuck right now, most costly first. Updated {}{}.</p>",
        esc(&ago((now - report.computed_at).whole_seconds())),
        if report.complete {
            ""
        } else {
            " — still reading older history, some return and payment problems may be missing"
        }
    );
    let stuck = report.exceptions.len();
    let _ = write!(
        h,
        "<div class=\"tiles\">\
         <div class=\"tile {}\" data-testid=\"stuck-count\"><div class=\"n\">{stuck}</div><div class=\"l\">items stuck past their target</div></div>\
         <div class=\"tile {}\"><div class=\"n\">{}</div><div class=\"l\">money at risk</div></div>\
         <div class=\"tile {}\"><div class=\"n\">{open_dead_letters}</div><div class=\"l\"><a href=\"/dashboard/exceptions\">failed steps waiting for someone</a></div></div>\
         <div class=\"tile {}\"><div class=\"n\">{}</div><div class=\"l\">alerts firing</div></div></div>",
        if stuck == 0 { "ok" } else { "bad" },
        if report.value_at_risk.is_empty() {
            "ok"
        } else {
            "bad"
        },
        esc(&at_risk(&report.value_at_risk)),
        if open_dead_letters == 0 { "ok" } else { "warn" },
        if alerts.is_empty() { "ok" } else { "bad" },
        alerts.len(),
    );
    if !alerts.is_empty() {
        h.push_str("<h2>Alerts</h2><table><tr><th>Severity</th><th>What</th><th>Since</th></tr>");
        for a in alerts {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                pill(&a.severity, &a.severity),
                esc(&a.summary),
                since(now, a.since)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Business processes</h2><div class=\"cards\">");
    for f in &report.flows {
        let label = match f.status.as_str() {
            "ok" => "On track",
            "late" => "Late",
            _ => "Failing",
        };
        let _ = write!(
            h,
            "<div class=\"card\" data-flow=\"{}\"><h3>{} {}</h3><div class=\"small muted\">{} priority · target {}</div><div>{}</div></div>",
            esc(&f.flow),
            esc(&flow_name(&f.flow)),
            pill(&f.status, label),
            criticality(f.criticality),
            esc(&duration(secs(f.latency_target_secs))),
            if f.exceptions == 0 {
                "Nothing stuck".to_owned()
            } else {
                format!(
                    "{} stuck, worst {}",
                    f.exceptions,
                    esc(&late(f.worst_late_by_secs))
                )
            }
        );
    }
    h.push_str("</div><h2>Stuck items, by business impact</h2>");
    if report.exceptions.is_empty() {
        h.push_str("<div class=\"empty\">Nothing is stuck. Every order, return, payment and stock update is within its target.</div>");
        return h;
    }
    h.push_str("<table id=\"exceptions\"><tr><th class=\"num\">#</th><th>Problem</th><th>Order / item</th><th>Customer</th><th class=\"num\">Value at risk</th><th>How late</th><th>Why</th></tr>");
    for e in report.exceptions.iter().take(200) {
        let subject = match &e.order_id {
            Some(order) => {
                let mut s = order_link(order);
                if let Some(n) = &e.sf_number
                    && n != order
                {
                    let _ = write!(s, "<div class=\"small muted\">Salesforce {}</div>", esc(n));
                }
                if e.subject != *order {
                    let _ = write!(s, "<div class=\"small muted\">{}</div>", esc(&e.subject));
                }
                s
            }
            None => esc(&e.subject),
        };
        let customer = match (&e.account_name, &e.account) {
            (Some(name), _) => format!(
                "{}{}",
                esc(name),
                e.tier
                    .map(|t| format!(" {}", pill("info", t.as_str())))
                    .unwrap_or_default()
            ),
            (None, Some(account)) => esc(account),
            _ => "<span class=\"muted\">—</span>".to_owned(),
        };
        let _ = write!(
            h,
            "<tr data-exception=\"{kind}\" data-order=\"{order}\" data-rank=\"{rank}\"><td class=\"num\">{rank}</td><td>{title}<div class=\"small muted\">{flow}</div></td><td>{subject}</td><td>{customer}</td><td class=\"num\" data-value=\"{value}\">{money}</td><td>{late}</td><td class=\"small\">{why}{dl}</td></tr>",
            kind = serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            order = esc(e.order_id.as_deref().unwrap_or("")),
            rank = e.rank,
            title = esc(&e.title),
            flow = esc(&flow_name(&e.flow)),
            value = e.value_at_risk,
            money = if e.value_at_risk.is_zero() {
                "—".to_owned()
            } else {
                esc(&money(e.value_at_risk, &e.currency))
            },
            late = esc(&late(e.late_by_secs)),
            why = esc(e.why.as_deref().unwrap_or("")),
            dl = if e.dead_letters.is_empty() {
                String::new()
            } else {
                format!(
                    " <a href=\"/dashboard/exceptions?order={}\">fix</a>",
                    url(e.order_id.as_deref().unwrap_or(""))
                )
            },
        );
    }
    h.push_str("</table>");
    if report.exceptions.len() > 200 {
        let _ = write!(
            h,
            "<p class=\"muted\">and {} more.</p>",
            report.exceptions.len() - 200
        );
    }
    h
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
    let mut h = String::from(
        "<h1>Flows</h1><p class=\"lead\">Each business process, how much it has done, how fast its steps answer, and whether it meets its target.</p>\
         <table><tr><th>Flow</th><th>Priority</th><th>Target</th><th class=\"num\">Steps done</th><th>Step answer time (median / 95%)</th><th>Status</th></tr>",
    );
    for f in flows {
        let done: u64 = f
            .steps
            .iter()
            .map(|s| snapshot.steps.get(s).copied().unwrap_or(0))
            .sum();
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
        let health = report.flows.iter().find(|x| x.flow == f.name);
        let status = health.map_or("ok", |x| x.status.as_str());
        let _ = write!(
            h,
            "<tr><td><b>{}</b><div class=\"small muted\">{}</div></td><td>{}</td><td>{} (recover within {})</td><td class=\"num\">{done}</td><td>{} / {}</td><td>{}{}</td></tr>",
            esc(&flow_name(&f.name)),
            esc(&f.trigger),
            criticality(f.classification.criticality),
            esc(&duration(secs(f.classification.latency_target_secs))),
            esc(&duration(secs(f.classification.recovery_objective_secs))),
            esc(&seconds_text(bucket_quantile(&buckets, count, 0.5))),
            esc(&seconds_text(bucket_quantile(&buckets, count, 0.95))),
            pill(
                status,
                match status {
                    "ok" => "On track",
                    "late" => "Late",
                    _ => "Failing",
                }
            ),
            health
                .filter(|x| x.exceptions > 0)
                .map(|x| format!(" <span class=\"small\">{} stuck</span>", x.exceptions))
                .unwrap_or_default(),
        );
    }
    h.push_str("</table>");
    h
}

/// The order search form.
pub fn order_search(asked: Option<&str>) -> String {
    let mut h = String::from(
        "<h1>Find an order</h1><p class=\"lead\">Type any of its numbers: Salesforce order number or id, ERP order number, hub id, return or case number, or a correlation id.</p>\
         <form method=\"get\" action=\"/dashboard/orders\" class=\"filters\"><label>Order<input name=\"id\" autofocus size=\"40\"></label><button class=\"primary\">Show its history</button></form>",
    );
    if let Some(asked) = asked {
        let _ = write!(
            h,
            "<div class=\"msg bad\">No order is known by “{}”.</div>",
            esc(asked)
        );
    }
    h
}

fn outcome_pill(outcome: Option<&str>) -> String {
    match outcome {
        None => String::new(),
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
    let mut h = String::new();
    let status = t
        .status
        .as_deref()
        .map(crate::views::status_label)
        .unwrap_or_default();
    let _ = write!(
        h,
        "<h1>Order {}</h1><p class=\"lead\">Everything that happened to this order in every system, oldest first.</p>\
         <div class=\"tiles\"><div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">status in the hub</div></div>\
         <div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">order value</div></div>\
         <div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">Salesforce shows</div></div>\
         <div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">ERP order number</div></div></div>",
        esc(t.sf_number.as_deref().unwrap_or(&t.order_id)),
        esc(&status),
        esc(&match (&t.total, &t.currency) {
            (Some(total), Some(c)) => money(total.parse().unwrap_or_default(), c),
            _ => "—".to_owned(),
        }),
        esc(&t
            .sf_synced_status
            .as_deref()
            .map(crate::views::status_label)
            .unwrap_or_else(|| "nothing yet".to_owned())),
        esc(t.erp_ref.as_deref().unwrap_or("not booked")),
    );
    let _ = write!(
        h,
        "<p class=\"small muted\">Hub id {} · Salesforce id {} · customer {}</p><div id=\"result\" hidden></div>",
        esc(&t.order_id),
        esc(t.sf_id.as_deref().unwrap_or("—")),
        esc(t.account.as_deref().unwrap_or("—"))
    );
    let open: Vec<_> = t
        .dead_letters
        .iter()
        .filter(|d| d.status == "open")
        .collect();
    if !open.is_empty() {
        h.push_str("<h2>Failed steps waiting for someone</h2><table><tr><th>Step</th><th>Error</th><th class=\"num\">Attempts</th><th>Failed</th><th></th></tr>");
        for d in open {
            let _ = write!(
                h,
                "<tr data-dead-letter=\"{id}\"><td>{}</td><td class=\"small\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&crate::ops::health::step_words(&d.kind)),
                esc(&d.error),
                d.attempts,
                since(now, d.created_at),
                if can_write {
                    format!(
                        "<button class=\"primary\" data-action=\"retry\" data-id=\"{id}\">Retry</button> <a href=\"/dashboard/exceptions/{id}\">Edit…</a> <button data-action=\"resolve\" data-id=\"{id}\">Close…</button>",
                        id = d.id
                    )
                } else {
                    String::new()
                },
                id = d.id,
            );
        }
        h.push_str("</table>");
    }
    if !t.queued.is_empty() {
        h.push_str("<h2>Waiting to run</h2><table><tr><th>Step</th><th>Queue</th><th>State</th><th class=\"num\">Attempts</th><th>Last error</th></tr>");
        for q in &t.queued {
            let state = match q.state.as_str() {
                "pending" => "waiting",
                "leased" => "running",
                _ => "failed, holding later steps",
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"small\">{}</td></tr>",
                esc(&crate::ops::health::step_words(&q.kind)),
                esc(&q.lane),
                state,
                q.attempts,
                esc(q.last_error.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>History</h2><table id=\"timeline\"><tr><th>When</th><th>System</th><th>What happened</th><th>Result</th><th class=\"num\">Took</th></tr>");
    for e in &t.entries {
        let _ = write!(
            h,
            "<tr data-kind=\"{}\"><td class=\"small\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num small\">{}</td></tr>",
            esc(&e.kind),
            since(now, e.at),
            esc(&system_name(e.system.as_deref())),
            esc(&e.summary),
            outcome_pill(e.outcome.as_deref()),
            e.latency_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default()
        );
    }
    h.push_str("</table>");
    h
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

fn select(name: &str, label: &str, current: Option<&str>, options: &[(&str, &str)]) -> String {
    let mut h = format!("<label>{}<select name=\"{}\">", esc(label), esc(name));
    for (value, text) in options {
        let selected = if current == Some(*value) || (current.is_none() && value.is_empty()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            h,
            "<option value=\"{}\"{selected}>{}</option>",
            esc(value),
            esc(text)
        );
    }
    h.push_str("</select></label>");
    h
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
    let mut h = String::from(
        "<h1>Failed work</h1><p class=\"lead\">Steps the hub gave up on, and messages it refused. Send them again (corrected if needed) or close them with a reason. Everything you do here is recorded.</p>",
    );
    let flow_options: Vec<(String, String)> = std::iter::once((String::new(), "Any".to_owned()))
        .chain(flows.iter().map(|f| (f.name.clone(), flow_name(&f.name))))
        .collect();
    let flow_refs: Vec<(&str, &str)> = flow_options
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    h.push_str("<form class=\"filters\" method=\"get\" action=\"/dashboard/exceptions\">");
    h.push_str(&select(
        "status",
        "State",
        filter.status.as_deref(),
        &[
            ("open", "Waiting for someone"),
            ("auto_resolved", "Fixed by a later attempt"),
            ("resolved", "Closed by someone"),
            ("retried", "Sent again"),
            ("", "Any"),
        ],
    ));
    h.push_str(&select(
        "flow",
        "Process",
        filter.flow.as_deref(),
        &flow_refs,
    ));
    h.push_str(&select(
        "lane",
        "System",
        filter.lane.as_deref(),
        &[
            ("", "Any"),
            ("erp", "ERP"),
            ("salesforce", "Salesforce"),
            ("hub", "Hub"),
        ],
    ));
    h.push_str(&select(
        "class",
        "Kind of failure",
        filter.class.as_deref(),
        &[
            ("", "Any"),
            ("permanent", "Refused by the system"),
            ("unknown", "Unclear answer"),
            ("transient", "System unavailable"),
            ("throttled", "Too many calls"),
            ("conflict", "Record busy"),
        ],
    ));
    let _ = write!(
        h,
        "<label>Order<input name=\"order\" value=\"{}\" size=\"16\"></label><button>Show</button></form>",
        esc(filter.order.as_deref().unwrap_or(""))
    );
    h.push_str("<div id=\"result\" hidden></div>");
    if can_write && filter.status.as_deref().is_none_or(|s| s == "open") {
        let replay_filter = Filter {
            status: None,
            limit: None,
            ..filter.clone()
        };
        let json = serde_json::to_string(&replay_filter).unwrap_or_else(|_| "{}".to_owned());
        let _ = write!(
            h,
            "<p><button data-action=\"preview\" data-filter=\"{}\">Replay everything shown…</button> <span class=\"small muted\">You will see the list first; items go through the normal queues, each order keeping its step order.</span></p><div id=\"replay-box\"></div>",
            esc(&json)
        );
    }
    if items.is_empty() {
        h.push_str("<div class=\"empty\">No failed work matches.</div>");
    } else {
        h.push_str("<table id=\"dead-letters\"><tr><th class=\"num\">#</th><th>Failed</th><th>Order</th><th>Step</th><th>Error</th><th class=\"num\">Attempts</th><th>State</th><th></th></tr>");
        for d in items {
            let actions = if can_write && d.status == "open" {
                format!(
                    "<button class=\"primary\" data-action=\"retry\" data-id=\"{id}\">Retry</button> <a href=\"/dashboard/exceptions/{id}\">Edit…</a> <button data-action=\"resolve\" data-id=\"{id}\">Close…</button>",
                    id = d.id
                )
            } else {
                format!("<a href=\"/dashboard/exceptions/{}\">Details</a>", d.id)
            };
            let _ = write!(
                h,
                "<tr data-dead-letter=\"{id}\" data-order=\"{order}\"><td class=\"num\">{id}</td><td class=\"small\">{when}</td><td>{order_link}</td><td>{step}<div class=\"small muted\">{flow}</div></td><td class=\"small\">{error}</td><td class=\"num\">{attempts}</td><td>{state}{resolution}</td><td>{actions}</td></tr>",
                id = d.id,
                order = esc(d.order_id.as_deref().unwrap_or("")),
                when = since(now, d.created_at),
                order_link = d
                    .order_id
                    .as_deref()
                    .map(order_link)
                    .unwrap_or_else(|| "—".to_owned()),
                step = esc(&d.step),
                flow = esc(&d.flow.as_deref().map(flow_name).unwrap_or_default()),
                error = esc(&d.error),
                attempts = d.attempts,
                state = outcome_pill(Some(&d.status)),
                resolution = d
                    .resolution
                    .as_deref()
                    .map(|r| format!("<div class=\"small muted\">{}</div>", esc(r)))
                    .unwrap_or_default(),
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>Refused messages</h2>");
    if refused.is_empty() {
        h.push_str("<div class=\"empty\">No incoming message was refused.</div>");
    } else {
        h.push_str("<table><tr><th>Received</th><th>From</th><th>Kind</th><th>Why</th><th>Message (secrets hidden)</th></tr>");
        for r in refused.iter().take(100) {
            let _ = write!(
                h,
                "<tr><td class=\"small\">{}</td><td>{}</td><td>{}</td><td class=\"small\">{}</td><td><pre>{}</pre></td></tr>",
                since(now, r.received_at),
                esc(&system_name(Some(&r.source))),
                esc(&r.kind),
                esc(r.error.as_deref().unwrap_or(&r.status)),
                esc(&r.raw.chars().take(2_000).collect::<String>())
            );
        }
        h.push_str("</table>");
    }
    h
}

/// One dead letter, with its payload for editing.
pub fn exception_detail(d: &ExceptionView, now: OffsetDateTime, can_write: bool) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<h1>Failed step #{id}</h1><p class=\"lead\">{step} for {order} failed {when}: {error}</p>\
         <table><tr><th>State</th><td>{state}{resolution}</td></tr><tr><th>Process</th><td>{flow}</td></tr><tr><th>System</th><td>{lane}</td></tr>\
         <tr><th>Kind of failure</th><td>{class} — {reason}</td></tr><tr><th>Attempts</th><td>{attempts}</td></tr>\
         <tr><th>Holds back later steps</th><td>{blocking}</td></tr></table><div id=\"result\" hidden></div>",
        id = d.id,
        step = esc(&d.step),
        order = d
            .order_id
            .as_deref()
            .map(order_link)
            .unwrap_or_else(|| "no order".to_owned()),
        when = since(now, d.created_at),
        error = esc(&d.error),
        state = outcome_pill(Some(&d.status)),
        resolution = d
            .resolution
            .as_deref()
            .map(|r| format!(" <span class=\"small muted\">{}</span>", esc(r)))
            .unwrap_or_default(),
        flow = esc(&d.flow.as_deref().map(flow_name).unwrap_or_default()),
        lane = esc(&system_name(Some(&d.lane))),
        class = esc(&d.class),
        reason = esc(&d.reason),
        attempts = d.attempts,
        blocking = if d.blocking {
            "yes: this order waits until it is sent again or closed"
        } else {
            "no"
        },
    );
    let payload = serde_json::to_string_pretty(&d.payload).unwrap_or_default();
    if can_write && d.status == "open" {
        let _ = write!(
            h,
            "<h2>What will be sent</h2><p class=\"small muted\">Correct it if needed; the change is checked against what this step accepts before it is sent. Hidden secrets ([redacted]) must be left out or replaced.</p>\
             <textarea id=\"payload-{id}\" spellcheck=\"false\">{}</textarea>\
             <p><button class=\"primary\" data-action=\"edit-retry\" data-id=\"{id}\">Send corrected version</button> \
             <button data-action=\"retry\" data-id=\"{id}\">Send again unchanged</button> \
             <button class=\"danger\" data-action=\"resolve\" data-id=\"{id}\">Close with a reason…</button></p>",
            esc(&payload),
            id = d.id
        );
    } else {
        let _ = write!(h, "<h2>Payload</h2><pre>{}</pre>", esc(&payload));
    }
    h
}

/// A replay report.
pub fn replay_report(r: &ReplayReport, now: OffsetDateTime) -> String {
    let mut h = format!(
        "<h1>Replay {}</h1><p class=\"lead\">Started {}. {} succeeded, {} still waiting, {} failed again.</p>",
        esc(&r.id),
        since(now, r.started_at),
        r.succeeded,
        r.waiting,
        r.failed_again
    );
    h.push_str("<table><tr><th>Failed step</th><th>Order</th><th>Step</th><th>Outcome</th><th>Details</th></tr>");
    for i in &r.items {
        let _ = write!(
            h,
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"small\">{}</td></tr>",
            i.item.dead_letter,
            i.item
                .order_id
                .as_deref()
                .map(order_link)
                .unwrap_or_default(),
            esc(&crate::ops::health::step_words(&i.item.kind)),
            match i.outcome.as_str() {
                "succeeded" => pill("ok", "succeeded"),
                "waiting" => pill("info", "waiting"),
                "failed_again" => pill("bad", "failed again"),
                _ => pill("warning", "not sent"),
            },
            esc(i.error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>");
    h
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
    let mut h = String::from(
        "<h1>Connected systems</h1><p class=\"lead\">Each system the hub talks to has its own queue, so a slow system never slows the others.</p>\
         <table><tr><th>System</th><th>Connection</th><th class=\"num\">Waiting</th><th class=\"num\">Ready now</th><th class=\"num\">In progress</th><th class=\"num\">Held back by a failure</th><th>Oldest waiting</th></tr>",
    );
    for (name, breaker, paused, depth) in lanes {
        let connection = match (breaker, paused) {
            (_, true) => pill("warning", "Slowed down (asked to wait)"),
            (crossdock_engine::BreakerState::Closed, _) => pill("ok", "Working"),
            (crossdock_engine::BreakerState::HalfOpen, _) => pill("warning", "Testing recovery"),
            (crossdock_engine::BreakerState::Open, _) => pill("failing", "Failing — calls paused"),
        };
        let label = match name.as_str() {
            "erp" => format!("ERP ({})", erp_name),
            "salesforce" => "Salesforce".to_owned(),
            "hub" => "Hub (internal)".to_owned(),
            other => other.to_owned(),
        };
        let d = depth.clone().unwrap_or(LaneDepth {
            lane: name.clone(),
            pending: 0,
            due: 0,
            leased: 0,
            blocked: 0,
            oldest_pending: None,
        });
        let _ = write!(
            h,
            "<tr data-lane=\"{}\"><td><b>{}</b></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(name),
            esc(&label),
            connection,
            d.pending,
            d.due,
            d.leased,
            d.blocked,
            d.oldest_pending
                .map(|at| esc(&ago((now - at).whole_seconds())))
                .unwrap_or_else(|| "—".to_owned())
        );
    }
    h.push_str("</table><h2>Salesforce API limit</h2>");
    match usage {
        Some(u) if u.limit > 0 => {
            let pct = (u.used.min(u.limit) * 100) / u.limit;
            let _ = write!(
                h,
                "<div class=\"card\"><div>{} of {} calls used in the last 24 hours ({} left)</div><progress class=\"bar\" max=\"100\" value=\"{pct}\">{pct}%</progress></div>",
                u.used,
                u.limit,
                u.remaining()
            );
        }
        _ => {
            h.push_str("<div class=\"empty\">Salesforce has not reported its API usage yet.</div>")
        }
    }
    h
}

/// ROI evidence.
pub fn roi(
    r: &Roi,
    recent: &[(OffsetDateTime, String, String, String)],
    now: OffsetDateTime,
) -> String {
    let mut h = String::from(
        "<h1>Results</h1><p class=\"lead\">How long orders take, how often things go wrong, and how often they fix themselves.</p>",
    );
    let auto_pct = (r.auto_resolved * 100)
        .checked_div(r.exceptions_raised)
        .map_or_else(|| "—".to_owned(), |p| format!("{p}%"));
    let _ = write!(
        h,
        "<div class=\"tiles\"><div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">failures set aside</div></div>\
         <div class=\"tile ok\"><div class=\"n\">{} <small>({auto_pct})</small></div><div class=\"l\">fixed by a later attempt, nobody needed</div></div>\
         <div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">manual interventions</div></div>\
         <div class=\"tile\"><div class=\"n\">{}</div><div class=\"l\">stock accuracy in Salesforce ({} of {} levels current)</div></div></div>",
        r.exceptions_raised,
        r.auto_resolved,
        r.interventions_total,
        r.inventory_accuracy_pct
            .map_or_else(|| "—".to_owned(), |p| format!("{p}%")),
        r.stock_levels - r.stock_levels_drifted.min(r.stock_levels),
        r.stock_levels,
    );
    h.push_str("<h2>Order cycle times</h2><table><tr><th>Stage</th><th class=\"num\">Orders</th><th class=\"num\">Typical (median)</th><th class=\"num\">Slow (95%)</th></tr>");
    for c in &r.cycle_times {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&c.label),
            c.samples,
            c.p50_secs
                .map_or_else(|| "—".to_owned(), |s| duration(i64::from(s))),
            c.p95_secs
                .map_or_else(|| "—".to_owned(), |s| duration(i64::from(s)))
        );
    }
    let _ = write!(
        h,
        "</table><h2>Failures</h2><table><tr><th>Set aside</th><th>Fixed by a later attempt</th><th>Handled by someone</th><th>Still open</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        r.exceptions_raised, r.auto_resolved, r.handled_by_people, r.open
    );
    h.push_str("<h2>Latest manual interventions</h2>");
    if recent.is_empty() {
        h.push_str("<div class=\"empty\">Nobody had to step in.</div>");
    } else {
        h.push_str("<table><tr><th>When</th><th>Who</th><th>What</th><th>On</th></tr>");
        for (at, actor, action, target) in recent {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                since(now, *at),
                esc(actor),
                esc(action),
                esc(target)
            );
        }
        h.push_str("</table>");
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

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
