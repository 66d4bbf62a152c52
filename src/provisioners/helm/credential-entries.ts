// A Helm plan's `credentials.entries`: each binding credential is read from what the
// release made (a key of a Secret, a Service's DNS name, ClusterIP or port), is a
// literal, or is a template over the other entries, so any chart can be described
// without Berth knowing it.
import type { V1Secret, V1Service } from '@kubernetes/client-node';
import { PermanentError } from '../provisioner.ts';

type Source =
  | { kind: 'secret'; name: string; key: string }
  | { kind: 'service'; name: string }
  | { kind: 'service-ip'; name: string }
  | { kind: 'service-port'; name: string; port: string }
  | { kind: 'template'; text: string }
  | { kind: 'literal'; text: string };

export function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\{(release|namespace|instance_id)\}/g, (_, k: string) => vars[k]!);
}

export function parseSource(source: string, vars: Record<string, string>): Source {
  if (source.startsWith('secret:')) {
    const [name, key] = source.slice(7).split(':');
    return { kind: 'secret', name: expand(name ?? '', vars), key: key ?? '' };
  }
  if (source.startsWith('service-ip:')) return { kind: 'service-ip', name: expand(source.slice(11), vars) };
  if (source.startsWith('service:')) {
    const [name, port] = source.slice(8).split(':');
    return port === undefined ? { kind: 'service', name: expand(name!, vars) } : { kind: 'service-port', name: expand(name!, vars), port };
  }
  if (source.startsWith('template:')) return { kind: 'template', text: source.slice(9) };
  return { kind: 'literal', text: expand(source, vars) };
}

export interface Lookup {
  secret(name: string): Promise<V1Secret>;
  service(name: string): Promise<V1Service>;
}

/** `overrides` replace entries of the same name before templates are filled in (a binding's own login). */
export async function resolveEntries(
  entries: Record<string, string>,
  vars: Record<string, string>,
  lookup: Lookup,
  overrides: Record<string, string> = {},
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const templates: Array<[string, string]> = [];
  for (const [entry, source] of Object.entries(entries)) {
    const ref = parseSource(source, vars);
    switch (ref.kind) {
      case 'secret': {
        const s = await lookup.secret(ref.name);
        const raw = s.data?.[ref.key];
        if (raw === undefined) throw new PermanentError(`Secret ${ref.name} has no key "${ref.key}" (credentials.entries.${entry}); did the chart rename it?`);
        out[entry] = Buffer.from(raw, 'base64').toString('utf8');
        break;
      }
      case 'service':
        await lookup.service(ref.name);
        out[entry] = `${ref.name}.${vars.namespace}.svc.cluster.local`;
        break;
      case 'service-ip': {
        // For clusters without DNS: the Service's ClusterIP (stable for the Service's lifetime).
        const ip = (await lookup.service(ref.name)).spec?.clusterIP;
        if (!ip || ip === 'None') throw new PermanentError(`Service ${ref.name} has no ClusterIP (credentials.entries.${entry}); use service:${ref.name} for a headless Service.`);
        out[entry] = ip;
        break;
      }
      case 'service-port': {
        const svc = await lookup.service(ref.name);
        const port = svc.spec?.ports?.find((p) => p.name === ref.port || String(p.port) === ref.port);
        if (!port) throw new PermanentError(`Service ${ref.name} has no port "${ref.port}" (credentials.entries.${entry}).`);
        out[entry] = String(port.port);
        break;
      }
      case 'template':
        templates.push([entry, ref.text]);
        break;
      case 'literal':
        out[entry] = ref.text;
    }
  }
  Object.assign(out, overrides);
  for (const [entry, text] of templates) {
    out[entry] = text.replace(/\{([A-Za-z0-9_.-]+)(\|url)?\}/g, (whole, name: string, url?: string) => {
      const v = out[name] ?? vars[name];
      if (v === undefined) return whole;
      return url ? encodeURIComponent(v) : v;
    });
  }
  return out;
}
