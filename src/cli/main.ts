#!/usr/bin/env node
// `livepatch-operator <command>`: one executable for every role. Commands are
// imported lazily so the container image needs none of the dev-only pieces
// (the local control plane) to run the controller or the agent.
import { operatorVersion } from '../paths.js';

interface Command {
  readonly summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  cluster: {
    summary: 'start a local kube-apiserver + etcd with the CRDs installed; prints KUBECONFIG=…',
    run: async (args) => (await import('./cluster.js')).runCluster(args),
  },
  demo: {
    summary: 'the local demo: control plane, controller, simulated fleet, live rollouts',
    run: async (args) => (await import('./demo.js')).runDemo(args),
  },
  controller: {
    summary:
      'the controller (Deployment): paces rollouts node by node, aggregates status, rolls back',
    run: async (args) => (await import('./controller.js')).runController(args),
  },
  agent: {
    summary: "the node agent (DaemonSet): drives this node's livepatches, reports them",
    run: async (args) => (await import('./agent.js')).runAgent(args),
  },
  fleet: {
    summary: 'a simulated fleet: N Nodes, one agent each, simulator backend',
    run: async (args) => (await import('./fleet.js')).runFleet(args),
  },
  'sim-module': {
    summary: 'write a simulated livepatch module to stdout',
    run: async (args) => (await import('./sim-module.js')).runSimModule(args),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `livepatch-operator ${operatorVersion()}\n\nUsage: livepatch-operator <command> [flags]\n\nCommands:\n${lines.join('\n')}\n\nRun a command with --help for its flags.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${operatorVersion()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `livepatch-operator: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
