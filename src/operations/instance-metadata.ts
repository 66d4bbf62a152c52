// The instance `metadata` a provisioner returns from provision or update, as Berth stores and answers it:
// `{labels?, attributes?}` with string values only, and at most 4,096 bytes of JSON, the size Cloud Foundry's
// Cloud Controller stores (its column is 4,096 wide; a longer answer would fail the platform's write, not Berth's).
// Over the bound, attributes go first (the longest first), then labels, each with a log line naming the key; what
// remains is never cut mid-value, so a platform never shows half a value as if it were whole.
import type { Logger } from 'pino';
import type { JsonObject } from '../osb/model.ts';
import type { InstanceResult } from '../provisioners/provisioner.ts';

export const INSTANCE_METADATA_MAX_BYTES = 4096;

type Section = 'labels' | 'attributes';

/** The provisioner's metadata within the bound, or undefined when nothing is left (or nothing was returned). */
export function boundedInstanceMetadata(metadata: InstanceResult['metadata'], log: Logger): JsonObject | undefined {
  if (!metadata) return undefined;
  const kept: Record<Section, Record<string, string>> = { labels: {}, attributes: {} };
  for (const section of ['labels', 'attributes'] as const) {
    for (const [key, value] of Object.entries(metadata[section] ?? {})) {
      // A module's provisioner is JavaScript: a non-string value is not what platforms accept.
      if (typeof value === 'string') kept[section][key] = value;
      else log.warn({ section, key }, 'instance metadata value is not a string; left out');
    }
  }
  const size = () => Buffer.byteLength(JSON.stringify(shape(kept)), 'utf8');
  for (const section of ['attributes', 'labels'] as const) {
    const longestFirst = Object.keys(kept[section]).sort((a, b) => entryBytes(kept[section], b) - entryBytes(kept[section], a));
    for (const key of longestFirst) {
      if (size() <= INSTANCE_METADATA_MAX_BYTES) break;
      delete kept[section][key];
      log.warn({ section, key, maxBytes: INSTANCE_METADATA_MAX_BYTES }, 'instance metadata over its bound; left this entry out');
    }
  }
  const out = shape(kept);
  return Object.keys(out).length === 0 ? undefined : out;
}

function entryBytes(entries: Record<string, string>, key: string): number {
  return Buffer.byteLength(key, 'utf8') + Buffer.byteLength(entries[key]!, 'utf8');
}

function shape(kept: Record<Section, Record<string, string>>): JsonObject {
  const out: JsonObject = {};
  if (Object.keys(kept.labels).length > 0) out.labels = kept.labels;
  if (Object.keys(kept.attributes).length > 0) out.attributes = kept.attributes;
  return out;
}
