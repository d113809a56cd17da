// The thread behind AsyncCheckpointWriter: runs each write job it is sent, one at a time, and
// answers with its id (and the error, if the save failed; the staging directory is removed).
// A job names its writer: the thread can only run writers it knows (functions cannot cross
// threads), so a new checkpoint format adds its writer to WRITERS.
import { parentPort } from 'node:worker_threads';
import { saveCheckpoint } from './checkpoint_dir.js';
import { saveShardedCheckpoint } from './sharded.js';
import type { WriteJob } from './async-writer.js';

const WRITERS: { [K in WriteJob['writer']]: (job: Extract<WriteJob, { writer: K }>) => void } = {
  checkpoint: (j) => saveCheckpoint(j.dir, j.contents),
  shard: (j) => saveShardedCheckpoint(j.dir, j.rank, j.worldSize, j.saveId, j.part),
};

parentPort?.on('message', (m: { id: number; job: WriteJob }) => {
  try {
    (WRITERS[m.job.writer] as (j: WriteJob) => void)(m.job);
    parentPort!.postMessage({ id: m.id });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: `writing checkpoint ${m.job.dir}: ${(e as Error).message}` });
  }
});
