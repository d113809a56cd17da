// Starts `atscale serve` as a real child process and waits for its "listening on" line.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface RunningServer {
  url: string;
  proc: ChildProcess;
  log: () => string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** The exit code, once the process exits by itself (nothing is sent). */
  exited: Promise<number | null>;
}

export async function startServer(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<RunningServer> {
  const proc = spawn(process.execPath, [MAIN, 'serve', '--port', '0', '--threads', '1', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`atscale serve did not print "listening on" within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`atscale serve exited with ${code} before listening; output:\n${out}`));
    });
  });
  return {
    url,
    proc,
    log: () => out,
    exited,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Reads one Prometheus sample value from /metrics. */
export async function metric(url: string, name: string, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`metric ${name} not in /metrics:\n${text}`);
  return Number(m[1]);
}
