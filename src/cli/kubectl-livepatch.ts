#!/usr/bin/env node
// `kubectl livepatch` (a kubectl plugin: put kubectl-livepatch on PATH): reads
// the command line and runs one subcommand of the table in plugin-commands.ts.
// Exit codes: 0 done, 1 an error, 2 a command line it cannot run, 3 a
// steering refusal (nothing changed).
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { LivePatchName } from '../api/names.js';
import { loadKubeConfig } from '../kube/config.js';
import { COMMANDS, parseOptions, usage, type Invocation } from './plugin-commands.js';
import { Refused } from './plugin-writes.js';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: parseOptions(),
  });
  const [command, name] = positionals;
  if (values.help === true || !command) {
    process.stdout.write(usage());
    return command || values.help ? 0 : 2;
  }
  const { kubeconfig, context } = values;
  const invocation: Invocation = {
    // YAML imported here rather than loaded lazily, so the bundled plugin carries it.
    kc: loadKubeConfig(typeof kubeconfig === 'string' ? kubeconfig : undefined, {
      ...(typeof context === 'string' ? { context } : {}),
      parseYaml,
    }),
    flag: (f) => values[f] === true,
  };
  const subcommand = COMMANDS.find((c) => c.name === command);
  if (subcommand?.operand === 'none') {
    process.stdout.write(await subcommand.run(invocation));
    return 0;
  }
  if (!name) {
    process.stderr.write(`${command} needs a LivePatch name\n\n${usage()}`);
    return 2;
  }
  if (!subcommand) {
    process.stderr.write(`unknown command "${command}"\n\n${usage()}`);
    return 2;
  }
  process.stdout.write(await subcommand.run(invocation, name as LivePatchName));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof Refused) {
      process.stderr.write(`kubectl livepatch: ${err.message}\n`);
      process.exitCode = 3;
      return;
    }
    process.stderr.write(
      `kubectl livepatch: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
