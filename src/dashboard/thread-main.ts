// Entry point of the dashboard thread (see thread.ts): start, report the URL, close on request.
import { parentPort, workerData } from 'node:worker_threads';
import { startDashboard, type DashboardOptions } from './server.js';

const port = parentPort!;
startDashboard(workerData as DashboardOptions).then(
  (d) => {
    port.postMessage({ url: d.url });
    port.on('message', (m) => {
      if (m === 'close') void d.close().then(() => port.close());
    });
  },
  (e: Error) => port.postMessage({ error: e.message }),
);
