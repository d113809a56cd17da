// A free TCP port for a job that lives entirely inside this launcher, so that concurrent
// single-node jobs (and tests) do not fight over one default port. The port is released
// before rank 0 binds it; another process could take it in between, which rank 0 then
// reports as a bind error rather than a hang.
import { createServer } from 'node:net';

export function findFreePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (e) => reject(new Error(`cannot find a free port on ${host}: ${e.message}`)));
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
