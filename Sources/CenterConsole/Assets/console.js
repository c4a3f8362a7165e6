// The operators' console (docs/console.md, "The page"). No framework: the DOM is built with createElement and
// textContent only, never by parsing markup, because device and registry text (model, notes, names) is untrusted.
'use strict';

(() => {
  const MAX_ROWS = 200;          // the server's view holds the 200 most urgent cases; the DOM never more
  const SHOWN_KEPT = 10000;      // window.caseShownAt keeps the last 10,000 cases
  const BEEP_GAP_MS = 1000;      // a storm beeps once a second, not once a case

  const $ = (id) => document.getElementById(id);
  const el = (tag, text, className) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  };

  const app = {
    me: null,              // {name, role, language, csrf}
    catalogue: null,       // {en: {...}, zh: {...}}
    lang: 'en',
    cases: new Map(),      // id → {row: CASE ROW, tr: <tr> or null}
    highestSeen: 0,        // case ids grow: one above every id seen so far is a new case (it beeps)
    firstSnapshot: true,
    more: 0,
    counts: {},
    devices: {},
    pending: [],           // stream messages waiting for the next animation frame
    frameRequested: false,
    selected: null,        // the case id shown in #case-detail
    detail: null,          // its last GET /api/cases/{id}
    detailLoading: false,
    detailAgain: false,
    view: 'queue',
    historyPages: [],      // the `before` of each page shown so far, for "newer"
    historyRows: [],
    historyNext: null,     // the `before` of the next older page, null on the last
    devicesRows: [],
    devicesMore: 0,
    operatorsRows: [],
    audio: null,
    lastBeep: 0,
    stream: null,
  };

  const shownOrder = [];
  window.caseShownAt = {};
  window.consoleBeeps = 0;       // how many times the new-case sound played, for the browser check

  // ---- strings ------------------------------------------------------------------------------------------
  function t(key, params) {
    const table = (app.catalogue && app.catalogue[app.lang]) || {};
    let text = Object.prototype.hasOwnProperty.call(table, key) ? table[key] : key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, (whole, name) =>
        Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole);
    }
    return text;
  }
  // A key made of a prefix and a value from the server: its translation, or the value itself when the
  // catalogue does not know it (a newer server), never the bare key.
  function tValue(prefix, value) {
    const key = prefix + '.' + value;
    const table = (app.catalogue && app.catalogue[app.lang]) || {};
    return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : String(value);
  }

  function locale() { return app.lang === 'zh' ? 'zh-CN' : 'en-GB'; }

  function formatTime(ms) {
    if (ms === null || ms === undefined) return t('value.never');
    const date = new Date(ms);
    const today = new Date();
    const sameDay = date.toDateString() === today.toDateString();
    const options = sameDay
      ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
      : { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' };
    return new Intl.DateTimeFormat(locale(), options).format(date);
  }

  function formatDuration(ms) {
    const seconds = Math.max(0, Math.floor(ms / 1000));
    if (seconds < 60) return t('duration.seconds', { s: seconds });
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return t('duration.minutes', { m: minutes, s: seconds % 60 });
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return t('duration.hours', { h: hours, m: minutes % 60 });
    return t('duration.days', { d: Math.floor(hours / 24), h: hours % 24 });
  }

  function formatLate(row) {
    if (!row.clockVerified) return t('late.unverified');
    if (row.lateMs === null || row.lateMs === undefined) return '—';
    if (row.lateMs < 1000) return t('late.ms', { ms: row.lateMs });
    return formatDuration(row.lateMs);
  }

  function formatPower(battery, onBattery) {
    const level = battery === null || battery === undefined ? t('value.unknown') : battery + '%';
    return level + ' · ' + (onBattery ? t('power.battery') : t('power.mains'));
  }

  function residentText(resident) {
    if (!resident) return t('resident.unknown');
    return resident.address ? resident.name + ' — ' + resident.address : resident.name;
  }

  function translateStatic() {
    document.documentElement.lang = app.lang === 'zh' ? 'zh-Hans' : 'en';
    document.title = t('app.title');
    for (const node of document.querySelectorAll('[data-t]')) node.textContent = t(node.dataset.t);
    for (const node of document.querySelectorAll('[data-t-placeholder]')) node.placeholder = t(node.dataset.tPlaceholder);
  }

  // ---- HTTP ---------------------------------------------------------------------------------------------
  class HTTPError extends Error {
    constructor(status, body) {
      super((body && body.error) || ('HTTP ' + status));
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, path, body, contentType) {
    const headers = {};
    if (method !== 'GET') headers['X-CSRF-Token'] = app.me ? app.me.csrf : '';
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = contentType || 'application/json';
      payload = contentType ? body : JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store' });
    if (response.status === 401) {
      window.location.assign('/login');
      throw new HTTPError(401, { error: 'login required' });
    }
    let data = null;
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      try { data = await response.json(); } catch (_) { data = null; }
    }
    if (!response.ok) throw new HTTPError(response.status, data);
    return data;
  }

  // What an error from an action means, in the operator's language.
  function errorText(error) {
    if (!(error instanceof HTTPError)) return t('error.network');
    // A refusal the server names (docs/console.md, "code"): said in the operator's language.
    const code = error.body && typeof error.body.code === 'string' ? error.body.code : null;
    const table = (app.catalogue && app.catalogue[app.lang]) || {};
    if (code === 'otherNode' && typeof error.body.node === 'string') return t('error.code.otherNode', { node: error.body.node });
    if (code && code !== 'taken' && Object.prototype.hasOwnProperty.call(table, 'error.code.' + code)) {
      return tValue('error.code', code);
    }
    switch (error.status) {
      case 409:
        return error.body.by ? t('error.taken', { name: error.body.by }) : t('error.conflict', { detail: error.message });
      case 403: return t('error.forbidden');
      case 404: return t('error.notFound');
      case 429: return t('error.tooMany');
      case 503: return t('error.unavailable');
      default: return t('error.refused', { status: error.status, detail: error.message });
    }
  }

  function showError(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  // A list from the server, whether it came bare or as {key: [...], more}.
  function listOf(data, key) {
    if (Array.isArray(data)) return data;
    if (data && Array.isArray(data[key])) return data[key];
    return [];
  }

  // ---- sound --------------------------------------------------------------------------------------------
  function setUpSound() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try { app.audio = new Context(); } catch (_) { app.audio = null; return; }
    const update = () => { $('sound-enable').hidden = app.audio.state !== 'suspended'; };
    app.audio.addEventListener('statechange', update);
    update();
    $('sound-enable').addEventListener('click', () => { app.audio.resume().then(update, update); });
  }

  function beep() {
    const now = Date.now();
    if (!app.audio || app.audio.state !== 'running' || now - app.lastBeep < BEEP_GAP_MS) return;
    app.lastBeep = now;
    window.consoleBeeps += 1;
    const start = app.audio.currentTime;
    for (const [offset, frequency] of [[0, 880], [0.25, 660]]) {
      const oscillator = app.audio.createOscillator();
      const gain = app.audio.createGain();
      oscillator.type = 'sine';
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.2);
      oscillator.connect(gain).connect(app.audio.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + 0.22);
    }
  }

  // ---- the queue ----------------------------------------------------------------------------------------
  // Not yet taken first, then oldest first: the server's order of urgency.
  function urgency(a, b) {
    const ua = a.state === 'received' ? 0 : 1;
    const ub = b.state === 'received' ? 0 : 1;
    if (ua !== ub) return ua - ub;
    if (a.receivedAt !== b.receivedAt) return a.receivedAt - b.receivedAt;
    return a.id - b.id;
  }

  function onStreamMessage(kind, event) {
    let data;
    try { data = JSON.parse(event.data); } catch (_) { return; }
    // A snapshot replaces everything before it: a console that cannot draw (a hidden tab) keeps one.
    if (kind === 'snapshot') app.pending = [];
    app.pending.push([kind, data]);
    if (!app.frameRequested) {
      app.frameRequested = true;
      requestAnimationFrame(applyPending);
      // A hidden tab gets no animation frames; without this its messages would pile up until it is shown.
      setTimeout(applyPending, 1000);
    }
  }

  // Every message that came since the last frame, applied at once, then drawn once.
  function applyPending() {
    if (!app.frameRequested) return;
    app.frameRequested = false;
    const messages = app.pending;
    app.pending = [];
    let newCase = false;
    let touched = false;
    for (const [kind, data] of messages) {
      if (kind === 'snapshot') {
        const rows = Array.isArray(data.cases) ? data.cases : [];
        const keep = new Set(rows.map((row) => row.id));
        for (const [id, entry] of app.cases) {
          if (!keep.has(id)) { if (entry.tr) entry.tr.remove(); app.cases.delete(id); }
        }
        for (const row of rows) {
          if (!app.firstSnapshot && row.id > app.highestSeen && row.state === 'received') newCase = true;
          upsert(row);
        }
        app.firstSnapshot = false;
        touched = true;
      } else {
        for (const row of Array.isArray(data.upsert) ? data.upsert : []) {
          if (row.id > app.highestSeen && row.state === 'received') newCase = true;
          if (row.id === app.selected) touched = true;
          upsert(row);
        }
        for (const id of Array.isArray(data.remove) ? data.remove : []) {
          const entry = app.cases.get(id);
          if (entry) { if (entry.tr) entry.tr.remove(); app.cases.delete(id); }
          if (id === app.selected) touched = true;
        }
      }
      if (typeof data.more === 'number') app.more = data.more;
      if (data.counts) app.counts = data.counts;
      if (data.devices) app.devices = data.devices;
    }
    drawQueue();
    if (newCase) beep();
    if (touched && app.selected !== null) loadDetail();
  }

  function upsert(row) {
    if (typeof row.id !== 'number') return;
    app.highestSeen = Math.max(app.highestSeen, row.id);
    const entry = app.cases.get(row.id);
    if (entry) { entry.row = row; entry.dirty = true; } else app.cases.set(row.id, { row, tr: null, dirty: true });
  }

  function drawQueue() {
    const body = document.querySelector('#queue tbody');
    const ordered = Array.from(app.cases.values()).sort((a, b) => urgency(a.row, b.row));
    // The DOM holds at most MAX_ROWS rows; the rest are counted in "N more" with the server's own `more`.
    const beyond = Math.max(0, ordered.length - MAX_ROWS);
    for (const entry of ordered.slice(MAX_ROWS)) {
      if (entry.tr) { entry.tr.remove(); entry.tr = null; }
    }
    const shown = ordered.slice(0, MAX_ROWS);
    const drawnAt = performance.timeOrigin + performance.now();
    let previous = null;
    for (const entry of shown) {
      if (!entry.tr) {
        entry.tr = el('tr', null, 'case');
        entry.tr.addEventListener('click', () => selectCase(entry.row.id));
        entry.dirty = true;
      }
      if (entry.dirty) { fillCaseRow(entry.tr, entry.row); entry.dirty = false; }
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (expected !== entry.tr) body.insertBefore(entry.tr, expected);
      previous = entry.tr;
      if (!Object.prototype.hasOwnProperty.call(window.caseShownAt, entry.row.id)) {
        window.caseShownAt[entry.row.id] = drawnAt;
        shownOrder.push(entry.row.id);
        if (shownOrder.length > SHOWN_KEPT) delete window.caseShownAt[shownOrder.shift()];
      }
    }
    drawCounts(beyond);
  }

  function fillCaseRow(tr, row) {
    tr.dataset.caseId = String(row.id);
    tr.dataset.state = row.state;
    tr.classList.toggle('new', row.state === 'received');
    tr.classList.toggle('selected', row.id === app.selected);
    tr.classList.toggle('offline', !row.online);
    const age = el('td', formatDuration(Date.now() - row.receivedAt), 'age');
    age.dataset.receivedAt = String(row.receivedAt);
    const home = el('td');
    home.append(el('span', residentText(row.resident), 'resident'),
      el('span', t('case.device', { device: row.device }), 'device-id'));
    const link = el('td', row.online ? t('link.online') : t('link.offline'), row.online ? 'online' : 'offline-text');
    tr.replaceChildren(
      el('td', '#' + row.id, 'case-id'), age, home,
      el('td', tValue('kind', row.kind)),
      el('td', formatLate(row), row.clockVerified ? null : 'unverified'),
      el('td', formatPower(row.battery, row.onBattery), row.onBattery ? 'on-battery' : null),
      link,
      el('td', row.takenBy === null || row.takenBy === undefined ? '—' : takenByText(row.takenBy)),
      el('td', tValue('call', row.call)),
      el('td', tValue('state', row.state), 'state'));
  }

  function takenByText(name) { return name === 'auto' ? t('takenBy.auto') : name; }

  function drawCounts(beyond) {
    const counts = app.counts || {};
    const devices = app.devices || {};
    $('queue-counts').textContent = t('queue.counts', {
      received: counts.received || 0, engaged: counts.operatorEngaged || 0, dispatched: counts.helpDispatched || 0,
      online: devices.online || 0, offline: devices.offline || 0,
    });
    const more = (app.more || 0) + beyond;
    $('queue-more').hidden = more === 0;
    $('queue-more').textContent = t('queue.more', { n: more });
    $('queue-empty').hidden = app.cases.size > 0;
  }

  function tickAges() {
    const now = Date.now();
    for (const cell of document.querySelectorAll('#queue td.age')) {
      cell.textContent = formatDuration(now - Number(cell.dataset.receivedAt));
    }
  }

  function redrawQueue() {
    for (const entry of app.cases.values()) entry.dirty = true;
    drawQueue();
  }

  function openStream() {
    const stream = new EventSource('/api/stream');
    app.stream = stream;
    stream.addEventListener('snapshot', (event) => onStreamMessage('snapshot', event));
    stream.addEventListener('batch', (event) => onStreamMessage('batch', event));
    stream.addEventListener('open', () => setConnection(true));
    stream.addEventListener('error', () => {
      setConnection(false);
      // A stream the server refused (the session ended) is not retried by the browser: find out why.
      if (stream.readyState === EventSource.CLOSED) {
        api('GET', '/api/me').then(() => setTimeout(openStream, 2000), () => {});
      }
    });
  }

  function setConnection(live) {
    const node = $('connection');
    node.textContent = live ? t('connection.live') : t('connection.lost');
    node.classList.toggle('lost', !live);
    node.dataset.live = live ? 'yes' : 'no';
  }

  // ---- one case -----------------------------------------------------------------------------------------
  function selectCase(id) {
    app.selected = id;
    app.detail = null;
    for (const entry of app.cases.values()) if (entry.tr) entry.tr.classList.toggle('selected', entry.row.id === id);
    $('case-detail').hidden = false;
    $('case-detail').dataset.caseId = String(id);
    $('dispatch-note').value = '';
    showError($('action-error'), '');
    drawDetail();
    loadDetail();
  }

  // One request at a time; a change during it asks for one more.
  function loadDetail() {
    if (app.detailLoading) { app.detailAgain = true; return; }
    const id = app.selected;
    if (id === null) return;
    app.detailLoading = true;
    api('GET', '/api/cases/' + encodeURIComponent(id)).then((detail) => {
      if (app.selected === id) { app.detail = detail; drawDetail(); }
    }, (error) => {
      if (app.selected === id) showError($('action-error'), errorText(error));
    }).finally(() => {
      app.detailLoading = false;
      if (app.detailAgain) { app.detailAgain = false; loadDetail(); }
    });
  }

  function definitions(node, pairs) {
    node.replaceChildren();
    for (const [key, value] of pairs) {
      if (value === null || value === undefined || value === '') continue;
      node.append(el('dt', t(key)), el('dd', value));
    }
  }

  function drawDetail() {
    const detail = app.detail;
    const id = app.selected;
    if (id === null) return;
    $('case-title').textContent = t('detail.title', { id: id });
    const row = detail ? detail.case : (app.cases.get(id) || {}).row;
    if (!row) { $('case-summary').textContent = t('detail.loading'); return; }
    $('case-detail').dataset.state = row.state;
    $('case-summary').textContent = t('detail.summary', {
      kind: tValue('kind', row.kind), state: tValue('state', row.state),
      pressed: formatTime(row.pressedAt), received: formatTime(row.receivedAt), late: formatLate(row),
    });
    $('case-taken-by').textContent = row.takenBy ? t('detail.takenBy', { name: takenByText(row.takenBy) }) : t('detail.notTaken');
    const resident = detail ? detail.resident : null;
    if (resident) {
      definitions($('case-resident'), [
        ['resident.name', resident.name], ['resident.address', resident.address],
        ['resident.contacts', resident.contacts], ['resident.notes', resident.notes],
      ]);
    } else {
      definitions($('case-resident'), [['resident.name', t('resident.unknown')]]);
    }
    const device = detail ? detail.device : null;
    definitions($('case-device'), [
      ['col.device', String(row.device)],
      ['col.model', (device && device.model) || row.model],
      ['col.firmware', device && device.firmware],
      ['col.link', row.online ? t('link.online') : t('link.offline')],
      ['col.lastHeard', device ? formatTime(device.lastHeard) : null],
      ['col.power', formatPower(row.battery, row.onBattery)],
      ['col.call', tValue('call', row.call)],
      ['col.attention', device && Array.isArray(device.attention) && device.attention.length
        ? device.attention.map((reason) => tValue('attention', reason)).join(', ') : null],
      ['detail.flags', Array.isArray(row.flags) && row.flags.length ? row.flags.map((flag) => tValue('flag', flag)).join(', ') : null],
    ]);
    const history = $('case-history');
    history.replaceChildren();
    for (const entry of detail && Array.isArray(detail.history) ? detail.history : []) {
      const item = el('li');
      item.append(el('time', formatTime(entry.at)), el('span', ' ' + tValue('what', entry.what), 'what'));
      if (entry.by) item.append(el('span', ' · ' + takenByText(entry.by), 'by'));
      if (entry.note) item.append(el('q', entry.note, 'note'));
      history.append(item);
    }
    const closed = row.state === 'closed';
    const mine = app.me && row.takenBy === app.me.name;
    $('action-take').disabled = closed || mine;
    $('action-call').disabled = closed || !mine || !['none'].includes(row.call);
    $('action-hangup').disabled = closed || !mine || row.call === 'none';
    $('action-dispatch').disabled = closed || !mine;
    $('action-close').disabled = closed || !mine;
    $('dispatch-note').disabled = closed;
  }

  async function act(action) {
    const id = app.selected;
    if (id === null) return;
    const note = $('dispatch-note').value.trim();
    let body;
    if (action === 'dispatch') {
      if (!note) { showError($('action-error'), t('error.noteRequired')); $('dispatch-note').focus(); return; }
      body = { note };
    } else if (action === 'close') {
      body = note ? { note } : {};
    }
    showError($('action-error'), '');
    const button = $('action-' + action);
    button.disabled = true;
    try {
      await api('POST', '/api/cases/' + encodeURIComponent(id) + '/' + action, body);
      if (action === 'dispatch' || action === 'close') $('dispatch-note').value = '';
    } catch (error) {
      if (app.selected === id) showError($('action-error'), errorText(error));
    }
    loadDetail();
  }

  // ---- devices ------------------------------------------------------------------------------------------
  let devicesTimer = null;
  async function loadDevices() {
    const filter = $('devices-filter').value;
    const query = $('devices-search').value.trim();
    try {
      const data = await api('GET', '/api/devices?filter=' + encodeURIComponent(filter) + '&q=' + encodeURIComponent(query));
      app.devicesRows = listOf(data, 'devices');
      app.devicesMore = (data && typeof data.more === 'number') ? data.more : 0;
      drawDevices();
      showError($('page-error'), '');
    } catch (error) {
      showError($('page-error'), errorText(error));
    }
  }

  function yesNo(value, yes, no) {
    if (value === null || value === undefined) return t('value.unknown');
    return value ? t(yes) : t(no);
  }

  function drawDevices() {
    const body = document.querySelector('#devices tbody');
    body.replaceChildren();
    for (const device of app.devicesRows) {
      const tr = el('tr', null, 'device');
      tr.dataset.deviceId = String(device.device);
      tr.classList.toggle('attention', Array.isArray(device.attention) && device.attention.length > 0);
      const battery = device.battery === null || device.battery === undefined ? t('value.unknown')
        : device.battery + '%' + (device.batteryLow ? ' ' + t('battery.low') : '');
      tr.append(
        el('td', String(device.device)),
        el('td', device.online ? t('link.online') : t('link.offline'), device.online ? 'online' : 'offline-text'),
        el('td', formatTime(device.lastHeard)),
        el('td', battery),
        el('td', yesNo(device.mains, 'mains.present', 'mains.lost')),
        el('td', yesNo(device.button, 'button.present', 'button.missing')),
        el('td', device.firmware === null || device.firmware === undefined ? t('value.unknown') : device.firmware),
        el('td', device.model === null || device.model === undefined ? t('value.unknown') : device.model),
        el('td', device.resident ? residentText(device.resident) : '—'),
        el('td', Array.isArray(device.attention) ? device.attention.map((reason) => tValue('attention', reason)).join(', ') : ''));
      body.append(tr);
    }
    $('devices-more').hidden = !app.devicesMore;
    $('devices-more').textContent = t('queue.more', { n: app.devicesMore });
  }

  // ---- history ------------------------------------------------------------------------------------------
  async function loadHistory(before) {
    const query = $('history-search').value.trim();
    let path = '/api/history?q=' + encodeURIComponent(query);
    if (before !== null && before !== undefined) path += '&before=' + encodeURIComponent(before);
    try {
      const data = await api('GET', path);
      app.historyRows = listOf(data, 'cases');
      app.historyNext = data && data.next !== undefined ? data.next : null;
      drawHistory();
      showError($('page-error'), '');
    } catch (error) {
      showError($('page-error'), errorText(error));
    }
  }

  function drawHistory() {
    const body = document.querySelector('#history tbody');
    body.replaceChildren();
    for (const row of app.historyRows) {
      const tr = el('tr');
      tr.dataset.caseId = String(row.id);
      tr.append(el('td', '#' + row.id), el('td', formatTime(row.receivedAt)), el('td', String(row.device)),
        el('td', row.resident ? residentText(row.resident) : '—'), el('td', tValue('kind', row.kind)),
        el('td', tValue('state', row.state)), el('td', row.takenBy ? takenByText(row.takenBy) : '—'));
      tr.addEventListener('click', () => { showView('queue'); selectCase(row.id); });
      body.append(tr);
    }
    $('history-older').disabled = app.historyNext === null;
    $('history-newer').disabled = app.historyPages.length === 0;
  }

  // ---- admin --------------------------------------------------------------------------------------------
  async function loadOperators() {
    try {
      app.operatorsRows = listOf(await api('GET', '/api/operators'), 'operators');
      drawOperators();
    } catch (error) {
      showError($('admin-error'), errorText(error));
    }
  }

  function drawOperators() {
    const body = document.querySelector('#operators tbody');
    body.replaceChildren();
    for (const account of app.operatorsRows) {
      const tr = el('tr');
      tr.dataset.name = account.name;
      const disabled = account.disabled === true || account.active === false;
      const cell = el('td');
      if (!disabled && !(app.me && account.name === app.me.name)) {
        const button = el('button', t('admin.disable'));
        button.type = 'button';
        button.className = 'disable';
        button.addEventListener('click', () => disableOperator(account.name));
        cell.append(button);
      }
      tr.append(el('td', account.name), el('td', tValue('role', account.role)), el('td', tValue('language', account.language)),
        el('td', disabled ? t('admin.disabled') : t('admin.active')), cell);
      body.append(tr);
    }
  }

  async function disableOperator(name) {
    showError($('admin-error'), '');
    try {
      await api('POST', '/api/operators/' + encodeURIComponent(name) + '/disable');
    } catch (error) {
      showError($('admin-error'), errorText(error));
    }
    loadOperators();
  }

  async function addOperator() {
    showError($('admin-error'), '');
    const account = {
      name: $('new-operator-name').value.trim(), password: $('new-operator-password').value,
      role: $('new-operator-role').value, language: $('new-operator-language').value,
    };
    if (!account.name || !account.password) { showError($('admin-error'), t('error.nameAndPassword')); return; }
    try {
      await api('POST', '/api/operators', account);
      $('new-operator-name').value = '';
      $('new-operator-password').value = '';
    } catch (error) {
      showError($('admin-error'), errorText(error));
    }
    loadOperators();
  }

  async function importRegistry() {
    const result = $('registry-result');
    result.replaceChildren();
    const text = $('registry-csv').value;
    if (!text.trim()) { result.append(el('p', t('error.csvEmpty'), 'error')); return; }
    try {
      const data = await api('POST', '/api/registry', text, 'text/csv; charset=utf-8');
      result.append(el('p', t('admin.imported', { n: data && typeof data.imported === 'number' ? data.imported : 0 }), 'ok'));
    } catch (error) {
      const rows = error instanceof HTTPError && Array.isArray(error.body.rows) ? error.body.rows : [];
      result.append(el('p', rows.length ? t('admin.importRefused', { n: rows.length }) : errorText(error), 'error'));
      const list = el('ul', null, 'errors');
      for (const row of rows) list.append(el('li', t('admin.lineError', { line: row.line, error: row.error })));
      if (rows.length) result.append(list);
    }
  }

  // ---- views and language -------------------------------------------------------------------------------
  function showView(view) {
    app.view = view;
    for (const section of document.querySelectorAll('main > .view')) section.hidden = section.id !== 'view-' + view;
    for (const tab of document.querySelectorAll('#tabs [role=tab]')) {
      tab.setAttribute('aria-selected', tab.dataset.view === view ? 'true' : 'false');
    }
    if (view === 'devices') loadDevices();
    if (view === 'history') { app.historyPages = []; loadHistory(null); }
    if (view === 'admin') loadOperators();
  }

  function renderAll() {
    translateStatic();
    $('operator-name').textContent = app.me.name;
    $('language-select').value = app.lang;
    setConnection(app.stream ? app.stream.readyState === EventSource.OPEN : false);
    redrawQueue();
    drawDetail();
    drawDevices();
    drawHistory();
    drawOperators();
  }

  async function changeLanguage() {
    const language = $('language-select').value;
    try {
      await api('PUT', '/api/me/language', { language });
      app.lang = language;
      app.me.language = language;
      renderAll();
    } catch (error) {
      $('language-select').value = app.lang;
      showError($('page-error'), errorText(error));
    }
  }

  async function logout() {
    try { await api('POST', '/logout'); } catch (_) { /* the session is gone either way */ }
    window.location.assign('/login');
  }

  async function start() {
    let catalogue;
    try {
      [app.me, catalogue] = await Promise.all([api('GET', '/api/me'), api('GET', '/assets/catalogue.json')]);
    } catch (error) {
      if (!(error instanceof HTTPError && error.status === 401)) {
        showError($('page-error'), 'The console could not start / 控制台无法启动: ' + error.message);
      }
      return;
    }
    app.catalogue = catalogue;
    app.lang = app.me.language === 'zh' ? 'zh' : 'en';
    $('tab-admin').hidden = app.me.role !== 'supervisor';
    for (const tab of document.querySelectorAll('#tabs [role=tab]')) tab.addEventListener('click', () => showView(tab.dataset.view));
    $('language-select').addEventListener('change', changeLanguage);
    $('logout').addEventListener('click', logout);
    for (const action of ['take', 'call', 'hangup', 'dispatch', 'close']) {
      $('action-' + action).addEventListener('click', () => act(action));
    }
    $('devices-filter').addEventListener('change', loadDevices);
    $('devices-search').addEventListener('input', () => { clearTimeout(devicesTimer); devicesTimer = setTimeout(loadDevices, 300); });
    let historyTimer = null;
    $('history-search').addEventListener('input', () => {
      clearTimeout(historyTimer);
      historyTimer = setTimeout(() => { app.historyPages = []; loadHistory(null); }, 300);
    });
    $('history-older').addEventListener('click', () => {
      if (app.historyNext === null) return;
      app.historyPages.push(app.historyNext);
      loadHistory(app.historyNext);
    });
    $('history-newer').addEventListener('click', () => {
      app.historyPages.pop();
      loadHistory(app.historyPages.length ? app.historyPages[app.historyPages.length - 1] : null);
    });
    $('registry-file').addEventListener('change', async () => {
      const file = $('registry-file').files[0];
      if (file) $('registry-csv').value = await file.text();
    });
    $('registry-import').addEventListener('click', importRegistry);
    $('new-operator-add').addEventListener('click', addOperator);
    setUpSound();
    renderAll();
    showView('queue');
    openStream();
    setInterval(tickAges, 1000);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
