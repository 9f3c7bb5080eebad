import { createHash } from 'node:crypto';
import {
  appendFileSync,
  readFileSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import {
  type Manifest,
  manifestBytes,
  signManifest,
} from '../../src/compliance/bundle-manifest.js';
import { resolveSigningKey } from '../../src/audit/signing-keys.js';
import { type ProviderApp, startProviderApp } from '../helpers/provider-app.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';

/**
 * Adversarial suite, entrance 4: `GET /v1/exports/:id/:file` of a real app listening on a
 * loopback port (issue #17, finding 6). The attacker can write the export directory: add names
 * to manifest.json (`../../signing.key`), swap a file for a symlink, edit a file. Only the
 * bundle's own files, inside its directory, matching the signed manifest, are ever served.
 */

let redis: RedisServer;
let h: ProviderApp;
let base: string;
let id: string;
let dir: string;
let manifest: Manifest;
let pristine: Map<string, Buffer>;

beforeAll(async () => {
  redis = await startRedis();
  h = startProviderApp({ redisUrl: redis.url });
  await h.app.whenReady();
  base = await h.app.listen();
});
afterAll(async () => {
  await h?.stop();
  await redis?.stop();
});

beforeEach(async () => {
  const res = await fetch(`${base}/v1/exports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      from: new Date(Date.now() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 1000).toISOString(),
      format: 'jsonl',
    }),
  });
  expect(res.status).toBe(201);
  ({ id, manifest } = (await res.json()) as { id: string; manifest: Manifest });
  dir = join(h.dir, 'exports', id);
  pristine = new Map(
    ['manifest.json', 'manifest.sig', ...manifest.files.map((f) => f.name)].map((f) => [
      f,
      readFileSync(join(dir, f)),
    ]),
  );
});

const get = (file: string) => fetch(`${base}/v1/exports/${id}/${file}`);
const records = () => manifest.files.find((f) => f.role === 'records')!.name;
const keyPem = () => readFileSync(join(h.dir, 'signing.key'));

describe('export files', () => {
  it('serves the bundle own files, byte for byte as signed', async () => {
    for (const [name, bytes] of pristine) {
      const res = await get(name);
      expect(res.status, name).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes), name).toBe(true);
    }
  });

  it('a name added to manifest.json (../../signing.key) is not served: the signature breaks', async () => {
    const forged = {
      ...manifest,
      files: [...manifest.files, { ...manifest.files[0]!, name: '../../signing.key' }],
    };
    writeFileSync(join(dir, 'manifest.json'), manifestBytes(forged));
    for (const url of [
      '..%2F..%2Fsigning.key',
      '..%2F..%2Faudit.db',
      encodeURIComponent('/etc/passwd'),
    ]) {
      const res = await get(url);
      expect(res.status, url).toBe(404);
      expect(await res.text()).not.toContain('PRIVATE KEY');
    }
    // The tampered manifest itself, and every file it lists, are refused as such.
    const m = await get('manifest.json');
    expect(m.status).toBe(409);
    expect(((await m.json()) as { error: { code: string } }).error.code).toBe(
      'ERR_LEDGER_INTEGRITY',
    );
    expect((await get(records())).status).toBe(409);
    // Nor is the bundle listed: its manifest no longer verifies.
    const list = (await (await fetch(`${base}/v1/exports`)).json()) as {
      exports: { id: string }[];
    };
    expect(list.exports.length).toBeGreaterThan(0);
    expect(list.exports.map((e) => e.id)).not.toContain(id);
  });

  it('a name signed into the manifest is still refused unless an export writes such names', async () => {
    // The attacker holds the signing key too: the name pattern and the directory still hold.
    const key = resolveSigningKey(undefined, h.dbPath).key;
    for (const name of ['signing.key', 'audit.db']) {
      const forged = {
        ...manifest,
        files: [...manifest.files, { ...manifest.files[0]!, name }],
      };
      const bytes = manifestBytes(forged);
      writeFileSync(join(dir, 'manifest.json'), bytes);
      writeFileSync(join(dir, 'manifest.sig'), signManifest(bytes, key));
      expect((await get('manifest.json')).status).toBe(200); // the signature verifies ...
      expect((await get(name)).status, name).toBe(404); // ... but no export writes that name
    }
    expect(keyPem().toString()).toContain('PRIVATE KEY');
  });

  it('a bundle file swapped for a symlink out of the bundle is not followed', async () => {
    const file = records();
    unlinkSync(join(dir, file));
    symlinkSync(join(h.dir, 'signing.key'), join(dir, file));
    const res = await get(file);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('PRIVATE KEY');
  });

  it('a file whose bytes differ from the signed manifest is refused (edited, appended, replaced)', async () => {
    const file = records();
    const path = join(dir, file);
    appendFileSync(path, '{"seq":999999}\n');
    expect((await get(file)).status).toBe(409);
    writeFileSync(path, pristine.get(file)!);
    expect((await get(file)).status).toBe(200);
    // Replaced by another file of the same name (rename over it).
    writeFileSync(`${path}.tmp`, Buffer.from(pristine.get(file)!.toString().replace(/1/, '2')));
    renameSync(`${path}.tmp`, path);
    const res = await get(file);
    expect(res.status).toBe(409);
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).not.toBe(
      manifest.files.find((f) => f.name === file)!.sha256,
    );
  });

  it('ids and names outside the patterns are 404 without touching the disk', async () => {
    for (const url of [
      `/v1/exports/..%2F..%2F/signing.key`,
      `/v1/exports/${id}/manifest.json%00.txt`,
      `/v1/exports/${id}/.manifest.json`,
      `/v1/exports/${id}/records-1.jsonl`,
    ]) {
      expect((await fetch(`${base}${url}`)).status, url).toBe(404);
    }
  });
});
