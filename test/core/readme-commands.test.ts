// Every fenced shell command of README.md, run as written in a fresh clone of this checkout
// (git clone; node_modules hard-linked from here so no network is needed), with
// ATSCALE_MAX_ITERS capping every training run. Fails if any command fails, or if a command
// leaves a file outside the ignored output directories (outputs belong under out/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The lines of every ```sh / ```bash / ```shell block, in order. */
export function fencedShellCommands(markdown: string): string[] {
  const out: string[] = [];
  let inShell = false;
  for (const line of markdown.split('\n')) {
    const fence = /^```\s*(\w*)/.exec(line);
    if (fence) {
      inShell = !inShell && ['sh', 'bash', 'shell', 'console'].includes(fence[1]!);
      continue;
    }
    if (inShell && line.trim() && !line.trim().startsWith('#')) out.push(line.trim());
  }
  return out;
}

const isGitCheckout = existsSync(join(ROOT, '.git'));

test('every fenced shell command of README.md runs in a fresh clone', { skip: isGitCheckout ? false : 'not a git checkout: nothing to clone' }, (t) => {
  const commands = fencedShellCommands(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  assert.ok(commands.length >= 10, `found only ${commands.length} commands in README.md`);
  const work = mkdtempSync(join(tmpdir(), 'atscale-readme-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const clone = join(work, 'atscale');
  const git = spawnSync('git', ['clone', '--quiet', ROOT, clone], { encoding: 'utf8' });
  assert.equal(git.status, 0, git.stderr);
  // Hard links (a copy where they cannot be made): the clone's npm install then has nothing to fetch.
  const cp = spawnSync('sh', ['-c', `cp -al "${join(ROOT, 'node_modules')}" node_modules 2>/dev/null || cp -r "${join(ROOT, 'node_modules')}" node_modules`], { cwd: clone });
  assert.equal(cp.status, 0);
  const env = { ...process.env, ATSCALE_MAX_ITERS: process.env.ATSCALE_MAX_ITERS ?? '20', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_prefer_offline: 'true' };
  for (const cmd of commands) {
    // `npm test` is the suite this test belongs to: running it here would recurse.
    const run = cmd.replace(/\s*&&\s*npm test$/, '');
    if (run !== cmd) t.diagnostic(`"${cmd}": running "${run}" (npm test is the suite this test is part of)`);
    const t0 = performance.now();
    const r = spawnSync('bash', ['-c', run], { cwd: clone, env, encoding: 'utf8', timeout: 600_000 });
    t.diagnostic(`${((performance.now() - t0) / 1000).toFixed(1)} s  ${run}`);
    assert.equal(r.status, 0, `README command failed (exit ${r.status ?? r.signal}): ${run}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  }
  const status = spawnSync('git', ['status', '--porcelain'], { cwd: clone, encoding: 'utf8' });
  assert.equal(status.stdout, '', 'README commands wrote files outside the ignored output directories');
  for (const f of ['out/addition/ckpt/meta.json', 'out/addition/model.onnx', 'out/addition-zero1/ckpt', 'out/atscale-machine.json', 'out/demo/result.json']) assert.ok(existsSync(join(clone, f)), `${f} was not written`);
});
