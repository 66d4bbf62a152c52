// Notices that files changed by re-stat-ing them on an interval. A mounted
// Kubernetes Secret or ConfigMap is updated by swapping a symlink (..data), so
// the file read is a new inode each time: inotify on one inode would miss it,
// a stat that follows the links does not. A stat is cheap; the owner re-reads
// the content only when device, inode, size or mtime moved, including when a
// file disappears or comes back.
import { statSync } from 'node:fs';

function signature(paths: readonly string[]): string {
  return paths
    .map((p) => {
      try {
        const s = statSync(p);
        return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch (err) {
        return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
      }
    })
    .join('|');
}

/** Calls onChange (after the change, from a timer) whenever the files' signature moves; stop() ends polling. */
export function pollFiles(paths: readonly string[], intervalMs: number, onChange: () => void): { stop(): void } {
  let last = signature(paths);
  const timer = setInterval(() => {
    const now = signature(paths);
    if (now === last) return;
    last = now;
    onChange();
  }, intervalMs);
  // Polling must not keep a stopping process alive.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
