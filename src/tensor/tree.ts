// Nested arguments and results (a tensor, an array of them, a record of them, nested):
// flattened to leaves for compiling, rebuilt for the caller.

export type Tree<T> = T | readonly Tree<T>[] | { readonly [k: string]: Tree<T> };

export function flatten<T>(tree: Tree<T>, isLeaf: (x: unknown) => x is T, path = 'arg', out: { path: string; leaf: T }[] = []): { path: string; leaf: T }[] {
  if (isLeaf(tree)) out.push({ path, leaf: tree });
  else if (Array.isArray(tree)) tree.forEach((t, i) => flatten(t as Tree<T>, isLeaf, `${path}.${i}`, out));
  else if (tree && typeof tree === 'object') {
    for (const k of Object.keys(tree).sort()) flatten((tree as Record<string, Tree<T>>)[k]!, isLeaf, `${path}.${k}`, out);
  } else throw new TypeError(`${path}: expected a tensor, an array or a record of them, got ${typeof tree}`);
  return out;
}

/** Rebuilds `template`'s structure, taking leaves in flatten order from `leaves`. */
export function unflatten<T, U>(template: Tree<T>, isLeaf: (x: unknown) => x is T, leaves: U[]): Tree<U> {
  let i = 0;
  const walk = (t: Tree<T>): Tree<U> => {
    if (isLeaf(t)) return leaves[i++]!;
    if (Array.isArray(t)) return t.map((x) => walk(x as Tree<T>));
    const o: Record<string, Tree<U>> = {};
    for (const k of Object.keys(t as object).sort()) o[k] = walk((t as Record<string, Tree<T>>)[k]!);
    return o;
  };
  return walk(template);
}
