// The dashboard on its own thread, for `atscale train --dashboard`: training runs long
// synchronous stretches (tokenizing, building and compiling graphs) that would stall an HTTP
// server sharing its event loop; on a worker thread the page loads and updates regardless.
import { Worker } from 'node:worker_threads';
import type { DashboardOptions } from './server.js';

export interface DashboardThread {
  url: string;
  close(): Promise<void>;
}

export async function startDashboardThread(o: DashboardOptions, timeoutMs = 30_000): Promise<DashboardThread> {
  const worker = new Worker(new URL('./thread-main.js', import.meta.url), { workerData: o });
  const exited = new Promise<void>((res) => worker.once('exit', () => res()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the dashboard thread did not start listening within ${timeoutMs / 1000} s`)), timeoutMs);
    worker.once('message', (m: { url?: string; error?: string }) => {
      clearTimeout(timer);
      if (m.url) resolve(m.url);
      else reject(new Error(m.error ?? 'the dashboard thread failed to start'));
    });
    worker.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the dashboard thread exited with code ${code} before listening`));
    });
  });
  return {
    url,
    close: async () => {
      worker.postMessage('close');
      await exited;
    },
  };
}
