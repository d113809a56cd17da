// Worker side of the launcher's liveness check. A stopped (SIGSTOP) or livelocked rank keeps
// its sockets open (the kernel still ACKs), so peers only notice at the collective timeout and
// the launcher never does. Under `atscale launch` a worker therefore writes one byte to a pipe
// the launcher gave it (fd ATSCALE_HEARTBEAT_FD) every ATSCALE_HEARTBEAT_MS from its event
// loop: a stopped process or a blocked loop stops the beats, and the launcher acts on that.
import { fstatSync } from 'node:fs';
import net from 'node:net';

let started = false;

/** Starts the beats when the launcher asked for them (idempotent; a no-op otherwise). */
export function startHeartbeat(env: NodeJS.ProcessEnv = process.env): void {
  if (started) return;
  const fd = Number(env.ATSCALE_HEARTBEAT_FD);
  const everyMs = Number(env.ATSCALE_HEARTBEAT_MS ?? '1000');
  if (!Number.isInteger(fd) || fd < 3 || !Number.isFinite(everyMs) || everyMs <= 0) return;
  started = true;
  // Only this process was given the pipe: its own children inherit the environment, not the
  // descriptor, and must not write into whatever their fd 3 happens to be.
  if (env === process.env) delete process.env.ATSCALE_HEARTBEAT_FD;
  let sock: net.Socket;
  try {
    // The launcher's pipe is a socket pair; anything else at that number is not ours.
    if (!fstatSync(fd).isSocket()) return;
    sock = new net.Socket({ fd, readable: false, writable: true });
  } catch {
    return; // not a pipe we can use: run without beats rather than fail the job
  }
  // The beat must never keep a finished worker alive, and a launcher that went away is not an error here.
  sock.on('error', () => clearInterval(timer));
  sock.unref();
  const beat = Buffer.of(1);
  const timer = setInterval(() => {
    if (sock.writableLength === 0) sock.write(beat);
  }, everyMs);
  timer.unref();
  sock.write(beat);
}
