// What the first bytes of a file say about whether it can be a kernel module:
// an ELF relocatable object (a .ko is one) for this machine, whole. Read
// before modinfo and insmod, so that a web page saved as .ko, an executable
// or a truncated download is named for what it is. Pure.

/** The ELF header of a 64-bit object; a 32-bit header is shorter. */
export const ELF_HEADER_BYTES = 64;

const MACHINES: Readonly<Record<number, string>> = {
  3: 'i386',
  40: 'arm',
  62: 'x86-64',
  183: 'aarch64',
  243: 'riscv',
  21: 'ppc64',
  22: 's390x',
};

const NODE_MACHINE: Readonly<Record<string, number>> = {
  x64: 62,
  arm64: 183,
  riscv64: 243,
  ppc64: 21,
  s390x: 22,
};

const TYPES: Readonly<Record<number, string>> = {
  2: 'an executable',
  3: 'a shared object or position-independent executable',
  4: 'a core dump',
};

function hexStart(head: Uint8Array): string {
  return [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/**
 * Why a file whose first bytes are `head` and whose size is `size` is no
 * kernel module for `arch` (process.arch), or undefined when it can be one.
 */
export function elfModuleProblem(head: Uint8Array, size: number, arch: string): string | undefined {
  if (size === 0) return 'the file is empty';
  if (hexStart(head) !== '7f 45 4c 46')
    return `it is not an ELF file (it starts with ${hexStart(head)}, not 7f 45 4c 46)`;
  const is64 = head[4] === 2;
  if (head.length < (is64 ? ELF_HEADER_BYTES : 52))
    return `it is cut short: ${size} bytes, less than an ELF header`;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const little = head[5] === 1;
  const type = view.getUint16(16, little);
  if (type !== 1)
    return `it is ${TYPES[type] ?? `an ELF file of type ${type}`}, not a kernel module (a relocatable object, ELF type REL)`;
  const machine = view.getUint16(18, little);
  const expected = NODE_MACHINE[arch];
  if (expected !== undefined && machine !== expected)
    return `it is built for ${MACHINES[machine] ?? `ELF machine ${machine}`}, this node is ${MACHINES[expected] ?? arch}`;
  // The section header table ends the file: a download cut short loses it first.
  const tableEnd = is64
    ? Number(view.getBigUint64(40, little)) +
      view.getUint16(58, little) * view.getUint16(60, little)
    : view.getUint32(32, little) + view.getUint16(46, little) * view.getUint16(48, little);
  if (tableEnd > size)
    return `it is cut short: its section table ends at byte ${tableEnd}, the file has ${size}`;
  return undefined;
}
