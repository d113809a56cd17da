// checkpoint/: safetensors files, atomic verified checkpoint directories, sharded and universal checkpoints.
export {
  type Dtype,
  type TypedArray,
  type TensorEntry,
  type ParsedSafetensors,
  DTYPES,
  MAX_HEADER_BYTES,
  elementCount,
  serializeSafetensors,
  parseSafetensors,
  writeSafetensorsFile,
  readSafetensorsFile,
} from './safetensors.js';
export { saveCheckpoint, loadCheckpoint, CHECKPOINT_FORMAT, type CheckpointContents, type LoadedCheckpoint } from './checkpoint_dir.js';
export {
  saveShardedCheckpoint,
  finalizeShardedCheckpoint,
  consolidateCheckpoint,
  ShardedCheckpoint,
  isShardedCheckpoint,
  SHARDED_FORMAT,
  type FlatShard,
  type FlatSlot,
  type ShardPart,
  type ShardedIndex,
} from './sharded.js';
export { float32ToBf16Bits, bf16BitsToFloat32, float32ToF16Bits, f16BitsToFloat32 } from './half.js';
export { floatTensor, asFloatEntry } from './float-tensor.js';
export { AsyncCheckpointWriter, type WriteJob } from './async-writer.js';
export { readSafetensorsHeader, readTensorFloat32, FLOAT_DTYPES, type SafetensorsHeader, type HeaderEntry } from './safetensors-header.js';
export { commitDirectory, writeFileSynced, committedDir, sha256, type FileDigest } from './atomic_dir.js';
export { type TpSplit, tpShardShape, tpShardIndex, tpSplitTensor, tpJoinTensor } from './tp-split.js';
export {
  UNIVERSAL_FORMAT,
  STATES,
  checkManifest,
  checkLayoutNumbers,
  meshRank,
  shardFileName,
  type StateName,
  type UniversalLayout,
  type UniversalManifest,
  type UniversalTensor,
  type ShardInfo,
} from './universal-manifest.js';
export { writeUniversalShard, finalizeUniversal, type OwnedPiece, type TensorInfo, type ShardPart as UniversalShardPart } from './universal-write.js';
export { UniversalCheckpoint, isUniversalCheckpoint } from './universal-read.js';
