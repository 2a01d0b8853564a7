// @ts-check
// The import direction of the whole tree, one table: each layer names the
// layers it may import. A file may always import its own layer. The product
// (src/, agent/) never imports the lab (lab/) or the tests (test/); the lab may
// import the product; the tests may import both. docs/architecture.md draws it.
import { dirname, relative, resolve } from 'node:path';
import process from 'node:process';

/** @typedef {{ name: string, paths: readonly string[], may: readonly string[] }} Layer */

/** @type {readonly Layer[]} First match wins: list files before their folders. */
export const LAYERS = [
  {
    name: 'ground',
    paths: ['src/clock.ts', 'src/log.ts', 'src/paths.ts', 'src/observability/'],
    may: [],
  },
  { name: 'api', paths: ['src/api/'], may: ['ground'] },
  { name: 'kube', paths: ['src/kube/'], may: ['api', 'ground'] },
  { name: 'controller', paths: ['src/controller/'], may: ['kube', 'api', 'ground'] },
  { name: 'agent', paths: ['agent/'], may: ['kube', 'api', 'ground'] },
  { name: 'cli', paths: ['src/cli/'], may: ['controller', 'agent', 'kube', 'api', 'ground'] },
  { name: 'lab', paths: ['lab/'], may: ['cli', 'controller', 'agent', 'kube', 'api', 'ground'] },
  {
    name: 'test',
    paths: ['test/'],
    may: ['lab', 'cli', 'controller', 'agent', 'kube', 'api', 'ground'],
  },
];

/**
 * The layer of a repository-relative path, or undefined outside every layer.
 * @param {string} path
 */
export function layerOf(path) {
  const file = path.replace(/\.js$/, '.ts');
  return LAYERS.find((l) =>
    l.paths.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p)),
  );
}

/** @type {import('eslint').Rule.RuleModule} */
const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'imports follow the layer table in lint/layers.js' },
    schema: [
      { type: 'object', properties: { root: { type: 'string' } }, additionalProperties: false },
    ],
    messages: {
      upward:
        '{{from}} ({{fromLayer}}) may not import {{to}} ({{toLayer}}): a {{fromLayer}} file imports only {{allowed}}. See docs/architecture.md.',
    },
  },
  create(context) {
    const root =
      /** @type {{ root?: string } | undefined} */ (context.options[0])?.root ?? context.cwd;
    const from = relative(root, context.filename);
    const fromLayer = layerOf(from);
    if (!fromLayer) return {};
    /** @param {import('estree').Node & { source?: import('estree').Expression | null }} node */
    const check = (node) => {
      const source = node.source;
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return;
      if (!source.value.startsWith('.')) return;
      const to = relative(root, resolve(dirname(context.filename), source.value));
      const toLayer = layerOf(to);
      if (!toLayer || toLayer === fromLayer || fromLayer.may.includes(toLayer.name)) return;
      context.report({
        node: source,
        messageId: 'upward',
        data: {
          from,
          to,
          fromLayer: fromLayer.name,
          toLayer: toLayer.name,
          allowed: [fromLayer.name, ...fromLayer.may].join(', '),
        },
      });
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
      // `import('../x.js').T` in a type: no code at run time, but the layer depends on it all the same.
      TSImportType: check,
    };
  },
};

export default { rules: { 'import-direction': rule } };

/**
 * `npm run --silent layers`: each layer, what it may import, and what it does
 * import (layer: number of import lines), read from the tree as it is.
 */
async function printLayers() {
  const { readdir, readFile } = await import('node:fs/promises');
  const root = process.cwd();
  /** @type {Map<string, Map<string, number>>} */
  const uses = new Map(LAYERS.map((l) => [l.name, new Map()]));
  const files = (await readdir(root, { recursive: true })).filter(
    (f) => /\.ts$/.test(f) && !f.startsWith('node_modules') && !f.startsWith('dist'),
  );
  for (const file of files) {
    const from = layerOf(file);
    if (!from) continue;
    const text = await readFile(resolve(root, file), 'utf8');
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const to = layerOf(relative(root, resolve(dirname(resolve(root, file)), m[1] ?? '')));
      if (!to || to === from) continue;
      const counts = uses.get(from.name);
      counts?.set(to.name, (counts.get(to.name) ?? 0) + 1);
    }
  }
  for (const l of LAYERS) {
    const used = [...(uses.get(l.name) ?? [])].map(([n, c]) => `${n} ${c}`).join(', ');
    process.stdout.write(
      `${l.name.padEnd(10)} ${l.paths.join(' ')}\n${''.padEnd(10)} may import: ${l.may.join(', ') || 'nothing of ours'}\n${''.padEnd(10)} imports:    ${used || 'nothing of ours'}\n`,
    );
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename))
  await printLayers();
