// The client side of every authenticated control connection (the rendezvous store, the
// elastic rendezvous): connect, retrying while nothing listens yet, then log in with the job
// secret. A connection closed before any answer (the server's login slots were full during a
// flood, or it was restarting) is retried too; a refusal or a wrong secret is final.
import net from 'node:net';
import { FramedSocket } from './framed-socket.js';
import { authenticateAsClient } from './auth.js';

export interface DialOptions {
  host: string;
  port: number;
  secret: Buffer;
  identity: string;
  /** Who is being dialled, for every message. */
  who: string;
  timeoutMs: number;
  /** What to check when it never answers. */
  hint: string;
  /** Longest single login attempt (default: the time left). */
  loginTimeoutMs?: number;
}

export async function dialAuthenticated(o: DialOptions): Promise<FramedSocket> {
  const deadline = Date.now() + o.timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    const sock = await new Promise<net.Socket | string>((resolve) => {
      const s = net.connect({ host: o.host, port: o.port });
      s.once('connect', () => (s.removeAllListeners('error'), resolve(s)));
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    if (typeof sock === 'string') {
      lastError = sock;
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    sock.setNoDelay(true);
    const link = new FramedSocket(sock, o.who);
    try {
      const left = Math.max(1, deadline - Date.now());
      await authenticateAsClient(link, o.secret, o.identity, o.who, Math.min(left, o.loginTimeoutMs ?? left));
    } catch (err) {
      sock.destroy();
      const msg = (err as Error).message;
      if (/refused|secret|malformed|frame type/.test(msg) || Date.now() >= deadline) throw err;
      lastError = msg;
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    return link;
  }
  throw new Error(`${o.who} did not answer within ${o.timeoutMs} ms: ${lastError} (${o.hint})`);
}
