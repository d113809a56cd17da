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
        const last = (lines.find((l) => l.startsWith('webgpu-error: '))?.slice(14) ?? lines.pop() ?? '').slice(0, 300);
        resolve({ ok: false, reason: signal ? `the provider crashed with ${signal}` : `exit ${code}${last ? `: ${last}` : ''}` });
      }
    });
  });
}
