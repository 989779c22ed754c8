using System.Net;
using System.Text.Json.Nodes;

namespace Naani.Vision;

/// The training dashboard: one HTML page, its script and style inline, no network beyond the server it came from.
/// Live (naani train --dashboard): it reads the TrainingMonitor's state from "state" and its changes from "events"
/// (Server-Sent Events) relative to its own address. Saved (report.html): the final state is embedded in the page,
/// followed by the report's tables (TrainingReport), and it opens from file:// with nothing to fetch.
/// The page shows the progress (epoch, step, images/s, ETA), the loss and accuracy of every batch (raw, and smoothed
/// as TensorBoard smooths: a debiased exponential moving average with a slider) with each epoch's training and
/// validation figures, the epochs as a table, the confusion matrix after any epoch (a slider), and a grid of
/// validation images with the predicted and true classes, wrong ones marked.
/// For tests and scripts, window.naaniDashboard exposes the state and counts of what has been drawn.
public static class DashboardPage
{
    /// The live page: it loads its state from the server.
    public static string Live(string title) => Render(title, state: null, reportHtml: null);

    /// A saved page: state embedded, reportHtml (trusted HTML, the report's sections) below the dashboard.
    public static string Saved(string title, JsonObject state, string? reportHtml = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        return Render(title, state, reportHtml);
    }

    static string Render(string title, JsonObject? state, string? reportHtml)
    {
        // System.Text.Json escapes <, > and & inside strings, so the JSON cannot end the script element it sits in.
        string json = state?.ToJsonString() ?? "";
        return Template
            .Replace("@TITLE@", WebUtility.HtmlEncode(title), StringComparison.Ordinal)
            .Replace("@LIVE@", state is null ? "1" : "0", StringComparison.Ordinal)
            .Replace("@STYLE@", Style, StringComparison.Ordinal)
            .Replace("@REPORT@", reportHtml ?? "", StringComparison.Ordinal)
            .Replace("@SCRIPT@", Script, StringComparison.Ordinal)
            .Replace("@VIRIDIS@", Convert.ToBase64String(Colormaps.Table(Colormap.Viridis)), StringComparison.Ordinal)
            .Replace("@STATE@", json, StringComparison.Ordinal);
    }

    /// The style the dashboard and the report share.
    public const string Style = """
        body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1180px; color: #222; padding: 0 1em; }
        h1 { font-size: 1.5em; margin: 0.2em 0; }
        h2 { font-size: 1.2em; margin: 1.4em 0 0.5em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
        th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        th { background: #f3f3f3; }
        td.diagonal { background: #dff0d8; font-weight: bold; }
        pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
        img { max-width: 100%; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
        .score { font-size: 1.3em; }
        .badge { display: inline-block; padding: 0.1em 0.6em; border-radius: 1em; background: #888; color: #fff; font-size: 0.85em; vertical-align: middle; }
        .badge.training { background: #1f77b4; } .badge.finished { background: #2ca02c; } .badge.stopped, .badge.disconnected { background: #d62728; }
        .bar { height: 10px; background: #eee; border-radius: 5px; overflow: hidden; margin: 0.6em 0; }
        .bar > div { height: 100%; width: 0; background: #1f77b4; transition: width 0.2s; }
        .figures span { margin-right: 1.4em; white-space: nowrap; }
        .charts { display: flex; flex-wrap: wrap; gap: 1em; }
        .charts figure { margin: 0; }
        figcaption { font-size: 0.85em; color: #555; }
        .controls { margin: 0.4em 0; font-size: 0.9em; }
        .grid { display: flex; flex-wrap: wrap; gap: 8px; }
        .grid figure { margin: 0; width: 96px; text-align: center; font-size: 0.75em; border: 3px solid #2ca02c; border-radius: 4px; padding: 3px; }
        .grid figure.wrong { border-color: #d62728; background: #fdecea; }
        .grid figure.unknown { border-color: #ccc; }
        .grid img { width: 84px; height: 84px; image-rendering: pixelated; display: block; margin: 0 auto 2px; }
        .muted { color: #777; }
        """;

    const string Template = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>@TITLE@</title>
        <style>
        @STYLE@
        </style></head>
        <body data-live="@LIVE@">
        <h1><span id="title">@TITLE@</span> <span id="status" class="badge">waiting</span></h1>
        <div class="bar"><div id="progress-bar"></div></div>
        <div class="figures" id="figures"><span class="muted">waiting for the first batch</span></div>
        <h2>Loss and accuracy, batch by batch</h2>
        <div class="controls"><label>smoothing <input type="range" id="smoothing" min="0" max="0.99" step="0.01" value="0.8"> <span id="smoothing-value">0.80</span></label>
        <span class="muted">faint: each batch; bold: smoothed; dots: each epoch (training), squares: validation</span></div>
        <div class="charts">
        <figure><canvas id="loss-chart" width="560" height="300"></canvas><figcaption>loss</figcaption></figure>
        <figure><canvas id="accuracy-chart" width="560" height="300"></canvas><figcaption>accuracy</figcaption></figure>
        </div>
        <h2>Epochs</h2>
        <table id="epochs"><tr><th>epoch</th></tr></table>
        <h2>Confusion matrix on the validation data</h2>
        <div class="controls"><label>after epoch <input type="range" id="confusion-epoch" min="1" max="1" step="1" value="1"> <span id="confusion-epoch-value">-</span></label>
        <span class="muted">rows: actual class, columns: predicted; colour: share of the actual class</span></div>
        <canvas id="confusion" width="520" height="420"></canvas>
        <h2>Validation images</h2>
        <p class="muted" id="grid-caption">predicted class (probability) above, true class below; red: wrong</p>
        <div class="grid" id="grid"></div>
        @REPORT@
        <script type="application/json" id="naani-state">@STATE@</script>
        <script>
        @SCRIPT@
        </script>
        </body></html>

        """;

    const string Script = """
        (() => {
          'use strict';
          const $ = id => document.getElementById(id);
          const live = document.body.dataset.live === '1';
          const embedded = $('naani-state').textContent.trim();
          let state = embedded ? JSON.parse(embedded) : null;
          let ended = !live;
          const drawn = { charts: 0, confusion: 0, grid: 0 };
          const COLORS = { train: '#1f77b4', validation: '#ff7f0e' };
          const num = v => (typeof v === 'number' && isFinite(v)) ? v : NaN;
          const fmt = (v, d) => isFinite(num(v)) ? num(v).toFixed(d) : '-';

          function duration(s) {
            s = Math.max(0, Math.round(num(s) || 0));
            const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
            return (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(r).padStart(2, '0');
          }

          function smooth(values, weight) {
            const out = new Array(values.length);
            let last = 0, n = 0;
            for (let i = 0; i < values.length; i++) {
              const v = num(values[i]);
              if (!isFinite(v)) { out[i] = NaN; continue; }
              last = last * weight + (1 - weight) * v; n++;
              out[i] = weight === 0 ? v : last / (1 - Math.pow(weight, n));
            }
            return out;
          }

          function niceTicks(lo, hi, count) {
            const span = hi - lo || 1, raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
            const step = [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => span / s <= count) || 10 * mag;
            const ticks = [];
            for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toFixed(10));
            return ticks;
          }

          // series: [{xs, ys, color, width, alpha, marker: 'dot'|'square'|null, line}]
          function lineChart(canvas, series, xMax, yLabel) {
            const ctx = canvas.getContext('2d'), W = canvas.width, H = canvas.height;
            const L = 56, R = 12, T = 12, B = 40;
            ctx.clearRect(0, 0, W, H);
            ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, H);
            let lo = Infinity, hi = -Infinity;
            for (const s of series) for (const y of s.ys) { const v = num(y); if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
            if (!isFinite(lo)) { lo = 0; hi = 1; }
            if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
            const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
            const xm = Math.max(1, xMax);
            const px = x => L + (W - L - R) * x / xm, py = y => T + (H - T - B) * (1 - (y - lo) / (hi - lo));
            ctx.strokeStyle = '#e5e5e5'; ctx.fillStyle = '#444'; ctx.font = '11px sans-serif'; ctx.lineWidth = 1;
            ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
            for (const t of niceTicks(lo, hi, 5)) {
              ctx.beginPath(); ctx.moveTo(L, py(t)); ctx.lineTo(W - R, py(t)); ctx.stroke();
              ctx.fillText(+t.toPrecision(4) + '', L - 6, py(t));
            }
            ctx.textAlign = 'center'; ctx.textBaseline = 'top';
            for (const t of niceTicks(0, xm, Math.min(10, Math.max(2, Math.ceil(xm))))) {
              ctx.beginPath(); ctx.moveTo(px(t), T); ctx.lineTo(px(t), H - B); ctx.stroke();
              ctx.fillText(+t.toPrecision(4) + '', px(t), H - B + 5);
            }
            ctx.fillText('epoch', L + (W - L - R) / 2, H - 16);
            ctx.save(); ctx.translate(14, T + (H - T - B) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(yLabel, 0, -6); ctx.restore();
            ctx.strokeStyle = '#999'; ctx.strokeRect(L, T, W - L - R, H - T - B);
            for (const s of series) {
              ctx.globalAlpha = s.alpha ?? 1; ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = s.width ?? 1.5;
              if (s.line !== false) {
                ctx.beginPath(); let pen = false;
                for (let i = 0; i < s.xs.length; i++) {
                  const y = num(s.ys[i]);
                  if (!isFinite(y)) { pen = false; continue; }
                  if (pen) ctx.lineTo(px(s.xs[i]), py(y)); else { ctx.moveTo(px(s.xs[i]), py(y)); pen = true; }
                }
                ctx.stroke();
              }
              if (s.marker) for (let i = 0; i < s.xs.length; i++) {
                const y = num(s.ys[i]);
                if (!isFinite(y)) continue;
                ctx.beginPath();
                if (s.marker === 'square') ctx.rect(px(s.xs[i]) - 4, py(y) - 4, 8, 8); else ctx.arc(px(s.xs[i]), py(y), 4, 0, 2 * Math.PI);
                ctx.fill();
              }
              ctx.globalAlpha = 1;
            }
          }

          function renderCharts() {
            if (!state) return;
            const b = state.batches, w = +$('smoothing').value;
            $('smoothing-value').textContent = w.toFixed(2);
            const epochs = state.epochs || [];
            const ex = epochs.map(e => e.epoch);
            const xMax = Math.max(state.epochs_planned || 1, b.x.length ? b.x[b.x.length - 1] : 0);
            for (const [key, canvas, label] of [['loss', 'loss-chart', 'loss'], ['accuracy', 'accuracy-chart', 'accuracy']]) {
              const series = [
                { xs: b.x, ys: b[key], color: COLORS.train, width: 1, alpha: 0.25 },
                { xs: b.x, ys: smooth(b[key], w), color: COLORS.train, width: 2 },
                { xs: ex, ys: epochs.map(e => e[key]), color: COLORS.train, marker: 'dot', line: false },
                { xs: ex, ys: epochs.map(e => e['val_' + key]), color: COLORS.validation, marker: 'square', width: 1.5 },
              ];
              lineChart($(canvas), series, xMax, label);
            }
            drawn.charts++;
          }

          function renderProgress() {
            if (!state) return;
            const p = state.progress || {};
            const status = ended && live && p.status === 'training' ? 'disconnected' : (p.status || 'waiting');
            $('status').textContent = status;
            $('status').className = 'badge ' + status.split(' ')[0];
            const planned = state.epochs_planned || 1, steps = p.steps_per_epoch || state.steps_per_epoch || 1;
            const done = p.epoch ? ((p.epoch - 1) + p.step / steps) / planned : 0;
            $('progress-bar').style.width = (p.status === 'finished' ? 100 : Math.min(100, 100 * done)).toFixed(1) + '%';
            if (!p.epoch) return;
            const parts = [
              ['epoch', p.epoch + '/' + planned], ['step', p.step + '/' + steps],
              ['loss', fmt(p.loss, 4)], ['accuracy', fmt(p.accuracy, 4)],
              ['images/s', Math.round(num(p.images_per_second) || 0).toLocaleString('en')],
              ['ETA', p.status === 'training' ? duration(p.eta_seconds) : '-'], ['elapsed', duration(p.elapsed_seconds)],
            ];
            $('figures').innerHTML = '';
            for (const [k, v] of parts) {
              const span = document.createElement('span');
              span.innerHTML = k + ' <b></b>'; span.querySelector('b').textContent = v; span.dataset.key = k;
              $('figures').appendChild(span);
            }
            if (p.message) { const m = document.createElement('span'); m.textContent = p.message; $('figures').appendChild(m); }
          }

          function renderEpochs() {
            if (!state) return;
            const keys = ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'images_per_second', 'seconds'];
            const present = keys.filter(k => state.epochs.some(e => k in e));
            const table = $('epochs');
            table.innerHTML = '';
            const head = table.insertRow();
            for (const k of ['epoch', ...present]) { const th = document.createElement('th'); th.textContent = k; head.appendChild(th); }
            for (const e of state.epochs) {
              const row = table.insertRow();
              row.insertCell().textContent = e.epoch;
              for (const k of present) row.insertCell().textContent = k === 'images_per_second' || k === 'seconds' ? fmt(e[k], 1) : fmt(e[k], 4);
            }
          }

          // Viridis as Naani.Vision's Colormaps draws it (256 RGB triples).
          const VIRIDIS = Uint8Array.from(atob('@VIRIDIS@'), c => c.charCodeAt(0));
          function viridis(t) {
            const q = Math.round(Math.min(1, Math.max(0, t)) * 255);
            return 'rgb(' + VIRIDIS[q * 3] + ',' + VIRIDIS[q * 3 + 1] + ',' + VIRIDIS[q * 3 + 2] + ')';
          }

          function renderConfusion() {
            const canvas = $('confusion'), ctx = canvas.getContext('2d');
            const withMatrix = state ? state.epochs.filter(e => e.confusion) : [];
            const slider = $('confusion-epoch');
            if (!withMatrix.length) { $('confusion-epoch-value').textContent = 'after the first epoch'; return; }
            const following = +slider.max === +slider.value || slider.dataset.touched !== '1';
            slider.max = withMatrix.length;
            if (following) slider.value = withMatrix.length;
            const record = withMatrix[Math.min(withMatrix.length, +slider.value) - 1];
            $('confusion-epoch-value').textContent = record.epoch + ' (' + (record.confusion_samples || 0).toLocaleString('en') + ' images)';
            const m = record.confusion, n = m.length, names = state.class_names || [];
            const named = n <= 30;
            const labels = m.map((_, i) => named && names[i] ? names[i] : String(i));
            ctx.font = (n <= 20 ? 12 : 9) + 'px sans-serif';
            const labelWidth = Math.ceil(Math.max(...labels.map(l => ctx.measureText(l).width))) + 10;
            const cell = Math.max(6, Math.min(44, Math.floor(560 / n)));
            const L = labelWidth + 22, T = labelWidth + 22;
            canvas.width = L + n * cell + 12; canvas.height = T + n * cell + 12;
            ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
            ctx.font = (n <= 20 ? 12 : 9) + 'px sans-serif';
            for (let a = 0; a < n; a++) {
              const total = m[a].reduce((s, v) => s + v, 0);
              for (let p = 0; p < n; p++) {
                const share = total ? m[a][p] / total : 0;
                ctx.fillStyle = viridis(share); ctx.fillRect(L + p * cell, T + a * cell, cell - 1, cell - 1);
                if (n <= 20 && cell >= 24) {
                  ctx.fillStyle = share > 0.6 ? '#000' : '#fff'; ctx.textAlign = 'center'; ctx.textBaseline = 'middle';
                  ctx.fillText(String(m[a][p]), L + p * cell + cell / 2, T + a * cell + cell / 2);
                }
              }
            }
            ctx.fillStyle = '#222';
            if (n <= 60) {
              ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
              labels.forEach((l, i) => ctx.fillText(l, L - 6, T + i * cell + cell / 2));
              labels.forEach((l, i) => { ctx.save(); ctx.translate(L + i * cell + cell / 2, T - 6); ctx.rotate(-Math.PI / 2); ctx.textAlign = 'left'; ctx.fillText(l, 0, 0); ctx.restore(); });
            }
            ctx.font = 'bold 12px sans-serif'; ctx.textAlign = 'center'; ctx.textBaseline = 'top';
            ctx.fillText('predicted', L + n * cell / 2, 2);
            ctx.save(); ctx.translate(2, T + n * cell / 2); ctx.rotate(-Math.PI / 2); ctx.fillText('actual', 0, 0); ctx.restore();
            drawn.confusion++;
          }

          function renderGrid() {
            const grid = $('grid');
            if (!state || !state.grid || !state.grid.images.length) { $('grid-caption').textContent = 'no validation images in this run'; return; }
            const names = state.class_names || [], name = i => names[i] ?? String(i);
            const latest = [...state.epochs].reverse().find(e => e.grid_predictions);
            if (grid.children.length !== state.grid.images.length) {
              grid.innerHTML = '';
              state.grid.images.forEach((src, i) => {
                const f = document.createElement('figure');
                f.innerHTML = '<div class="predicted"></div><img alt=""><div class="actual"></div>';
                f.querySelector('img').src = src;
                f.querySelector('img').alt = 'validation image ' + (i + 1);
                grid.appendChild(f);
              });
            }
            state.grid.images.forEach((_, i) => {
              const f = grid.children[i], truth = state.grid.labels[i];
              f.querySelector('.actual').textContent = 'true: ' + name(truth);
              if (!latest) { f.className = 'unknown'; f.querySelector('.predicted').textContent = 'not predicted yet'; return; }
              const p = latest.grid_predictions[i], c = latest.grid_confidence ? latest.grid_confidence[i] : NaN;
              f.className = p === truth ? 'right' : 'wrong';
              f.querySelector('.predicted').textContent = name(p) + (isFinite(c) ? ' (' + Math.round(100 * c) + '%)' : '');
            });
            $('grid-caption').textContent = 'after epoch ' + (latest ? latest.epoch : '-') + ': predicted class (probability) above, true class below; red: wrong';
            drawn.grid++;
          }

          function renderAll() { renderProgress(); renderCharts(); renderEpochs(); renderConfusion(); renderGrid(); }
          let pending = false;
          function schedule(all) {
            if (pending) return;
            pending = true;
            requestAnimationFrame(() => { pending = false; renderProgress(); renderCharts(); if (all) { renderEpochs(); renderConfusion(); renderGrid(); } });
          }

          $('smoothing').addEventListener('input', renderCharts);
          $('confusion-epoch').addEventListener('input', e => { e.target.dataset.touched = '1'; renderConfusion(); });

          function connect() {
            const source = new EventSource('events');
            source.addEventListener('state', e => { state = JSON.parse(e.data); renderAll(); });
            source.addEventListener('batches', e => {
              if (!state) return;
              const b = JSON.parse(e.data), cols = state.batches;
              if (b.at > cols.x.length) { fetch('state').then(r => r.json()).then(s => { state = s; renderAll(); }); return; }
              for (const k of ['x', 'loss', 'accuracy', 'images_per_second']) { cols[k].length = b.at; cols[k].push(...b[k]); }
              schedule(false);
            });
            source.addEventListener('epoch', e => {
              if (!state) return;
              const r = JSON.parse(e.data);
              state.epochs = state.epochs.filter(x => x.epoch !== r.epoch).concat([r]).sort((a, b) => a.epoch - b.epoch);
              schedule(true);
            });
            source.addEventListener('status', e => { if (state) { state.progress = JSON.parse(e.data); schedule(false); } });
            source.addEventListener('end', () => { ended = true; source.close(); schedule(true); });
            source.onerror = () => { if (!ended && state) { $('status').textContent = 'reconnecting'; } };
          }

          window.naaniDashboard = {
            get state() { return state; },
            batches: () => state ? state.batches.x.length : 0,
            epochs: () => state ? state.epochs.length : 0,
            drawn,
          };
          if (live) connect(); else renderAll();
        })();
        """;
}
