// `atscale dashboard`: a read-only web page over a few run directories. The page and uPlot
// (resolved from node_modules, so the page needs no network) are the only files served; run
// data leaves only as JSON built from the runs' metrics files, so no URL maps to a path on
// disk and a traversal attempt is just an unknown route (404). Live updates are server-sent
// events: the server polls each run's files and pushes new rows to every open page.
// On loopback the page is open to local users only; the Host header must name the address
// the server listens on (a DNS-rebinding page cannot read it). Bound elsewhere, every request
// also needs the random token printed with the URL (kept in a cookie after the first visit).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { RunSource } from './run-source.js';
import { PAGE_HTML } from './page.js';

export interface DashboardOptions {
  runs: string[];
  /** Default 127.0.0.1: the dashboard has no login, so it stays on this machine unless asked. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Milliseconds between polls of the run files (default 500). */
  pollMs?: number;
  /** Require the printed token on every request (default: when host is not loopback). */
  requireToken?: boolean;
}

export interface Dashboard {
  /** http://HOST:PORT (with ?token=... when a token is required). */
  url: string;
  server: Server;
  close(): Promise<void>;
}

const MAX_URL = 2048;
const MAX_CLIENTS = 64;
const HEARTBEAT_MS = 15_000;
const MAX_BACKLOG = 16 << 20;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function cookieToken(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === 'atscale_token') return v;
  }
  return undefined;
}

/** uPlot's browser build and stylesheet, found the way Node finds the package (works from an
 * installed atscale too, where uplot sits in the user's node_modules). */
function uplotAssets(): { js: Buffer; css: Buffer } {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('uplot/package.json')), 'dist');
  return { js: readFileSync(join(dir, 'uPlot.iife.min.js')), css: readFileSync(join(dir, 'uPlot.min.css')) };
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  if (!o.runs.length) throw new Error('the dashboard needs at least one run directory (the --out of atscale train)');
  const names = new Set<string>();
  const sources = o.runs.map((dir, i) => {
    const s = new RunSource(i, dir);
    // Two runs called "out" in different folders stay distinguishable.
    if (names.has(s.info.name)) s.info.name = `${s.info.name} (${i})`;
    names.add(s.info.name);
    return s;
  });
  const assets = uplotAssets();
  const clients = new Set<ServerResponse>();
  const send = (res: ServerResponse, event: string, data: unknown) => {
    // A page that stops reading is dropped instead of buffering without bound; it reconnects
    // (EventSource retries) and gets a fresh snapshot.
    if (res.writableLength > MAX_BACKLOG) {
      clients.delete(res);
      res.destroy();
      return;
    }
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const poll = () => {
    for (const s of sources) {
      const u = s.poll();
      if (u) for (const c of clients) send(c, u.reset ? 'snapshot' : 'update', u.reset ? s.snapshot() : u);
    }
  };
  poll();
  const timer = setInterval(poll, o.pollMs ?? 500);
  const heartbeat = setInterval(() => clients.forEach((c) => c.write(': keep-alive\n\n')), HEARTBEAT_MS);
  timer.unref();
  heartbeat.unref();

  const reply = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    // The page loads nothing from elsewhere: a CSP that allows only this server says so to the browser.
    const csp = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-security-policy': csp });
    res.end(body);
  };

  const host = o.host ?? '127.0.0.1';
  const token = (o.requireToken ?? !LOOPBACK.has(host)) ? randomBytes(24).toString('hex') : undefined;
  let allowedHosts = new Set<string>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? '/';
    if (raw.length > MAX_URL) return reply(res, 414, 'text/plain', 'URL too long\n');
    if (!token && !allowedHosts.has(String(req.headers.host ?? '').toLowerCase())) return reply(res, 421, 'text/plain', 'the Host header does not name this dashboard\n');
    let setCookie = false;
    if (token) {
      const given = new URLSearchParams(raw.split('?')[1] ?? '').get('token') ?? cookieToken(req.headers.cookie);
      const ok = given !== undefined && given.length === token.length && timingSafeEqual(Buffer.from(given), Buffer.from(token));
      if (!ok) return reply(res, 401, 'text/plain', 'this dashboard needs the token printed with its URL (…/?token=...)\n');
      setCookie = !cookieToken(req.headers.cookie);
    }
    if (setCookie) res.setHeader('set-cookie', `atscale_token=${token}; HttpOnly; SameSite=Strict; Path=/`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain', 'the dashboard is read-only: GET only\n');
    // No route takes a body; a request announcing one is refused before it is read.
    if (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding']) return reply(res, 413, 'text/plain', 'no request body is accepted\n');
    const path = raw.split('?')[0]!;
    switch (path) {
      case '/':
        return reply(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
      case '/assets/uplot.js':
        return reply(res, 200, 'text/javascript', assets.js);
      case '/assets/uplot.css':
        return reply(res, 200, 'text/css', assets.css);
      case '/favicon.ico':
        res.writeHead(204).end();
        return;
      case '/api/runs':
        return reply(res, 200, 'application/json', JSON.stringify(sources.map((s) => s.snapshot())));
      case '/events': {
        if (clients.size >= MAX_CLIENTS) return reply(res, 503, 'text/plain', `too many open pages (${MAX_CLIENTS})\n`);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        res.write('retry: 2000\n\n');
        for (const s of sources) send(res, 'snapshot', s.snapshot());
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
      default:
        return reply(res, 404, 'text/plain', 'not found\n');
    }
  };

  const server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 30_000, headersTimeout: 10_000 }, handle);
  server.maxRequestsPerSocket = 1000;
  await new Promise<void>((res, rej) => {
    server.once('error', (e: NodeJS.ErrnoException) => rej(new Error(`dashboard cannot listen on ${host}:${o.port ?? 0}: ${e.code === 'EADDRINUSE' ? 'the port is in use; pick another with --port' : e.message}`)));
    server.listen(o.port ?? 0, host, () => res());
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  allowedHosts = new Set([shown, host, '127.0.0.1', 'localhost', '[::1]'].map((h) => `${h}:${addr.port}`.toLowerCase()));
  return {
    url: `http://${shown}:${addr.port}${token ? `/?token=${token}` : ''}`,
    server,
    close: async () => {
      clearInterval(timer);
      clearInterval(heartbeat);
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}
