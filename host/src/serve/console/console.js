// The tributary console: a client of the service's JSON API, nothing more.
//
// Invariants: the token lives in sessionStorage only; everything that comes from the API is
// written with textContent or attributes through `el()` — never parsed as HTML — so a hostile
// tenant's connector names, documents or errors cannot script another user's console.

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const session = {
  get token() { return sessionStorage.getItem('tributary.token'); },
  get tenant() { return sessionStorage.getItem('tributary.tenant') || ''; },
  get admin() { return sessionStorage.getItem('tributary.admin') === '1'; },
  set(token, tenant, admin) {
    sessionStorage.setItem('tributary.token', token);
    sessionStorage.setItem('tributary.tenant', tenant);
    sessionStorage.setItem('tributary.admin', admin ? '1' : '0');
  },
  clear() { sessionStorage.clear(); },
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** A JSON API call with the session's token; throws ApiError with the API's message. */
async function api(method, path, body, raw) {
  const headers = { Authorization: `Bearer ${session.token}` };
  const init = { method, headers };
  if (raw !== undefined) {
    init.body = raw;
    headers['Content-Type'] = 'application/wasm';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const message = data && typeof data === 'object' && data.error ? data.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return data;
}

const tenantPath = (rest = '') =>
  `/v1/tenants/${encodeURIComponent(session.tenant)}${rest}`;

// ---- sign in and routing ----

const views = ['sign-in', 'connectors', 'jobs', 'search', 'admin'];
let poller = null;

function show(view) {
  for (const v of views) $(`view-${v}`).hidden = v !== view;
  for (const v of ['connectors', 'jobs', 'search', 'admin']) {
    $(`nav-${v}`).classList.toggle('current', v === view);
  }
  if (poller) { clearInterval(poller); poller = null; }
}

/** Goes to a view: a new hash routes through `hashchange`, the same one routes again. */
async function go(hash) {
  if (location.hash !== hash) location.hash = hash;
  else await route();
}

async function route() {
  if (!session.token) {
    $('nav').hidden = true;
    $('sign-out').hidden = true;
    $('who').textContent = '';
    show('sign-in');
    return;
  }
  $('nav').hidden = false;
  $('sign-out').hidden = false;
  $('nav-admin').hidden = !session.admin;
  const tenantViews = !!session.tenant;
  for (const v of ['connectors', 'jobs', 'search']) $(`nav-${v}`).hidden = !tenantViews;
  $('who').textContent = session.admin
    ? (session.tenant ? `admin, viewing tenant ${session.tenant}` : 'admin')
    : `tenant ${session.tenant}`;
  let view = location.hash.replace(/^#/, '') || (tenantViews ? 'connectors' : 'admin');
  if (!views.includes(view) || view === 'sign-in') view = tenantViews ? 'connectors' : 'admin';
  if (!tenantViews && view !== 'admin') view = 'admin';
  show(view);
  try {
    if (view === 'connectors') await loadConnectors();
    if (view === 'jobs') {
      await loadJobs();
      if (poller) clearInterval(poller);
      poller = setInterval(() => loadJobs().catch(() => {}), 1000);
    }
    if (view === 'search') await loadSearch();
    if (view === 'admin') await loadAdmin();
  } catch (e) {
    const target = { connectors: 'connectors-error', jobs: 'jobs-error', search: 'search-error', admin: 'admin-error' }[view];
    $(target).textContent = e.message;
  }
}

/** Signs in with a token alone: `/v1/whoami` says whether it is the admin's or which tenant's. */
async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  $('sign-in-error').textContent = '';
  session.set(token, '', false);
  try {
    const who = await api('GET', '/v1/whoami');
    const admin = who.role === 'admin';
    session.set(token, admin ? '' : who.tenant, admin);
    $('token').value = '';
    await go(admin ? '#admin' : '#connectors');
  } catch (e) {
    session.clear();
    $('sign-in-error').textContent = e.status === 401
      ? 'this token is not known here'
      : `sign-in failed: ${e.message}`;
  }
}

// ---- connectors ----

let schemas = {};

async function schemaOf(plugin) {
  if (!schemas[plugin]) {
    schemas[plugin] = await api('GET', `/v1/plugins/${encodeURIComponent(plugin)}/schema`);
  }
  return schemas[plugin];
}

/** An API time (RFC 3339) or Unix seconds, as `YYYY-MM-DD HH:MM:SS UTC`. */
function fmtTime(t) {
  if (t === null || t === undefined || t === '') return '—';
  const d = new Date(typeof t === 'number' ? t * 1000 : t);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** Unix seconds of an API time (RFC 3339). */
const unixOf = (t) => Date.parse(t) / 1000;

function minutes(value) {
  if (typeof value !== 'string') return null;
  const m = value.trim().match(/^(\d+)\s*([smhd])$/);
  if (!m) return null;
  return Number(m[1]) * { s: 1 / 60, m: 1, h: 60, d: 1440 }[m[2]];
}

/** The next scheduled run of each kind: last start + interval, or the cron expression. */
function nextRuns(schedule, lastByKind) {
  const out = [];
  for (const kind of ['full', 'incremental', 'access_control']) {
    const every = schedule[`${kind}_minutes`] ?? minutes(schedule[`${kind}_every`]);
    const cron = schedule[`${kind}_cron`];
    if (every) {
      const last = lastByKind[kind];
      const at = last ? unixOf(last.started_at) + every * 60 : Date.now() / 1000;
      out.push(`${kind}: ${fmtTime(Math.max(at, Date.now() / 1000))}`);
    } else if (cron) {
      out.push(`${kind}: cron ${cron} UTC`);
    }
  }
  return out.length ? out : ['not scheduled'];
}

async function loadConnectors() {
  $('connectors-error').textContent = '';
  const [{ connectors }, { jobs }] = await Promise.all([
    api('GET', tenantPath('/connectors')),
    api('GET', tenantPath('/jobs?limit=200')),
  ]);
  const body = $('connectors-table').tBodies[0];
  body.replaceChildren();
  for (const c of connectors) {
    const mine = jobs.filter((j) => j.connector === c.id);
    const latest = mine[0];
    const lastByKind = {};
    for (const j of mine) if (!lastByKind[j.kind] && j.finished_at) lastByKind[j.kind] = j;
    const syncButton = (kind, label) => el('button', {
      type: 'button', 'data-test': `sync-${kind}`,
      onclick: async () => {
        try { await api('POST', tenantPath(`/connectors/${encodeURIComponent(c.id)}/sync`), { kind }); await go('#jobs'); }
        catch (e) { $('connectors-error').textContent = e.message; }
      },
    }, label);
    body.append(el('tr', { 'data-test': 'connector-row', 'data-id': c.id },
      el('td', { 'data-test': 'connector-id' }, c.id),
      el('td', {}, c.plugin),
      el('td', {}, c.index),
      el('td', { class: latest ? `status-${latest.status}` : '' }, latest ? latest.status : 'never synced'),
      el('td', {}, Object.keys(lastByKind).length
        ? Object.entries(lastByKind).map(([k, j]) => el('div', {}, `${k}: ${j.status} at ${fmtTime(j.finished_at)}`))
        : '—'),
      el('td', {}, nextRuns(c.schedule || {}, lastByKind).map((t) => el('div', {}, t))),
      el('td', {},
        syncButton('full', 'Full sync'),
        syncButton('incremental', 'Incremental'),
        syncButton('access_control', 'Access control'),
        el('button', { type: 'button', class: 'secondary', 'data-test': 'edit', onclick: () => openForm(c) }, 'Edit'),
        el('button', { type: 'button', class: 'secondary', 'data-test': 'state', onclick: () => openState(c) }, 'State'),
        el('button', {
          type: 'button', class: 'secondary', 'data-test': 'delete',
          onclick: async () => {
            if (!confirm(`Delete connector ${c.id}, its state and its documents?`)) return;
            try { await api('DELETE', tenantPath(`/connectors/${encodeURIComponent(c.id)}`)); await loadConnectors(); }
            catch (e) { $('connectors-error').textContent = e.message; }
          },
        }, 'Delete'))));
  }
}

let editing = null;

const SYNC_KINDS = [['full', 'Full'], ['incremental', 'Incremental'], ['access_control', 'Access control']];

/** Draws the schedule form: per sync kind, on or off, and an interval or a cron expression. */
function drawSchedule(schedule) {
  $('schedule').replaceChildren(...SYNC_KINDS.map(([kind, label]) => {
    const mins = schedule[`${kind}_minutes`];
    const every = schedule[`${kind}_every`] ?? (mins === null || mins === undefined ? null : `${mins}m`);
    const cron = schedule[`${kind}_cron`] ?? null;
    const on = el('input', { type: 'checkbox', id: `schedule-${kind}-on`, 'data-test': `schedule-${kind}-on` });
    on.checked = every !== null || cron !== null;
    const how = el('select', { id: `schedule-${kind}-how`, 'aria-label': `${label} syncs: interval or cron`, 'data-test': `schedule-${kind}-how` },
      el('option', { value: 'every' }, 'every'),
      el('option', { value: 'cron' }, 'at (cron, UTC)'));
    how.value = cron !== null ? 'cron' : 'every';
    const value = el('input', { type: 'text', id: `schedule-${kind}-value`, 'aria-label': `${label} syncs: interval or cron expression`, 'data-test': `schedule-${kind}-value` });
    value.value = cron ?? every ?? '';
    const hint = () => { value.placeholder = how.value === 'cron' ? '30 2 * * *' : '15m'; };
    how.addEventListener('change', hint);
    hint();
    return el('div', { class: 'schedule-row', 'data-kind': kind },
      el('label', { class: 'inline', for: on.id }, on, label), how, value);
  }));
}

/** The schedule the form holds; a kind switched on needs its interval or expression. */
function readSchedule() {
  $('schedule-error').textContent = '';
  const schedule = {};
  for (const [kind, label] of SYNC_KINDS) {
    if (!$(`schedule-${kind}-on`).checked) continue;
    const value = $(`schedule-${kind}-value`).value.trim();
    if (!value) throw new Error(`${label} syncs need an interval (15m, 2h, 1d) or a cron expression`);
    schedule[`${kind}_${$(`schedule-${kind}-how`).value}`] = value;
  }
  return schedule;
}

async function openForm(connector) {
  editing = connector;
  $('form-error').textContent = '';
  for (const id of ['connector-id-error', 'schedule-error', 'rules-error', 'advanced-rules-error']) $(id).textContent = '';
  const { plugins } = await api('GET', '/v1/plugins');
  const names = [...new Set(plugins.filter((p) => p.active).map((p) => p.name))];
  const select = $('plugin-select');
  select.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
  select.disabled = !!connector;
  $('connector-id').disabled = !!connector;
  $('connector-index').disabled = !!connector;
  $('form-title').textContent = connector ? `Edit connector ${connector.id}` : 'New connector';
  $('connector-id').value = connector ? connector.id : '';
  $('connector-index').value = connector ? connector.index : '';
  if (connector) select.value = connector.plugin;
  drawSchedule(connector ? connector.schedule || {} : {});
  $('rules').value = connector && connector.rules.length ? JSON.stringify(connector.rules, null, 1) : '';
  $('advanced-rules').value = connector && connector.advanced_rules ? JSON.stringify(connector.advanced_rules, null, 1) : '';
  await drawFields();
  $('connector-form').hidden = false;
  $('connector-form').scrollIntoView();
}

/** Draws the plugin's schema: labels, tooltips, defaults, secrets write-only. */
async function drawFields() {
  const schema = await schemaOf($('plugin-select').value);
  const set = $('config-fields');
  set.replaceChildren(el('legend', {}, `Configuration (${schema.display_name} ${schema.version})`));
  const config = editing ? editing.config : {};
  const secretsSet = editing ? editing.secrets_set : [];
  for (const f of schema.fields) {
    const id = `field-${f.key}`;
    const current = f.key in config ? config[f.key] : f.default;
    let input;
    if (f.kind === 'boolean') {
      input = el('input', { id, type: 'checkbox', 'data-key': f.key });
      input.checked = current === true;
    } else if (f.kind === 'select') {
      input = el('select', { id, 'data-key': f.key }, f.options.map((o) => el('option', { value: o.value }, o.label)));
      if (current !== null && current !== undefined) input.value = String(current);
    } else if (f.kind === 'textarea' || f.kind === 'json') {
      input = el('textarea', { id, rows: 3, 'data-key': f.key });
      input.value = current === null || current === undefined ? '' : (f.kind === 'json' ? JSON.stringify(current) : String(current));
    } else {
      input = el('input', {
        id, 'data-key': f.key, autocomplete: 'off',
        type: f.sensitive ? 'password' : (f.kind === 'integer' ? 'number' : 'text'),
        min: f.min ?? undefined, max: f.max ?? undefined,
      });
      if (!f.sensitive && current !== null && current !== undefined) {
        input.value = Array.isArray(current) ? current.join(', ') : String(current);
      }
    }
    const label = el('label', { for: id, title: f.tooltip || undefined },
      f.label, f.required ? ' *' : '',
      f.sensitive ? el('span', { class: 'badge', 'data-test': 'secret-state' },
        secretsSet.includes(f.key) ? 'set' : 'not set') : null);
    const row = el('div', {
      class: 'field', 'data-field': f.key, 'data-hidden-field': f.hidden ? '1' : undefined,
    }, f.kind === 'boolean' ? el('label', { class: 'inline', for: id, title: f.tooltip || undefined }, input, f.label) : [label, input],
    f.tooltip ? el('p', { class: 'tooltip' }, f.tooltip) : null,
    f.sensitive && editing ? el('p', { class: 'tooltip' }, 'Write-only: leave empty to keep the stored value.') : null,
    el('p', { class: 'error field-error', 'data-test': 'field-error', id: `${id}-error` }));
    input.addEventListener('change', applyVisibility);
    set.append(row);
  }
  applyVisibility();
}

function fieldValue(f) {
  const input = $(`field-${f.key}`);
  if (!input) return undefined;
  if (f.kind === 'boolean') return input.checked;
  const text = input.value.trim();
  if (text === '') return undefined;
  if (f.kind === 'integer') return Number(text);
  if (f.kind === 'list') return text.split(',').map((s) => s.trim()).filter(Boolean);
  if (f.kind === 'json') return JSON.parse(text);
  return text;
}

function dependsHold(f, schema) {
  return f.depends_on.every((d) => {
    const other = schema.fields.find((x) => x.key === d.field);
    return other && JSON.stringify(fieldValue(other) ?? other.default) === JSON.stringify(d.value);
  });
}

/** Shows a field when its `depends-on` conditions hold (and hidden ones only on request). */
function applyVisibility() {
  const schema = schemas[$('plugin-select').value];
  if (!schema) return;
  const showHidden = $('show-hidden').checked;
  for (const f of schema.fields) {
    const row = document.querySelector(`[data-field="${CSS.escape(f.key)}"]`);
    if (row) row.hidden = !dependsHold(f, schema) || (f.hidden && !showHidden);
  }
}

function parseJsonArea(id, errorId, fallback) {
  const text = $(id).value.trim();
  if (!text) return fallback;
  try { return JSON.parse(text); }
  catch (e) { $(errorId).textContent = `not JSON: ${e.message}`; throw e; }
}

async function saveConnector(event) {
  event.preventDefault();
  $('form-error').textContent = '';
  for (const node of document.querySelectorAll('.field-error')) node.textContent = '';
  const schema = await schemaOf($('plugin-select').value);
  const config = {};
  let problems = 0;
  for (const f of schema.fields) {
    if (!dependsHold(f, schema)) continue;
    let value;
    try { value = fieldValue(f); } catch (e) {
      $(`field-${f.key}-error`).textContent = `${f.label}: not JSON (${e.message})`;
      problems++;
      continue;
    }
    const secretKept = f.sensitive && editing && editing.secrets_set.includes(f.key);
    if (value === undefined && f.required && f.default === null && !secretKept) {
      $(`field-${f.key}-error`).textContent = `${f.label} is required`;
      problems++;
    }
    if (value !== undefined) config[f.key] = value;
  }
  const id = $('connector-id').value.trim();
  if (!editing && !id) { $('connector-id-error').textContent = 'Connector id is required'; problems++; }
  let schedule, rules, advanced;
  try {
    schedule = readSchedule();
  } catch (e) { $('schedule-error').textContent = e.message; problems++; }
  try {
    rules = parseJsonArea('rules', 'rules-error', []);
    advanced = parseJsonArea('advanced-rules', 'advanced-rules-error', null);
  } catch { problems++; }
  if (problems) { $('form-error').textContent = 'Fix the fields marked above.'; return; }
  const body = { plugin: $('plugin-select').value, config, rules, schedule };
  if (advanced !== null) body.advanced_rules = advanced;
  const index = $('connector-index').value.trim();
  if (index && !editing) body.index = index;
  const ping = $('ping').checked ? '?ping=true' : '';
  $('save-connector').disabled = true;
  try {
    if (editing) {
      await api('PUT', tenantPath(`/connectors/${encodeURIComponent(editing.id)}${ping}`), body);
    } else {
      body.id = id;
      await api('POST', tenantPath(`/connectors${ping}`), body);
    }
    $('connector-form').hidden = true;
    editing = null;
    await loadConnectors();
  } catch (e) {
    // The plugin's verdict on rules goes next to the rules editor; the rest under the form.
    if (/advanced rules/.test(e.message)) $('advanced-rules-error').textContent = e.message;
    else if (/sync rules/.test(e.message)) $('rules-error').textContent = e.message;
    else if (/schedule|cron|every/.test(e.message)) $('schedule-error').textContent = e.message;
    $('form-error').textContent = e.message;
  } finally {
    $('save-connector').disabled = false;
  }
}

let stateOf = null;

async function openState(connector) {
  stateOf = connector;
  const state = await api('GET', tenantPath(`/connectors/${encodeURIComponent(connector.id)}/state`));
  $('state-title').textContent = `Plugin state of ${connector.id}`;
  $('state-usage').textContent = `${state.usage.keys} keys, ${state.usage.bytes} bytes`;
  $('state-table').tBodies[0].replaceChildren(...state.keys.map((k) =>
    el('tr', { 'data-test': 'state-key' }, el('td', {}, k.key), el('td', {}, k.bytes))));
  $('state-panel').hidden = false;
}

async function resetState() {
  if (!stateOf || !confirm(`Erase the plugin state of ${stateOf.id}? The next sync starts over.`)) return;
  try {
    await api('DELETE', tenantPath(`/connectors/${encodeURIComponent(stateOf.id)}/state`));
    await openState(stateOf);
  } catch (e) { $('connectors-error').textContent = e.message; }
}

// ---- jobs ----

async function loadJobs() {
  const { jobs } = await api('GET', tenantPath('/jobs?limit=50'));
  $('jobs-error').textContent = '';
  const body = $('jobs-table').tBodies[0];
  body.replaceChildren(...jobs.map((j) => el('tr', { 'data-test': 'job-row', 'data-id': j.id, 'data-status': j.status },
    el('td', {}, j.id.slice(0, 12)),
    el('td', {}, j.connector),
    el('td', {}, j.kind),
    el('td', { 'data-test': 'job-started' }, fmtTime(j.started_at)),
    el('td', { class: `status-${j.status}`, 'data-test': 'job-status' }, j.status),
    el('td', { 'data-test': 'job-received' }, j.counts.received),
    el('td', { 'data-test': 'job-extracted' }, j.counts.content_extracted),
    el('td', { 'data-test': 'job-indexed' }, j.counts.indexed),
    el('td', {}, j.counts.deleted),
    el('td', {}, j.counts.unchanged),
    el('td', {}, j.counts.content_failed),
    el('td', { 'data-test': 'job-error' }, j.error ? `${j.error.kind}: ${j.error.message}` : ''),
    el('td', {}, ['queued', 'running'].includes(j.status)
      ? el('button', {
        type: 'button', 'data-test': 'cancel',
        onclick: async () => {
          try { await api('POST', tenantPath(`/jobs/${encodeURIComponent(j.id)}/cancel`)); await loadJobs(); }
          catch (e) { $('jobs-error').textContent = e.message; }
        },
      }, 'Cancel')
      : null))));
}

// ---- search ----

async function loadSearch() {
  const { connectors } = await api('GET', tenantPath('/connectors'));
  const select = $('search-index');
  const current = select.value;
  const indexes = [...new Set(connectors.map((c) => c.index))];
  select.replaceChildren(...indexes.map((i) => el('option', { value: i }, i)));
  if (indexes.includes(current)) select.value = current;
}

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&#x27;': "'" };
const decode = (s) => s.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (m) => ENTITIES[m]);

/** A snippet with its `<b>` highlights as elements and everything else as text. */
function snippet(text) {
  const out = el('p', { class: 'snippet', 'data-test': 'snippet' });
  const parts = text.split(/(<b>|<\/b>)/);
  let bold = false;
  for (const part of parts) {
    if (part === '<b>') { bold = true; continue; }
    if (part === '</b>') { bold = false; continue; }
    if (part) out.append(bold ? el('b', {}, decode(part)) : document.createTextNode(decode(part)));
  }
  return out;
}

async function search(event) {
  event.preventDefault();
  $('search-error').textContent = '';
  const params = new URLSearchParams({ index: $('search-index').value, limit: '20' });
  const q = $('search-q').value.trim();
  if (q) params.set('q', q);
  const identity = $('search-as').value.trim();
  if (identity) params.set('as', identity);
  try {
    const results = await api('GET', tenantPath(`/search?${params}`));
    $('search-total').textContent = `${results.total} matching documents${identity ? ` visible to ${identity}` : ''}`;
    $('search-total').setAttribute('data-total', results.total);
    $('search-results').replaceChildren(...results.hits.map((h) => el('li', { 'data-test': 'hit', 'data-id': h.id },
      el('strong', {}, h.title || h.id),
      el('small', {}, ` — ${h.connector}`),
      h.snippet ? snippet(h.snippet) : null,
      el('details', {}, el('summary', {}, 'Fields'),
        el('dl', { class: 'fields' }, Object.entries(h.fields).flatMap(([k, v]) =>
          [el('dt', {}, k), el('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))]))))));
  } catch (e) {
    $('search-total').textContent = '';
    $('search-results').replaceChildren();
    $('search-error').textContent = e.message;
  }
}

// ---- admin ----

function parseMetrics(text) {
  const values = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
    if (m && !m[2]) values[m[1]] = Number(m[3]);
  }
  return values;
}

async function loadMetrics() {
  const response = await fetch('/metrics', { headers: { Authorization: `Bearer ${session.token}` } });
  const m = response.ok ? parseMetrics(await response.text()) : {};
  const mib = (b) => (b === undefined ? '—' : `${(b / 1048576).toFixed(1)} MiB`);
  const rows = [
    ['Jobs running', m.tributary_jobs_running],
    ['Jobs queued', m.tributary_jobs_queued],
    ['Documents indexed (since start)', m.tributary_documents_indexed_total],
    ['Tenants', m.tributary_tenants],
    ['Connectors', m.tributary_connectors],
    ['Resident memory', mib(m.process_resident_memory_bytes)],
  ];
  $('metrics-glance').replaceChildren(...rows.flatMap(([k, v]) =>
    [el('dt', {}, k), el('dd', { 'data-metric': k }, v === undefined ? '—' : v)]));
}

function showToken(tenant, token) {
  $('token-tenant').textContent = tenant;
  $('token-value').textContent = token;
  $('token-once').hidden = false;
}

async function loadTenants() {
  const { tenants } = await api('GET', '/v1/tenants');
  const details = await Promise.all(tenants.map((t) =>
    api('GET', `/v1/tenants/${encodeURIComponent(t.id)}`).catch(() => null)));
  $('tenants-table').tBodies[0].replaceChildren(...tenants.map((t, i) => {
    const d = details[i];
    const quotas = d ? d.effective_quotas : t.quotas;
    return el('tr', { 'data-test': 'tenant-row', 'data-id': t.id },
      el('td', {}, t.id),
      el('td', {}, Object.entries(quotas || {}).filter(([, v]) => v !== null).map(([k, v]) => el('div', {}, `${k}: ${v}`))),
      el('td', {}, d ? Object.entries(d.usage).map(([k, v]) => el('div', {}, `${k}: ${v}`)) : '—'),
      el('td', {},
        el('button', {
          type: 'button', 'data-test': 'open-tenant',
          onclick: () => { session.set(session.token, t.id, true); go('#connectors'); },
        }, 'Open'),
        el('button', {
          type: 'button', class: 'secondary', 'data-test': 'rotate',
          onclick: async () => {
            if (!confirm(`Rotate the token of ${t.id}? The old one stops working now.`)) return;
            try { const r = await api('POST', `/v1/tenants/${encodeURIComponent(t.id)}/token`); showToken(t.id, r.token); }
            catch (e) { $('admin-error').textContent = e.message; }
          },
        }, 'Rotate token')));
  }));
}

async function loadPlugins() {
  const { plugins, rejected } = await api('GET', '/v1/plugins');
  $('plugins-table').tBodies[0].replaceChildren(...plugins.map((p) => el('tr', {
    'data-test': 'plugin-row', 'data-name': p.name, 'data-version': p.version, 'data-active': p.active ? '1' : '0',
  },
  el('td', {}, p.name), el('td', {}, p.version), el('td', {}, p.digest), el('td', {}, p.source),
  el('td', {}, p.active ? 'active' : ''),
  el('td', {},
    p.active ? null : el('button', {
      type: 'button', 'data-test': 'activate',
      onclick: () => pluginAction(`/v1/plugins/${encodeURIComponent(p.name)}/activate`, { version: p.digest }),
    }, 'Activate'),
    p.active ? el('button', {
      type: 'button', class: 'secondary', 'data-test': 'rollback',
      onclick: () => pluginAction(`/v1/plugins/${encodeURIComponent(p.name)}/rollback`),
    }, 'Roll back') : null))));
  $('rejected-list').replaceChildren(...(rejected || []).map((r) =>
    el('li', { 'data-test': 'rejected' }, `${fmtTime(r.at)} ${r.source}: ${r.reason}`)));
}

async function pluginAction(path, body) {
  try {
    const r = await api('POST', path, body);
    $('upload-result').textContent = `${r.name} ${r.version} is active`;
    await loadPlugins();
  } catch (e) { $('upload-result').textContent = e.message; }
}

async function upload(event) {
  event.preventDefault();
  const file = $('plugin-file').files[0];
  if (!file) { $('upload-result').textContent = 'choose a .wasm file first'; return; }
  $('upload-result').textContent = 'uploading…';
  try {
    const activate = $('upload-activate').checked ? 'true' : 'false';
    const r = await api('POST', `/v1/plugins?activate=${activate}`, undefined, await file.arrayBuffer());
    $('upload-result').textContent = `uploaded ${r.name} ${r.version}${r.active ? ' (active)' : ''}`;
  } catch (e) {
    $('upload-result').textContent = e.message;
  }
  await loadPlugins();
}

async function loadAdmin() {
  if (!session.admin) {
    $('admin-body').hidden = true;
    $('admin-error').textContent = 'this needs the admin token';
    return;
  }
  $('admin-body').hidden = false;
  $('admin-error').textContent = '';
  await Promise.all([loadMetrics(), loadTenants(), loadPlugins()]);
}

async function createTenant(event) {
  event.preventDefault();
  const id = $('new-tenant-id').value.trim();
  try {
    const r = await api('POST', '/v1/tenants', { id });
    $('new-tenant-id').value = '';
    showToken(r.id, r.token);
    await loadTenants();
  } catch (e) { $('admin-error').textContent = e.message; }
}

// ---- wiring ----

document.addEventListener('DOMContentLoaded', () => {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => { session.clear(); go(''); });
  $('new-connector').addEventListener('click', () => openForm(null).catch((e) => { $('connectors-error').textContent = e.message; }));
  $('plugin-select').addEventListener('change', () => drawFields().catch((e) => { $('form-error').textContent = e.message; }));
  $('show-hidden').addEventListener('change', applyVisibility);
  $('connector-form').addEventListener('submit', saveConnector);
  $('cancel-form').addEventListener('click', () => { $('connector-form').hidden = true; editing = null; });
  $('state-reset').addEventListener('click', resetState);
  $('state-close').addEventListener('click', () => { $('state-panel').hidden = true; });
  $('search-form').addEventListener('submit', search);
  $('tenant-form').addEventListener('submit', createTenant);
  $('upload-form').addEventListener('submit', upload);
  $('token-dismiss').addEventListener('click', () => { $('token-once').hidden = true; $('token-value').textContent = ''; });
  window.addEventListener('hashchange', route);
  route();
});
