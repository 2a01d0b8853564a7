// `node dist/lab/plugin/main.js --version vX.Y.Z --base-url URL --homepage URL
// [--out DIR]`: the plugin's release archives and krew manifest (release.yaml
// runs it on a tag; run `npm run build` first).
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { repositoryRoot } from '../../src/paths.js';
import { releasePlugin } from './release.js';

const USAGE = 'usage: main.js --version vX.Y.Z --base-url URL --homepage URL [--out DIR]\n';

function args(): ReturnType<typeof parse> {
  try {
    return parse();
  } catch (err) {
    // An unknown flag: say what is wrong and how to call it, not a stack trace.
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

function parse() {
  return parseArgs({
    options: {
      version: { type: 'string' },
      'base-url': { type: 'string' },
      homepage: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

const { values } = args();
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const { version, 'base-url': baseUrl, homepage } = values;
if (!version || !baseUrl || !homepage) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const release = await releasePlugin({
  version,
  baseUrl,
  homepage,
  outDir: values.out ?? join(repositoryRoot(), 'dist', 'plugin-release'),
});
process.stdout.write(
  `${release.manifest}\n${release.archives.map((a) => `${a.sha256}  ${a.file}`).join('\n')}\nbundle: ${release.bundleBytes} bytes\n`,
);
