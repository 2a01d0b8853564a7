// Reads the kernel's log (/dev/kmsg) for the lines a refused module load left
// there: insmod only prints strerror() ("Invalid module format" stands for a
// vermagic mismatch, a kernel without livepatch support and a corrupt file
// alike); the kernel's own line says which.
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';

/** Messages the module loader and livepatch core print about a refused load. */
const LOAD_REFUSAL =
  /version magic|livepatch|module|lockdown|unknown symbol|disagrees about version|signature|key/i;
const MAX_LINES = 5;
const RECORD_BYTES = 8192;

/** Seconds since boot, on the clock /dev/kmsg stamps its records with (close enough without suspend). */
export async function uptimeSeconds(procRoot: string): Promise<number> {
  const text = await readFile(`${procRoot}/uptime`, 'utf8');
  return Number.parseFloat(text.split(' ')[0] ?? '0');
}

interface KmsgRecord {
  readonly usec: number;
  readonly message: string;
}

/**
 * /dev/kmsg records: "prio,seq,usec,flags[,…];message" lines, each followed
 * by continuation lines (" KEY=value") that are skipped. A read of the device
 * gives one record; a plain file (tests) gives several.
 */
export function parseKmsg(chunk: string): KmsgRecord[] {
  const records: KmsgRecord[] = [];
  for (const line of chunk.split('\n')) {
    const semicolon = line.indexOf(';');
    if (line.startsWith(' ') || semicolon < 0) continue;
    const usec = Number(line.slice(0, semicolon).split(',')[2]);
    if (Number.isFinite(usec)) records.push({ usec, message: line.slice(semicolon + 1) });
  }
  return records;
}

/**
 * The log lines at or after `sinceSeconds` that speak of module loading, at
 * most five. An unreadable log (no CAP_SYSLOG, no /dev/kmsg) gives none:
 * the caller still has insmod's own words.
 */
export async function moduleLoadLog(kmsgPath: string, sinceSeconds: number): Promise<string[]> {
  let handle;
  try {
    handle = await open(kmsgPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  const lines: string[] = [];
  const buffer = Buffer.alloc(RECORD_BYTES);
  try {
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, RECORD_BYTES, null));
      } catch (err) {
        // EPIPE: records were overwritten under us; the next read resumes at the oldest one.
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') continue;
        break; // EAGAIN: no more records.
      }
      if (bytesRead === 0) break;
      for (const record of parseKmsg(buffer.toString('utf8', 0, bytesRead)))
        if (record.usec >= sinceSeconds * 1e6 && LOAD_REFUSAL.test(record.message))
          lines.push(record.message.trim());
    }
  } finally {
    await handle.close();
  }
  return lines.slice(-MAX_LINES);
}
