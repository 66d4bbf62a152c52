// The tree `berth trace` prints: instance → bindings → their Secrets and logins
// → what the provisioner made, one node a line with box-drawing branches, and
// each node's message in full on the lines under it (never cut: the point of
// trace is the whole story). Pure functions (test/unit/cli/tree.test.ts).

export interface TreeNode {
  text: string;
  /** Printed in full under the node's line, indented with it. */
  detail?: string;
  children?: TreeNode[];
}

/** A resource as the broker sends it (binding_id) or as the controller records it (bindingID). */
export interface ResourceLike {
  kind: string;
  name: string;
  state: string;
  message?: string;
  binding_id?: string;
  bindingID?: string;
  children?: ResourceLike[];
}

export function drawTree(root: TreeNode): string {
  const out: string[] = [];
  const draw = (node: TreeNode, prefix: string, root: boolean, last: boolean) => {
    out.push(`${prefix}${root ? '' : last ? '└─ ' : '├─ '}${node.text}`);
    const inner = root ? prefix : `${prefix}${last ? '   ' : '│  '}`;
    const kids = node.children ?? [];
    if (node.detail) for (const line of node.detail.split('\n')) out.push(`${inner}${kids.length ? '│  ' : '   '}${line}`.trimEnd());
    kids.forEach((k, i) => draw(k, inner, false, i === kids.length - 1));
  };
  draw(root, '', true, true);
  return `${out.join('\n')}\n`;
}

export function resourceNode(r: ResourceLike): TreeNode {
  return { text: `${r.kind}/${r.name}: ${r.state}`, ...(r.message ? { detail: r.message } : {}), ...(r.children?.length ? { children: r.children.map(resourceNode) } : {}) };
}

const bindingOf = (r: ResourceLike) => r.binding_id ?? r.bindingID;

/**
 * Takes out of the resources (at any depth) those that belong to one of `bindingIds` (a binding's login),
 * so that trace can hang them under their binding; returns them by binding and the rest, as it was.
 */
export function splitByBinding(resources: ResourceLike[], bindingIds: Iterable<string>): { byBinding: Map<string, ResourceLike[]>; rest: ResourceLike[] } {
  const ids = new Set(bindingIds);
  const byBinding = new Map<string, ResourceLike[]>();
  const walk = (list: ResourceLike[]): ResourceLike[] =>
    list.flatMap((r) => {
      const id = bindingOf(r);
      if (id !== undefined && ids.has(id)) {
        byBinding.set(id, [...(byBinding.get(id) ?? []), r]);
        return [];
      }
      return [r.children ? { ...r, children: walk(r.children) } : r];
    });
  return { byBinding, rest: walk(resources) };
}

export interface ProvisionedView {
  /** False: the broker has no endpoint for it (not a Berth broker). */
  exposed: boolean;
  kind?: string;
  takenAt?: string;
  /** Who looked: the broker just now, or the controller, recorded in the ServiceInstance status. */
  source: 'broker' | 'controller';
  resources: ResourceLike[];
  problem?: string;
}

/** The "what the provisioner made" node under the instance. */
export function provisionedNode(p: ProvisionedView, now = Date.now()): TreeNode {
  if (!p.exposed) {
    return {
      text: 'provisioned: not shown by this broker',
      detail: 'The broker does not expose what it provisioned (Berth brokers answer GET /berth/v1/service_instances/:id/resources; this one does not). Ask its operator, or look at the broker\'s own records and logs.',
    };
  }
  const when = p.takenAt ? ` at ${p.takenAt}${ageText(p.takenAt, now)}` : '';
  const who = p.source === 'broker' ? `looked at by the broker${when}` : `recorded by the controller${when}`;
  const text = `provisioned by ${p.kind ?? 'the broker'} (${who})`;
  if (p.problem) return { text, detail: p.problem, children: p.resources.map(resourceNode) };
  if (p.resources.length === 0) {
    return {
      text,
      detail:
        p.kind === 'user-provided'
          ? 'Nothing: a user-provided instance makes nothing on a server or in a cluster; its credentials are kept (sealed) by the broker only.'
          : 'Nothing recorded.',
    };
  }
  return { text, children: p.resources.map(resourceNode) };
}

function ageText(iso: string, now: number): string {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s) || s < 0) return '';
  if (s < 60) return `, ${s} s ago`;
  if (s < 3600) return `, ${Math.floor(s / 60)} min ago`;
  return `, ${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
}
