//! `crossdock demo`: a retail day, end to end, in one process. The ERP simulator (or a real
//! Tryton), the Salesforce simulator, the store and the hub (API and dashboard) start; the
//! ERP's customers and products are mirrored into Salesforce; orders arrive in Salesforce on a
//! plan — B2B orders at negotiated prices, a promotion spike at ten times the base rate,
//! scarce items that backorder, a cancellation, returns, an ERP outage in the middle — and the
//! hub carries each through booking, fulfilment, invoicing, payment and returns. At the end a
//! summary and a reconciliation of Salesforce against the ERP.

mod driver;
mod report;
mod salesforce_user;
mod scenario;
mod tryton;
mod warehouse;
mod world;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossdock_domain::order::CANCELLATION_REFUSED;
use crossdock_domain::summary::OrderSummary;
use crossdock_store::OrderQuery;

use self::driver::Driver;
use self::report::Report;
use self::salesforce_user::SalesforceUser;
use self::scenario::{Plan, Twist};
use self::world::World;
use crate::cli::DemoArgs;
use crate::reconcile::{SalesforceView, compare};

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let (dir, _temp) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = crossdock_dir()?;
            (temp.clone(), Some(TempDirGuard(temp)))
        }
    };
    world::create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let world = World::start(&dir, args.seed, &args.erp, args.port).await?;
    println!("crossdock demo — data in {}", dir.display());
    println!("  hub and dashboard  {}", world.hub_url);
    println!(
        "  Salesforce         {} (Pub/Sub {})",
        world.salesforce.base_url(),
        world.salesforce.grpc_endpoint()
    );
    if let Some(erp) = &world.erp_sim {
        println!("  ERP simulator      {}", erp.base_url());
    }
    // Ctrl-C (or SIGTERM) stops everything gracefully at any moment: the simulators save their
    // state, and the same command with the same --data-dir resumes the day.
    let interrupted = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crate::commands::serve::stop_on_signal(interrupted.clone()));
    let outcome = day(&world, &args, &interrupted).await;
    let (report, tryton_section) = match outcome {
        Ok(report) => report,
        Err(error) => {
            world.stop().await.ok();
            return Err(error);
        }
    };
    print!("{}", report.render());
    print!("{tryton_section}");
    if !args.exit {
        println!(
            "\nEverything stays up. Dashboard: {}  — Ctrl-C to stop.",
            world.hub_url
        );
        interrupted.cancelled().await;
    }
    world.stop().await?;
    if !report.ok() {
        bail!("the demo's checks failed (see the summary above)");
    }
    Ok(())
}

struct TempDirGuard(std::path::PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn crossdock_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("crossdock-demo-{}", std::process::id()));
    world::create_private_dir(&dir)?;
    Ok(dir)
}

/// Plays the day; returns the report and, against Tryton, the summary's Tryton section.
async fn day(
    world: &World,
    args: &DemoArgs,
    interrupted: &tokio_util::sync::CancellationToken,
) -> Result<(Report, String)> {
    let token = world.salesforce.issue_token();
    let user = Arc::new(SalesforceUser::new(
        world.salesforce.base_url(),
        &token,
        world.salesforce.ca_pem_path(),
    )?);
    let (customers, items) = master_data(world).await?;
    let scarce: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.3 > 0 && i.3 < 30)
        .map(|(n, _)| n)
        .take(3)
        .collect();
    let (customers, items, pricebook) = driver::mirror(&user, customers, items).await?;
    let day_length = Duration::from_secs(u64::from(args.orders / 8).clamp(30, 600));
    let plan = Plan::new(
        args.seed,
        args.orders,
        customers.len(),
        items.len(),
        &scarce,
        day_length,
    );
    let on_tryton = matches!(world.erp_section, crate::config::ErpSection::Tryton(_));
    let plan = if on_tryton {
        tryton::reshape(plan)
    } else {
        plan
    };
    let driver = Arc::new(Driver {
        user: Arc::clone(&user),
        erp: Arc::clone(&world.erp),
        store: world.store.clone(),
        customers,
        items,
        pricebook,
        prices: std::sync::Mutex::new(BTreeMap::new()),
    });
    driver.recover_placed(&plan).await?;
    driver.look_up_prices(&plan).await?;
    let mut resumed = 0;
    for order in &plan.orders {
        if driver.placed(order.n).await.is_some() {
            resumed += 1;
        }
    }
    if resumed > 0 {
        println!(
            "resuming: {resumed} of {} orders were placed by an earlier run",
            args.orders
        );
    }
    let mut peak = if on_tryton {
        println!(
            "playing a day of {} orders over {}s against Tryton: {} of them in a burst in the first {}s, warehouse staff at work in Tryton",
            args.orders,
            day_length.as_secs(),
            plan.orders.iter().filter(|o| o.in_spike).count(),
            plan.spike.1.as_secs()
        );
        Some(tryton::Peak::start(&world.hub_url).await?)
    } else {
        println!(
            "playing a day of {} orders over {}s: promotion spike {}–{}s, ERP outage {}–{}s",
            args.orders,
            day_length.as_secs(),
            plan.spike.0.as_secs(),
            plan.spike.1.as_secs(),
            plan.outage.0.as_secs(),
            plan.outage.1.as_secs()
        );
        None
    };
    let progress = crate::progress::bar(u64::from(args.orders), "orders settled");
    let placing = {
        let driver = Arc::clone(&driver);
        let plan = plan.clone();
        let admin = match &world.erp_section {
            crate::config::ErpSection::Sim(config) => {
                Some(crossdock_erp::sim::Admin::new(config).map_err(|e| anyhow::anyhow!("{e}"))?)
            }
            crate::config::ErpSection::Tryton(_) | crate::config::ErpSection::Rest(_) => None,
        };
        tokio::spawn(async move { driver.play(&plan, admin, || {}).await })
    };
    let started = Instant::now();
    let limit = day_length + Duration::from_secs(600);
    let returns: Vec<_> = plan
        .orders
        .iter()
        .filter(|o| o.twist == Twist::Return)
        .cloned()
        .collect();
    let mut cases_opened = 0usize;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = interrupted.cancelled() => {
                placing.abort();
                progress.finish_and_clear();
                match &args.data_dir {
                    Some(dir) => bail!(
                        "stopped before the end of the day; the same command (with --data-dir {}) resumes it",
                        dir.display()
                    ),
                    None => bail!("stopped before the end of the day (nothing kept without --data-dir)"),
                }
            }
        }
        if let Some(peak) = &mut peak {
            peak.observe(&user).await;
        }
        for order in &returns {
            if let Some(id) = driver.placed(order.n).await
                && driver.open_return(order, &id).await?
            {
                cases_opened += 1;
            }
        }
        let rows = demo_rows(world).await?;
        // Settled: final in the hub, and Salesforce confirmed to show that final state.
        let settled = rows
            .iter()
            .filter(|r| {
                report::is_settled(&r.status)
                    && r.sf_synced_status.as_deref() == Some(r.status.as_str())
            })
            .count();
        let returns_closed = returns_closed(&rows);
        progress.set_position(settled as u64);
        let placed_all = placing.is_finished();
        if placed_all && settled >= args.orders as usize && returns_closed >= returns.len() {
            break;
        }
        if started.elapsed() > limit {
            progress.finish_and_clear();
            eprintln!(
                "stopped waiting after {limit:?}: {settled} of {} orders settled",
                args.orders
            );
            break;
        }
    }
    progress.finish_and_clear();
    match placing.await {
        Ok(result) => result?,
        Err(error) => bail!("the order driver stopped: {error}"),
    }
    let _ = cases_opened;
    let mut report = measure(world, &plan, &user).await?;
    let section = match peak {
        Some(peak) => {
            let rows = demo_rows(world).await?;
            peak.finish(&rows, &plan, &user, &mut report).await?
        }
        None => String::new(),
    };
    Ok((report, section))
}

/// Customers (account, name, tier) and items (sku, name, list price, available).
async fn master_data(
    world: &World,
) -> Result<(
    Vec<(String, String, String)>,
    Vec<(String, String, rust_decimal::Decimal, i64)>,
)> {
    match &world.erp_section {
        crate::config::ErpSection::Sim(config) => {
            let admin =
                crossdock_erp::sim::Admin::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
            // The ERP may be in its outage window when a day resumes: wait it out, visibly.
            let seed = driver::with_retries(
                "reading the ERP's master data",
                driver::START_PATIENCE,
                || admin.seed(),
            )
            .await?;
            Ok((
                seed.customers
                    .into_iter()
                    .map(|c| (c.account, c.name, c.tier.as_str().to_owned()))
                    .collect(),
                seed.items
                    .into_iter()
                    .map(|i| {
                        let available = i.available.values().sum();
                        (i.sku, i.name, i.list_price, available)
                    })
                    .collect(),
            ))
        }
        crate::config::ErpSection::Rest(_) => {
            bail!("the demo plays its day against the ERP simulator or Tryton")
        }
        crate::config::ErpSection::Tryton(_) => tryton::master_data(&world.erp, &world.store).await,
    }
}

/// The demo's orders (hub ids of orders captured from Salesforce start with `SF-`).
async fn demo_rows(world: &World) -> Result<Vec<crossdock_store::OrderRow>> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = world
            .store
            .orders(OrderQuery {
                after: after.clone(),
                limit: Some(1_000),
                ..OrderQuery::default()
            })
            .await?;
        let Some(last) = page.last().map(|r| r.order_id.clone()) else {
            break;
        };
        rows.extend(page);
        after = Some(last);
    }
    Ok(rows)
}

fn returns_closed(rows: &[crossdock_store::OrderRow]) -> usize {
    rows.iter()
        .filter_map(|r| r.body.parse::<OrderSummary>().ok())
        .flat_map(|s| s.returns)
        .filter(|r| r.status == crossdock_domain::order::ReturnStatus::Closed)
        .count()
}

async fn measure(world: &World, plan: &Plan, user: &SalesforceUser) -> Result<Report> {
    let rows = demo_rows(world).await?;
    let mut report = Report::default();
    for row in &rows {
        *report.by_status.entry(row.status.clone()).or_default() += 1;
    }
    report.cycle_times = report::cycle_times(&rows);
    report.dead_letters = report::dead_letters(&world.store).await?;
    for ((_, class), n) in world.engine.metrics().snapshot().retries {
        *report.retries.entry(class).or_default() += n;
    }
    let (used, _) = world.salesforce.state().api_usage();
    let driver_calls = user.calls.load(std::sync::atomic::Ordering::Relaxed);
    report.salesforce_calls = used.saturating_sub(driver_calls);
    report.salesforce_calls_per_order = report.salesforce_calls as f64 / rows.len().max(1) as f64;
    report.salesforce_calls_by_kind = world.salesforce.state().calls_by_kind();

    // Planned final states: the hub id of an order is `SF-<OrderNumber>`; the plan knows
    // orders by the description the driver gave them.
    let sf_orders = user
        .query("SELECT Id, OrderNumber, Description, Hub_Status__c, ERP_Order_Number__c FROM Order")
        .await?;
    let by_hub: BTreeMap<String, &serde_json::Value> = sf_orders
        .iter()
        .filter_map(|o| Some((format!("SF-{}", o["OrderNumber"].as_str()?), o)))
        .collect();
    let sf_items = user
        .query("SELECT OrderId, Quantity_Shipped__c, Product2.StockKeepingUnit FROM OrderItem")
        .await?;
    let mut shipped_in_sf: BTreeMap<(String, String), f64> = BTreeMap::new();
    for item in &sf_items {
        let order = item["OrderId"].as_str().unwrap_or_default().to_owned();
        let sku = item["Product2"]["StockKeepingUnit"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *shipped_in_sf.entry((order, sku)).or_default() +=
            item["Quantity_Shipped__c"].as_f64().unwrap_or(0.0);
    }
    let (outage_from, outage_to) = outage_window(world, plan).await;
    for row in &rows {
        let Some(sf) = by_hub.get(&row.order_id) else {
            continue;
        };
        let n: Option<u32> = sf["Description"]
            .as_str()
            .and_then(|d| d.strip_prefix("demo order "))
            .and_then(|n| n.parse().ok());
        if let Some(n) = n {
            let expected = report::expected(plan, n);
            // A cancel that came after the shipment: refused on arrival (no reason), or
            // refused by the ERP (the reason says so); either way the order closes.
            let reason = row.body.value()["reason"].as_str().map(str::to_owned);
            let cancel_too_late = expected == "Cancelled"
                && row.status == "Closed"
                && reason.is_none_or(|r| r.starts_with(CANCELLATION_REFUSED));
            if row.status != expected && !cancel_too_late {
                report.unexpected.push(format!(
                    "{} (demo order {n}) is {}, planned {expected}",
                    row.order_id, row.status
                ));
            }
        }
        report.reconciled += 1;
        let summary: OrderSummary = row.body.parse()?;
        let sf_id = sf["Id"].as_str().unwrap_or_default();
        let view = SalesforceView {
            status: sf["Hub_Status__c"].as_str().map(str::to_owned),
            erp_number: sf["ERP_Order_Number__c"].as_str().map(str::to_owned),
            shipped: shipped_in_sf
                .range((sf_id.to_owned(), String::new())..)
                .take_while(|((order, _), _)| order == sf_id)
                .map(|((_, sku), n)| (sku.clone(), *n))
                .collect(),
        };
        let erp = match &row.erp_ref {
            Some(erp_ref) => Some(world.erp.order(erp_ref).await.map_err(|e| e.to_string())),
            None => None,
        };
        let erp = erp
            .as_ref()
            .map(|answer| answer.as_ref().map_err(Clone::clone));
        report.disagreements.extend(
            compare(&row.status, &summary, Some(&view), erp)
                .into_iter()
                .map(|d| format!("{}: {}", d.order_id, d.what)),
        );
        if let (Some(captured), Some(from), Some(to)) = (row.captured_at, outage_from, outage_to)
            && captured >= from
            && captured <= to
        {
            report.outage.0 += 1;
            if row.booked_at.is_some_and(|b| b >= to) {
                report.outage.1 += 1;
            }
        }
    }
    report.returns = (
        returns_closed(&rows),
        plan.orders
            .iter()
            .filter(|o| o.twist == Twist::Return)
            .count(),
    );
    // Duplicates from the data itself (the ERP's sales orders, the hub's bindings), never from
    // counters a restart resets.
    if let Some(erp) = &world.erp_sim {
        report.duplicate_bookings = erp.inspect(|state| {
            report::duplicate_bookings(
                state
                    .sales_orders()
                    .map(|o| (o.number.as_str(), o.external_ref.as_str())),
            )
        });
    }
    report.bound_twice = report::references_bound_twice(&rows)?;
    Ok(report)
}

/// When the ERP outage ran (from the simulator's record of it).
async fn outage_window(
    world: &World,
    _plan: &Plan,
) -> (Option<time::OffsetDateTime>, Option<time::OffsetDateTime>) {
    let Some(erp) = &world.erp_sim else {
        return (None, None);
    };
    let stats = erp.stats();
    let outage = stats["outages"]
        .as_array()
        .and_then(|o| o.first())
        .cloned()
        .unwrap_or_default();
    let at = |key: &str| {
        outage[key].as_i64().and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        })
    };
    (at("start_ms"), at("end_ms"))
}
