// Finds the user's call site for error messages: the first stack frame outside atscale's
// graph-building layers. Only computed when an error is thrown, so tracing stays cheap.

const INTERNAL = /[\\/](?:src|dist[\\/]src)[\\/](?:ir|tensor|autodiff|runtime)[\\/]|node:internal|node_modules/;

export function userSite(): string {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const line of stack) {
    const frame = line.trim().replace(/^at /, '');
    // Frames without a file (Array.map (<anonymous>)) say nothing about where the user is.
    if (!INTERNAL.test(frame) && /:\d+:\d+\)?$/.test(frame)) return frame;
  }
  return stack[0]?.trim().replace(/^at /, '') ?? '<unknown>';
}

export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** Throws an error naming the op, the input shapes and the user's call site. */
export function shapeError(op: string, detail: string, shapes: readonly (readonly number[])[]): never {
  const shown = shapes.map((s) => `[${s.join(', ')}]`).join(' and ');
  throw new ShapeError(`${op}: ${detail} (input shapes ${shown}) at ${userSite()}`);
}
