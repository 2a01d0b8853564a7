// Where a command is on this process's PATH, for tests that run it with a PATH of their own.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export function onPath(command: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const path = join(dir, command);
    if (dir && existsSync(path)) return path;
  }
  throw new Error(`${command} is not on PATH`);
}
