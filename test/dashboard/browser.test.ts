// The dashboard in a real browser (Debian's chromium, headless, driven by puppeteer-core):
// a real `atscale train --dashboard` run fills the live chart; the page's rows, table cells and
// plotted values are checked against metrics.jsonl; then `atscale dashboard` over that run and
// a 2-rank run shows both series, each rank's step time, and a corrupt line as a warning.
// Screenshots go to the test's temp dir (and to $ATSCALE_DOCS_SCREENSHOT when set, which is
// how docs/dashboard.png was made).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const work = mkdtempSync(join(tmpdir(), 'atscale-browser-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 300 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog.\n`).join(''));
const MODEL = ['--data', corpus, '--n-layer', '2', '--n-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '8', '--eval-iters', '2', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet'];

type Rec = Record<string, number | null> & { iter: number };
const metrics = (dir: string): Rec[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);

/** Resolves with the first stdout match of `re`; the error names the process and what it printed. */
function waitForLine(child: ChildProcess, re: RegExp, who: string, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${who} printed no line matching ${re} within ${ms / 1000} s; it printed:\n${seen}`)), ms);
    const onData = (c: Buffer) => {
      seen += c.toString();
      const m = re.exec(seen);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (seen += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${who} exited with ${code} before printing ${re}:\n${seen}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

const attr = (page: Page, sel: string, name: string) => page.$eval(sel, (el, n) => (el as HTMLElement).dataset[n as string] ?? null, name);

async function screenshot(page: Page, name: string): Promise<void> {
  const path = join(work, name);
  await page.screenshot({ path, fullPage: true });
  assert.ok(readFileSync(path).subarray(1, 4).toString() === 'PNG');
  if (process.env.ATSCALE_DOCS_SCREENSHOT && name === 'two-runs.png') copyFileSync(path, process.env.ATSCALE_DOCS_SCREENSHOT);
}

test('live dashboard of a real training run in headless Chromium; two runs overlaid', { skip: CHROMIUM ? false : 'chromium is not installed (apt-get install chromium; .ci/run does)' }, async (t) => {
  const puppeteer = (await import('puppeteer-core')).default;
  const browser: Browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const children: ChildProcess[] = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push((e as Error).message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));

    // 1. A short real training with the dashboard, watched live.
    const runA = join(work, 'runA');
    const train = spawn(process.execPath, [CLI, 'train', ...MODEL, '--max-iters', '120', '--eval-interval', '20', '--out', runA, '--dashboard', '--dashboard-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(train);
    const url = (await waitForLine(train, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 'atscale train --dashboard', 120_000))[1]!;
    const finished = waitForLine(train, /training finished/, 'atscale train --dashboard', 300_000);
    await page.goto(url);
    await page.waitForFunction(() => Number(document.getElementById('chart-loss')?.dataset.points) >= 10, { timeout: 180_000 });
    await finished;
    const rows = metrics(runA);
    const last = rows.at(-1)!;
    // The last train row and the last val row share an iteration: wait until the table has
    // been drawn from every row.
    await page.waitForFunction((n) => (document.querySelector('#runs tr[data-run="0"]') as HTMLElement | null)?.dataset.rows === String(n), { timeout: 30_000 }, rows.length);
    assert.equal(await page.$eval('#runs tr[data-run="0"] td.iter', (el) => el.textContent), String(last.iter));

    // Everything the page holds and shows equals metrics.jsonl.
    const state = await page.evaluate(() => {
      const r = (window as unknown as { atscaleDashboard: { runs: Record<number, { rows: unknown[]; snapshotRows: number; updates: number }> } }).atscaleDashboard.runs[0]!;
      return { rows: r.rows, snapshotRows: r.snapshotRows, updates: r.updates };
    });
    assert.deepEqual(state.rows, rows);
    assert.equal(state.snapshotRows + state.updates, rows.length);
    t.diagnostic(`the page got ${state.snapshotRows} rows in its first snapshot and ${state.updates} live`);
    const trainRows = rows.filter((r) => typeof r.loss === 'number');
    const valRows = rows.filter((r) => typeof r.val_loss === 'number');
    const lastLoss = trainRows.at(-1)!.loss!;
    const lastVal = valRows.at(-1)!.val_loss!;
    assert.equal(await attr(page, '#runs tr[data-run="0"] td.loss', 'value'), String(lastLoss));
    assert.equal(await page.$eval('#runs tr[data-run="0"] td.loss', (el) => el.textContent), lastLoss.toFixed(4));
    assert.equal(await page.$eval('#runs tr[data-run="0"] td.val-loss', (el) => el.textContent), lastVal.toFixed(4));
    assert.equal(await attr(page, '#runs tr[data-run="0"] td.tokens', 'value'), String(trainRows.at(-1)!.tokens_per_s));
    assert.match(await page.$eval('#runs tr[data-run="0"] td.settings', (el) => el.textContent ?? ''), /2 layers × 32 wide, 2 heads, context 32; batch 8 × 1/);
    assert.deepEqual(JSON.parse((await attr(page, '#chart-loss', 'series'))!), [{ label: 'runA train', points: trainRows.length }, { label: 'runA val', points: valRows.length }]);
    for (const [chart, key] of [['lr', 'lr'], ['tokens', 'tokens_per_s'], ['mfu', 'mfu'], ['grad', 'grad_norm'], ['memory', 'rss_mb']] as const) {
      assert.deepEqual(JSON.parse((await attr(page, `#chart-${chart}`, 'series'))!), [{ label: 'runA', points: rows.filter((r) => typeof r[key] === 'number').length }], chart);
    }
    // With smoothing off, the plotted train loss is exactly metrics.jsonl's.
    await page.$eval('#smoothing', (el) => {
      (el as HTMLInputElement).value = '0';
      el.dispatchEvent(new Event('input'));
    });
    await page.waitForFunction(() => document.getElementById('smoothing-value')?.textContent === '0.00');
    await page.waitForFunction((n) => {
      const p = (window as unknown as { atscaleDashboard: { plots: Record<string, { plot: { data: (number | null)[][] } }> } }).atscaleDashboard.plots.loss!.plot;
      return p.data[1]!.filter((v) => v !== null).length === n;
    }, {}, trainRows.length);
    const plotted = await page.evaluate(() => (window as unknown as { atscaleDashboard: { plots: Record<string, { plot: { data: (number | null)[][] } }> } }).atscaleDashboard.plots.loss!.plot.data);
    assert.deepEqual(plotted[1]!.filter((v) => v !== null), trainRows.map((r) => r.loss));
    assert.equal(await page.$$eval('#chart-loss canvas', (c) => c.length), 1);
    await screenshot(page, 'live.png');
    await page.goto('about:blank'); // the page would otherwise keep reconnecting to the stopped server
    assert.equal(await stop(train), 0, 'train --dashboard shuts down cleanly on SIGTERM');

    // 2. A 2-rank run, then the dashboard over both runs (and a corrupt line in runA).
    const runB = join(work, 'runB');
    const two = spawnSync(process.execPath, [CLI, 'launch', '--nproc-per-node', '2', '--', process.execPath, CLI, 'train', ...MODEL, '--max-iters', '12', '--eval-interval', '6', '--lr', '0.003', '--out', runB], { encoding: 'utf8', timeout: 240_000 });
    assert.equal(two.status, 0, two.stdout + two.stderr);
    appendFileSync(join(runA, 'metrics.jsonl'), '{"iter": 999, "loss": \n');
    const dash = spawn(process.execPath, [CLI, 'dashboard', runA, runB, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(dash);
    const url2 = (await waitForLine(dash, /listening on (http:\/\/127\.0\.0\.1:\d+)/, 'atscale dashboard', 60_000))[1]!;
    await page.goto(url2);
    await page.waitForFunction(() => (JSON.parse(document.getElementById('chart-ranks')?.dataset.series ?? '[]') as unknown[]).length === 2, { timeout: 30_000 });
    const lossSeries = JSON.parse((await attr(page, '#chart-loss', 'series'))!) as { label: string; points: number }[];
    const rowsB = metrics(runB);
    assert.deepEqual(lossSeries, [
      { label: 'runA train', points: trainRows.length },
      { label: 'runA val', points: valRows.length },
      { label: 'runB train', points: rowsB.filter((r) => typeof r.loss === 'number').length },
      { label: 'runB val', points: rowsB.filter((r) => typeof r.val_loss === 'number').length },
    ]);
    assert.deepEqual(JSON.parse((await attr(page, '#chart-ranks', 'series'))!), [{ label: 'runB rank 0', points: 12 }, { label: 'runB rank 1', points: 12 }]);
    assert.equal(await page.$$eval('#runs tbody tr', (t) => t.length), 2);
    assert.match(await page.$eval('#runs tr[data-run="1"] td.settings', (el) => el.textContent ?? ''), /2 ranks/);
    const warnings = await page.$$eval('#warnings li.bad-line', (l) => l.map((x) => x.textContent));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, new RegExp(`^runA: metrics\\.jsonl line ${rows.length + 1}: not JSON \\(.+\\) \\(skipped\\)$`));
    await screenshot(page, 'two-runs.png');
    assert.deepEqual(pageErrors, []);
    // Everything the page loaded came from the two dashboards on loopback: no network needed.
    assert.deepEqual(requested.filter((u) => !u.startsWith(url) && !u.startsWith(url2) && u !== 'about:blank'), []);
    assert.ok(requested.some((u) => u.endsWith('/assets/uplot.js')));
    assert.equal(await stop(dash), 0);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await browser.close();
  }
});
