// `berth doctor`'s checks as data: each has an id, a title and a run function that says
// pass, warn, fail or skip with a sentence a person can act on. The runner times each one
// and turns an escaped exception into a failure of that check, so one broken check never
// hides the others.

export type Status = 'pass' | 'warn' | 'fail' | 'skip';

export interface Outcome {
  status: Status;
  /** What was found and, for warn/fail, what to do about it. Never a secret value. */
  message: string;
  /** Facts a script may want (-o json), e.g. the versions a broker accepts or rows per key id. */
  details?: Record<string, unknown>;
}

export interface Check<C> {
  /** Stable, kebab-case; what -o json consumers and tests key on. */
  id: string;
  title: string;
  run(context: C): Promise<Outcome | Outcome[]>;
}

export interface Result extends Outcome {
  id: string;
  title: string;
  /** Absent for a line a check added without timing its own step. */
  durationMs?: number;
}

export const pass = (message: string, details?: Record<string, unknown>): Outcome => ({ status: 'pass', message, ...(details ? { details } : {}) });
export const warn = (message: string, details?: Record<string, unknown>): Outcome => ({ status: 'warn', message, ...(details ? { details } : {}) });
export const fail = (message: string, details?: Record<string, unknown>): Outcome => ({ status: 'fail', message, ...(details ? { details } : {}) });
export const skip = (message: string): Outcome => ({ status: 'skip', message });

/** The worst of several outcomes' statuses: fail > warn > pass > skip. */
export function worst(statuses: Status[]): Status {
  for (const s of ['fail', 'warn', 'pass'] as const) if (statuses.includes(s)) return s;
  return 'skip';
}

/**
 * Runs the checks one after the other (later ones may rely on what earlier ones set up in
 * `context`). A check returning several outcomes gets one result each, ids suffixed only when
 * it returned more than one and the outcome does not carry its own (`details.id`).
 */
export async function runChecks<C>(checks: Check<C>[], context: C, onResult?: (r: Result) => void): Promise<Result[]> {
  const results: Result[] = [];
  for (const check of checks) {
    const started = performance.now();
    let outcomes: Outcome[];
    try {
      const o = await check.run(context);
      outcomes = Array.isArray(o) ? o : [o];
    } catch (err) {
      outcomes = [fail(`the check itself failed: ${err instanceof Error ? err.message : String(err)}`)];
    }
    const durationMs = Math.round(performance.now() - started);
    for (const o of outcomes) {
      const { id: ownId, title: ownTitle, durationMs: ownMs, ...details } = (o.details ?? {}) as { id?: string; title?: string; durationMs?: number };
      const r: Result = {
        id: typeof ownId === 'string' ? ownId : check.id,
        title: typeof ownTitle === 'string' ? ownTitle : check.title,
        status: o.status,
        message: o.message,
        ...(typeof ownMs === 'number' ? { durationMs: ownMs } : typeof ownId !== 'string' ? { durationMs } : {}),
        ...(Object.keys(details).length > 0 ? { details } : {}),
      };
      results.push(r);
      onResult?.(r);
    }
  }
  return results;
}

/** An outcome that is its own line in the report (a check that yields one line per plan, table or step). */
export function line(id: string, title: string, o: Outcome, durationMs?: number): Outcome {
  return { ...o, details: { ...o.details, id, title, ...(durationMs !== undefined ? { durationMs } : {}) } };
}

/** 0 when nothing failed (warnings allowed), 1 otherwise. */
export function exitCodeOf(results: Result[]): 0 | 1 {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
