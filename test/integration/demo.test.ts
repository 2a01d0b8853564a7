// The README's main command, end to end: `livepatch-operator demo --exit`
// (what `npm run demo` runs, minus staying up) on its own control plane.
import { expect, test } from '@jest/globals';
import { runOperator } from '../../lab/operator-process.js';

test('the demo rolls one patch out to Complete and rolls a stalled one back', async () => {
  const demo = runOperator(['demo', '--exit', '--nodes=6']);
  const code = await new Promise<number | null>((resolve) => demo.child.on('exit', resolve));
  const out = demo.output();
  expect(code).toBe(0);
  expect(out).toMatch(/KUBECONFIG=\/\S+\/kubeconfig/);
  expect(out).toMatch(/cve-2024-1086\s+Complete\s+patched 4\/4\s+in flight 0\s+not applicable 2/);
  expect(out).toMatch(/cve-2024-0001\s+RolledBack\s+patched 0\/4/);
  expect(out).toContain('blocked by qemu-kvm[');
}, 180_000);
