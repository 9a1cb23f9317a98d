//! The page frame (navigation, styles, the live-update script), the sign-in page and small
//! HTML helpers. The frame and the sign-in page are `maud` templates: every value is escaped
//! where it is written. Styles and scripts are static files (no inline script or style, so the
//! Content-Security-Policy can forbid them).

use std::fmt::Write as _;

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Percent-encodes a path segment or query value.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The sections of the navigation: (path, label).
pub const NAV: [(&str, &str); 6] = [
    ("/dashboard", "Health"),
    ("/dashboard/flows", "Flows"),
    ("/dashboard/orders", "Find an order"),
    ("/dashboard/exceptions", "Failed work"),
    ("/dashboard/systems", "Connected systems"),
    ("/dashboard/roi", "Results"),
];

/// A status pill.
pub fn pill(kind: &str, text: &str) -> Markup {
    html! { span class={ "pill " (kind) } { (text) } }
}

/// Who is signed in, for the page header: `None` in open access (no sign-out button).
pub struct Who<'a> {
    /// The client name of the key.
    pub label: &'a str,
}

/// A whole page: `main` is the content of `<main>` (already rendered, escaped HTML).
pub fn frame(title: &str, active: &str, main: &str, who: Option<Who<'_>>, live_ms: u64) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · crossdock" }
                link rel="stylesheet" href="/dashboard/app.css";
            }
            body data-live-ms=(live_ms) {
                header.top {
                    div.brand { "crossdock " small { "operations" } }
                    nav {
                        @for (path, label) in NAV {
                            @if path == active {
                                a href=(path) aria-current="page" { (label) }
                            } @else {
                                a href=(path) { (label) }
                            }
                        }
                    }
                    div.who {
                        span #live .live title="Updates automatically" { "● live" }
                        @if let Some(who) = who {
                            " · " (who.label) " "
                            form.inline method="post" action="/dashboard/logout" {
                                button.signout { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (PreEscaped(main)) }
                script src="/dashboard/app.js" {}
            }
        }
    }
    .into_string()
}

/// The sign-in page. `next` (where to go after signing in, already checked to be a path
/// under `/dashboard`) travels in a `data-` attribute that the static sign-in script reads;
/// it is never written into a script.
pub fn signin(next: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · crossdock" }
                link rel="stylesheet" href="/dashboard/app.css";
            }
            body.signin {
                form #f data-next=(next) {
                    h2 { "crossdock operations" }
                    label {
                        "API key (needs the ops:read scope)"
                        input #key type="password" autocomplete="off" autofocus;
                    }
                    button.primary { "Sign in" }
                    p #err .bad {}
                }
                script src="/dashboard/signin.js" {}
            }
        }
    }
    .into_string()
}

/// The sign-in page's script: posts the key, then goes to the form's `data-next` when it
/// is a path of this site under `/dashboard`.
pub const SIGNIN_SCRIPT: &str = r#"
(function () {
  const form = document.getElementById('f');
  function target() {
    const next = form.dataset.next || '/dashboard';
    try {
      const url = new URL(next, location.origin);
      if (url.origin === location.origin && (url.pathname === '/dashboard' || url.pathname.startsWith('/dashboard/'))) {
        return url.pathname + url.search + url.hash;
      }
    } catch (e) { /* falls through */ }
    return '/dashboard';
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await fetch('/dashboard/login', { method: 'POST', headers: { 'content-type': 'application/json', 'x-crossdock-action': '1' }, body: JSON.stringify({ key: document.getElementById('key').value }) });
    if (r.ok) { location.href = target(); return; }
    const d = await r.json().catch(() => ({}));
    document.getElementById('err').textContent = d.detail || 'Sign-in failed';
  });
})();
"#;

/// The dashboard's styles (`/dashboard/app.css`).
pub const STYLE: &str = r#"
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2733; --muted:#5d6b7a; --line:#e3e7ec; --ok:#1f8a4c; --warn:#b86e00; --bad:#c0392b; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
header.top { display:flex; gap:24px; align-items:center; padding:10px 24px; background:#17202b; color:#fff; flex-wrap:wrap; }
.brand { font-weight:700; font-size:18px; } .brand small { font-weight:400; color:#9fb0c3; }
nav { display:flex; gap:4px; flex-wrap:wrap; flex:1; }
nav a { color:#cfd8e3; text-decoration:none; padding:6px 12px; border-radius:6px; }
nav a[aria-current=page], nav a:hover { background:#2b3a4c; color:#fff; }
.who { color:#9fb0c3; font-size:13px; } .live { color:#4ade80; } .live.off { color:#f87171; }
main { padding:20px 24px 48px; max-width:1400px; margin:0 auto; }
h1 { font-size:24px; margin:4px 0 4px; } h2 { font-size:18px; margin:28px 0 10px; }
p.lead { color:var(--muted); margin:0 0 16px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit,minmax(200px,1fr)); gap:12px; margin:16px 0; }
.tile { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.tile .n { font-size:26px; font-weight:700; } .tile .l { color:var(--muted); font-size:13px; }
.tile.bad .n { color:var(--bad); } .tile.ok .n { color:var(--ok); } .tile.warn .n { color:var(--warn); }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:hidden; }
th, td { text-align:left; padding:8px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f5; font-size:13px; color:var(--muted); font-weight:600; }
tr:last-child td { border-bottom:none; }
td.num, th.num { text-align:right; white-space:nowrap; }
.muted { color:var(--muted); } .small { font-size:13px; }
.pill { display:inline-block; padding:1px 9px; border-radius:999px; font-size:12px; font-weight:600; background:#e5e7eb; color:#374151; white-space:nowrap; }
.pill.ok { background:#dcfce7; color:#166534; } .pill.late, .pill.warning { background:#fef3c7; color:#92400e; }
.pill.failing, .pill.critical, .pill.bad { background:#fee2e2; color:#991b1b; } .pill.info { background:#dbeafe; color:#1e40af; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(230px,1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card h3 { margin:0 0 6px; font-size:15px; display:flex; justify-content:space-between; align-items:flex-start; gap:8px; }
.card h3 .pill { flex:none; }
a { color:var(--accent); }
button, .button { font:inherit; padding:5px 12px; border-radius:6px; border:1px solid #c7d0da; background:#fff; cursor:pointer; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
button.danger { color:var(--bad); }
button:disabled { opacity:.5; cursor:default; }
input, select, textarea { font:inherit; padding:5px 8px; border:1px solid #c7d0da; border-radius:6px; }
textarea { width:100%; min-height:180px; font-family: ui-monospace, monospace; font-size:13px; }
form.filters { display:flex; gap:8px; flex-wrap:wrap; align-items:end; margin:8px 0 12px; }
form.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); }
pre { background:#0f172a; color:#e2e8f0; padding:10px; border-radius:8px; overflow:auto; font-size:12px; max-height:320px; }
.msg { padding:10px 14px; border-radius:8px; margin:10px 0; } .msg.ok { background:#dcfce7; } .msg.bad { background:#fee2e2; }
.bar { height:10px; background:#e5e7eb; border-radius:5px; overflow:hidden; } .bar > span { display:block; height:100%; background:var(--accent); }
.empty { padding:18px; text-align:center; color:var(--muted); background:var(--card); border:1px dashed var(--line); border-radius:10px; }
form.inline { display:inline; } button.signout { padding:0 6px; }
progress.bar { display:block; width:100%; height:10px; border:0; border-radius:5px; overflow:hidden; background:#e5e7eb; accent-color:var(--accent); }
progress.bar::-webkit-progress-bar { background:#e5e7eb; } progress.bar::-webkit-progress-value { background:var(--accent); } progress.bar::-moz-progress-bar { background:var(--accent); }
body.signin { display:grid; place-items:center; height:100vh; }
body.signin form { background:#fff; padding:28px; border-radius:12px; border:1px solid var(--line); width:380px; }
body.signin input { width:100%; padding:8px; margin:8px 0 14px; }
body.signin button { padding:8px 16px; } .bad { color:var(--bad); }
"#;

/// The dashboard's script (`/dashboard/app.js`): live updates and actions.
pub const SCRIPT: &str = r#"
(function () {
  const main = document.getElementById('main');
  const dot = document.getElementById('live');
  let busy = false;
  function editing() {
    const a = document.activeElement;
    return busy || (a && (a.tagName === 'TEXTAREA' || a.tagName === 'INPUT' || a.tagName === 'SELECT')) || document.querySelector('[data-keep]');
  }
  async function refresh() {
    if (editing()) return;
    const u = new URL(location.href); u.searchParams.set('partial', '1');
    try {
      const r = await fetch(u, { headers: { 'x-crossdock-partial': '1' } });
      if (r.ok && !editing()) { main.innerHTML = await r.text(); }
    } catch (e) { /* the next tick tries again */ }
  }
  if (window.EventSource) {
    const es = new EventSource('/dashboard/live');
    let last = null;
    es.addEventListener('tick', (e) => { dot.classList.remove('off'); if (e.data !== last) { if (last !== null) refresh(); last = e.data; } });
    es.onerror = () => dot.classList.add('off');
  }
  async function act(url, body) {
    busy = true;
    try {
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-crossdock-action': '1' }, body: JSON.stringify(body || {}) });
      const text = await r.text();
      let data = {}; try { data = JSON.parse(text); } catch (e) { data = { detail: text }; }
      return { ok: r.ok, data };
    } finally { busy = false; }
  }
  function esc(v) { return String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]); }
  function show(el, ok, text) { if (!el) return; el.className = 'msg ' + (ok ? 'ok' : 'bad'); el.textContent = text; el.hidden = false; }
  function problem(d) { return (d.detail || d.title || 'failed') + (d.errors ? ': ' + d.errors.map(e => e.field + ' ' + e.message).join('; ') : ''); }
  document.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    ev.preventDefault();
    const id = b.dataset.id; const out = document.getElementById(b.dataset.out || 'result');
    if (b.dataset.action === 'retry') {
      b.disabled = true;
      const r = await act('/dashboard/actions/dead-letters/' + id + '/retry', {});
      show(out, r.ok, r.ok ? 'Sent again: dead letter ' + id + ' is back in the queue.' : problem(r.data));
      if (r.ok) setTimeout(refresh, 800); else b.disabled = false;
    } else if (b.dataset.action === 'edit-retry') {
      let payload;
      try { payload = JSON.parse(document.getElementById('payload-' + id).value); } catch (e) { show(out, false, 'The payload is not valid JSON: ' + e.message); return; }
      const r = await act('/dashboard/actions/dead-letters/' + id + '/retry', { payload });
      show(out, r.ok, r.ok ? 'Corrected payload accepted and sent again.' : problem(r.data));
    } else if (b.dataset.action === 'resolve') {
      const reason = prompt('Why can this be closed without sending it again?');
      if (!reason) return;
      const r = await act('/dashboard/actions/dead-letters/' + id + '/resolve', { reason });
      show(out, r.ok, r.ok ? 'Closed.' : problem(r.data));
      if (r.ok) setTimeout(refresh, 500);
    } else if (b.dataset.action === 'preview' || b.dataset.action === 'replay') {
      const filter = JSON.parse(b.dataset.filter || '{}');
      const dry = b.dataset.action === 'preview';
      const r = await act('/dashboard/actions/replays', { filter, dry_run: dry });
      const box = document.getElementById('replay-box');
      if (!r.ok) { show(out, false, problem(r.data)); return; }
      if (dry) {
        box.setAttribute('data-keep', '1');
        box.innerHTML = '<p><b>' + esc(r.data.would_send) + '</b> failed item(s) would be sent again, oldest first, through the normal queues:</p><ul>' +
          r.data.items.slice(0, 50).map(i => '<li>#' + esc(i.id) + ' ' + esc(i.step) + ' for ' + esc(i.order_id || '-') + ' — ' + esc(i.error) + '</li>').join('') + '</ul>' +
          (r.data.would_send > 0 ? '<button class="primary" data-action="replay" data-filter="' + esc(JSON.stringify(filter)) + '">Replay ' + esc(r.data.would_send) + ' now</button> ' : '') +
          '<button data-action="cancel">Cancel</button>';
      } else {
        box.removeAttribute('data-keep');
        box.innerHTML = '<div class="msg ok">Replay <b>' + esc(r.data.batch) + '</b>: ' + esc(r.data.sent) + ' item(s) sent. <a href="/dashboard/replays/' + encodeURIComponent(r.data.batch) + '">See what happened</a></div>';
      }
    } else if (b.dataset.action === 'cancel') {
      const box = document.getElementById('replay-box');
      box.removeAttribute('data-keep');
      box.innerHTML = '';
    }
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html_and_urls() {
        assert_eq!(
            pill("ok\" onclick=\"x", "<a href=\"x\">'&'</a>").into_string(),
            "<span class=\"pill ok&quot; onclick=&quot;x\">&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;</span>"
        );
        assert_eq!(url("ORD 1/é"), "ORD%201%2F%C3%A9");
    }
}
