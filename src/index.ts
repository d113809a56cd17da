// The public API of atscale: tensors, transformations, models and the training engine.
export { Tensor, tensor, constant, full, matmul, type TensorLike } from './tensor/tensor.js';
export { where, concat, split, gather, oneHot, softmax, logSoftmax, layerNorm, crossEntropy, causalMask, gelu, dropout } from './tensor/functional.js';
export { jit, trace, type HostTree, type TensorTree, type TensorFn, type HostOf, type HostArgs, type Jitted } from './tensor/jit.js';
export { grad, valueAndGrad, type GradOptions } from './autodiff/api.js';
export { gradients } from './autodiff/grad.js';
export { hostValue, type HostValue } from './ir/value.js';
export { type DType, DTYPES, type TrainDType, TRAIN_DTYPES } from './ir/dtype.js';
export { Rng } from './tensor/rng.js';
export { type Device, DEVICES } from './runtime/session.js';
export { Module, Parameter } from './nn/module.js';
export { Linear, Embedding, LayerNorm, RMSNorm, Dropout } from './nn/layers.js';
export { FlatLayout } from './nn/flat.js';
export { GPT } from './models/gpt.js';
export { type GPTConfig, gptConfig } from './models/config.js';
export { Llama } from './models/llama.js';
export { type LlamaConfig, llamaConfig } from './models/llama-config.js';
export { type LanguageModel, type ModelDims, type LayerCache } from './models/model.js';
export { createModel, type Architecture } from './models/registry.js';
export { loadModelDir, saveModelDir, type LoadedModelDir, type SaveModelDirOptions } from './models/hf/folder.js';
export { PRESETS, MODEL_PRESETS, modelPreset, preset, type Preset, type TrainHyper } from './models/presets.js';
export { JinjaChatTemplate, tokenizerFromHfJSON } from './data/index.js';
export { MeshTrainer, createTrainer, deepSpeedOptions, type TrainerOptions } from './engine/mesh-trainer.js';
export { Mesh } from './engine/mesh/mesh.js';
export { initProcessGroup, type ProcessGroup } from './dist/index.js';
export { runTraining, type RunOptions, type RunResult } from './engine/train-loop.js';
export { Generator, sampleToken, type SampleOptions } from './engine/generate.js';
export { exportOnnx } from './engine/export-onnx.js';
export { loadTrainedModel } from './engine/load-trained.js';
export { parseDeepSpeedConfig, DeepSpeedConfigError, type DeepSpeedConfig } from './engine/ds-config.js';
export { type Trainer, type StepResult } from './engine/trainer.js';
export { type AdamWConfig, DEFAULT_ADAMW } from './optim/adamw.js';
export { cosineLr, type CosineSchedule } from './optim/schedule.js';
export {
  type Tokenizer,
  CharTokenizer,
  BpeTokenizer,
  trainBpe,
  type BpeTrainOptions,
  tokenizerFromJSON,
  loadTokenizer,
  readText,
  BatchSampler,
  ShardedBatchSampler,
  type Batch,
} from './data/index.js';
export { additionCorpus } from './data/addition.js';
export { openMonitors, TensorBoardWriter, ProgressBar, type Monitor, type MetricRecord, type MonitorOptions } from './monitor/index.js';
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard/index.js';
