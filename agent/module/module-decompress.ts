// Compressed modules as distributions ship them (.ko.xz, .ko.zst, .ko.gz;
// Debian's 6.12 ships its own this way), made plain before anything reads
// them: the ELF, modinfo and release checks and insmod all see the .ko the
// kernel would, whether or not this kernel and kmod could decompress it
// themselves. The checksum stays that of the file as published.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { ModuleSourceError } from './module-errors.js';
import { spool } from './module-spool.js';

export type Compression = 'xz' | 'zstd' | 'gzip';

const MAGIC: readonly (readonly [Compression, readonly number[]])[] = [
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['gzip', [0x1f, 0x8b]],
];

/** The compression a file's first bytes announce, or undefined for anything else (a plain .ko). */
export function compressionOf(head: Uint8Array): Compression | undefined {
  return MAGIC.find(([, magic]) => magic.every((b, i) => head[i] === b))?.[0];
}

async function readHead(path: string): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const head = new Uint8Array(8);
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** xz has no decompressor in Node: `xz -dc` (xz-utils, in the agent's image) does it. */
function xzStream(path: string, xz: string): { out: Readable; done: Promise<void> } {
  const child = spawn(xz, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  // Piped at once: Node drains (and drops) a child's stdout that nothing reads when it exits,
  // and the spool only starts reading once its file is open.
  const out = child.stdout.pipe(new PassThrough());
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new ModuleSourceError(
              'the module file is xz-compressed and this node has no xz command to decompress it; nothing was loaded. ' +
                "Install xz-utils in the agent's image, or publish the module uncompressed or as .ko.zst or .ko.gz",
              false,
              'ModuleRejected',
            )
          : err,
      );
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(stderr.trim() || `xz exited with ${String(code)}`));
    });
  });
  return { out, done };
}

/**
 * Decompresses `from` into `to` when it is compressed, at most `maxBytes` of
 * output (the limit the kernel's copy of a plain module has too). Returns
 * what it was, or undefined for a plain file, which is left alone. `xz`:
 * the command, for tests.
 */
export async function decompressModule(
  from: string,
  to: string,
  maxBytes: number,
  where: string,
  xz = 'xz',
): Promise<Compression | undefined> {
  const kind = compressionOf(await readHead(from));
  if (!kind) return undefined;
  const stream =
    kind === 'xz'
      ? xzStream(from, xz)
      : {
          out: createReadStream(from).pipe(
            kind === 'gzip' ? createGunzip() : createZstdDecompress(),
          ),
          done: Promise.resolve(),
        };
  try {
    await Promise.all([
      spool(stream.out, to, maxBytes, `${where} (${kind}-decompressed)`),
      stream.done,
    ]);
  } catch (err) {
    stream.out.destroy();
    if (err instanceof ModuleSourceError) throw err;
    throw new ModuleSourceError(
      `the module file from ${where} is ${kind}-compressed but does not decompress (${(err as Error).message}); ` +
        'nothing was loaded. Publish the file again: it is damaged, or not what its first bytes say',
      false,
      'ModuleRejected',
    );
  }
  return kind;
}
