// Writes a module's bytes to a file beside its final place while hashing and
// counting them, so no source ever holds a whole module in memory and an
// oversized one is cut off at the limit, not after.
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { ModuleSourceError } from './module-errors.js';
import { mib } from './module-policy.js';

export interface Spooled {
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Copies `body` into `path`, refusing (and removing the file) past `maxBytes`,
 * or once `signal` aborts (the agent stops).
 * Breaking out of the loop destroys the stream, which closes a download's socket.
 */
export async function spool(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  path: string,
  maxBytes: number,
  where: string,
  signal?: AbortSignal,
): Promise<Spooled> {
  const hash = createHash('sha256');
  const file = await open(path, 'w', 0o600);
  let bytes = 0;
  try {
    for await (const chunk of body) {
      signal?.throwIfAborted();
      bytes += chunk.length;
      if (bytes > maxBytes) throw tooLarge(where, maxBytes, `more than ${maxBytes} bytes`);
      hash.update(chunk);
      await file.write(chunk);
    }
    await file.close();
    return { path, sha256: hash.digest('hex'), bytes };
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
}

export function tooLarge(where: string, maxBytes: number, size: string): ModuleSourceError {
  return new ModuleSourceError(
    `${where} is ${size}, over the agent's module size limit of ${mib(maxBytes)} (${maxBytes} bytes); ` +
      'nothing was loaded. A livepatch module is far smaller: check that the source is the .ko',
    false,
  );
}
