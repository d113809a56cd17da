// Two "hosts" on one machine: two network namespaces joined by a veth pair, 10.77.0.1/24 and
// 10.77.0.2/24, each with only its own loopback and that link. Needs root and iproute2;
// netnsUnavailable() says why not, so tests can skip with the reason.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

export const HOST_ADDRS = ['10.77.0.1', '10.77.0.2'] as const;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function errorText(e: unknown): string {
  const err = e as { stderr?: Buffer; message: string };
  return (err.stderr?.toString().trim() || err.message).split('\n')[0]!;
}

let probed: string | undefined | null = null;

/** Undefined when namespaces can be made here; otherwise why not. */
export function netnsUnavailable(): string | undefined {
  if (probed !== null) return probed;
  const probe = `atsc${process.pid}probe`;
  try {
    ip(['netns', 'add', probe]);
    ip(['netns', 'del', probe]);
    probed = undefined;
  } catch (e) {
    probed = `cannot create network namespaces here (\`ip netns add\` failed: ${errorText(e)}); needs root and iproute2`;
  }
  return probed;
}

export class TwoHosts {
  readonly names: [string, string];
  private closed = false;

  private constructor(tag: string) {
    this.names = [`atsc${tag}a`, `atsc${tag}b`];
  }

  /** Creates both namespaces and the link; on failure removes whatever was made. */
  static create(): TwoHosts {
    const hosts = new TwoHosts(`${process.pid}${Math.floor(Math.random() * 1e4)}`);
    const [a, b] = hosts.names;
    try {
      ip(['netns', 'add', a]);
      ip(['netns', 'add', b]);
      // Made directly inside the namespaces, so no name is ever taken in the host's namespace.
      ip(['link', 'add', 'veth0', 'netns', a, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', b]);
      hosts.names.forEach((ns, i) => {
        ip(['-n', ns, 'addr', 'add', `${HOST_ADDRS[i]}/24`, 'dev', 'veth0']);
        ip(['-n', ns, 'link', 'set', 'veth0', 'up']);
        ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      });
    } catch (e) {
      hosts.close();
      throw new Error(`setting up the two-host network failed: ${errorText(e)}`);
    }
    return hosts;
  }

  /** Runs argv inside host i's namespace (same filesystem and pids, its own network). */
  spawn(i: 0 | 1, argv: string[], env: NodeJS.ProcessEnv): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.names[i], ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Deleting a namespace takes its end of the veth pair, and so the pair, with it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ns of this.names) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // never created
      }
    }
  }
}
