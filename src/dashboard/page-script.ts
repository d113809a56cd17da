// The dashboard's browser script (plain ES2017, no build step), kept in a string served inline.
// State: runs by id, each with its metrics rows, per-rank rows and bad lines. Charts are uPlot
// instances, one per metric, with one series per run (two for loss: train and val); they are
// rebuilt only when the set of series changes and otherwise get new data in place.
export const PAGE_SCRIPT = String.raw`
(function () {
'use strict';
var PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
var CHARTS = [
  { id: 'loss', title: 'loss (solid: train, dashed: val)', keys: [{ key: 'loss', label: 'train', smooth: true }, { key: 'val_loss', label: 'val', dash: true }] },
  { id: 'lr', title: 'learning rate', keys: [{ key: 'lr' }] },
  { id: 'tokens', title: 'tokens / s', keys: [{ key: 'tokens_per_s', smooth: true }] },
  { id: 'mfu', title: 'MFU', keys: [{ key: 'mfu', smooth: true }] },
  { id: 'grad', title: 'gradient norm', keys: [{ key: 'grad_norm', smooth: true }] },
  { id: 'memory', title: 'memory (RSS, MB)', keys: [{ key: 'rss_mb' }] },
  { id: 'ranks', title: 'per-rank step time, ms (compute before the first wait on other ranks)', ranks: true }
];
var runs = {};
var plots = {};
var smoothing = 0.6;
var dirty = false;

function color(id) { return PALETTE[id % PALETTE.length]; }

function applyUpdate(u) {
  var r = runs[u.run];
  if (u.reset || !r) {
    // updates counts rows that arrived live after the snapshot (what makes the page "live").
    r = runs[u.run] = { info: u.info || (r && r.info), rows: [], ranks: {}, bad: [], badCount: 0, snapshotRows: u.rows.length, updates: 0 };
  } else r.updates += u.rows.length;
  if (u.info) r.info = u.info;
  Array.prototype.push.apply(r.rows, u.rows);
  Object.keys(u.ranks || {}).forEach(function (k) {
    r.ranks[k] = (r.ranks[k] || []).concat(u.ranks[k]);
  });
  if (u.reset) { r.bad = u.bad.slice(); r.badCount = u.badCount || u.bad.length; }
  else { Array.prototype.push.apply(r.bad, u.bad); r.badCount += u.bad.length; }
  schedule();
}

function schedule() {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(function () { dirty = false; render(); });
}

/** TensorBoard's smoothing: an exponential moving average, debiased at the start. */
function smooth(ys) {
  if (!(smoothing > 0)) return ys;
  var out = [], last = 0, n = 0;
  for (var i = 0; i < ys.length; i++) {
    var y = ys[i];
    if (y === null || y === undefined || !isFinite(y)) { out.push(y === undefined ? null : y); continue; }
    last = last * smoothing + (1 - smoothing) * y;
    n++;
    out.push(last / (1 - Math.pow(smoothing, n)));
  }
  return out;
}

function runIds() { return Object.keys(runs).map(Number).sort(function (a, b) { return a - b; }); }

/** One curve: [iters, values] from rows that have the key. */
function curve(rows, key) {
  var xs = [], ys = [];
  rows.forEach(function (row) {
    var v = row[key];
    if (typeof v === 'number' && isFinite(v)) { xs.push(row.iter); ys.push(v); }
  });
  return [xs, ys];
}

/** The curves of a chart as uPlot wants them: one shared, sorted x and a y per series. */
function chartData(spec) {
  var series = [];
  runIds().forEach(function (id) {
    var r = runs[id];
    var name = r.info ? r.info.name : 'run ' + id;
    if (spec.ranks) {
      Object.keys(r.ranks).sort(function (a, b) { return a - b; }).forEach(function (rank, j) {
        var rows = r.ranks[rank];
        var key = rows.some(function (x) { return typeof x.compute_ms === 'number'; }) ? 'compute_ms' : 'step_ms';
        var c = curve(rows, key);
        series.push({ label: name + ' rank ' + rank, color: PALETTE[(id * 3 + j) % PALETTE.length], xs: c[0], ys: spec.smoothAll === false ? c[1] : smooth(c[1]) });
      });
      return;
    }
    spec.keys.forEach(function (k) {
      var c = curve(r.rows, k.key);
      if (!c[0].length) return;
      series.push({ label: name + (k.label ? ' ' + k.label : ''), color: color(id), dash: k.dash, xs: c[0], ys: k.smooth ? smooth(c[1]) : c[1] });
    });
  });
  var all = {};
  series.forEach(function (s) { s.xs.forEach(function (x) { all[x] = true; }); });
  var xs = Object.keys(all).map(Number).sort(function (a, b) { return a - b; });
  var at = {};
  xs.forEach(function (x, i) { at[x] = i; });
  var data = [xs];
  series.forEach(function (s) {
    var ys = xs.map(function () { return null; });
    s.xs.forEach(function (x, i) { ys[at[x]] = s.ys[i]; });
    data.push(ys);
  });
  return { series: series, data: data };
}

function ensureBox(spec) {
  var box = document.getElementById('chart-' + spec.id);
  if (box) return box;
  box = document.createElement('div');
  box.className = 'chart';
  box.id = 'chart-' + spec.id;
  var h = document.createElement('h2');
  h.textContent = spec.title;
  box.appendChild(h);
  var body = document.createElement('div');
  body.className = 'body';
  box.appendChild(body);
  document.getElementById('charts').appendChild(box);
  return box;
}

function renderChart(spec) {
  var box = ensureBox(spec);
  var body = box.querySelector('.body');
  var cd = chartData(spec);
  var shape = cd.series.map(function (s) { return s.label; }).join('|');
  box.dataset.points = String(cd.data[0].length);
  box.dataset.series = JSON.stringify(cd.series.map(function (s) { return { label: s.label, points: s.xs.length }; }));
  if (!cd.series.length) {
    if (plots[spec.id]) { plots[spec.id].plot.destroy(); delete plots[spec.id]; }
    body.innerHTML = '<div class="empty">' + (spec.ranks ? 'no per-rank times (a single-process run)' : 'no data yet') + '</div>';
    return;
  }
  var p = plots[spec.id];
  if (p && p.shape === shape) { p.plot.setData(cd.data); return; }
  if (p) p.plot.destroy();
  body.innerHTML = '';
  var opts = {
    width: Math.max(480, box.clientWidth - 14),
    height: 240,
    scales: { x: { time: false } },
    axes: [{ label: 'iteration' }, { size: 64, values: function (u, vals) { return vals.map(tick); } }],
    series: [{ label: 'iter' }].concat(cd.series.map(function (s) {
      return { label: s.label, stroke: s.color, width: 1.5, dash: s.dash ? [6, 4] : undefined, spanGaps: true, points: { show: false } };
    }))
  };
  plots[spec.id] = { shape: shape, plot: new uPlot(opts, cd.data, body) };
}

/** Axis numbers that fit: 12k, 0.35, 3.0e-4. */
function tick(v) {
  if (v === null || v === undefined) return '';
  var a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e6) return +(v / 1e6).toPrecision(3) + 'M';
  if (a >= 1e4) return +(v / 1e3).toPrecision(3) + 'k';
  if (a < 0.01) return v.toExponential(1);
  return String(+v.toPrecision(4));
}

function fmt(v, digits) {
  if (typeof v !== 'number' || !isFinite(v)) return '—';
  return digits === undefined ? String(v) : v.toFixed(digits);
}

function lastOf(rows, key) {
  for (var i = rows.length - 1; i >= 0; i--) if (typeof rows[i][key] === 'number') return rows[i][key];
  return null;
}

function cell(tr, text, cls, value) {
  var td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  if (value !== undefined) td.dataset.value = value === null ? '' : String(value);
  tr.appendChild(td);
  return td;
}

function settingsText(s) {
  if (!s) return 'not written yet';
  var c = s.config || {}, h = s.hyper || {};
  var parts = [];
  if (c.nLayer !== undefined) parts.push(c.nLayer + ' layers × ' + c.nEmbd + ' wide, ' + c.nHead + ' heads, context ' + c.blockSize);
  if (h.batchSize !== undefined) parts.push('batch ' + h.batchSize + ' × ' + h.gradAccum + ', lr ' + h.lr + ', ' + h.maxIters + ' iters');
  if (s.world !== undefined) parts.push(s.world + ' rank' + (s.world === 1 ? '' : 's'));
  return parts.join('; ');
}

function renderTable() {
  var tbody = document.querySelector('#runs tbody');
  tbody.innerHTML = '';
  runIds().forEach(function (id) {
    var r = runs[id];
    var tr = document.createElement('tr');
    tr.dataset.run = String(id);
    tr.dataset.rows = String(r.rows.length);
    var sw = document.createElement('td');
    sw.innerHTML = '<span class="swatch" style="background:' + color(id) + '"></span>';
    tr.appendChild(sw);
    cell(tr, r.info ? r.info.name : 'run ' + id, 'name').title = r.info ? r.info.dir : '';
    var lastIter = r.rows.length ? r.rows[r.rows.length - 1].iter : null;
    cell(tr, fmt(lastIter), 'num iter', lastIter);
    var loss = lastOf(r.rows, 'loss'), val = lastOf(r.rows, 'val_loss');
    cell(tr, fmt(loss, 4), 'num loss', loss);
    cell(tr, fmt(val, 4), 'num val-loss', val);
    var tps = lastOf(r.rows, 'tokens_per_s'), mfu = lastOf(r.rows, 'mfu'), mem = lastOf(r.rows, 'rss_mb');
    cell(tr, fmt(tps), 'num tokens', tps);
    cell(tr, mfu === null ? '—' : (mfu * 100).toFixed(1) + '%', 'num mfu', mfu);
    cell(tr, fmt(mem), 'num memory', mem);
    var td = cell(tr, '', 'settings');
    var summary = document.createElement('div');
    summary.textContent = settingsText(r.info && r.info.settings);
    td.appendChild(summary);
    if (r.info && r.info.settings) {
      var d = document.createElement('details');
      d.innerHTML = '<summary>all settings</summary>';
      var pre = document.createElement('pre');
      pre.textContent = JSON.stringify(r.info.settings, null, 2);
      d.appendChild(pre);
      td.appendChild(d);
    }
    tbody.appendChild(tr);
  });
}

function renderWarnings() {
  var ul = document.getElementById('warnings');
  ul.innerHTML = '';
  runIds().forEach(function (id) {
    var r = runs[id];
    var name = r.info ? r.info.name : 'run ' + id;
    r.bad.forEach(function (b) {
      var li = document.createElement('li');
      li.className = 'bad-line';
      li.textContent = name + ': ' + b.file + ' line ' + b.line + ': ' + b.error + ' (skipped)';
      ul.appendChild(li);
    });
    if (r.badCount > r.bad.length) {
      var li = document.createElement('li');
      li.textContent = name + ': ' + (r.badCount - r.bad.length) + ' more bad lines';
      ul.appendChild(li);
    }
  });
}

function render() {
  renderTable();
  renderWarnings();
  CHARTS.forEach(renderChart);
}

var slider = document.getElementById('smoothing');
slider.addEventListener('input', function () {
  smoothing = Number(slider.value);
  document.getElementById('smoothing-value').textContent = smoothing.toFixed(2);
  schedule();
});

var statusEl = document.getElementById('status');
var es = new EventSource('/events');
es.addEventListener('open', function () { statusEl.textContent = 'live'; statusEl.className = 'live'; });
es.addEventListener('error', function () { statusEl.textContent = 'disconnected, retrying…'; statusEl.className = ''; });
es.addEventListener('snapshot', function (e) { applyUpdate(JSON.parse(e.data)); });
es.addEventListener('update', function (e) { applyUpdate(JSON.parse(e.data)); });
window.atscaleDashboard = { runs: runs, plots: plots };
})();
`;
