// The dashboard page: one HTML document with its script inline, uPlot loaded from the same
// server. It keeps every run's rows in memory, merges server-sent updates, and redraws at most
// once per animation frame. The script avoids template literals so it can live in this string.
import { PAGE_SCRIPT } from './page-script.js';

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0 16px 24px; color: #222; background: #fafafa; }
header { display: flex; gap: 24px; align-items: center; flex-wrap: wrap; padding: 10px 0; border-bottom: 1px solid #ddd; }
h1 { font-size: 18px; margin: 0; }
#status { color: #777; }
#status.live { color: #1a7f37; }
#warnings:empty { display: none; }
#warnings { background: #fff4e5; border: 1px solid #f0b35a; padding: 8px 12px; margin: 12px 0; }
#warnings li { font-family: ui-monospace, monospace; font-size: 12px; }
table { border-collapse: collapse; margin: 12px 0; background: #fff; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
.settings { font-size: 12px; color: #444; }
details pre { font-size: 11px; max-height: 240px; overflow: auto; }
#charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 12px; }
.chart { background: #fff; border: 1px solid #ddd; padding: 6px; }
.chart h2 { font-size: 13px; margin: 0 0 4px; font-weight: 600; }
.chart .empty { color: #999; font-size: 12px; padding: 40px 0; text-align: center; }
`;

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>atscale dashboard</title>
<link rel="stylesheet" href="/assets/uplot.css">
<style>${STYLE}</style>
<script src="/assets/uplot.js"></script>
</head>
<body>
<header>
  <h1>atscale dashboard</h1>
  <span id="status">connecting…</span>
  <label>smoothing <input id="smoothing" type="range" min="0" max="0.99" step="0.01" value="0.6"> <output id="smoothing-value">0.60</output></label>
</header>
<ul id="warnings"></ul>
<table id="runs">
  <thead><tr><th></th><th>run</th><th>iter</th><th>train loss</th><th>val loss</th><th>tokens/s</th><th>MFU</th><th>memory MB</th><th>settings</th></tr></thead>
  <tbody></tbody>
</table>
<div id="charts"></div>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
