// What launchers say to the elastic rendezvous and what it answers: small JSON objects in
// `rendezvous` frames, bounded in size and checked field by field on arrival, so a peer that
// knows the secret but speaks another version (or nonsense) is named and dropped, not trusted.
import { FrameType, type Frame } from '../dist/frame.js';
import { encodeFrame } from '../dist/frame.js';

/** Largest rendezvous message (a round assignment or a summary line). */
export const RDZV_MAX_PAYLOAD = 64 * 1024;

/** Launcher -> rendezvous. */
export type ToRendezvous =
  /** Ready for the next round: this node's workers are not running. `prefer` orders nodes (its --node-rank, or a large number). */
  | { t: 'join'; nproc: number; prefer: number; host: string }
  | { t: 'ping' }
  /** The node's worker group of `round` ended (exitCode 0: all its workers succeeded). */
  | { t: 'result'; round: number; exitCode: number; message: string; bySignal: boolean };

/** One round's assignment for one node. */
export interface RoundAssignment {
  t: 'round';
  round: number;
  nodeRank: number;
  nnodes: number;
  worldSize: number;
  /** Global rank of this node's first worker. */
  rankBase: number;
  /** Where rank 0 hosts the workers' own store this round. */
  masterAddr: string;
  masterPort: number;
}

/** Rendezvous -> launcher. */
export type ToLauncher =
  | RoundAssignment
  /** The round is over (a failure, a lost node or a new one): stop the workers, then join again. */
  | { t: 'stop'; round: number; reason: string }
  /** The job is over: exit with this status after printing the summary. */
  | { t: 'end'; exitCode: number; summary: string }
  | { t: 'pong' };

export function encodeMessage(m: ToRendezvous | ToLauncher): Buffer {
  const payload = Buffer.from(JSON.stringify(m), 'utf8');
  if (payload.length > RDZV_MAX_PAYLOAD) throw new Error(`rendezvous message of ${payload.length} bytes exceeds ${RDZV_MAX_PAYLOAD}`);
  return encodeFrame(FrameType.rendezvous, payload);
}

const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length <= 4096;

function parse(f: Frame): Record<string, unknown> {
  if (f.header.type !== FrameType.rendezvous) throw new Error(`frame type ${f.header.type} where a rendezvous message was expected`);
  let v: unknown;
  try {
    v = JSON.parse(f.payload.toString('utf8'));
  } catch {
    throw new Error('a rendezvous message that is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('a rendezvous message that is not a JSON object');
  return v as Record<string, unknown>;
}

/** Checks a launcher's message; throws naming the field that is wrong. */
export function decodeToRendezvous(f: Frame): ToRendezvous {
  const m = parse(f);
  const bad = (field: string) => new Error(`rendezvous message '${String(m.t)}' has a bad '${field}': ${JSON.stringify(m[field])?.slice(0, 40)}`);
  switch (m.t) {
    case 'join':
      if (!isInt(m.nproc, 1) || m.nproc > 4096) throw bad('nproc');
      if (!isInt(m.prefer)) throw bad('prefer');
      if (!isStr(m.host)) throw bad('host');
      return { t: 'join', nproc: m.nproc, prefer: m.prefer, host: m.host };
    case 'ping':
      return { t: 'ping' };
    case 'result':
      if (!isInt(m.round)) throw bad('round');
      if (!isInt(m.exitCode) || m.exitCode > 255) throw bad('exitCode');
      if (!isStr(m.message)) throw bad('message');
      if (typeof m.bySignal !== 'boolean') throw bad('bySignal');
      return { t: 'result', round: m.round, exitCode: m.exitCode, message: m.message, bySignal: m.bySignal };
    default:
      throw new Error(`unknown rendezvous message '${String(m.t).slice(0, 40)}'`);
  }
}

/** Checks the rendezvous's message; throws naming the field that is wrong. */
export function decodeToLauncher(f: Frame): ToLauncher {
  const m = parse(f);
  const bad = (field: string) => new Error(`rendezvous message '${String(m.t)}' has a bad '${field}'`);
  switch (m.t) {
    case 'round':
      for (const k of ['round', 'nodeRank', 'rankBase', 'masterPort']) if (!isInt(m[k])) throw bad(k);
      for (const k of ['nnodes', 'worldSize']) if (!isInt(m[k], 1)) throw bad(k);
      if (!isStr(m.masterAddr)) throw bad('masterAddr');
      return m as unknown as RoundAssignment;
    case 'stop':
      if (!isInt(m.round)) throw bad('round');
      if (!isStr(m.reason)) throw bad('reason');
      return { t: 'stop', round: m.round, reason: m.reason };
    case 'end':
      if (!isInt(m.exitCode) || m.exitCode > 255) throw bad('exitCode');
      if (typeof m.summary !== 'string') throw bad('summary');
      return { t: 'end', exitCode: m.exitCode, summary: m.summary };
    case 'pong':
      return { t: 'pong' };
    default:
      throw new Error(`unknown rendezvous message '${String(m.t).slice(0, 40)}'`);
  }
}
