// The import-direction rule that `npm run lint` runs (lint/layers.js): the
// product never imports the lab or the tests, the agent never the controller
// or the CLIs, the API nothing above it.
import { describe, expect, it, test } from '@jest/globals';
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import layers, { layerOf } from '../../lint/layers.js';
import { repositoryRoot } from '../../src/paths.js';

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const root = repositoryRoot();
const rule = layers.rules['import-direction'];
const at = (file: string, code: string): RuleTester.ValidTestCase => ({
  code,
  filename: join(root, file),
  options: [{ root }],
});
const refused = (file: string, code: string): RuleTester.InvalidTestCase => ({
  ...at(file, code),
  errors: [{ messageId: 'upward' }],
});

describe('the import direction', () => {
  test('each folder is in the layer the table gives it', () => {
    expect(layerOf('src/api/names.ts')?.name).toBe('api');
    expect(layerOf('src/log.ts')?.name).toBe('ground');
    expect(layerOf('agent/kernel/sysfs.ts')?.name).toBe('agent');
    expect(layerOf('lab/fleet/fleet.ts')?.name).toBe('lab');
    expect(layerOf('src/cli/main.js')?.name).toBe('cli');
  });

  describe('an import in a type is held to the same table', () => {
    new RuleTester({ languageOptions: { parser: tseslint.parser, sourceType: 'module' } }).run(
      'import-direction',
      rule,
      {
        valid: [at('agent/agent.ts', "type T = import('../src/kube/raw.js').X;")],
        invalid: [refused('agent/agent.ts', "type T = import('../lab/wait.js').PollOptions;")],
      },
    );
  });

  // The rule checks only files in a layer: a new folder the table does not name (say
  // src/localcluster/) would import the lab unseen.
  test('every source file of src/, agent/, lab/ and test/ is in a layer', () => {
    const sources = ['src', 'agent', 'lab', 'test'].flatMap((dir) =>
      readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
        .map((f) => `${dir}/${f}`)
        .filter((f) => /\.[cm]?[jt]s$/.test(f) && !f.startsWith('lab/go/')),
    );
    expect(sources.length).toBeGreaterThan(100);
    expect(sources.filter((f) => !layerOf(f))).toEqual([]);
  });

  // RuleTester makes one test of each case.
  describe('imports down the layers pass, imports up or across are refused', () => {
    new RuleTester({ languageOptions: { sourceType: 'module' } }).run('import-direction', rule, {
      valid: [
        at('agent/agent.ts', "import { x } from '../src/kube/raw.js';"),
        at('lab/cli/demo.ts', "import { x } from '../../src/controller/runtime.js';"),
        at('test/unit/a.test.ts', "import { x } from '../../lab/wait.js';"),
        at('src/controller/planner.ts', "import { x } from './targets.js';"),
        at('src/api/crds.ts', "import { x } from '../paths.js';"),
        at('src/cli/main.ts', "import { x } from 'node:path';"),
      ],
      invalid: [
        refused('src/cli/main.ts', "const m = import('../../lab/cli/demo.js');"),
        refused('agent/agent.ts', "import { x } from '../src/controller/targets.js';"),
        refused('agent/setup.ts', "import { x } from '../src/cli/signals.js';"),
        refused('agent/agent.ts', "import { x } from '../lab/fleet/fleet.js';"),
        refused('src/api/names.ts', "import { x } from '../kube/raw.js';"),
        refused('src/kube/raw.ts', "export { x } from '../controller/queue.js';"),
        refused('lab/chaos/api.ts', "import { x } from '../../test/support/kubectl.js';"),
      ],
    });
  });
});
