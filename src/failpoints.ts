// Named crash points for crash-safety tests. BERTH_FAILPOINTS="name,name"
// makes the process kill itself with SIGKILL the first time it reaches one of
// them, exactly as a power cut would. Unset (always, in production) it does nothing.
const armed = new Set((process.env.BERTH_FAILPOINTS ?? '').split(',').map((s) => s.trim()).filter(Boolean));

export function failpoint(name: string): void {
  if (armed.size > 0 && armed.has(name)) process.kill(process.pid, 'SIGKILL');
}
