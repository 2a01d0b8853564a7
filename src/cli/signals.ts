// Long-running commands stop cleanly on Ctrl-C or a pod's SIGTERM.

export type StopSignal = 'SIGINT' | 'SIGTERM';

export function untilSignal(): Promise<StopSignal> {
  return new Promise((resolve) => {
    const on = (signal: StopSignal): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(signal);
    };
    const onInt = (): void => {
      on('SIGINT');
    };
    const onTerm = (): void => {
      on('SIGTERM');
    };
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}
