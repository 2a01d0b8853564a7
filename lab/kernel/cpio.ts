// A gzip'd cpio "newc" archive, the format the kernel unpacks as an
// initramfs, written here so the harness needs no cpio tool.
import { gzipSync } from 'node:zlib';

export type CpioEntry =
  | { readonly kind: 'dir'; readonly path: string }
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly data: Uint8Array;
      readonly mode: number;
    }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | {
      readonly kind: 'chardev';
      readonly path: string;
      readonly major: number;
      readonly minor: number;
    };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const hex = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function record(
  ino: number,
  name: string,
  mode: number,
  data: Uint8Array,
  rdev = [0, 0],
): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [
    ino,
    mode,
    0,
    0,
    1,
    0,
    data.length,
    0,
    0,
    rdev[0] ?? 0,
    rdev[1] ?? 0,
    nameBytes.length,
    0,
  ];
  const header = Buffer.from(`070701${fields.map(hex).join('')}`);
  return [
    header,
    nameBytes,
    pad4(header.length + nameBytes.length),
    Buffer.from(data),
    pad4(data.length),
  ];
}

function encode(entry: CpioEntry, ino: number): Buffer[] {
  const name = entry.path.replace(/^\/+/, '');
  switch (entry.kind) {
    case 'dir':
      return record(ino, name, S_IFDIR | 0o755, new Uint8Array());
    case 'file':
      return record(ino, name, S_IFREG | entry.mode, entry.data);
    case 'symlink':
      return record(ino, name, S_IFLNK | 0o777, Buffer.from(entry.target));
    case 'chardev':
      return record(ino, name, S_IFCHR | 0o600, new Uint8Array(), [entry.major, entry.minor]);
  }
}

export function initramfs(entries: readonly CpioEntry[]): Buffer {
  const parts = entries.flatMap((e, i) => encode(e, i + 1));
  parts.push(...record(0, 'TRAILER!!!', 0, new Uint8Array()));
  return gzipSync(Buffer.concat(parts), { level: 1 });
}
