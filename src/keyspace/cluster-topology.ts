import type { Redis } from 'ioredis';

/** A Cluster master as CLUSTER SHARDS / CLUSTER NODES describe it. */
export interface ClusterMaster {
  id: string;
  host: string;
  port: number;
  /** Slot ranges [start, end] the master serves. */
  slots: [number, number][];
}

/**
 * Reads the masters of a Redis Cluster. CLUSTER SHARDS (Redis >= 7.0) names every shard's
 * nodes with role and health; CLUSTER NODES is the fallback for servers that lack it. Only
 * healthy masters are returned: notifications are node-local, so each one needs a subscriber.
 */
export async function readMasters(client: Redis): Promise<ClusterMaster[]> {
  try {
    return parseShards((await client.call('CLUSTER', 'SHARDS')) as unknown[]);
  } catch (err) {
    if (!/unknown subcommand|unknown command/i.test((err as Error).message)) throw err;
    return parseNodes((await client.call('CLUSTER', 'NODES')) as string);
  }
}

function pairs(flat: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (!Array.isArray(flat)) return m;
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]);
  return m;
}

export function parseShards(reply: unknown[]): ClusterMaster[] {
  const out: ClusterMaster[] = [];
  for (const shard of reply) {
    const s = pairs(shard);
    const slotList = (s.get('slots') as unknown[] | undefined) ?? [];
    const slots: [number, number][] = [];
    for (let i = 0; i + 1 < slotList.length; i += 2)
      slots.push([Number(slotList[i]), Number(slotList[i + 1])]);
    for (const node of (s.get('nodes') as unknown[] | undefined) ?? []) {
      const n = pairs(node);
      if (n.get('role') !== 'master' || n.get('health') === 'fail') continue;
      const ip = n.get('ip') ?? n.get('endpoint');
      const host = typeof ip === 'string' ? ip : '';
      const port = Number(n.get('port') ?? n.get('tls-port'));
      if (!host || !port) continue;
      out.push({ id: String(n.get('id')), host, port, slots });
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

export function parseNodes(text: string): ClusterMaster[] {
  const out: ClusterMaster[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const flags = (f[2] ?? '').split(',');
    if (!flags.includes('master') || flags.includes('fail') || flags.includes('noaddr')) continue;
    const m = /^(.*):(\d+)@/.exec(f[1] ?? '');
    if (!m) continue;
    const slots: [number, number][] = [];
    for (const r of f.slice(8)) {
      if (r.startsWith('[')) continue; // migrating/importing markers
      const [a, b] = r.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({ id: f[0] as string, host: m[1] as string, port: Number(m[2]), slots });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
