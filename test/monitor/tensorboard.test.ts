// TensorBoard event files written by a real `atscale train` run, read back by an independent
// reader (test/monitor/event-reader.ts: its own CRC-32C and protobuf decoding): every record's
// checksums hold, the scalars equal metrics.jsonl's, and a truncated or damaged file is caught.
// TensorBoard itself is not packaged in Debian (no python3-tensorboard/tensorflow), hence the
// reader written from the spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c, maskCrc, openMonitors, sectionDir } from '../../src/monitor/index.js';
import { parseDeepSpeedConfig } from '../../src/engine/ds-config.js';
import { crc32cBitwise, readEventFile } from './event-reader.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'atscale-tb-'));
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog.\n`).join(''));
const SMALL = ['--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '4', '--eval-iters', '2', '--log-interval', '1', '--threads', '1', '--peak-gflops', '10', '--quiet'];

function train(out: string, extra: string[] = []): void {
  const r = spawnSync(process.execPath, [CLI, 'train', '--data', corpus, '--max-iters', '12', '--eval-interval', '4', '--out', out, ...SMALL, ...extra], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
}

const eventFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.')) : []);

test('CRC-32C: the check value of "123456789" from both implementations', () => {
  const b = new TextEncoder().encode('123456789');
  assert.equal(crc32c(b), 0xe3069283);
  assert.equal(crc32cBitwise(b), 0xe3069283);
  const rnd = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff);
  assert.equal(crc32c(rnd), crc32cBitwise(rnd));
  assert.notEqual(maskCrc(0x12345678), 0x12345678);
});

test('atscale train writes one event file whose scalars equal metrics.jsonl, checksums intact', () => {
  const out = join(work, 'run');
  train(out, ['--csv']);
  const files = eventFiles(join(out, 'tb'));
  assert.equal(files.length, 1, `one event file per run, got ${files.join(', ')}`);
  assert.match(files[0]!, /^events\.out\.tfevents\.\d+\.[^.]+.*\.\d+$/);
  const events = readEventFile(readFileSync(join(out, 'tb', files[0]!)));
  assert.equal(events[0]!.fileVersion, 'brain.Event:2');
  assert.ok(events[0]!.wallTime > 1.6e9);

  const tags: Record<string, string> = { loss: 'train/loss', val_loss: 'val/loss', lr: 'lr', tokens_per_s: 'tokens_per_s', grad_norm: 'grad_norm', mfu: 'mfu', mfu_peak_gflops: 'mfu_peak_gflops', rss_mb: 'memory/rss_mb', step_ms: 'step_ms', checkpoint_stall_s: 'checkpoint/stall_s', async: 'checkpoint/async', checkpoint_interval_steps: 'checkpoint/interval_steps', young_daly_s: 'checkpoint/young_daly_s', step_s: 'checkpoint/step_s', skipped: 'skipped_batches' };
  const records = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const scalarEvents = events.slice(1);
  assert.equal(scalarEvents.length, records.length, 'one event per metrics line');
  const seen = new Set<string>();
  records.forEach((rec, i) => {
    const ev = scalarEvents[i]!;
    assert.equal(ev.step, rec.iter);
    const byTag = new Map(ev.scalars.map((s) => [s.tag, s.value]));
    for (const [key, value] of Object.entries(rec)) {
      if (key === 'iter') continue;
      const tag = tags[key];
      assert.ok(tag, `metrics key ${key} has a known tag`);
      assert.equal(byTag.get(tag), Math.fround(value), `iter ${rec.iter} ${tag}`);
      seen.add(tag);
    }
  });
  for (const t of ['train/loss', 'val/loss', 'lr', 'tokens_per_s', 'grad_norm', 'mfu', 'memory/rss_mb']) assert.ok(seen.has(t), `tag ${t} present`);
  assert.equal(scalarEvents.filter((e) => e.scalars.some((s) => s.tag === 'val/loss')).length, 3, 'val loss at iters 4, 8, 12');

  // The CSV bonus: one file per tag, DeepSpeed's layout.
  const csv = readFileSync(join(out, 'csv', 'train_loss.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'step,train/loss');
  assert.equal(csv.length, 1 + records.filter((r) => r.loss !== undefined).length);
  assert.equal(csv[1], `${records[0]!.iter},${records[0]!.loss}`);
});

test('a truncated or damaged event file is detected', () => {
  const out = join(work, 'run');
  const file = join(out, 'tb', eventFiles(join(out, 'tb'))[0]!);
  const bytes = readFileSync(file);
  assert.throws(() => readEventFile(bytes.subarray(0, bytes.length - 3)), /truncated record at byte \d+/);
  assert.throws(() => readEventFile(bytes.subarray(0, bytes.length - 30)), /truncated/);
  const flipped = Buffer.from(bytes);
  flipped[bytes.length - 10] ^= 0x01;
  assert.throws(() => readEventFile(flipped), /data checksum mismatch/);
  const badLength = Buffer.from(bytes);
  badLength[0] ^= 0x01;
  assert.throws(() => readEventFile(badLength), /length checksum mismatch at byte 0/);
});

test('--tensorboard=false writes no event file; metrics.jsonl stays', () => {
  const out = join(work, 'off');
  train(out, ['--tensorboard=false', '--max-iters', '2']);
  assert.equal(existsSync(join(out, 'tb')), false);
  assert.ok(existsSync(join(out, 'metrics.jsonl')));
});

test("DeepSpeed's tensorboard and csv_monitor sections place the files at output_path/job_name", () => {
  const cfg = parseDeepSpeedConfig({ train_micro_batch_size_per_gpu: 2, tensorboard: { enabled: true, output_path: join(work, 'ds-tb'), job_name: 'job1' }, csv_monitor: { enabled: true, output_path: join(work, 'ds-csv') } }, 1);
  assert.equal(sectionDir(join(work, 'ds-out'), cfg.monitor.tensorboard, 'tb'), join(work, 'ds-tb', 'job1'));
  const m = openMonitors(join(work, 'ds-out'), cfg.monitor);
  m.write({ iter: 5, loss: 1.5, lr: 0.001, mfu: null });
  m.close();
  const events = readEventFile(readFileSync(join(work, 'ds-tb', 'job1', eventFiles(join(work, 'ds-tb', 'job1'))[0]!)));
  assert.deepEqual(events[1]!.scalars, [{ tag: 'train/loss', value: 1.5 }, { tag: 'lr', value: Math.fround(0.001) }]);
  assert.equal(events[1]!.step, 5);
  assert.equal(readFileSync(join(work, 'ds-csv', 'lr.csv'), 'utf8'), 'step,lr\n5,0.001\n');
  assert.throws(() => parseDeepSpeedConfig({ train_micro_batch_size_per_gpu: 2, tensorboard: { enabled: true, outdir: 'x' } }, 1), /unknown key 'tensorboard.outdir'.*enabled, output_path, job_name/);
  assert.throws(() => parseDeepSpeedConfig({ train_micro_batch_size_per_gpu: 2, csv_monitor: { enabled: 'yes' } }, 1), /csv_monitor.enabled must be true or false/);
});
