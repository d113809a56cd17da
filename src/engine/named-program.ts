// Compiled programs called by name: inputs are a record keyed by the names the program's
// inputs were traced with, outputs a record keyed by the names given at compile time, so a
// caller never depends on an order that lives in a comment.
//
// A program with collectives (tensor or sequence parallelism) is cut into ONNX parts with the
// communication between them (engine/partitioned-program.ts); given the process group of each
// mesh axis it names, it is called exactly like one that has none. A program without
// collectives is one ONNX session, as before.
import type { ProcessGroup } from '../dist/index.js';
import type { Program } from '../ir/graph.js';
import { hasCommunication } from '../ir/partition.js';
import type { HostValue } from '../ir/value.js';
import { compile, type CompileOptions, type Executable, type LoweredNode } from '../runtime/execute.js';
import { readStepProfile, type StepProfile } from '../runtime/profile.js';
import type { ExecOptions } from '../runtime/session.js';
import { PartitionedProgram } from './partitioned-program.js';

export type Named = Record<string, HostValue>;

/** A traced program and the names of its outputs, in the order it returns them. */
export interface NamedProgram {
  program: Program;
  outputs: string[];
}

/** The process group of each mesh axis a program's collectives name ({ tp: group }). */
export type AxisGroups = Readonly<Record<string, ProcessGroup>>;

export class NamedExecutable {
  private constructor(private readonly exe: Executable | PartitionedProgram, readonly inputNames: string[], readonly outputNames: string[]) {}

  static async compile(program: Program, outputNames: string[], opts: ExecOptions & Pick<CompileOptions, 'reuseOutputs'>, groups: AxisGroups = {}): Promise<NamedExecutable> {
    if (outputNames.length !== program.outputs.length) throw new Error(`a program with ${program.outputs.length} outputs was given ${outputNames.length} names (${outputNames.join(', ')})`);
    const inputNames = program.inputs.map((id) => String(program.graph.node(id).attrs.name));
    const exe = hasCommunication(program) ? await PartitionedProgram.compile(program, opts, groups) : await compile(program, opts);
    return new NamedExecutable(exe, inputNames, outputNames);
  }

  /** Compiles a program that carries its output names (step-graphs.ts builds them so). */
  static of(p: NamedProgram, opts: ExecOptions, groups: AxisGroups = {}): Promise<NamedExecutable> {
    return NamedExecutable.compile(p.program, p.outputs, opts, groups);
  }

  /** ONNX programs this runs: 1, or the parts between its communication steps. */
  get partCount(): number {
    return this.exe instanceof PartitionedProgram ? this.exe.parts.length : 1;
  }

  /** Runs the program. With `into` (a buffer for every output, by name) the outputs are
   * written there: training state is double-buffered, or updated in place where every output
   * element depends only on the same element of its input. */
  async run(feeds: Named, into?: Named): Promise<Named> {
    const ordered = this.ordered(feeds, this.inputNames, 'input');
    if (!into) {
      const out = await this.exe.run(ordered);
      return Object.fromEntries(this.outputNames.map((n, i) => [n, out[i]!]));
    }
    const buffers = this.ordered(into, this.outputNames, 'output');
    if (this.exe instanceof PartitionedProgram) {
      // Its last part's outputs are fresh values: copy them into the caller's buffers.
      const out = await this.exe.run(ordered);
      out.forEach((v, i) => (buffers[i]!.data as Float32Array).set(v.data as Float32Array));
    } else await this.exe.run(ordered, buffers);
    return into;
  }

  private ordered(values: Named, names: readonly string[], what: 'input' | 'output'): HostValue[] {
    for (const k of Object.keys(values)) if (!names.includes(k)) throw new Error(`this program has no ${what} '${k}'; its ${what}s are ${names.join(', ')}`);
    return names.map((n) => {
      const v = values[n];
      if (!v) throw new Error(`${what} '${n}' is missing; this program ${what === 'input' ? 'takes' : 'returns'} ${names.join(', ')}`);
      return v;
    });
  }

  /** With the profile option, for a program that is one ONNX session: ends the profiling and
   * returns the trace file and the lowered nodes it names. */
  endTrace(): { file: string; nodes: readonly LoweredNode[] } {
    if (this.exe instanceof PartitionedProgram) throw new Error('endTrace: this program runs as several ONNX parts; use endProfiling()');
    return { file: this.exe.endProfiling(), nodes: this.exe.nodes };
  }

  /** With the profile option: ends ONNX Runtime's profiling and reads the kernel times of the
   * last run (of every ONNX part, for a program with communication). */
  endProfiling(): StepProfile {
    if (this.exe instanceof PartitionedProgram) return this.exe.endProfiling();
    return readStepProfile(this.exe.endProfiling(), this.exe.nodes);
  }
}
