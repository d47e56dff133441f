import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

/** Another process has the embedded database open. */
export class DatabaseInUseError extends Error {}

/**
 * Claims an embedded PGlite directory for this process with `<dir>.lock` holding its pid.
 * PGlite itself does not lock: two processes on one directory would corrupt it, so the second
 * one (the gateway, or `npm run keys` while the gateway runs) is refused with a clear error.
 * A lock left by a process that no longer runs is taken over. Returns the release function.
 */
export function lockDataDir(dir: string): () => void {
  const path = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSync(path, 'utf8'));
    if (Number.isInteger(holder) && holder > 0 && isRunning(holder)) {
      throw new DatabaseInUseError(
        `the embedded database ${dir} is in use by process ${holder} (a running gateway?). ` +
          'Embedded PGlite serves one process at a time: stop that process first, or set DATABASE_URL to use PostgreSQL. ' +
          `If no such process runs, delete ${path}.`,
      );
    }
    unlinkSync(path);
  }
  throw new DatabaseInUseError(`could not lock ${path}: another process keeps taking it`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
