// `atscale ckpt inspect DIR`: what a checkpoint holds and how it is laid out, and whether every
// file still matches its checksum. Universal checkpoints: layout, run and save ids, each shard
// file (rank, coordinates, bytes, checksum), and per tensor its shape, tp split, stage and
// pieces. Plain checkpoints: their tensors and files.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { committedDir, isUniversalCheckpoint, loadCheckpoint, sha256, UniversalCheckpoint, type FileDigest } from '../../checkpoint/index.js';

export interface InspectReport {
  text: string;
  /** Files whose bytes do not match the manifest (or are missing). */
  bad: string[];
}

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 3 : 1)} MiB`;

function fileStatus(dir: string, name: string, d: FileDigest): string {
  const path = join(dir, name);
  if (!existsSync(path)) return 'MISSING';
  const size = statSync(path).size;
  if (size !== d.bytes) return `BAD SIZE (${size} bytes, manifest ${d.bytes})`;
  return sha256(readFileSync(path)) === d.sha256 ? 'ok' : 'BAD SHA256';
}

export function inspectCheckpoint(dir: string): InspectReport {
  dir = committedDir(dir);
  const lines: string[] = [];
  const bad: string[] = [];
  const manifestPath = join(dir, 'manifest.json');
  if (!isUniversalCheckpoint(dir)) {
    const ck = loadCheckpoint(dir); // verifies every checksum or throws naming the file
    lines.push(`checkpoint ${ck.dir}: plain (one process), every file matches manifest.json`);
    lines.push(`tensors (${Object.keys(ck.tensors).length}):`);
    for (const [name, t] of Object.entries(ck.tensors)) lines.push(`  ${name.padEnd(40)} ${t.dtype} [${t.shape.join(', ')}]`);
    return { text: lines.join('\n'), bad };
  }
  const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as UniversalCheckpoint['manifest'];
  // Checksums first, from the raw manifest, so a damaged file is reported rather than thrown on.
  const status = new Map<string, string>();
  for (const [name, d] of Object.entries(m.files ?? {})) {
    const s = fileStatus(dir, name, d);
    status.set(name, s);
    if (s !== 'ok') bad.push(`${name}: ${s}`);
  }
  if (bad.length) {
    lines.push(`universal checkpoint ${dir}: ${bad.length} file(s) do not match manifest.json:`);
    for (const b of bad) lines.push(`  ${b}`);
    return { text: lines.join('\n'), bad };
  }
  const ck = new UniversalCheckpoint(dir); // the full structural check
  const { layout } = ck.manifest;
  lines.push(`universal checkpoint ${ck.dir}`);
  lines.push(`layout: dp ${layout.dp} x tp ${layout.tp} x pp ${layout.pp} = world ${layout.world}, ZeRO stage ${layout.zero}`);
  lines.push(`run ${ck.manifest.run}, save ${ck.manifest.save}; states ${ck.manifest.states.join(', ')} (fp32)`);
  lines.push('shard files:');
  let total = 0;
  for (const [file, s] of Object.entries(ck.manifest.shards).sort()) {
    const bytes = ck.manifest.files[file]!.bytes;
    total += bytes;
    lines.push(`  ${file}  rank ${s.rank} (dp ${s.dp}, tp ${s.tp}, pp ${s.pp})  ${mib(bytes).padStart(10)}  checksum ${status.get(file)}`);
  }
  for (const [file, d] of Object.entries(ck.manifest.files)) if (!ck.manifest.shards[file]) lines.push(`  ${file}  ${mib(d.bytes).padStart(10)}  checksum ${status.get(file)}`);
  lines.push(`total shard bytes: ${mib(total)}`);
  lines.push(`tensors (${Object.keys(ck.manifest.tensors).length}): name, shape, tp split, stage, pieces (tp rank: [start, end) in file)`);
  for (const [name, t] of Object.entries(ck.manifest.tensors)) {
    const split = t.tp.kind === 'replicated' ? 'replicated' : `${t.tp.kind} axis ${t.tp.axis}${t.tp.parts ? ` x${t.tp.parts} parts` : ''}`;
    const pieces = t.pieces.map((p) => `tp${p.tpRank}:[${p.start},${p.end})@${p.file.replace('.safetensors', '')}`).join(' ');
    lines.push(`  ${name.padEnd(36)} [${t.shape.join(', ')}]`.padEnd(56) + ` ${split.padEnd(22)} pp ${t.stage}  ${pieces}`);
  }
  lines.push('every file matches manifest.json');
  return { text: lines.join('\n'), bad };
}
