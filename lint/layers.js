// @ts-check
// The import direction of the whole tree, one table: each layer names the
// layers it may import. A file may always import its own layer. The product
// (src/, agent/) never imports the lab (lab/) or the tests (test/); the lab may
// import the product; the tests may import both. docs/architecture.md draws it.
import { dirname, relative, resolve } from 'node:path';

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
    };
  },
};

export default { rules: { 'import-direction': rule } };
