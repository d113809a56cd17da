// `export --format hf`: a folder that transformers.js (and Optimum-style loaders) open with no
// network: config.json, tokenizer.json, tokenizer_config.json, generation_config.json and
// onnx/model.onnx (the KV-cache decoder with dynamic dimensions), optionally
// onnx/model_fp16.onnx (fp16 weights) and onnx/model_quantized.onnx (int8 dynamic
// quantization). Written to a temporary folder and renamed, so a crash never leaves half a folder.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { hfTokenizerJSON, type Tokenizer } from '../data/index.js';
import type { LanguageModel } from '../models/model.js';
import { hfConfig, hfDecoderGraph } from '../models/hf-onnx.js';
import { FlatLayout } from '../nn/flat.js';
import { modelProto } from '../runtime/onnx/model.js';
import { toFp16Weights, toInt8Dynamic } from '../runtime/onnx/quantize.js';

export type HfVariant = 'fp16' | 'int8';

export interface HfExportResult {
  dir: string;
  /** File (relative to dir) -> bytes. */
  files: Record<string, number>;
}

export function exportHf(model: LanguageModel, params: Float32Array, tokenizer: Tokenizer, out: string, variants: readonly HfVariant[] = []): HfExportResult {
  const layout = new FlatLayout(model);
  const graph = hfDecoderGraph(model, (name) => layout.view(params, name));
  const d = model.dims;
  const text: Record<string, string> = {
    'config.json': JSON.stringify({ ...hfConfig(model), 'transformers.js_config': { dtype: 'fp32' } }, null, 2),
    'tokenizer.json': JSON.stringify(hfTokenizerJSON(tokenizer)),
    'tokenizer_config.json': JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', model_max_length: d.blockSize, clean_up_tokenization_spaces: false, add_bos_token: false, add_eos_token: false }, null, 2),
    'generation_config.json': JSON.stringify({ max_length: d.blockSize, do_sample: false }, null, 2),
  };
  const onnx: Record<string, Uint8Array> = { 'onnx/model.onnx': modelProto(graph) };
  if (variants.includes('fp16')) onnx['onnx/model_fp16.onnx'] = modelProto(toFp16Weights(graph));
  if (variants.includes('int8')) onnx['onnx/model_quantized.onnx'] = modelProto(toInt8Dynamic(graph));

  const dir = resolve(out);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'onnx'), { recursive: true });
  const files: Record<string, number> = {};
  for (const [name, body] of [...Object.entries(text), ...Object.entries(onnx)]) {
    writeFileSync(join(tmp, name), body);
    files[name] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  }
  mkdirSync(dirname(dir), { recursive: true });
  if (existsSync(dir)) rmSync(dir, { recursive: true });
  renameSync(tmp, dir);
  return { dir, files };
}
