// Runs a one-node model on the WebGPU provider in a child process, so a native abort in the
// provider (seen on machines with no GPU adapter) cannot take the caller down with it.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ProbeResult {
  ok: boolean;
  reason: string;
}

export function probeWebGpu(timeoutMs = 60_000): Promise<ProbeResult> {
  const script = fileURLToPath(new URL('./webgpu-probe-child.js', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ ok: false, reason: `the WebGPU probe did not finish within ${timeoutMs} ms` });
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && out.includes('webgpu-ok')) resolve({ ok: true, reason: 'ok' });
      else {
        const lines = err.trim().split('\n').filter(Boolean);
        const last = readableReason(lines.find((l) => l.startsWith('webgpu-error: '))?.slice(14) ?? lines.pop() ?? '');
        resolve({ ok: false, reason: signal ? `the provider crashed with ${signal}` : `exit ${code}${last ? `: ${last}` : ''}` });
      }
    });
  });
}

/** ONNX Runtime's native errors open with a source path and the failed check; the sentence
 * after "was false." is the reason. Long text is cut at a word boundary, never mid-word. */
export function readableReason(line: string, max = 300): string {
  const m = /\bwas false\.\s*(.+)$/.exec(line);
  const text = (m ? m[1]! : line).trim();
  if (text.length <= max) return text;
  const cut = text.lastIndexOf(' ', max);
  return `${text.slice(0, cut > 0 ? cut : max)} ...`;
}
