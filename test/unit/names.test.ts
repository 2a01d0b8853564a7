import { hostnameLabel } from '../../lab/controlplane/nodes.js';
import { describe, expect, test } from '@jest/globals';
import {
  InvalidNameError,
  kernelModuleName,
  kernelRelease,
  nodeName,
  patchName,
} from '../../src/api/names.js';

describe('names are checked before they reach a path or the API', () => {
  test('a patch name is a plain module name', () => {
    expect(patchName('livepatch_cve_2024_1086')).toBe('livepatch_cve_2024_1086');
  });

  test('upper-case letters occur in module names as kpatch-build and vendors make them', () => {
    expect(patchName('livepatch_CVE_2024_1086')).toBe('livepatch_CVE_2024_1086');
    expect(patchName('lkp_Ubuntu_6_8_0_40_42_generic_57')).toBe(
      'lkp_Ubuntu_6_8_0_40_42_generic_57',
    );
    expect(patchName('x'.repeat(55))).toHaveLength(55);
  });

  test('a dash in a module file or modinfo name is an underscore to the kernel', () => {
    expect(kernelModuleName('livepatch-fix-CVE')).toBe('livepatch_fix_CVE');
    expect(kernelModuleName('livepatch_fix')).toBe('livepatch_fix');
  });

  test.each(['../etc', 'a/b', '', 'x'.repeat(56), 'with-dash', 'dot.ko'])(
    'patch name %j is refused',
    (value) => {
      expect(() => patchName(value)).toThrow(InvalidNameError);
    },
  );

  test('node names are DNS subdomains', () => {
    expect(nodeName('worker-7.example')).toBe('worker-7.example');
    expect(() => nodeName('Worker_7')).toThrow(InvalidNameError);
  });

  test('kernel releases are trimmed, like `uname -r` output read from a file', () => {
    expect(kernelRelease('6.1.0-26-amd64\n')).toBe('6.1.0-26-amd64');
    expect(() => kernelRelease('6.1 26')).toThrow(InvalidNameError);
  });
});

describe('the hostname label of a registered node', () => {
  test('is the node name when it fits a label value, else its first DNS label cut to 63 characters', () => {
    expect(hostnameLabel('sim-node-001')).toBe('sim-node-001');
    const long = ['a'.repeat(40), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(83)].join('.');
    expect(hostnameLabel(long)).toBe('a'.repeat(40));
    expect(hostnameLabel(`${'e'.repeat(62)}-${'f'.repeat(190)}`)).toBe('e'.repeat(62));
  });
});
