// The command table of `livepatch-operator` and the one way it is run. The
// product's executable (src/cli/main.ts) serves the product's commands; a
// checkout's executable (lab/cli/main.ts) adds the lab's to the same table.
// Commands are imported lazily so a role loads only what it runs.
import { operatorVersion } from '../paths.js';

export interface Command {
  readonly summary: string;
  run(args: string[]): Promise<number>;
}

export type CommandTable = Readonly<Record<string, Command>>;

export const PRODUCT_COMMANDS: CommandTable = {
  controller: {
    summary:
      'the controller (Deployment): paces rollouts node by node, aggregates status, rolls back',
    run: async (args) => (await import('./controller.js')).runController(args),
  },
  agent: {
    summary: "the node agent (DaemonSet): drives this node's livepatches, reports them",
    run: async (args) => (await import('./agent.js')).runAgent(args),
  },
  'sim-module': {
    summary: 'write a simulated livepatch module to stdout',
    run: async (args) => (await import('./sim-module.js')).runSimModule(args),
  },
};

function usage(commands: CommandTable): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`);
  return `livepatch-operator ${operatorVersion()}\n\nUsage: livepatch-operator <command> [flags]\n\nCommands:\n${lines.join('\n')}\n\nRun a command with --help for its flags.\n`;
}

async function dispatch(commands: CommandTable, argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(commands));
    return 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${operatorVersion()}\n`);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`unknown command "${name}"\n\n${usage(commands)}`);
    return 2;
  }
  return command.run(rest);
}

/** Runs the command named on the command line and sets the exit code. */
export function runCommandLine(commands: CommandTable): void {
  dispatch(commands, process.argv.slice(2)).then(
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
}
