// The thread behind AsyncCheckpointWriter: runs each write job it is sent, one at a time, and
// answers with its id (and the error, if the write failed; the staging directory is removed),
// giving the job's buffers back for the next snapshot. A job names its writer, since functions
// cannot cross threads.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { saveCheckpoint } from './checkpoint_dir.js';
import { writeUniversalShard } from './universal-write.js';
import { jobBuffers, type WriteJob } from './async-writer.js';

// On Linux the nice value is per thread and pid 0 names the calling thread, so only this
// writer is lowered, not the training thread of the same process.
try {
  setPriority(0, (workerData as { nice: number }).nice);
} catch {
  // Not permitted or not supported: the writer runs at the process's priority.
}

const WRITERS: { [K in WriteJob['writer']]: (job: Extract<WriteJob, { writer: K }>) => void } = {
  checkpoint: (j) => saveCheckpoint(j.dir, j.contents),
  'universal-shard': (j) => writeUniversalShard(j.dir, j.part),
};

parentPort?.on('message', (m: { id: number; job: WriteJob }) => {
  let error: string | undefined;
  try {
    (WRITERS[m.job.writer] as (j: WriteJob) => void)(m.job);
  } catch (e) {
    error = `writing checkpoint ${m.job.dir}: ${(e as Error).message}`;
  }
  const buffers = jobBuffers(m.job);
  parentPort!.postMessage({ id: m.id, error, buffers }, buffers);
});
