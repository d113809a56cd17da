// The per-job secret every connection proves it knows (src/dist checks it). A job that lives
// entirely inside one launcher gets a fresh one; a job spread over several launchers must
// share one, so it is read from ATSCALE_JOB_SECRET or --secret-file. It is never printed.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TopologyError } from './topology.js';

export const SECRET_ENV = 'ATSCALE_JOB_SECRET';
/** 16 bytes, hex: anything shorter is guessable enough to be refused. */
const MIN_HEX_DIGITS = 32;

export const HOW_TO_MAKE_SECRET =
  `make one with \`export ${SECRET_ENV}=$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \\n')\` ` +
  `(or write it to a file readable only by you and pass --secret-file FILE) and give every node the same value`;

export function generateJobSecret(): string {
  return randomBytes(32).toString('hex');
}

export interface SecretSource {
  env: Record<string, string | undefined>;
  secretFile?: string;
  /** True when some ranks of the job run under another launcher (another node). */
  shared: boolean;
}

export function resolveJobSecret(src: SecretSource): string {
  let secret: string | undefined;
  let origin: string;
  if (src.secretFile !== undefined) {
    origin = `--secret-file ${src.secretFile}`;
    try {
      secret = readFileSync(src.secretFile, 'utf8').trim();
    } catch (e) {
      throw new TopologyError(`cannot read ${origin}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  } else {
    origin = `environment variable ${SECRET_ENV}`;
    secret = src.env[SECRET_ENV]?.trim() || undefined;
  }
  if (secret === undefined) {
    if (!src.shared) return generateJobSecret();
    throw new TopologyError(`a multi-node job needs a job secret shared by every node and none was given: ${HOW_TO_MAKE_SECRET}`);
  }
  // The message names the rule, never the value.
  if (!/^[0-9a-fA-F]+$/.test(secret) || secret.length < MIN_HEX_DIGITS || secret.length % 2 !== 0) {
    throw new TopologyError(`the job secret from ${origin} must be at least ${MIN_HEX_DIGITS} hex digits, an even number of them (whole bytes, as the workers read it; it has ${secret.length} characters, or non-hex ones): ${HOW_TO_MAKE_SECRET}`);
  }
  return secret.toLowerCase();
}
