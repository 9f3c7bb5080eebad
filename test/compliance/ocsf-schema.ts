import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * A small validator over the OCSF schema's source files (github.com/ocsf/ocsf-schema: events/,
 * objects/, profiles/, dictionary.json, categories.json), for the vendored copy in
 * test/fixtures/ocsf/. It resolves a class or object the way the OCSF server does: `extends`
 * chains, `$include` files, dictionary types overlaid by the class's own definitions, enums
 * united; attributes brought in by a profile are allowed only when the class lists the profile
 * and `metadata.profiles` applies it. It checks required attributes, types (with the type's
 * regex), enum values, sibling captions (`*_id` → its caption), `type_uid` / `class_uid` /
 * `category_uid` arithmetic, `at_least_one` / `just_one` constraints, deprecated attributes and
 * unknown attributes, recursively through objects.
 */

interface AttrDef {
  type?: string;
  is_array?: boolean;
  requirement?: string;
  enum?: Record<string, { caption?: string }>;
  sibling?: string;
  profile?: string | null;
  caption?: string;
  '@deprecated'?: { since?: string };
}

interface Resolved {
  name: string;
  caption: string;
  attrs: Record<string, AttrDef>;
  constraints: { at_least_one?: string[]; just_one?: string[] };
  category?: string;
  uid?: number;
  profiles: string[];
}

type Json = Record<string, unknown>;

/** Enums the OCSF server generates from the class tree; checked by arithmetic in validate(). */
const COMPUTED = new Set(['class_uid', 'category_uid', 'type_uid']);

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export class OcsfSchema {
  readonly version: string;
  /** Schema files read so far (relative paths): what a vendored copy must contain. */
  readonly used = new Set<string>();
  readonly #root: string;
  readonly #dict: Record<string, AttrDef>;
  readonly #types: Record<string, { type?: string; regex?: string }>;
  readonly #categories: Record<string, { uid: number; caption: string }>;
  readonly #files = new Map<string, string>(); // `events:<name>` / `objects:<name>` → path
  readonly #cache = new Map<string, Resolved>();
  readonly #byUid = new Map<number, string>();

  constructor(root: string) {
    this.#root = root;
    this.version = (this.#read('version.json') as { version: string }).version;
    const dict = this.#read('dictionary.json') as {
      attributes: Record<string, AttrDef>;
      types: { attributes: Record<string, { type?: string; regex?: string }> };
    };
    this.#dict = dict.attributes;
    this.#types = dict.types.attributes;
    this.#categories = (
      this.#read('categories.json') as {
        attributes: Record<string, { uid: number; caption: string }>;
      }
    ).attributes;
    const raw = new Map<string, { extends?: string; category?: string; uid?: number }>();
    for (const dir of ['events', 'objects']) {
      for (const f of readdirSync(join(root, dir), { recursive: true }) as string[]) {
        if (!f.endsWith('.json')) continue;
        const path = join(dir, f);
        const def = JSON.parse(readFileSync(join(root, path), 'utf8')) as {
          name: string;
          extends?: string;
          category?: string;
          uid?: number;
        };
        this.#files.set(`${dir}:${def.name}`, path);
        if (dir === 'events') raw.set(def.name, def);
      }
    }
    // class_uid → class, without counting the files as used (only resolution does).
    for (const [name, def] of raw) {
      let category = def.category;
      for (let p = def.extends; category === undefined && p !== undefined;)
        ({ category, extends: p } = raw.get(p) ?? {});
      const cat = this.#categories[category ?? ''];
      if (name === 'base_event') this.#byUid.set(0, name);
      else if (cat && def.uid !== undefined) this.#byUid.set(cat.uid * 1000 + def.uid, name);
    }
  }

  /** Every problem of one event, as `path: message` strings; empty when valid. */
  validate(event: unknown): string[] {
    const out: string[] = [];
    if (!isObj(event)) return ['event: not an object'];
    const name = this.#byUid.get(event.class_uid as number);
    if (name === undefined)
      return [`class_uid: ${String(event.class_uid)} is not a class of ${this.version}`];
    const c = this.#resolve('events', name);
    const category = this.#categories[c.category ?? ''];
    const expect = (path: string, actual: unknown, wanted: unknown): void => {
      if (actual !== wanted)
        out.push(`${path}: ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
    };
    expect('category_uid', event.category_uid, category?.uid ?? 0);
    expect('category_name', event.category_name, category?.caption ?? 'Uncategorized');
    expect('class_name', event.class_name, c.caption);
    expect(
      'type_uid',
      event.type_uid,
      (event.class_uid as number) * 100 + (event.activity_id as number),
    );
    const activity = c.attrs.activity_id?.enum?.[String(event.activity_id)]?.caption;
    expect('type_name', event.type_name, `${c.caption}: ${activity ?? '?'}`);
    const meta = isObj(event.metadata) ? event.metadata : {};
    expect('metadata.version', meta.version, this.version);
    const applied = Array.isArray(meta.profiles) ? (meta.profiles as string[]) : [];
    this.#object(event, c, '', out, applied);
    return out;
  }

  #object(value: Json, def: Resolved, path: string, out: string[], profiles: string[]): void {
    const at = (k: string): string => (path ? `${path}.${k}` : k);
    const allowed = (a: AttrDef): boolean =>
      a.profile === undefined || a.profile === null || profiles.includes(a.profile);
    for (const [k, v] of Object.entries(value)) {
      const a = def.attrs[k];
      if (!a || !allowed(a)) {
        out.push(`${at(k)}: not an attribute of ${def.name}`);
        continue;
      }
      if (a['@deprecated']) out.push(`${at(k)}: deprecated since ${a['@deprecated'].since ?? '?'}`);
      this.#value(v, a, at(k), out, profiles);
      if (a.sibling && a.enum && k in value && a.sibling in value) {
        const caption = a.enum[String(v)]?.caption;
        // 99 Other (and 0 Unknown) leave the caption to the source.
        if (v !== 99 && v !== 0 && caption !== undefined && value[a.sibling] !== caption)
          out.push(
            `${at(a.sibling)}: ${JSON.stringify(value[a.sibling])}, expected ${JSON.stringify(caption)}`,
          );
      }
    }
    for (const [k, a] of Object.entries(def.attrs))
      if (
        a.requirement === 'required' &&
        allowed(a) &&
        (value[k] === undefined || value[k] === null)
      )
        out.push(`${at(k)}: required by ${def.name}`);
    const present = (names: string[]): string[] => names.filter((n) => value[n] !== undefined);
    const { at_least_one: least, just_one: one } = def.constraints;
    if (least && present(least).length === 0)
      out.push(`${path || def.name}: needs at least one of ${least.join(', ')}`);
    if (one && present(one).length !== 1)
      out.push(`${path || def.name}: needs exactly one of ${one.join(', ')}`);
  }

  #value(v: unknown, a: AttrDef, path: string, out: string[], profiles: string[]): void {
    if (a.is_array) {
      if (!Array.isArray(v)) return void out.push(`${path}: not an array`);
      v.forEach((x, i) =>
        this.#value(x, { ...a, is_array: false }, `${path}[${i}]`, out, profiles),
      );
      return;
    }
    const type = a.type ?? 'string_t';
    if (this.#types[type] !== undefined) {
      const problem = this.#scalar(v, type);
      if (problem) out.push(`${path}: ${problem}`);
      else if (a.enum && !COMPUTED.has(path) && !(String(v) in a.enum) && type !== 'string_t')
        out.push(`${path}: ${JSON.stringify(v)} is not in its enum`);
      return;
    }
    if (!isObj(v)) return void out.push(`${path}: not an object (${type})`);
    this.#object(v, this.#resolve('objects', type), path, out, profiles);
  }

  #scalar(v: unknown, type: string): string | undefined {
    const t = this.#types[type] ?? {};
    const base = t.type ?? type;
    if (base !== type) {
      const problem = this.#scalar(v, base);
      if (problem) return problem;
    }
    switch (type) {
      case 'string_t':
        return typeof v === 'string' ? undefined : `not a string`;
      case 'integer_t':
        return Number.isInteger(v) && Math.abs(v as number) <= 2 ** 31
          ? undefined
          : 'not an integer';
      case 'long_t':
        return Number.isSafeInteger(v) ? undefined : 'not a long';
      case 'float_t':
        return typeof v === 'number' && Number.isFinite(v) ? undefined : 'not a float';
      case 'boolean_t':
        return typeof v === 'boolean' ? undefined : 'not a boolean';
      case 'json_t':
        return v === undefined ? 'undefined' : undefined;
      default:
        if (t.regex && typeof v === 'string' && !new RegExp(t.regex).test(v))
          return `does not match ${type}`;
        return undefined;
    }
  }

  #resolve(kind: 'events' | 'objects', name: string): Resolved {
    const key = `${kind}:${name}`;
    const hit = this.#cache.get(key);
    if (hit) return hit;
    const path = this.#files.get(key);
    if (path === undefined) {
      if (name === 'object')
        return { name, caption: 'Object', attrs: {}, constraints: {}, profiles: [] };
      throw new Error(`${kind}/${name}.json is not in the vendored schema`);
    }
    const def = this.#read(path) as {
      caption: string;
      extends?: string;
      category?: string;
      uid?: number;
      profiles?: string[];
      constraints?: Resolved['constraints'];
      attributes?: Record<string, unknown>;
    };
    const parent = def.extends ? this.#resolve(kind, def.extends) : undefined;
    const attrs: Record<string, AttrDef> = {};
    for (const [k, a] of Object.entries(parent?.attrs ?? {})) attrs[k] = { ...a };
    const own = { ...(def.attributes ?? {}) };
    const includes = own.$include;
    delete own.$include;
    for (const inc of Array.isArray(includes) ? includes : includes ? [includes] : []) {
      const f = this.#read(inc as string) as { meta?: string; name: string; attributes: Json };
      const profile = f.meta === 'profile' ? f.name : undefined;
      for (const [k, a] of Object.entries(f.attributes))
        attrs[k] = merge(attrs[k], { ...(a as AttrDef), ...(profile ? { profile } : {}) });
    }
    for (const [k, a] of Object.entries(own)) attrs[k] = merge(attrs[k], a as AttrDef);
    for (const [k, a] of Object.entries(attrs)) attrs[k] = merge(this.#dict[k], a);
    const r: Resolved = {
      name,
      caption: def.caption,
      attrs,
      constraints: def.constraints ?? parent?.constraints ?? {},
      category: def.category ?? parent?.category,
      uid: def.uid,
      profiles: [...(parent?.profiles ?? []), ...(def.profiles ?? [])],
    };
    this.#cache.set(key, r);
    return r;
  }

  #read(rel: string): unknown {
    this.used.add(relative('.', rel));
    return JSON.parse(readFileSync(join(this.#root, rel), 'utf8'));
  }
}

/** Later definitions win field by field; enums are united (a class adds activities). */
function merge(base: AttrDef | undefined, over: AttrDef): AttrDef {
  if (!base) return { ...over };
  const out = { ...base, ...over };
  if (base.enum || over.enum) out.enum = { ...(base.enum ?? {}), ...(over.enum ?? {}) };
  return out;
}
