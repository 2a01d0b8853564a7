// What the first bytes of a file say about whether it can be a kernel module.
import { describe, expect, test } from '@jest/globals';
import { elfModuleProblem } from '../../../agent/kernel/elf.js';
import { minimalModuleElf } from '../../support/elf.js';

const problem = (bytes: Buffer, size = bytes.length, arch = 'x64'): string | undefined =>
  elfModuleProblem(bytes.subarray(0, 64), size, arch);

describe('a kernel module is an ELF relocatable object for this machine, whole', () => {
  test('the smallest such file passes', () => {
    expect(problem(minimalModuleElf({ machine: 62 }))).toBeUndefined();
  });

  test.each([
    ['an empty file', Buffer.alloc(0), 'the file is empty'],
    [
      'a web page',
      Buffer.from('<!DOCTYPE html><html>…'),
      'it is not an ELF file (it starts with 3c 21 44 4f',
    ],
    ['a gzip', Buffer.from([0x1f, 0x8b, 8, 0]), 'it is not an ELF file'],
    ['an ELF header cut short', minimalModuleElf().subarray(0, 20), 'less than an ELF header'],
    [
      'an executable',
      minimalModuleElf({ type: 2, machine: 62 }),
      'it is an executable, not a kernel module',
    ],
    ['a shared object', minimalModuleElf({ type: 3, machine: 62 }), 'a shared object'],
    [
      'a module for another machine',
      minimalModuleElf({ type: 1, machine: 183 }),
      'it is built for aarch64, this node is x86-64',
    ],
  ])('%s is refused', (_what, bytes, words) => {
    expect(problem(bytes)).toContain(words);
  });

  test('a file that ends before its section table was cut short', () => {
    const head = minimalModuleElf({ machine: 62 });
    head.writeUInt16LE(10, 60); // ten section headers, 640 bytes past the header
    expect(problem(head, 300)).toBe(
      'it is cut short: its section table ends at byte 704, the file has 300',
    );
    expect(problem(head, 704)).toBeUndefined();
  });
});
