// A socket that speaks in whole frames, read through FrameReader ('data' events). Used for
// control traffic: the store, and the sending side of peer links (which only ever receives
// handshake and goodbye frames). A bad header closes the socket and reports why.
import type { Socket } from 'node:net';
import { encodeFrame, FrameError, type Frame, FrameReader } from './frame.js';
import { ControlQueue, type ControlLink, HANDSHAKE_MAX_PAYLOAD } from './auth.js';

export class FramedSocket implements ControlLink {
  readonly reader = new FrameReader(HANDSHAKE_MAX_PAYLOAD);
  readonly control = new ControlQueue();
  /** Called for frames after the handshake; until then frames go to `control`. */
  onFrame: ((f: Frame) => void) | null = null;
  /** Called once when the socket closes or is rejected, with the reason. */
  onClose: ((reason: string) => void) | null = null;
  private closedReason: string | null = null;
  private lastError: string | null = null;

  constructor(readonly socket: Socket, readonly who: string) {
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.reader.push(chunk);
      } catch (err) {
        this.reject(err instanceof FrameError ? err.message : String(err));
        return;
      }
      for (const f of frames) {
        if (this.onFrame) this.onFrame(f);
        else this.control.push(f);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.lastError = err.code ?? err.message;
    });
    socket.on('close', () => this.closed(this.lastError ? `connection error ${this.lastError}` : 'connection closed'));
  }

  sendControl(type: number, payload: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(type, payload));
  }

  nextControl(timeoutMs: number, who: string): Promise<Frame> {
    return this.control.next(timeoutMs, who);
  }

  /** Drops the connection because the peer broke the protocol. */
  reject(reason: string): void {
    this.closed(reason);
    this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.closedReason !== null;
  }

  private closed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.control.fail(new Error(`${this.who}: ${reason}`));
    this.onClose?.(reason);
  }
}
