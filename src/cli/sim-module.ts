// `livepatch-operator sim-module`: writes a simulated livepatch module to stdout.
import { parseArgs } from 'node:util';
import { buildSimModule, serializeSimModule } from '../../agent/kernel/sim/sim-module.js';

const HELP = `Usage: livepatch-operator sim-module --name NAME --kernel RELEASE [--replace] [--function OBJ:FUNC]...

Writes a simulated livepatch module to stdout: what a real module carries
(patch name, vermagic for RELEASE, the atomic-replace flag, patched objects and
functions). The simulator backend loads it like a .ko and refuses it, as the
kernel does, on a node whose release differs (ENOEXEC).

  --name       patch name, e.g. livepatch_cve_2024_1086
  --kernel     kernel release it is built for (\`uname -r\`)
  --replace    an atomic-replace (cumulative) patch
  --function   a patched function, vmlinux:FUNC or MODULE:FUNC (repeatable)
`;

export function runSimModule(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      name: { type: 'string' },
      kernel: { type: 'string' },
      replace: { type: 'boolean' },
      function: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return Promise.resolve(0);
  }
  if (!values.name || !values.kernel) {
    process.stderr.write(`--name and --kernel are required\n\n${HELP}`);
    return Promise.resolve(2);
  }
  const module = buildSimModule({
    name: values.name,
    kernel: values.kernel,
    replace: values.replace ?? false,
    ...(values.function ? { functions: values.function } : {}),
  });
  process.stdout.write(serializeSimModule(module));
  return Promise.resolve(0);
}
