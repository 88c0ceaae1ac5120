/**
 * Unhandled rejections and uncaught exceptions of this process, collected as they happen. pgfence
 * runs inside the test process, so one of these is pgfence crashing: tests take them and fail.
 * (Vitest reports them too, but only for the run as a whole; this names the test or case.)
 */
export interface ProcessErrorWatch {
  /** The errors seen since the last take(), oldest first; forgets them. */
  take(): unknown[];
  /** Resolves at the next error (at once when one is waiting to be taken). */
  next(): Promise<void>;
  /** Calls `listener` at every error until the returned function is called. */
  onError(listener: () => void): () => void;
  stop(): void;
}

export function watchProcessErrors(): ProcessErrorWatch {
  let errors: unknown[] = [];
  const listeners = new Set<() => void>();
  const record = (error: unknown): void => {
    errors.push(error);
    for (const listener of [...listeners]) listener();
  };
  process.on('unhandledRejection', record);
  process.on('uncaughtException', record);
  const onError = (listener: () => void): (() => void) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  };
  return {
    take() {
      const taken = errors;
      errors = [];
      return taken;
    },
    next() {
      if (errors.length > 0) return Promise.resolve();
      return new Promise((resolve) => {
        const off = onError(() => {
          off();
          resolve();
        });
      });
    },
    onError,
    stop() {
      process.off('unhandledRejection', record);
      process.off('uncaughtException', record);
      listeners.clear();
    },
  };
}

/** One line for a collected error: its name, message and the first frame of its stack. */
export function describeProcessError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const frame = error.stack?.split('\n').find((line) => line.trimStart().startsWith('at '))?.trim();
  return `${error.name}: ${error.message}${frame === undefined ? '' : ` (${frame})`}`;
}
