// The smallest file elf.ts takes for a kernel module: a 64-bit little-endian
// ELF header of a relocatable object for this machine, with an empty section
// table right after it.
const MACHINE: Readonly<Record<string, number>> = { x64: 62, arm64: 183 };

export function minimalModuleElf(o: { type?: number; machine?: number } = {}): Buffer {
  const head = Buffer.alloc(64);
  head.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  head.writeUInt16LE(o.type ?? 1, 16);
  head.writeUInt16LE(o.machine ?? MACHINE[process.arch] ?? 62, 18);
  head.writeUInt32LE(1, 20);
  head.writeBigUInt64LE(64n, 40);
  head.writeUInt16LE(64, 52);
  head.writeUInt16LE(64, 58);
  return head;
}
