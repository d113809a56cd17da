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
import { compile, type Executable } from '../runtime/execute.js';
import { readStepProfile, type StepProfile } from '../runtime/profile.js';
import type { ExecOptions } from '../runtime/session.js';
import { PartitionedProgram } from './partitioned-program.js';

export type Named = Record<string, HostValue>;

/** The process group of each mesh axis a program's collectives name ({ tp: group }). */
export type AxisGroups = Readonly<Record<string, ProcessGroup>>;

export class NamedExecutable {
  private constructor(private readonly exe: Executable | PartitionedProgram, readonly inputNames: string[], readonly outputNames: string[]) {}

  static async compile(program: Program, outputNames: string[], opts: ExecOptions, groups: AxisGroups = {}): Promise<NamedExecutable> {
    if (outputNames.length !== program.outputs.length) throw new Error(`a program with ${program.outputs.length} outputs was given ${outputNames.length} names (${outputNames.join(', ')})`);
    const inputNames = program.inputs.map((id) => String(program.graph.node(id).attrs.name));
    const exe = hasCommunication(program) ? await PartitionedProgram.compile(program, opts, groups) : await compile(program, opts);
    return new NamedExecutable(exe, inputNames, outputNames);
  }

  /** ONNX programs this runs: 1, or the parts between its communication steps. */
  get partCount(): number {
    return this.exe instanceof PartitionedProgram ? this.exe.parts.length : 1;
  }

  async run(feeds: Named): Promise<Named> {
    for (const k of Object.keys(feeds)) if (!this.inputNames.includes(k)) throw new Error(`this program has no input '${k}'; its inputs are ${this.inputNames.join(', ')}`);
    const ordered = this.inputNames.map((n) => {
      const v = feeds[n];
      if (!v) throw new Error(`input '${n}' is missing; this program takes ${this.inputNames.join(', ')}`);
      return v;
    });
    const out = await this.exe.run(ordered);
    return Object.fromEntries(this.outputNames.map((n, i) => [n, out[i]!]));
  }

  /** With the profile option: ends ONNX Runtime's profiling and reads the kernel times of the
   * last run (of every ONNX part, for a program with communication). */
  endProfiling(): StepProfile {
    if (this.exe instanceof PartitionedProgram) return this.exe.endProfiling();
    return readStepProfile(this.exe.endProfiling(), this.exe.nodes);
  }
}
