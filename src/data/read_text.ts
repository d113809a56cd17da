// Reads a training corpus from a file path or an http(s) URL. URL reads follow a bounded number
// of redirects, stop at a size bound and time out, so a bad address fails quickly and clearly
// instead of hanging or filling memory.

import { readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';

export interface ReadTextOptions {
  /** Give up on a URL after this long in total (default 60 s). */
  timeoutMs?: number;
  /** Refuse files and responses larger than this (default 1 GiB). */
  maxBytes?: number;
  /** Follow at most this many redirects (default 5). */
  maxRedirects?: number;
}

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** The text of a file or URL, decoded as UTF-8 (invalid UTF-8 is an error); empty is an error. */
export async function readText(source: string, options: ReadTextOptions = {}): Promise<string> {
  const maxBytes = options.maxBytes ?? 1 << 30;
  const bytes = isUrl(source) ? await fetchBytes(source, options, maxBytes) : await readFileBytes(source, maxBytes);
  if (bytes.length === 0) throw new Error(`data ${source} is empty; a corpus needs at least some text`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`data ${source} is not valid UTF-8 text`);
  }
  return text;
}

async function readFileBytes(path: string, maxBytes: number): Promise<Uint8Array> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error(`data ${path} is not a file; pass --data PATH or a URL`);
    size = s.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`data file ${path} not found; pass --data PATH or a URL`);
    throw e;
  }
  if (size > maxBytes) throw new Error(`data file ${path} is ${size} bytes, over the limit of ${maxBytes}`);
  return readFile(path);
}

function fetchBytes(url: string, options: ReadTextOptions, maxBytes: number): Promise<Uint8Array> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxRedirects = options.maxRedirects ?? 5;
  const deadline = Date.now() + timeoutMs;
  const get = (current: string, redirectsLeft: number): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      let parsed: URL;
      try {
        parsed = new URL(current);
      } catch {
        reject(new Error(`data URL ${current} is not a valid URL`));
        return;
      }
      const lib = parsed.protocol === 'https:' ? https : parsed.protocol === 'http:' ? http : undefined;
      if (!lib) {
        reject(new Error(`data URL ${current} uses ${parsed.protocol}; only http and https are supported`));
        return;
      }
      const remaining = deadline - Date.now();
      const req = lib.get(parsed, { timeout: Math.max(1, remaining) }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirectsLeft <= 0) {
            reject(new Error(`data URL ${url}: too many redirects (more than ${maxRedirects})`));
            return;
          }
          const next = new URL(res.headers.location, parsed).toString();
          get(next, redirectsLeft - 1).then(resolve, reject);
          return;
        }
        if (status < 200 || status >= 300) {
          res.resume();
          reject(new Error(`data URL ${current} answered HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd()));
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          res.destroy();
          reject(new Error(`data URL ${current} is ${declared} bytes, over the limit of ${maxBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > maxBytes) {
            res.destroy();
            reject(new Error(`data URL ${current} sent more than the limit of ${maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', (e) => reject(new Error(`data URL ${current}: ${e.message}`)));
      });
      // The socket timeout covers idle time; the overall deadline covers slow trickles. Either
      // rejects with the timeout message first, so the abort it causes cannot mask it.
      const onTimeout = (): void => {
        reject(new Error(`data URL ${url}: timed out after ${timeoutMs} ms waiting for ${parsed.host}`));
        req.destroy();
      };
      const timer = setTimeout(onTimeout, Math.max(1, remaining));
      req.on('timeout', onTimeout);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => reject(new Error(`data URL ${current}: ${e.message}`)));
    });
  return get(url, maxRedirects);
}
