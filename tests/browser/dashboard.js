// Drives the operations dashboard in headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core. Started by crates/api/tests/dashboard/main.rs, which sets up the hub and
// the scenario and passes everything through the environment:
//
//   PLAYWRIGHT_CORE  path of the playwright-core package (installed by scripts/setup/browser.sh)
//   BASE_URL         the hub, e.g. http://127.0.0.1:38211
//   API_KEY          a key with ops:read and ops:write
//   PHASE            "health" (ranking and trace), "retry" (fix a failed booking) or "xss"
//                    (hostile sign-in links run no script; the Content-Security-Policy holds)
//   EXPECTED         JSON array of the stuck orders, most valuable first (phase health)
//   DEAD_LETTER      id of the failed booking, DEAD_ORDER its order (phase retry)
//   ARTIFACTS        folder for screenshots
//
// Every phase also fails when the browser reports that a dashboard page broke its
// Content-Security-Policy (the pages need no inline script or style).
//
// Exits 0 when every check holds; otherwise prints why and exits 1.
'use strict';

const path = require('path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const base = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS;
const violations = [];
const INJECTED = 'window.pwned = 1';
const INJECTED_HASH = 'sha256-' + require('crypto').createHash('sha256').update(INJECTED).digest('base64');

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function signIn(page) {
  await page.goto(base + '/dashboard');
  check(page.url().includes('/dashboard/login'), 'an unsigned visitor is sent to the sign-in page, got ' + page.url());
  await page.fill('#key', process.env.API_KEY);
  await Promise.all([page.waitForURL(base + '/dashboard'), page.click('button')]);
}

async function health(page) {
  const expected = JSON.parse(process.env.EXPECTED);
  await page.waitForSelector('#exceptions tr[data-exception]');
  const rows = await page.$$eval('#exceptions tr[data-exception]', (trs) =>
    trs.map((tr) => ({ order: tr.dataset.order, kind: tr.dataset.exception, rank: Number(tr.dataset.rank) })));
  const stuck = rows.filter((r) => expected.includes(r.order)).map((r) => r.order);
  check(JSON.stringify(stuck) === JSON.stringify(expected),
    'the stuck orders are ranked by value: expected ' + JSON.stringify(expected) + ', the page shows ' + JSON.stringify(stuck));
  check(rows.filter((r) => expected.includes(r.order)).every((r) => r.kind === 'awaiting_booking'),
    'they are listed as awaiting booking: ' + JSON.stringify(rows));
  const heading = await page.textContent('h1');
  check(heading.includes('Business health'), 'the overview has its heading, got ' + heading);
  const money = await page.textContent('#exceptions');
  check(/USD [0-9,]+\.[0-9]{2}/.test(money), 'values are shown as money');
  check(/late/.test(money), 'lateness is shown in words');
  await page.screenshot({ path: path.join(artifacts, 'dashboard-health.png'), fullPage: true });

  // Clicking the most valuable stuck order opens its trace.
  const top = expected[0];
  await Promise.all([
    page.waitForURL(base + '/dashboard/orders/' + encodeURIComponent(top)),
    page.click(`#exceptions tr[data-order="${top}"] a[href^="/dashboard/orders/"]`),
  ]);
  await page.waitForSelector('#timeline tr[data-kind]');
  const kinds = await page.$$eval('#timeline tr[data-kind]', (trs) => trs.map((tr) => tr.dataset.kind));
  check(kinds.includes('inbound') && kinds.includes('event') && kinds.includes('attempt'),
    'the trace shows the inbound message, its events and the attempts: ' + JSON.stringify(kinds));
  const trace = await page.textContent('main');
  check(trace.includes('failed, will retry'), 'failed attempts during the outage are shown in plain words');
  await page.screenshot({ path: path.join(artifacts, 'dashboard-trace.png'), fullPage: true });

  for (const [href, heading] of [['/dashboard/flows', 'Flows'], ['/dashboard/systems', 'Connected systems'], ['/dashboard/roi', 'Results'], ['/dashboard/exceptions', 'Failed work']]) {
    await page.goto(base + href);
    const h1 = await page.textContent('h1');
    check(h1.includes(heading), href + ' shows ' + heading + ', got ' + h1);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-' + href.split('/').pop() + '.png'), fullPage: true });
  }
  const systems = await (await page.goto(base + '/dashboard/systems?partial=1')).text();
  check(systems.includes('data-lane="erp"'), 'the systems page lists the ERP connection');
}

// Hostile sign-in links: a `next` that closes a script block, one that breaks out of an
// attribute, and one that leads off the site. No script of theirs runs, the page keeps its
// Content-Security-Policy, and signing in still leads inside the dashboard.
async function xss(page) {
  const hostile = [
    '/dashboard</script><script>window.pwned=1</script>',
    '/dashboard/x"><script>window.pwned=1</script><img src=x onerror="window.pwned=1">',
    "/dashboard/x'><svg onload=window.pwned=1>",
    'javascript:window.pwned=1',
    '//evil.example/dashboard',
  ];
  for (const next of hostile) {
    page.removeAllListeners('dialog');
    let dialog = false;
    page.on('dialog', (d) => { dialog = true; d.dismiss().catch(() => {}); });
    const response = await page.goto(base + '/dashboard/login?next=' + encodeURIComponent(next));
    const csp = response.headers()['content-security-policy'] || '';
    check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline') && csp.includes("frame-ancestors 'none'"),
      'the sign-in page has a Content-Security-Policy without inline script, got: ' + csp);
    check(response.headers()['x-content-type-options'] === 'nosniff', 'nosniff is set');
    await page.waitForSelector('#key');
    check(await page.evaluate(() => window.pwned === undefined), 'no script from next ran: ' + next);
    const target = await page.getAttribute('#f', 'data-next');
    check(target.startsWith('/dashboard'), 'next is a dashboard path: ' + target);
    check((await page.$$('img, svg, script:not([src])')).length === 0, 'no element of next was made: ' + next);
    await page.fill('#key', process.env.API_KEY);
    await Promise.all([page.waitForURL((u) => u.origin === new URL(base).origin && u.pathname.startsWith('/dashboard') && !u.pathname.startsWith('/dashboard/login')), page.click('button')]);
    check(await page.evaluate(() => window.pwned === undefined), 'no script ran after signing in: ' + next);
    check(!dialog, 'no dialog opened: ' + next);
    check(new URL(page.url()).origin === new URL(base).origin, 'signing in stayed on the site: ' + page.url());
  }
  // The policy is enforced: a script injected into a dashboard page the way an attacker
  // would (inline) is refused by the browser.
  await page.goto(base + '/dashboard/flows');
  const blocked = await page.evaluate((injected) => new Promise((resolve) => {
    document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true });
    const s = document.createElement('script');
    s.textContent = injected;
    document.body.appendChild(s);
    setTimeout(() => resolve(window.pwned === undefined ? 'not run' : 'ran'), 2000);
  }), INJECTED);
  check(blocked.startsWith('script-src'), 'an inline script is refused by the policy, got: ' + blocked);
  check(await page.evaluate(() => window.pwned === undefined), 'the injected script did not run');
  await page.screenshot({ path: path.join(artifacts, 'dashboard-xss.png'), fullPage: true });
}

async function retry(page) {
  const id = process.env.DEAD_LETTER;
  const order = process.env.DEAD_ORDER;
  await page.goto(base + '/dashboard/exceptions');
  const row = `#dead-letters tr[data-dead-letter="${id}"]`;
  await page.waitForSelector(row);
  check((await page.textContent(row)).includes(order), 'the failed booking names its order');
  await page.click(`${row} button[data-action="retry"]`);
  // Read the message in the same check that sees it: a live refresh may redraw the page
  // right after.
  const shown = await page.waitForFunction(() => {
    const el = document.getElementById('result');
    return el && !el.hidden && el.textContent.length > 0 ? el.textContent : false;
  });
  const message = await shown.jsonValue();
  check(message.includes('Sent again'), 'the retry is accepted, got: ' + message);
  await page.screenshot({ path: path.join(artifacts, 'dashboard-retried.png'), fullPage: true });

  // The order's trace shows it booked once the ERP answers.
  const deadline = Date.now() + 20000;
  for (;;) {
    await page.goto(base + '/dashboard/orders/' + encodeURIComponent(order));
    const text = await page.textContent('main');
    if (/Booked in the ERP as/.test(text) && text.includes('sent again by')) {
      break;
    }
    check(Date.now() < deadline, 'the retried booking did not succeed in time:\n' + text);
    await page.waitForTimeout(300);
  }
  await page.screenshot({ path: path.join(artifacts, 'dashboard-booked.png'), fullPage: true });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.on('console', (m) => {
    // The xss phase's own injected script is refused too: recognised by its hash.
    if (/Content Security Policy/i.test(m.text()) && !m.text().includes(INJECTED_HASH)) violations.push(m.text());
  });
  try {
    await signIn(page);
    if (process.env.PHASE === 'health') {
      await health(page);
    } else if (process.env.PHASE === 'xss') {
      await xss(page);
    } else {
      await retry(page);
    }
    check(violations.length === 0, 'the dashboard broke its own Content-Security-Policy:\n' + violations.join('\n'));
    console.log('browser checks passed: ' + process.env.PHASE);
  } catch (error) {
    await page.screenshot({ path: path.join(artifacts, 'failure-' + process.env.PHASE + '.png'), fullPage: true }).catch(() => {});
    console.error(error.stack || String(error));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
