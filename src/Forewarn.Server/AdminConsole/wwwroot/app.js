// The Forewarn console: one page over /api/v1. Everything shown is built with textContent (never
// innerHTML), so a user name or a reject reason cannot become markup. Changes carry the session's CSRF
// token; a 401 anywhere brings the login form back.
'use strict';

const state = { csrf: null, role: null, tab: 'dashboard', logNext: 0, logRows: [], logGeneration: 0, busy: new Set(), timers: [], editingUser: null, editingClient: null };
const $ = id => document.getElementById(id);

async function api(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const response = await fetch('/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (response.status === 401 && path !== '/login') { showLogin(); throw new Error('not logged in'); }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.error) || (response.status + ' ' + response.statusText));
    error.status = response.status;
    throw error;
  }
  return data;
}

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(tableId, items, render) {
  const body = $(tableId).tBodies[0];
  const rows = items.map(item => { const tr = document.createElement('tr'); render(tr, item); return tr; });
  body.replaceChildren(...rows);
}

function button(label, onClick, className) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener('click', onClick);
  return b;
}

const time = iso => new Date(iso).toLocaleTimeString();
const fixed = (n, d) => (typeof n === 'number' && isFinite(n)) ? n.toFixed(d) : '–';

// ---- session ----------------------------------------------------------------------------

function showLogin() {
  stopTimers();
  state.csrf = null;
  $('login').hidden = false;
  $('tabs').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  document.querySelectorAll('.tab').forEach(s => s.hidden = true);
}

async function loggedIn(session) {
  state.csrf = session.csrf;
  state.role = session.role;
  $('who').textContent = session.name + ' (' + session.role + ')';
  $('login').hidden = true;
  $('tabs').hidden = false;
  $('logout').hidden = false;
  document.querySelectorAll('.editor button[type=submit], .controls button').forEach(b => b.disabled = session.role !== 'admin');
  show(state.tab);
}

$('login-form').addEventListener('submit', async e => {
  e.preventDefault();
  $('login-error').textContent = '';
  $('login-submit').disabled = true;
  try {
    const session = await api('POST', '/login', { name: $('login-name').value, password: $('login-password').value });
    $('login-password').value = '';
    await loggedIn(session);
  } catch (err) {
    $('login-error').textContent = err.status === 401 ? 'Wrong name or password.' : err.message;
  } finally {
    $('login-submit').disabled = false;
  }
});

$('logout').addEventListener('click', async () => { try { await api('POST', '/logout'); } finally { showLogin(); } });

// ---- tabs -------------------------------------------------------------------------------

function stopTimers() { state.timers.forEach(clearInterval); state.timers = []; }

// A poll that is still out when its next turn comes is skipped, not doubled.
function every(ms, f) {
  const once = async () => {
    if (state.busy.has(f)) return;
    state.busy.add(f);
    try { await f(); } catch { /* the next turn tries again; a 401 shows the login form */ } finally { state.busy.delete(f); }
  };
  once();
  state.timers.push(setInterval(once, ms));
}

function show(tab) {
  state.tab = tab;
  stopTimers();
  document.querySelectorAll('#tabs button').forEach(b => b.classList.toggle('active', b.dataset.tab === tab));
  document.querySelectorAll('.tab').forEach(s => s.hidden = s.id !== tab);
  every(1000, refreshZone);
  if (tab === 'dashboard') every(1000, refreshDashboard);
  if (tab === 'log') { every(1000, refreshLog); every(5000, refreshSummary); }
  if (tab === 'users') refreshUsers();
  if (tab === 'groups') refreshGroups();
  if (tab === 'clients') refreshClients();
  if (tab === 'accounting') refreshAccounting();
  if (tab === 'audit') every(5000, refreshAudit);
}

document.querySelectorAll('#tabs button').forEach(b => b.addEventListener('click', () => show(b.dataset.tab)));

async function refreshZone() {
  try {
    const s = await api('GET', '/status');
    const zone = s.health.zones.length ? s.health.zones[0].zone : 'Accept';
    $('server-zone').textContent = zone + (s.health.draining ? ' (draining)' : '');
    $('server-zone').className = 'zone ' + zone;
    state.status = s;
  } catch { /* shown by the login form or the next poll */ }
}

// ---- dashboard --------------------------------------------------------------------------

async function refreshDashboard() {
  const [s, history, nases] = await Promise.all([api('GET', '/status'), api('GET', '/health/history?seconds=300'), api('GET', '/nases')]);
  const h = s.health;
  const zone = h.zones.length ? h.zones[0].zone : 'Accept';
  $('zone').textContent = zone;
  $('zone').className = 'big ' + zone;
  const last = h.recentChanges.length ? h.recentChanges[h.recentChanges.length - 1] : null;
  $('zone-cause').textContent = (h.draining ? 'draining; ' : '') + (h.drill ? 'drill ' + h.drill.kind + '; ' : '') + (h.warmingUp ? 'warming up; ' : '') +
    (last ? 'since ' + time(last.at) + ' (' + last.cause + ')' : '');
  $('score').textContent = fixed(h.score, 3);
  $('sustained').textContent = fixed(h.sustained, 3);
  $('forecast').textContent = fixed(h.predicted, 3);
  $('trend').textContent = fixed(h.trendPerSecond, 3);
  const a = s.advisory;
  $('clients-count').textContent = a ? a.activeClients : '–';
  $('deferred-count').textContent = a ? a.deferredClients : '–';
  $('advisories').textContent = a ? `sent ${a.failovers} failover, ${a.invites} invite; acknowledged ${a.acks}; rejected ${a.rejected}; given up ${a.givenUp}` : 'advisories off';
  fill('probes', h.probes, (tr, p) => {
    if (p.headroom < 0.5) tr.className = 'low';
    cell(tr, p.name); cell(tr, p.kind); cell(tr, fixed(p.headroom, 2), 'headroom'); cell(tr, fixed(p.raw, 1)); cell(tr, p.detail);
  });
  const alternates = $('alternates');
  alternates.replaceChildren(...(a ? a.alternates : []).map(t => { const li = document.createElement('li'); li.textContent = t; return li; }));
  if (!a || a.alternates.length === 0) { const li = document.createElement('li'); li.textContent = 'none known'; alternates.appendChild(li); }
  fill('nases', nases.filter(n => n.state !== 'active'), (tr, n) => { cell(tr, n.address); cell(tr, n.client); cell(tr, n.state); cell(tr, fixed(n.requestsPerSecond, 1)); });
  const changes = $('changes');
  changes.replaceChildren(...h.recentChanges.slice(-8).reverse().map(c => {
    const li = document.createElement('li');
    li.textContent = `${time(c.at)} ${c.from} → ${c.to} (${c.cause}, score ${fixed(c.score, 2)}, forecast ${fixed(c.predicted, 2)}${c.leadTime ? ', lead ' + c.leadTime : ''})`;
    return li;
  }));
  drawChart(history);
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(name, attributes) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  return e;
}

function drawChart(history) {
  const chart = $('chart');
  const W = 800, H = 220, points = history.points;
  const children = [];
  if (points.length > 1) {
    const t0 = Date.parse(points[0].at), t1 = Math.max(Date.parse(points[points.length - 1].at), t0 + 1);
    const x = t => ((Date.parse(t) - t0) / (t1 - t0)) * W;
    const y = v => H - Math.max(0, Math.min(1, v)) * H;
    // The zone as the background, one band per run of the same zone.
    let start = 0;
    for (let i = 1; i <= points.length; i++) {
      if (i === points.length || points[i].zone !== points[start].zone) {
        const color = { Accept: '#e3f4ea', Hold: '#fbefd9', AdmitThenDefer: '#fbefd9', Defer: '#f9dede' }[points[start].zone] || '#eee';
        const x0 = x(points[start].at), x1 = x(points[i < points.length ? i : i - 1].at);
        children.push(svg('rect', { x: x0, y: 0, width: Math.max(1, x1 - x0), height: H, fill: color, 'data-zone': points[start].zone }));
        start = i;
      }
    }
    const line = (key, color, width, dash) => svg('polyline', {
      points: points.map(p => `${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' '),
      fill: 'none', stroke: color, 'stroke-width': width, 'stroke-dasharray': dash || '', 'vector-effect': 'non-scaling-stroke',
    });
    children.push(line('sustained', '#7a8599', 1), line('predicted', '#9b59b6', 1.5, '4 3'), line('score', '#2b5fd9', 2));
  }
  const threshold = (v, color) => svg('line', { x1: 0, x2: W, y1: H - v * H, y2: H - v * H, stroke: color, 'stroke-width': 1.5, 'stroke-dasharray': '6 4', 'vector-effect': 'non-scaling-stroke' });
  children.push(threshold(history.failover, '#c53030'), threshold(history.connectNew, '#b7791f'));
  chart.replaceChildren(...children);
}

async function control(method, path, question) {
  if (!confirm(question)) return;
  try {
    const s = await api(method, path);
    $('control-result').textContent = 'Done: zone ' + (s.health.zones.length ? s.health.zones[0].zone : '?') + (s.health.draining ? ', draining' : '') + (s.health.drill ? ', drill ' + s.health.drill.kind : '');
  } catch (err) {
    $('control-result').textContent = err.message;
  }
}

$('drain').addEventListener('click', () => control('POST', '/drain', 'Drain this server? Every client will be told to fail over to its alternates.'));
$('resume').addEventListener('click', () => control('POST', '/resume', 'Resume? The zones will follow the score again and deferred clients are invited back.'));
$('drill-start').addEventListener('click', () => {
  const kind = $('drill-kind').value, seconds = Number($('drill-seconds').value) || 30;
  control('POST', `/drill?kind=${encodeURIComponent(kind)}&seconds=${seconds}`, `Start a ${kind} drill for ${seconds} s? It degrades real work on this server.`);
});
$('drill-stop').addEventListener('click', () => control('DELETE', '/drill', 'Stop the running drill?'));

// ---- the authentication log -------------------------------------------------------------

function logQuery() {
  const q = new URLSearchParams();
  for (const [key, id] of [['user', 'log-user'], ['client', 'log-client'], ['result', 'log-result'], ['protocol', 'log-protocol']])
    if ($(id).value) q.set(key, $(id).value);
  return q;
}

async function refreshLog() {
  if ($('log-paused').checked) return;
  const generation = state.logGeneration;
  const q = logQuery();
  q.set('after', state.logNext);
  q.set('limit', 500);
  const page = await api('GET', '/log?' + q);
  if (generation !== state.logGeneration) return;  // the filter changed while this was out
  state.logNext = page.next - 1;
  if (page.events.length === 0) return;
  state.logRows = page.events.reverse().concat(state.logRows).slice(0, 500);
  fill('log-table', state.logRows, (tr, e) => {
    tr.className = e.result.toLowerCase();
    cell(tr, time(e.at)); cell(tr, e.user ?? '(none)'); cell(tr, e.client); cell(tr, e.protocol === 'tacacs' ? 'TACACS+' : 'RADIUS');
    cell(tr, e.method); cell(tr, e.result.toLowerCase(), 'result'); cell(tr, e.reason ?? '', 'reason'); cell(tr, e.latencyMs === null ? '' : fixed(e.latencyMs, 1));
  });
}

function resetLog() { state.logGeneration++; state.logNext = 0; state.logRows = []; $('log-table').tBodies[0].replaceChildren(); }
['log-user', 'log-client'].forEach(id => $(id).addEventListener('input', resetLog));
['log-result', 'log-protocol'].forEach(id => $(id).addEventListener('change', resetLog));
$('log-filter').addEventListener('submit', e => e.preventDefault());

async function refreshSummary() {
  const s = await api('GET', '/log/summary?minutes=5');
  // A busy server keeps fewer than five minutes: the span says what the figures cover.
  document.querySelectorAll('.span-minutes').forEach(e => e.textContent = '(' + (s.minutes >= 1 ? fixed(s.minutes, 1) + ' min' : fixed(s.minutes * 60, 0) + ' s') + ')');
  fill('failures', s.failures, (tr, f) => { cell(tr, f.reason); cell(tr, f.count); });
  const rate = (tr, r) => { cell(tr, r.name); cell(tr, fixed(r.perMinute, 1)); cell(tr, r.accepts); cell(tr, r.rejects); };
  fill('rates-nas', s.byClient, rate);
  fill('rates-groups', s.byDeviceGroup, rate);
}

// ---- users, groups, clients -------------------------------------------------------------

const lines = text => text.split('\n').map(l => l.trim()).filter(l => l.length > 0);

async function refreshUsers() {
  const search = $('users-search').value;
  const users = await api('GET', '/users' + (search ? '?search=' + encodeURIComponent(search) : ''));
  fill('users-table', users, (tr, u) => {
    cell(tr, u.name); cell(tr, u.methods); cell(tr, u.stored); cell(tr, u.group); cell(tr, u.reply.join('; ')); cell(tr, u.check.join('; ')); cell(tr, u.enabled ? 'yes' : 'no');
    const actions = cell(tr, '');
    actions.append(button('Edit', () => editUser(u)), ' ', button('Remove', () => removeItem('/users/', u.name, 'user', refreshUsers), 'danger'));
  });
}

function editUser(u) {
  state.editingUser = u ? u.name : null;
  $('user-form-title').textContent = u ? 'Change ' + u.name : 'Add a user';
  $('user-name').value = u ? u.name : '';
  $('user-name').disabled = !!u;
  $('user-password').value = '';
  $('user-methods').value = u ? u.methods : 'all';
  $('user-group').value = u && u.group ? u.group : '';
  $('user-reply').value = u ? u.reply.map(r => r.replace(' = ', '=')).join('\n') : '';
  $('user-check').value = u ? u.check.map(c => c.replace(' == ', '==').replace(' != ', '!=')).join('\n') : '';
  $('user-enabled').checked = u ? u.enabled : true;
  $('user-error').textContent = '';
}

$('user-new').addEventListener('click', () => editUser(null));
$('users-search').addEventListener('input', refreshUsers);
$('user-form').addEventListener('submit', async e => {
  e.preventDefault();
  const body = {
    name: $('user-name').value, password: $('user-password').value || null, methods: $('user-methods').value, group: $('user-group').value,
    reply: lines($('user-reply').value), check: lines($('user-check').value), enabled: $('user-enabled').checked,
  };
  try {
    if (state.editingUser) await api('PUT', '/users/' + encodeURIComponent(state.editingUser), body);
    else await api('POST', '/users', body);
    editUser(null);
    $('user-error').textContent = 'Saved.';
    await refreshUsers();
  } catch (err) { $('user-error').textContent = err.message; }
});

async function removeItem(path, name, what, refresh) {
  if (!confirm(`Remove ${what} ${name}?`)) return;
  try { await api('DELETE', path + encodeURIComponent(name)); } catch (err) { alert(err.message); }
  await refresh();
}

async function refreshGroups() {
  const [groups, sets] = await Promise.all([api('GET', '/groups'), api('GET', '/command-sets')]);
  fill('sets-table', sets, (tr, c) => {
    cell(tr, c.name); cell(tr, c.rules.join('; '));
    const actions = cell(tr, '');
    actions.append(button('Edit', () => { $('set-name').value = c.name; $('set-rules').value = c.rules.join('\n'); }), ' ',
      button('Remove', () => removeItem('/command-sets/', c.name, 'command set', refreshGroups), 'danger'));
  });
  fill('groups-table', groups, (tr, g) => {
    cell(tr, g.name); cell(tr, g.reply.join('; ')); cell(tr, g.check.join('; ')); cell(tr, g.commandSets.join(', ')); cell(tr, g.members);
    const actions = cell(tr, '');
    actions.append(button('Edit', () => {
      $('group-name').value = g.name;
      $('group-reply').value = g.reply.map(r => r.replace(' = ', '=')).join('\n');
      $('group-check').value = g.check.map(c => c.replace(' == ', '==').replace(' != ', '!=')).join('\n');
      $('group-sets').value = g.commandSets.join('\n');
    }), ' ', button('Remove', () => removeItem('/groups/', g.name, 'group', refreshGroups), 'danger'));
  });
}

$('group-form').addEventListener('submit', async e => {
  e.preventDefault();
  try {
    await api('PUT', '/groups/' + encodeURIComponent($('group-name').value),
      { reply: lines($('group-reply').value), check: lines($('group-check').value), commandSets: lines($('group-sets').value) });
    $('group-error').textContent = 'Saved.';
    await refreshGroups();
  } catch (err) { $('group-error').textContent = err.message; }
});

$('set-form').addEventListener('submit', async e => {
  e.preventDefault();
  try {
    await api('PUT', '/command-sets/' + encodeURIComponent($('set-name').value), { rules: lines($('set-rules').value) });
    $('set-error').textContent = 'Saved.';
    await refreshGroups();
  } catch (err) { $('set-error').textContent = err.message; }
});

async function refreshClients() {
  const search = $('clients-search').value;
  const [clients, groups] = await Promise.all([api('GET', '/clients' + (search ? '?search=' + encodeURIComponent(search) : '')), api('GET', '/device-groups')]);
  fill('clients-table', clients, (tr, c) => {
    cell(tr, c.name); cell(tr, c.address); cell(tr, c.deviceGroup); cell(tr, c.messageAuthenticator); cell(tr, c.class);
    const actions = cell(tr, '');
    actions.append(button('Edit', () => editClient(c)), ' ', button('Remove', () => removeItem('/clients/', c.name, 'client', refreshClients), 'danger'));
  });
  fill('device-groups', groups, (tr, g) => { cell(tr, g.name); cell(tr, g.clients.join(', ')); cell(tr, g.activeNases); cell(tr, fixed(g.requestsPerSecond, 1)); });
}

function editClient(c) {
  state.editingClient = c ? c.name : null;
  $('client-form-title').textContent = c ? 'Change ' + c.name : 'Add a client';
  $('client-name').value = c ? c.name : '';
  $('client-name').disabled = !!c;
  $('client-address').value = c ? c.address : '';
  $('client-secret').value = '';
  $('client-group').value = c && c.deviceGroup ? c.deviceGroup : '';
  $('client-ma').value = c ? c.messageAuthenticator : 'auto';
  $('client-class').value = c && c.class ? c.class : '';
  $('client-error').textContent = '';
}

$('client-new').addEventListener('click', () => editClient(null));
$('clients-search').addEventListener('input', refreshClients);
$('client-form').addEventListener('submit', async e => {
  e.preventDefault();
  const body = {
    name: $('client-name').value, address: $('client-address').value, secret: $('client-secret').value || null,
    deviceGroup: $('client-group').value, messageAuthenticator: $('client-ma').value, class: $('client-class').value,
  };
  try {
    if (state.editingClient) await api('PUT', '/clients/' + encodeURIComponent(state.editingClient), body);
    else await api('POST', '/clients', body);
    editClient(null);
    $('client-error').textContent = 'Saved.';
    await refreshClients();
  } catch (err) { $('client-error').textContent = err.message; }
});

// ---- accounting and audit ---------------------------------------------------------------

async function refreshAccounting() {
  const user = $('acct-user').value;
  const q = new URLSearchParams();
  if (user) q.set('user', user);
  const sessions = new URLSearchParams(q);
  if ($('acct-active').checked) sessions.set('active', 'true');
  const [rows, records] = await Promise.all([api('GET', '/accounting/sessions?' + sessions), api('GET', '/accounting?limit=100&' + q)]);
  fill('sessions', rows, (tr, s) => { cell(tr, s.user); cell(tr, s.client); cell(tr, s.sessionId); cell(tr, new Date(s.started).toLocaleString()); cell(tr, new Date(s.lastSeen).toLocaleString()); cell(tr, s.status); });
  fill('acct-records', records, (tr, r) => { cell(tr, new Date(r.receivedAt).toLocaleString()); cell(tr, r.user); cell(tr, r.client); cell(tr, r.sessionId); cell(tr, r.status); cell(tr, r.protocol); });
}

$('acct-filter').addEventListener('submit', e => { e.preventDefault(); refreshAccounting(); });

async function refreshAudit() {
  const entries = await api('GET', '/audit?limit=200');
  fill('audit-table', entries, (tr, a) => {
    cell(tr, new Date(a.at).toLocaleString()); cell(tr, a.who); cell(tr, a.role); cell(tr, a.from); cell(tr, a.action); cell(tr, a.target); cell(tr, a.status); cell(tr, a.detail);
  });
}

// ---- start ------------------------------------------------------------------------------

(async () => {
  try { await loggedIn(await api('GET', '/session')); } catch { showLogin(); }
})();
