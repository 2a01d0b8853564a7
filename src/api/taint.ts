// The kernel's taint flags (/proc/sys/kernel/tainted), in the kernel's own bit
// order (include/linux/panic.h, Documentation/admin-guide/tainted-kernels.rst).
// One table for the agent, the simulator and the controller's health gate.

/** Bit 0 is P, bit 18 is N: the letters the kernel prints in an oops header. */
export const TAINT_LETTERS = 'PFSRMBUDAWCIOELKXTN';

/** TAINT_LIVEPATCH ('K'): set once any livepatch is loaded. */
export const TAINT_LIVEPATCH = 1 << TAINT_LETTERS.indexOf('K');
/** TAINT_OOT_MODULE ('O'): a module built outside the kernel tree was loaded. */
export const TAINT_OOT_MODULE = 1 << TAINT_LETTERS.indexOf('O');
/** TAINT_UNSIGNED_MODULE ('E'): a module without a valid signature was loaded. */
export const TAINT_UNSIGNED_MODULE = 1 << TAINT_LETTERS.indexOf('E');

/**
 * Flags that mean the kernel was hurt, when they appear after a patch loads:
 * M machine check, B bad page, D died (oops/BUG), W warning, L soft lockup.
 * Not O/E (out-of-tree, unsigned: most livepatch modules are both), not K.
 */
export const DAMAGE_LETTERS = 'MBDWL';

export const DAMAGE_TAINT = taintBits(DAMAGE_LETTERS);

/** "DW" or "D,W" (any separators) to the bit mask; undefined if a letter is not a taint flag. */
export function parseTaint(letters: string): number | undefined {
  let bits = 0;
  for (const c of letters.replace(/[\s,]/g, '')) {
    const bit = TAINT_LETTERS.indexOf(c.toUpperCase());
    if (bit < 0) return undefined;
    bits |= 1 << bit;
  }
  return bits;
}

function taintBits(letters: string): number {
  return parseTaint(letters) ?? 0;
}

/** The set flags as letters in bit order, e.g. 0x8200 → "WK"; "" when untainted. */
export function taintLetters(bits: number): string {
  return Array.from({ length: TAINT_LETTERS.length }, (_, i) =>
    (bits & (1 << i)) !== 0 ? TAINT_LETTERS.charAt(i) : '',
  ).join('');
}

/** Damage flags in `after` that `before` did not have. */
export const newDamage = (before: number, after: number): number => after & ~before & DAMAGE_TAINT;
