// The dashboard as HTML: one server-rendered page, a little CSS in the page
// (allowed by its hash in the Content-Security-Policy, nothing else is: no
// script, no image, no external asset), readable on a phone. Every value is
// escaped where it is put into the page.
import { createHash } from 'node:crypto';
import type { ProvisionedResource } from '../broker/resources.ts';
import type { DashboardView } from './view.ts';

const CSS = `
:root { color-scheme: light dark; --fg: #1d2430; --muted: #5b6675; --bg: #f6f7f9; --card: #fff; --line: #dde1e7;
  --ok: #1a7f37; --wait: #9a6700; --bad: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ee; --muted: #9aa4b2; --bg: #14171c; --card: #1d2128; --line: #303641; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
header h1 { font-size: 1.4rem; margin: .2rem 0; overflow-wrap: anywhere; }
header p { margin: .2rem 0; color: var(--muted); overflow-wrap: anywhere; }
section { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .8rem 1rem; margin: 1rem 0; }
h2 { font-size: 1.1rem; margin: 0 0 .6rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
table { width: 100%; border-collapse: collapse; font-size: .95rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .4rem; border-top: 1px solid var(--line); overflow-wrap: break-word; }
th { color: var(--muted); font-weight: 600; border-top: none; white-space: nowrap; }
td code { overflow-wrap: anywhere; }
code, pre { font: .9rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: .4rem; padding: .6rem; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 1rem; } ul.tree { padding-left: 0; }
ul.tree li { margin: .25rem 0; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: .85rem; font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.ok { color: var(--ok); } .wait { color: var(--wait); } .bad { color: var(--bad); } .muted { color: var(--muted); }
.note { color: var(--muted); font-size: .9rem; }
@media (max-width: 40rem) {
  main { padding: .6rem; }
  dl { grid-template-columns: 1fr; gap: 0; } dd { margin-bottom: .4rem; }
  table, thead, tbody, tr, th, td { display: block; } thead { display: none; }
  tr { border-top: 1px solid var(--line); padding: .4rem 0; } td { border: none; padding: .1rem 0; }
  td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); }
}
`;

const STYLE_HASH = createHash('sha256').update(CSS).digest('base64');

/** Headers every dashboard answer carries: nothing runs, nothing loads, the token in the URL is not passed on or kept. */
export const DASHBOARD_HEADERS: Record<string, string> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const e = escapeHtml;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${e(title)}</title>
<style>${CSS}</style>
</head>
<body><main>
${body}
</main></body>
</html>
`;
}

const STATE_TEXT: Record<string, [string, 'ok' | 'wait' | 'bad' | 'muted']> = {
  creating: ['Being created', 'wait'],
  ready: ['Ready', 'ok'],
  create_failed: ['Creation failed', 'bad'],
  updating: ['Being updated', 'wait'],
  deleting: ['Being deleted', 'wait'],
  deleted: ['Deleted', 'muted'],
  'in progress': ['In progress', 'wait'],
  succeeded: ['Succeeded', 'ok'],
  failed: ['Failed', 'bad'],
  'not-ready': ['Not ready', 'wait'],
  missing: ['Missing', 'bad'],
  unknown: ['Unknown', 'wait'],
};

function badge(state: string): string {
  const [text, tone] = STATE_TEXT[state] ?? [state, 'wait'];
  return `<span class="badge ${tone}">${e(text)}</span>`;
}

function time(d: Date | string | undefined): string {
  if (d === undefined) return '<span class="muted">—</span>';
  const iso = new Date(d).toISOString();
  return `<time datetime="${e(iso)}">${e(iso.slice(0, 19).replace('T', ' '))} UTC</time>`;
}

/** How to connect, for the credential types Berth's kinds hand out; `$NAME` is the entry NAME of a binding. */
function exampleFor(type: string | undefined, entries: string[]): string | undefined {
  const has = (n: string) => entries.includes(n);
  switch (type) {
    case 'postgresql':
      return has('uri') ? 'psql "$uri"' : 'psql "host=$host port=$port dbname=$database user=$username password=$password"';
    case 'mysql':
      return 'mysql --host="$host" --port="$port" --user="$username" --password="$password" "$database"';
    case 'redis':
      return has('uri') ? 'redis-cli -u "$uri"' : 'redis-cli -h "$host" -p "$port" -a "$password"';
    default:
      return undefined;
  }
}

function resourceTree(items: ProvisionedResource[]): string {
  if (items.length === 0) return '';
  return `<ul class="tree">${items
    .map(
      (r) =>
        `<li>${badge(r.state)} <strong>${e(r.kind)}</strong> <code>${e(r.name)}</code>${r.bindingId ? ` <span class="muted">(binding ${e(r.bindingId)})</span>` : ''}${
          r.message ? `<div class="note">${e(r.message)}</div>` : ''
        }${r.children?.length ? resourceTree(r.children) : ''}</li>`,
    )
    .join('')}</ul>`;
}

/** The page for one instance. `freshLink`: a newer link to offer when the one used is past half its life. */
export function dashboardPage(v: DashboardView, link: { expiresAt: Date; freshLink: string | undefined }): string {
  const m = v.maintenance;
  const version = m.instance ?? m.catalog;
  const upgrade = m.upgradeAvailable
    ? `<dd><span class="badge wait">Upgrade available</span> The plan is at version <code>${e(m.catalog)}</code>; update the instance from your platform with the new maintenance_info to upgrade it.</dd>`
    : `<dd>${version !== undefined ? '<span class="badge ok">Up to date</span>' : '<span class="muted">The plan declares no maintenance version.</span>'}</dd>`;

  const example = exampleFor(v.connect.type, v.connect.entryNames);
  const connect = `<section id="connect"><h2>How to connect</h2>
<p>Bind the instance to your app; the binding carries ${v.connect.entryNames.length ? 'these credential entries' : 'the credentials'} (in the app's environment, or as keys of the binding Secret on Kubernetes):</p>
${v.connect.entryNames.length ? `<p>${v.connect.entryNames.map((n) => `<code>${e(n)}</code>`).join(' ')}</p>` : `<p class="note">${v.kind === 'user-provided' ? 'The entries are the credentials given when the instance was created.' : 'The entries are known once the instance has a binding.'}</p>`}
${example ? `<p>For example, with each entry in a shell variable of its name:</p><pre><code>${e(example)}</code></pre>` : ''}
</section>`;

  const bindings = v.bindings.length
    ? `<table><thead><tr><th>Binding</th><th>State</th><th>App</th><th>Credential entries</th><th>Expires</th></tr></thead><tbody>${v.bindings
        .map(
          (b) =>
            `<tr><td data-label="Binding"><code>${e(b.id)}</code></td><td data-label="State">${badge(b.state)}</td><td data-label="App">${b.appGuid ? `<code>${e(b.appGuid)}</code>` : '<span class="muted">—</span>'}</td><td data-label="Entries">${
              b.entryNames.length ? b.entryNames.map((n) => `<code>${e(n)}</code>`).join(' ') : '<span class="muted">—</span>'
            }</td><td data-label="Expires">${b.expiresAt ? time(b.expiresAt) : '<span class="muted">never</span>'}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p class="muted">No bindings.</p>';

  const operations = v.operations.length
    ? `<table><thead><tr><th>Operation</th><th>State</th><th>Started</th><th>Finished</th><th>Description</th></tr></thead><tbody>${v.operations
        .map(
          (o) =>
            `<tr><td data-label="Operation">${e(o.kind)}${o.bindingId ? ` <span class="muted">binding <code>${e(o.bindingId)}</code></span>` : ''}</td><td data-label="State">${badge(o.state)}</td><td data-label="Started">${time(o.startedAt)}</td><td data-label="Finished">${time(o.finishedAt)}</td><td data-label="Description">${e(o.description)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p class="muted">No operations.</p>';

  const body = `<header>
<p>${e(v.serviceName)}</p>
<h1>${e(v.planName)} ${badge(v.state)}</h1>
<p>Service instance <code>${e(v.instanceId)}</code></p>
</header>
<section id="status"><h2>Status</h2><dl>
<dt>State</dt><dd>${badge(v.state)}</dd>
<dt>Offering</dt><dd>${e(v.serviceName)}</dd>
<dt>Plan</dt><dd>${e(v.planName)}${v.planDescription ? ` <span class="muted">— ${e(v.planDescription)}</span>` : ''}</dd>
<dt>Kind</dt><dd>${e(v.kind)}</dd>
<dt>Version</dt><dd>${version !== undefined ? `<code>${e(m.instance ?? '—')}</code>` : '<span class="muted">—</span>'}</dd>
<dt>Upgrade</dt>${upgrade}
</dl></section>
<section id="resources"><h2>What runs</h2>
${resourceTree(v.resources.items)}
${v.resources.problem ? `<p class="note">${e(v.resources.problem)}</p>` : ''}
<p class="note">Looked at ${time(v.resources.takenAt)}.</p>
</section>
<section id="bindings"><h2>Bindings</h2>${bindings}</section>
${connect}
<section id="operations"><h2>Operations</h2>${operations}</section>
<p class="note">This link is valid until ${time(link.expiresAt)}.${
    link.freshLink ? ` For a link that lasts longer, bookmark <a href="${e(link.freshLink)}" rel="noreferrer">this one</a>.` : ''
  } Anyone with the link sees this page; it shows no passwords.</p>`;
  return layout(`${v.serviceName} · ${v.planName} — Berth`, body);
}

/** A refusal: no data about any instance. */
export function refusalPage(title: string, message: string): string {
  return layout(`${title} — Berth`, `<section><h1>${e(title)}</h1><p>${e(message)}</p></section>`);
}
