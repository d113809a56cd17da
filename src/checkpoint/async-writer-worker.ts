// The thread behind AsyncCheckpointWriter: writes each checkpoint it is sent, one at a time,
// and answers with its id (and the error, if the save failed; the staging directory is removed).
import { parentPort } from 'node:worker_threads';
import { saveCheckpoint, type CheckpointContents } from './checkpoint_dir.js';

parentPort?.on('message', (m: { id: number; dir: string; contents: CheckpointContents }) => {
  try {
    saveCheckpoint(m.dir, m.contents);
    parentPort!.postMessage({ id: m.id });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: `writing checkpoint ${m.dir}: ${(e as Error).message}` });
  }
});
