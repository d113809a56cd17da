// Tensor-parallel communication overlapped with the linear layers' GEMMs, as Transformer
// Engine's userbuffers run it under Megatron-Core's --tp-comm-overlap (sequence parallelism
// on). Each collective is paired with the GEMM that produces or consumes it, in TE's default
// configuration (transformer_engine/pytorch/module/base.py, initialize_ub):
// - "ring_exchange" for the all-gathers before the column-parallel GEMMs (QKV and FC1
//   forward) and before the row-parallel layers' data-gradient GEMMs (projection and FC2
//   backward): the GEMM runs chunk by chunk (tp chunks of the sequence) while the copy engine
//   passes the next chunk round the ring, so one step costs the longer of a chunk's GEMM and
//   its copy, and the first chunk (the rank's own) needs no copy;
// - "pipeline" for the reduce-scatters after the row-parallel GEMMs (projection and FC2
//   forward): the GEMM in 4 splits, each split's output reduce-scattered by 16 SMs while the
//   next split computes on the remaining SMs (set_sm_margin), the last reduce-scatter exposed;
// - "bulk" for the column-parallel backward: the all-gather of the saved input (needed by the
//   weight gradient) runs beside the data-gradient GEMM and the reduce-scatter of that data
//   gradient beside the weight-gradient GEMM, each on 16 SMs taken from the GEMM.
// All-gathered buffers hold fp8 in fp8 training (fp8_buf for the all-gather layers);
// reduce-scattered ones hold the 16-bit GEMM output. Nothing here is fitted: the split counts
// and SM counts are TE's defaults, the GEMM and link times are the planner's own.
import { allGatherSeconds, groupOf, intraNodeBytesPerS, intraNodeLatencySeconds } from './comm.js';
import { type Device, gemmSeconds, onRemainingSms } from './efficiency.js';
import type { ClusterSpec } from './specs.js';

/** TE's default for the "pipeline" and "bulk" methods: SMs given to communication. */
export const UB_COMM_SMS = 16;
/** TE's default split count of the "pipeline" reduce-scatter overlap. */
export const UB_PIPELINE_SPLITS = 4;

/** A tensor-parallel linear layer of one micro-batch, as the GEMM (T x k) . (k x n) of its
 * forward pass on one rank, T being the gathered tokens. */
export interface TpLinear {
  kind: 'column' | 'row';
  /** Column-parallel: hidden in, out/tp out. Row-parallel: in/tp in, hidden out. */
  k: number;
  n: number;
}

/** Seconds of one pass of a layer: its (chunked) GEMMs, and what their collectives add. */
export interface OverlapSeconds {
  gemm: number;
  comm: number;
  /** Weight-gradient GEMMs, part of `gemm` (what a zero-bubble schedule defers). */
  weightGrad: number;
}

/** GEMM time on the SMs the userbuffers' communication kernels leave. */
const slowed = (dev: Device, seconds: number) => onRemainingSms(dev, seconds, UB_COMM_SMS);

/**
 * One of `chunks` row blocks of a T x k x n GEMM. TE issues the chunks round-robin on its
 * compute streams (_NUM_MAX_UB_STREAMS = 3), so consecutive chunks share the SMs and their
 * tiles fill waves together: each takes its share of the chunks run as one batch, not a
 * lone small GEMM's partial wave. Each chunk still reads the whole weight.
 */
function chunkGemm(dev: Device, T: number, k: number, n: number, chunks: number): number {
  return gemmSeconds(dev, T / chunks, k, n, chunks) / chunks;
}

/** One overlapped GEMM: its kernels' time alone, and the time with its collective. */
interface Overlap {
  gemm: number;
  total: number;
}

/** Ring-exchange all-gather into a GEMM: tp chunks, a chunk copied while another computes. */
function ringExchange(dev: Device, c: ClusterSpec, tp: number, T: number, k: number, n: number, chunkBytes: number): Overlap {
  const g = chunkGemm(dev, T, k, n, tp);
  const copy = chunkBytes / intraNodeBytesPerS(c) + intraNodeLatencySeconds(c);
  return { gemm: tp * g, total: g + (tp - 1) * Math.max(g, copy) };
}

/** GEMM in splits, each split's output reduce-scattered while the next computes. */
function pipelinedReduceScatter(dev: Device, c: ClusterSpec, tp: number, T: number, k: number, n: number, outBytes: number): Overlap {
  const s = UB_PIPELINE_SPLITS;
  const g = chunkGemm(dev, T, k, n, s);
  const rs = allGatherSeconds(c, groupOf(tp, 1, c.node.gpusPerNode), outBytes / s);
  return { gemm: s * g, total: slowed(dev, g) + (s - 1) * Math.max(slowed(dev, g), rs) + rs };
}

/** A GEMM with a collective beside it on borrowed SMs. */
function bulk(dev: Device, gemm: number, comm: number): Overlap {
  return { gemm, total: Math.max(slowed(dev, gemm), comm) };
}

/**
 * Forward and backward seconds of the layer's tensor-parallel linears with their
 * collectives overlapped. `hidden` is the model width (the gathered / scattered dimension);
 * `agBytes` and `rsBytes` are the bytes per element of all-gathered and reduce-scattered data.
 */
export function overlappedLinears(dev: Device, c: ClusterSpec, tp: number, T: number, hidden: number, linears: TpLinear[], agBytes: number, rsBytes: number): { forward: OverlapSeconds; backward: OverlapSeconds } {
  const forward: OverlapSeconds = { gemm: 0, comm: 0, weightGrad: 0 };
  const backward: OverlapSeconds = { gemm: 0, comm: 0, weightGrad: 0 };
  const add = (pass: OverlapSeconds, o: Overlap) => { pass.gemm += o.gemm; pass.comm += o.total - o.gemm; };
  const chunk = (T / tp) * hidden * agBytes;
  const full = T * hidden;
  const group = groupOf(tp, 1, c.node.gpusPerNode);
  for (const { kind, k, n } of linears) {
    const wgrad = gemmSeconds(dev, k, T, n);
    backward.weightGrad += wgrad;
    if (kind === 'column') {
      add(forward, ringExchange(dev, c, tp, T, k, n, chunk));
      add(backward, bulk(dev, gemmSeconds(dev, T, n, k), allGatherSeconds(c, group, full * agBytes)));
      add(backward, bulk(dev, wgrad, allGatherSeconds(c, group, full * rsBytes)));
    } else {
      add(forward, pipelinedReduceScatter(dev, c, tp, T, k, n, full * rsBytes));
      // The gathered output gradient feeds the data gradient chunk by chunk (k and n swap).
      add(backward, ringExchange(dev, c, tp, T, n, k, chunk));
      backward.gemm += wgrad;
    }
  }
  return { forward, backward };
}
