// Conditions as Kubernetes API conventions have them: one per type, each with
// the generation it was set for; lastTransitionTime moves only when the status
// flips. `setCondition` returns what changed so the caller can emit an Event on
// every transition (and only then).
import type { Condition, ConditionStatus } from './resources.ts';

export interface ConditionChange {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function setCondition(
  conditions: Condition[],
  next: { type: string; status: ConditionStatus; reason: string; message: string },
  generation: number | undefined,
  now = new Date(),
): { conditions: Condition[]; changed: ConditionChange | undefined } {
  const old = conditions.find((c) => c.type === next.type);
  const condition: Condition = {
    type: next.type,
    status: next.status,
    observedGeneration: generation,
    lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z'),
    reason: next.reason,
    message: next.message,
  };
  const rest = conditions.filter((c) => c.type !== next.type);
  const changed = !old || old.status !== next.status || old.reason !== next.reason || old.message !== next.message ? { ...next } : undefined;
  return { conditions: [...rest, condition].sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type)), changed };
}

const ORDER = ['Ready', 'Synced', 'Progressing', 'CredentialsCurrent'];

export function conditionOf(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export const isReady = (conditions: Condition[] | undefined): boolean => conditionOf(conditions, 'Ready')?.status === 'True';
