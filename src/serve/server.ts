// The OpenAI-compatible HTTP server on node:http. It listens before the model is loaded (so
// /health can answer 503 while loading), checks the API key, bounds the body, the queue and
// every wait, answers errors as OpenAI error objects, and drains on stop: no new requests,
// those in flight finish, then it closes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { ExecOptions } from '../runtime/session.js';
import type { Quantization } from '../runtime/execute.js';
import { Batcher } from './batcher.js';
import { runGeneration, type RunContext } from './completions.js';
import { ApiError, badRequest } from './errors.js';
import type { ServedModel } from './load.js';
import { ServerMetrics } from './metrics.js';
import { parseRequest } from './requests.js';

export interface ServeOptions {
  host: string;
  port: number;
  /** Required as "Authorization: Bearer KEY" on /v1/* and /metrics when set. */
  apiKey?: string;
  slots: number;
  prefillChunk: number;
  /** Prompts read together in one prefill step. */
  prefillRows: number;
  maxBodyBytes: number;
  /** Sequences allowed to wait for a slot before requests get 429. */
  maxQueue: number;
  maxN: number;
  /** Whole-request limit: queueing plus generation. */
  requestTimeoutMs: number;
  /** Limit for a client to send its headers and body (slow senders get 408). */
  receiveTimeoutMs: number;
  exec?: ExecOptions;
  /** Whether every graph keeps its own packed copy of the weights (BatcherOptions.packWeights). */
  packWeights?: boolean | 'auto';
  /** Weight GEMMs on int8 (BatcherOptions.quantization). */
  quantization?: Quantization;
}

export const DEFAULT_SERVE: Omit<ServeOptions, 'port'> = {
  host: '127.0.0.1',
  slots: 16,
  prefillChunk: 32,
  prefillRows: 4,
  maxBodyBytes: 1 << 20,
  maxQueue: 256,
  maxN: 8,
  requestTimeoutMs: 120_000,
  receiveTimeoutMs: 10_000,
};

const sha = (s: string) => createHash('sha256').update(s).digest();

export class ApiServer {
  private readonly http: Server;
  private served?: ServedModel;
  private ctx?: RunContext;
  private loadError?: Error;
  private draining = false;
  private inflight = 0;
  private idle?: () => void;
  readonly metrics = new ServerMetrics();

  constructor(private readonly opts: ServeOptions) {
    this.http = createServer({ requestTimeout: opts.receiveTimeoutMs, headersTimeout: Math.min(opts.receiveTimeoutMs, 60_000), connectionsCheckingInterval: Math.min(opts.receiveTimeoutMs / 2, 30_000) }, (req, res) => void this.handle(req, res));
    // Idle keep-alive sockets are dropped after a while instead of being held forever.
    this.http.keepAliveTimeout = 5_000;
  }

  /** Binds the port; resolves with the URL (the model loads separately, see `ready`). */
  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.opts.port, this.opts.host, () => {
        const a = this.http.address() as AddressInfo;
        const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve(`http://${host}:${a.port}`);
      });
    });
  }

  /** Loads and compiles the model; until then every model endpoint answers 503. */
  async ready(load: () => ServedModel | Promise<ServedModel>): Promise<void> {
    try {
      const served = await load();
      const batcher = new Batcher(served.model, served.params, { slots: this.opts.slots, prefillChunk: this.opts.prefillChunk, prefillRows: this.opts.prefillRows, exec: this.opts.exec, packWeights: this.opts.packWeights, quantization: this.opts.quantization });
      await batcher.compile();
      // The graphs hold or map the weights now; the server keeps the model without them.
      const kept = { ...served, params: new Float32Array(0) };
      this.served = kept;
      this.ctx = { served: kept, batcher, metrics: this.metrics, maxQueue: this.opts.maxQueue, requestTimeoutMs: this.opts.requestTimeoutMs };
    } catch (e) {
      this.loadError = e as Error;
      throw e;
    }
  }

  get batcher(): Batcher | undefined {
    return this.ctx?.batcher;
  }

  /** Stops taking requests, waits for those in flight (at most timeoutMs), then closes. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    this.http.close();
    this.http.closeIdleConnections();
    const finished = this.inflight === 0 || (await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idle = () => {
        clearTimeout(t);
        resolve(true);
      };
    }));
    this.http.closeAllConnections();
    return finished;
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.opts.apiKey) return true;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    return m !== null && timingSafeEqual(sha(m[1]!), sha(this.opts.apiKey));
  }

  private send(res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}): void {
    this.metrics.countRequest(status);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  }

  private sendError(res: ServerResponse, e: ApiError): void {
    this.send(res, e.status, JSON.stringify(e.body()), 'application/json', e.retryAfter ? { 'retry-after': String(e.retryAfter) } : {});
  }

  private readBody(req: IncomingMessage): Promise<string> {
    const limit = this.opts.maxBodyBytes;
    const tooBig = () => new ApiError(413, `the request body is over ${limit} bytes; send a shorter prompt`, 'invalid_request_error', null, 'request_too_large');
    if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(tooBig());
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          req.removeAllListeners('data');
          req.resume();
          reject(tooBig());
        } else parts.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
      req.on('error', reject);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inflight++;
    try {
      await this.route(req, res);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error).message}`, 'server_error');
      if (!res.headersSent && !res.destroyed) this.sendError(res, err);
      else if (!res.writableEnded) res.end();
    } finally {
      if (--this.inflight === 0 && this.idle) this.idle();
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/health') {
      const ok = this.ctx !== undefined && !this.draining;
      const why = this.draining ? 'draining' : this.loadError ? `load failed: ${this.loadError.message}` : 'loading';
      return this.send(res, ok ? 200 : 503, ok ? 'ok\n' : `${why}\n`, 'text/plain');
    }
    if (!path.startsWith('/v1/') && path !== '/metrics') throw new ApiError(404, `no route ${req.method} ${path}; routes are GET /health, GET /metrics, GET /v1/models, POST /v1/completions, POST /v1/chat/completions`, 'not_found_error');
    if (!this.authorized(req)) throw new ApiError(401, 'missing or wrong API key: send "Authorization: Bearer <key>" with the key the server was started with', 'authentication_error', null, 'invalid_api_key');
    if (path === '/metrics') {
      const b = this.ctx?.batcher;
      const mem = process.memoryUsage();
      const text = this.metrics.render({ running: b?.running ?? 0, waiting: b?.queued ?? 0, cacheUsage: b?.cacheUsage ?? 0, slots: b?.slots ?? 0, promptTokens: b?.promptTokens ?? 0, generatedTokens: b?.generatedTokens ?? 0 });
      return this.send(res, 200, `${text}# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ${mem.rss}\n# TYPE nodejs_heap_used_bytes gauge\nnodejs_heap_used_bytes ${mem.heapUsed}\n`, 'text/plain; version=0.0.4');
    }
    if (this.draining) throw new ApiError(503, 'the server is shutting down; send the request to another instance', 'service_unavailable', null, 'shutting_down', 1);
    if (!this.ctx || !this.served) throw new ApiError(503, this.loadError ? `the model failed to load: ${this.loadError.message}` : 'the model is still loading; retry when GET /health answers 200', 'service_unavailable', null, 'loading', 1);
    const served = this.served;
    if (path === '/v1/models' && req.method === 'GET') {
      return this.send(res, 200, JSON.stringify({ object: 'list', data: [{ id: served.id, object: 'model', created: 0, owned_by: 'atscale', max_model_len: served.model.dims.blockSize }] }), 'application/json');
    }
    if (path.startsWith('/v1/models/') && req.method === 'GET') {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (id !== served.id) throw new ApiError(404, `the model '${id}' does not exist; this server serves '${served.id}'`, 'not_found_error', 'model', 'model_not_found');
      return this.send(res, 200, JSON.stringify({ id, object: 'model', created: 0, owned_by: 'atscale' }), 'application/json');
    }
    const kind = path === '/v1/completions' ? 'completion' : path === '/v1/chat/completions' ? 'chat' : undefined;
    if (!kind) throw new ApiError(404, `no route ${req.method} ${path}`, 'not_found_error');
    if (req.method !== 'POST') throw new ApiError(404, `${path} takes POST, not ${req.method}`, 'not_found_error');
    const text = await this.readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw badRequest(`the body is not valid JSON (${(e as Error).message}); send a JSON object with Content-Type: application/json`);
    }
    const parsed = parseRequest(body, kind, { maxN: Math.min(this.opts.maxN, this.opts.slots) });
    if (parsed.model !== served.id) throw new ApiError(404, `the model '${parsed.model}' does not exist; this server serves '${served.id}' (see GET /v1/models)`, 'not_found_error', 'model', 'model_not_found');
    await runGeneration(this.ctx, parsed, kind, res);
  }
}
