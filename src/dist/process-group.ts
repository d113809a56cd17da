// A process group: an ordered set of ranks that run collectives together. The world group
// owns the transport and the store; subgroups share them and get their own channel number,
// so their frames never mix with the parent's. Collectives must be called by every member in
// the same order (as with torch.distributed); each call gets the next sequence number.
import { allocFloat, floatDTypeOf, type FloatArray } from '../ir/dtype.js';
import { createHash } from 'node:crypto';
import { chunkRange } from './chunk.js';
import { chainBroadcast, directAllReduce, directBroadcast, bytesOf } from './collectives.js';
import { FrameType } from './frame.js';
import { PendingOp } from './op.js';
import { reducerFor, type ReduceOp } from './reduce.js';
import { ring } from './ring.js';
import type { Transport } from './transport.js';

export interface CollectiveOptions {
  /** Every wait fails after this long, naming the ranks it waited for. */
  timeoutMs: number;
  /** All-reduce and broadcast switch from direct exchange to ring/chain above this size. */
  smallMessageBytes: number;
  /** Pipelining unit of the ring and the chain, and the largest data frame sent. */
  segmentBytes: number;
}

interface Shared {
  transport: Transport;
  active: Set<PendingOp>;
  /** Scratch for reduceScatter, reused across calls. */
  work: FloatArray;
  /** Called by the world group's destroy. */
  shutdown: () => Promise<void>;
}

export class ProcessGroup {
  /** This process's rank within the group. */
  readonly rank: number;
  readonly worldSize: number;
  private seq = 0;
  private readonly sendSeq: number[];
  private readonly recvSeq: number[];
  private readonly subgroupCounts = new Map<string, number>();
  private destroyed = false;

  /** @internal use initProcessGroup() or newGroup(). */
  constructor(
    /** Global ranks of the members, in group-rank order. */
    readonly members: readonly number[],
    globalRank: number,
    private readonly channel: number,
    private readonly shared: Shared,
    readonly options: CollectiveOptions,
    private readonly isWorld: boolean,
  ) {
    this.rank = members.indexOf(globalRank);
    this.worldSize = members.length;
    this.sendSeq = new Array<number>(members.length).fill(0);
    this.recvSeq = new Array<number>(members.length).fill(0);
  }

  /** Sum, max or average of `buf` over all ranks, in place. */
  async allReduce(buf: FloatArray, op: ReduceOp = 'sum'): Promise<void> {
    const reduce = reducerFor(op);
    const p = this.newOp('all_reduce', FrameType.collective, true);
    if (this.worldSize > 1) {
      if (buf.byteLength <= this.options.smallMessageBytes) directAllReduce(p, this.members, this.rank, buf, reduce);
      else ring(p, this.members, this.rank, buf, { reduceScatter: true, allGather: true, reduce, segmentElems: this.segmentElems(buf) });
    }
    await p.start();
    if (op === 'avg') for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! / this.worldSize;
  }

  /**
   * Sums `input` (the full buffer, same length on every rank) over all ranks and writes this
   * rank's part into `output`: elements chunkRange(input.length, worldSize, rank), so uneven
   * lengths give the first (length % worldSize) ranks one element more; no padding.
   */
  async reduceScatter(input: FloatArray, output: FloatArray): Promise<void> {
    const [a, b] = chunkRange(input.length, this.worldSize, this.rank);
    if (output.length !== b - a) throw new RangeError(`reduceScatter: output has ${output.length} elements but rank ${this.rank} owns ${b - a} of ${input.length} (chunkRange(${input.length}, ${this.worldSize}, ${this.rank}))`);
    const p = this.newOp('reduce_scatter', FrameType.collective, true);
    // The ring reduces in place; work on a copy so the caller's input stays as it was.
    if (this.shared.work.length < input.length || this.shared.work.constructor !== input.constructor) this.shared.work = allocFloat(floatDTypeOf(input), input.length);
    const work = this.shared.work.subarray(0, input.length);
    work.set(input);
    if (this.worldSize > 1) ring(p, this.members, this.rank, work, { reduceScatter: true, allGather: false, reduce: reducerFor('sum'), segmentElems: this.segmentElems(work) });
    await p.start();
    output.set(work.subarray(a, b));
  }

  /** Concatenates every rank's `input` (its chunkRange(output.length, ...) part) into `output`. */
  async allGather(input: FloatArray, output: FloatArray): Promise<void> {
    const [a, b] = chunkRange(output.length, this.worldSize, this.rank);
    if (input.length !== b - a) throw new RangeError(`allGather: input has ${input.length} elements but rank ${this.rank}'s part of ${output.length} is ${b - a} (chunkRange(${output.length}, ${this.worldSize}, ${this.rank}))`);
    const p = this.newOp('all_gather', FrameType.collective, true);
    output.set(input, a);
    if (this.worldSize > 1) ring(p, this.members, this.rank, output, { reduceScatter: false, allGather: true, reduce: reducerFor('sum'), segmentElems: this.segmentElems(output) });
    await p.start();
  }

  /** Copies root's `buf` into every rank's `buf`. */
  async broadcast(buf: FloatArray, root: number): Promise<void> {
    this.checkRank(root, 'broadcast root');
    const p = this.newOp('broadcast', FrameType.collective, false);
    if (this.worldSize > 1) {
      if (buf.byteLength <= this.options.smallMessageBytes) directBroadcast(p, this.members, this.rank, buf, root);
      else chainBroadcast(p, this.members, this.rank, buf, root, this.segmentElems(buf));
    }
    await p.start();
  }

  /** Returns once every rank of the group has called barrier(). */
  async barrier(): Promise<void> {
    const p = this.newOp('barrier', FrameType.collective, true);
    if (this.worldSize > 1) directAllReduce(p, this.members, this.rank, new Float32Array(1), reducerFor('sum'));
    await p.start();
  }

  /** Sends `buf` to group rank `dst`, which must call recv with a buffer of the same size. */
  async send(buf: FloatArray, dst: number): Promise<void> {
    this.checkRank(dst, 'send destination');
    if (dst === this.rank) throw new RangeError(`send: rank ${dst} cannot send to itself`);
    const p = this.newOp(`send to rank ${this.members[dst]}`, FrameType.p2p, false, this.sendSeq[dst]!++, this.members[dst]);
    this.forEachSegment(buf, (part, view) => p.send(this.members[dst]!, part, bytesOf(view)));
    await p.start();
  }

  /** Receives into `buf` what group rank `src` sent with send(). */
  async recv(buf: FloatArray, src: number): Promise<void> {
    this.checkRank(src, 'recv source');
    if (src === this.rank) throw new RangeError(`recv: rank ${src} cannot receive from itself`);
    const p = this.newOp(`recv from rank ${this.members[src]}`, FrameType.p2p, false, this.recvSeq[src]!++, this.members[src]);
    this.forEachSegment(buf, (part, view) => p.recv(this.members[src]!, part, bytesOf(view), null, null));
    await p.start();
  }

  /**
   * A subgroup of this group's ranks (group-relative, sorted). Only its members need to call
   * this, all with the same ranks and in the same order relative to their other newGroup
   * calls; ranks outside it get null back.
   */
  newGroup(ranks: number[]): ProcessGroup | null {
    this.checkAlive('newGroup');
    const sorted = [...new Set(ranks)].sort((a, b) => a - b);
    if (sorted.length === 0) throw new RangeError('newGroup: ranks must not be empty');
    for (const r of sorted) this.checkRank(r, 'newGroup rank');
    const id = `${this.channel}|${sorted.join(',')}`;
    const n = this.subgroupCounts.get(id) ?? 0;
    this.subgroupCounts.set(id, n + 1);
    if (!sorted.includes(this.rank)) return null;
    // Members derive the same channel from the same description, without talking.
    const channel = createHash('sha256').update(`${id}|${n}`).digest().readUInt32LE(0) || 1;
    const members = sorted.map((r) => this.members[r]!);
    return new ProcessGroup(members, this.members[this.rank]!, channel, this.shared, this.options, false);
  }

  /**
   * Leaves the group; for the world group also closes every link and the store, after every
   * frame this rank sent has reached the kernel (peers still finishing a collective that this
   * rank has finished get all of its data, and then see it leave, not crash).
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.isWorld) await this.shared.shutdown();
  }

  /** Elements of `buf` per segment: segmentBytes whatever the element size. */
  private segmentElems(buf: FloatArray): number {
    return Math.max(1, Math.floor(this.options.segmentBytes / buf.BYTES_PER_ELEMENT));
  }

  private forEachSegment(buf: FloatArray, fn: (part: number, view: FloatArray) => void): void {
    const segments = Math.max(1, Math.ceil(buf.length / this.segmentElems(buf)));
    for (let k = 0; k < segments; k++) {
      const [a, b] = chunkRange(buf.length, segments, k);
      fn(k, buf.subarray(a, b));
    }
  }

  /** `everyMemberContributes`: see PendingOp (false for broadcast and point-to-point). */
  private newOp(name: string, type: number, everyMemberContributes: boolean, seq = this.seq++, only?: number): PendingOp {
    this.checkAlive(name);
    const members = only === undefined ? this.members : [only];
    const p = new PendingOp(name, members, everyMemberContributes, this.shared.transport, type, this.channel, seq, this.options.timeoutMs);
    if (!p.failed) {
      this.shared.active.add(p);
      p.onSettled = () => this.shared.active.delete(p);
    }
    return p;
  }

  private checkRank(r: number, what: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.worldSize) throw new RangeError(`${what} ${r} is not a rank of this group (0..${this.worldSize - 1})`);
  }

  private checkAlive(what: string): void {
    if (this.destroyed) throw new Error(`${what}: this process group was destroyed`);
  }
}

export type { Shared as ProcessGroupShared };
