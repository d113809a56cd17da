// A program with communication, compiled: its ONNX parts (ir/partition.ts) compiled once, run
// in order with the collectives on the mesh's process groups between them. Takes and returns
// positional values like runtime/Executable, so NamedExecutable wraps either one.
import type { ProcessGroup } from '../dist/index.js';
import type { Program } from '../ir/graph.js';
import { type ComputePart, type CommStep, partitionProgram, type Partition } from '../ir/partition.js';
import type { HostValue } from '../ir/value.js';
import { shapeStr, sameShape } from '../ir/shape.js';
import { optimize } from '../ir/passes.js';
import { compile, type CompileOptions, type Executable } from '../runtime/execute.js';
import { foldEvaluate } from '../runtime/reference/interpreter.js';
import { readStepProfile, type StepProfile } from '../runtime/profile.js';
import { checkGroups, runCommStep, type RunValues } from './comm-step.js';

type Compiled = { step: ComputePart; exe: Executable } | { step: CommStep };

export class PartitionedProgram {
  /** Index of the last step that reads each value (values read by no step are absent). */
  private readonly lastUse = new Map<number, number>();
  /** How many times the steps read each value: a collective may overwrite what only it reads. */
  private readonly reads = new Map<number, number>();
  private readonly isOutput: Set<number>;

  private constructor(
    readonly partition: Partition,
    private readonly program: Program,
    private readonly steps: Compiled[],
    private readonly groups: Readonly<Record<string, ProcessGroup>>,
  ) {
    this.isOutput = new Set(partition.outputs);
    steps.forEach((s, k) => {
      const reads = s.step.kind === 'compute' ? s.step.inputs : s.step.calls.map((c) => c.input);
      for (const id of reads) {
        this.lastUse.set(id, k);
        this.reads.set(id, (this.reads.get(id) ?? 0) + 1);
      }
    });
  }

  static async compile(original: Program, opts: CompileOptions, groups: Readonly<Record<string, ProcessGroup>>): Promise<PartitionedProgram> {
    // The graph passes run on the whole program first, so that common subexpressions of
    // different parts are computed once (each part is optimised again when compiled).
    const program = opts.optimize === false ? original : optimize(original, foldEvaluate);
    const partition = partitionProgram(program);
    checkGroups(partition.steps.filter((s): s is CommStep => s.kind === 'comm'), groups);
    const steps: Compiled[] = [];
    let k = 0;
    for (const step of partition.steps) {
      if (step.kind === 'comm') steps.push({ step });
      else {
        // Each part gets its own profile prefix: ONNX Runtime names the trace by prefix and
        // time, and parts ending their profiles in the same millisecond must not be confused.
        // Pool threads that spin after a part compete with the next part's pool and with the
        // other ranks while this one waits in a collective: off unless asked for (a 4-block
        // tensor-parallel MLP step on 2 ranks of a 2-core machine: 3.6 s spinning, 1.0 s not).
        const exe = await compile(step.program, { ...opts, spinning: opts.spinning ?? false, profile: opts.profile ? `${opts.profile}.part${k++}` : undefined });
        steps.push({ step, exe });
      }
    }
    return new PartitionedProgram(partition, program, steps, groups);
  }

  /** The compiled ONNX parts, in run order. */
  get parts(): Executable[] {
    return this.steps.flatMap((s) => ('exe' in s ? [s.exe] : []));
  }

  async run(feeds: readonly HostValue[]): Promise<HostValue[]> {
    const { inputs, outputs, constants } = this.partition;
    if (feeds.length !== inputs.length) throw new Error(`compiled program takes ${inputs.length} inputs, got ${feeds.length}`);
    const env = new Map<number, HostValue>();
    const owned = new Set<number>();
    feeds.forEach((v, i) => {
      const declared = this.program.graph.node(inputs[i]!);
      if (!sameShape(v.shape, declared.shape) || v.dtype !== declared.dtype) throw new TypeError(`input ${i} (${String(declared.attrs.name)}) expects ${declared.dtype}${shapeStr(declared.shape)}, got ${v.dtype}${shapeStr(v.shape)}`);
      env.set(inputs[i]!, v);
    });
    const lastUse = this.lastUse;
    const isOutput = this.isOutput;
    const vals: RunValues = {
      get: (id) => env.get(id)!,
      set: (id, v, mine) => {
        env.set(id, v);
        if (mine) owned.add(id);
      },
      consumable: (id, step) => owned.has(id) && lastUse.get(id) === step && this.reads.get(id) === 1 && !isOutput.has(id),
    };
    for (let k = 0; k < this.steps.length; k++) {
      const s = this.steps[k]!;
      if ('exe' in s) {
        const outs = await s.exe.run(s.step.inputs.map((id) => env.get(id)!));
        s.step.outputs.forEach((id, i) => vals.set(id, outs[i]!, true));
      } else await runCommStep(s.step, k, this.groups, vals);
      // Drop what no later step reads, so a long program does not hold every activation.
      for (const id of s.step.kind === 'compute' ? s.step.inputs : s.step.calls.map((c) => c.input)) if (lastUse.get(id) === k && !isOutput.has(id)) env.delete(id);
    }
    return outputs.map((id) => env.get(id) ?? constants.get(id)!);
  }

  /** Ends ONNX Runtime's profiling of every part; the kernels of all parts as one step
   * (stepUs is the parts' compute time: the communication between them is in no trace). */
  endProfiling(): StepProfile {
    const profiles = this.parts.map((exe) => readStepProfile(exe.endProfiling(), exe.nodes));
    const flops = new Map<string, { fwd: number; bwd: number }>();
    for (const p of profiles) {
      for (const [m, f] of p.flops) {
        const acc = flops.get(m) ?? { fwd: 0, bwd: 0 };
        flops.set(m, { fwd: acc.fwd + f.fwd, bwd: acc.bwd + f.bwd });
      }
    }
    return {
      stepUs: profiles.reduce((a, p) => a + p.stepUs, 0),
      runs: profiles.length ? Math.min(...profiles.map((p) => p.runs)) : 0,
      kernels: profiles.flatMap((p) => p.kernels),
      flops,
    };
  }
}
