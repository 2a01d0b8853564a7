// How blocking tasks are named in messages, by the agent and the controller alike.
import type { BlockingTask } from './generated/types.js';

/** "qemu-kvm[812], sshd[90], …" */
export function describeTasks(tasks: readonly BlockingTask[], max = 3): string {
  const shown = tasks.slice(0, max).map((t) => `${t.comm}[${t.pid}]`);
  return shown.join(', ') + (tasks.length > max ? ', …' : '');
}
