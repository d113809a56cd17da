// Mutual authentication with the per-job secret: each side proves it knows the secret by
// answering the other's fresh random challenge with an HMAC, so the secret itself never
// crosses the wire and a recorded handshake cannot be replayed. The server proves itself
// first; a client that cannot verify the proof refuses the server too.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FrameType, type Frame } from './frame.js';

export const NONCE_BYTES = 32;
/** Bound for every frame read before the peer has authenticated. */
export const HANDSHAKE_MAX_PAYLOAD = 1024;

export class AuthError extends Error {
  override name = 'AuthError';
}

/** Parses ATSCALE_JOB_SECRET-style hex; never echoes the value in errors. */
export function parseSecret(hex: string | undefined, source = 'ATSCALE_JOB_SECRET'): Buffer {
  if (!hex) throw new AuthError(`${source} is not set: start workers with \`atscale launch\`, which generates a per-job secret, or export a random hex string of at least 32 characters to every worker`);
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0) throw new AuthError(`${source} must be an even-length hex string (its value is not shown)`);
  if (hex.length < 32) throw new AuthError(`${source} is too short (${hex.length} hex characters): use at least 32`);
  return Buffer.from(hex, 'hex');
}

/** One side's view of a connection during the handshake. */
export interface ControlLink {
  sendControl(type: number, payload: Uint8Array): void;
  /** Next control frame, or rejects after timeoutMs with an error naming `who`. */
  nextControl(timeoutMs: number, who: string): Promise<Frame>;
}

/** A queue of received control frames with timed waits; readers push, the handshake pulls. */
export class ControlQueue {
  private frames: Frame[] = [];
  private waiters: { resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;

  push(f: Frame): void {
    const w = this.waiters.shift();
    if (w) w.resolve(f);
    else this.frames.push(f);
  }

  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  next(timeoutMs: number, who: string): Promise<Frame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (fr: Frame) => (clearTimeout(timer), resolve(fr)),
        reject: (e: Error) => (clearTimeout(timer), reject(e)),
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new AuthError(`${who} did not answer within ${timeoutMs} ms during the handshake`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

function proof(secret: Buffer, role: 'server' | 'client', first: Uint8Array, second: Uint8Array, identity: string): Buffer {
  return createHmac('sha256', secret).update(`atscale-v1-${role}`).update(first).update(second).update(identity).digest();
}

function expectType(f: Frame, type: number, who: string): void {
  if (f.header.type === FrameType.refused) throw new AuthError(`${who} refused this worker: ${f.payload.toString('utf8').slice(0, 200)}`);
  if (f.header.type !== type) throw new AuthError(`${who} sent frame type ${f.header.type} during the handshake, expected ${type}`);
}

/**
 * Client side. `identity` (e.g. "rank 3") is bound into both proofs so a peer cannot be
 * talked into accepting a different claim than the one the client made.
 */
export async function authenticateAsClient(link: ControlLink, secret: Buffer, identity: string, who: string, timeoutMs: number): Promise<void> {
  const nonceC = randomBytes(NONCE_BYTES);
  link.sendControl(FrameType.hello, Buffer.concat([nonceC, Buffer.from(identity, 'utf8')]));
  const ch = await link.nextControl(timeoutMs, who);
  expectType(ch, FrameType.challenge, who);
  if (ch.payload.length !== NONCE_BYTES + 32) throw new AuthError(`${who} sent a malformed challenge`);
  const nonceS = ch.payload.subarray(0, NONCE_BYTES);
  const serverProof = ch.payload.subarray(NONCE_BYTES);
  if (!timingSafeEqual(serverProof, proof(secret, 'server', nonceC, nonceS, identity))) {
    link.sendControl(FrameType.refused, Buffer.from('server proof does not match the job secret'));
    throw new AuthError(`${who} does not know this job's secret: refused it (is another job using the same address?)`);
  }
  link.sendControl(FrameType.proof, proof(secret, 'client', nonceS, nonceC, identity));
  expectType(await link.nextControl(timeoutMs, who), FrameType.welcome, who);
}

/**
 * Server side. Returns the client's identity once its proof checks out and `accept(identity)`
 * returns null; otherwise tells the client why and throws.
 */
export async function authenticateAsServer(link: ControlLink, secret: Buffer, accept: (identity: string) => string | null, who: string, timeoutMs: number): Promise<string> {
  const hello = await link.nextControl(timeoutMs, who);
  expectType(hello, FrameType.hello, who);
  if (hello.payload.length < NONCE_BYTES) throw new AuthError(`${who} sent a malformed hello`);
  const nonceC = hello.payload.subarray(0, NONCE_BYTES);
  const identity = hello.payload.subarray(NONCE_BYTES).toString('utf8');
  const nonceS = randomBytes(NONCE_BYTES);
  link.sendControl(FrameType.challenge, Buffer.concat([nonceS, proof(secret, 'server', nonceC, nonceS, identity)]));
  const answer = await link.nextControl(timeoutMs, who);
  expectType(answer, FrameType.proof, who);
  const expected = proof(secret, 'client', nonceS, nonceC, identity);
  if (answer.payload.length !== expected.length || !timingSafeEqual(answer.payload, expected)) {
    link.sendControl(FrameType.refused, Buffer.from('wrong job secret'));
    throw new AuthError(`${who} (claiming "${identity.slice(0, 60)}") failed authentication: wrong job secret; refused`);
  }
  const refusal = accept(identity);
  if (refusal) {
    link.sendControl(FrameType.refused, Buffer.from(refusal));
    throw new AuthError(`${who} refused: ${refusal}`);
  }
  link.sendControl(FrameType.welcome, new Uint8Array(0));
  return identity;
}
