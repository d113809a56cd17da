// The WebGPU probe's reason, from ONNX Runtime's real native message on a machine without an
// adapter: the source path and failed check are dropped, and long text is never cut mid-word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readableReason } from '../../src/runtime/webgpu-probe.js';

const ORT = '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters';

test('the reason is the sentence after the failed check, whole', () => {
  assert.equal(readableReason(ORT), 'Failed to get a WebGPU adapter: No supported adapters');
});

test('long reasons are cut at a word boundary', () => {
  const long = 'word '.repeat(100).trim();
  const r = readableReason(long, 42);
  assert.ok(r.endsWith(' ...'));
  assert.match(r.slice(0, -4), /^(word )*word$/);
  assert.ok(r.length <= 46);
});
