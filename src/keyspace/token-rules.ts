import type { Fingerprinter } from '../audit/fingerprint.js';
import type { TokenRuleConfig } from '../config/schema.js';
import { DEFAULT_SECRET_PLACEHOLDERS, KeyTemplate } from './key-template.js';

/** A key that matched a token rule, with secrets already fingerprinted. */
export interface ClassifiedKey {
  kind: string;
  /** Fingerprint of the first secret placeholder (or of the whole key when it has none). */
  fingerprint: string;
  /** Secret placeholders as fingerprints, others as (bounded) values. */
  keyAttrs: Record<string, string>;
  /**
   * The fingerprint's digest (Fingerprinter.digestLatin1): the inventory's key for it, so the
   * hot path never decodes the hex back. Set by classify(); absent where a key was made otherwise.
   */
  digest?: string;
}

interface CompiledRule {
  kind: string;
  template: KeyTemplate;
  secret: ReadonlySet<string>;
  primary: string | undefined;
  /** Placeholder indexes in UTF-16 order of their names: keyAttrs are built in canonical order. */
  order: readonly number[];
  /** Per placeholder index: whether it is secret. */
  secretAt: readonly boolean[];
}

/**
 * The prototype of every keyAttrs object: empty and itself without a prototype, so a placeholder
 * named __proto__ (or toString) reads back its own value and an absent name reads undefined, as
 * with Object.create(null), while the objects stay in V8's fast mode (a null prototype makes a
 * dictionary: slower to fill and to read, and larger).
 */
const KEY_ATTRS_PROTO: object = Object.freeze(Object.create(null) as object);

const MAX_ATTR_CHARS = 256;

/** JavaScript's default sort order (UTF-16 code units), the order canonical JSON writes keys in. */
function compareNames(a: string | undefined, b: string | undefined): number {
  return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
}

/**
 * The configured token rules, compiled. The first matching rule wins; keys that match none are
 * not tokens (the caller counts them). Keys are latin1 strings (one char per byte).
 */
export class TokenRules {
  readonly kinds: readonly string[];
  readonly #rules: readonly CompiledRule[];
  readonly #fp: Fingerprinter;
  /** Placeholder values of the last match (matchInto), reused. */
  readonly #values: string[] = [];

  constructor(rules: readonly TokenRuleConfig[], fingerprinter: Fingerprinter) {
    this.#fp = fingerprinter;
    this.#rules = rules.map((r) => {
      const template = new KeyTemplate(r.key);
      const secret = new Set(
        template.placeholders.filter(
          (p) => DEFAULT_SECRET_PLACEHOLDERS.includes(p) || r.secret.includes(p),
        ),
      );
      const names = template.placeholders;
      return {
        kind: r.kind,
        template,
        secret,
        primary: names.find((p) => secret.has(p)),
        order: names.map((_, i) => i).sort((a, b) => compareNames(names[a], names[b])),
        secretAt: names.map((p) => secret.has(p)),
      };
    });
    this.kinds = [...new Set(rules.map((r) => r.kind))];
  }

  /**
   * Kind and digest (Fingerprinter.digestLatin1) of the token a key holds, without key
   * attributes or fingerprint text: the reconciliation's SCAN path, a million keys at a time.
   * Same rule, same secret as classify().
   */
  identify(key: string): { kind: string; digest: string } | undefined {
    for (const rule of this.#rules) {
      const values = rule.template.match(key);
      if (!values) continue;
      const secret = rule.primary === undefined ? undefined : values[rule.primary];
      return { kind: rule.kind, digest: this.#fp.digestLatin1(secret ?? key) };
    }
    return undefined;
  }

  classify(key: string): ClassifiedKey | undefined {
    const values = this.#values;
    for (const rule of this.#rules) {
      if (!rule.template.matchInto(key, values)) continue;
      const names = rule.template.placeholders;
      const keyAttrs = Object.create(KEY_ATTRS_PROTO) as Record<string, string>;
      let fingerprint: string | undefined;
      let digest: string | undefined;
      for (const i of rule.order) {
        const name = names[i] as string;
        const value = values[i] as string;
        if (name === rule.primary) {
          digest = this.#fp.digestLatin1(value);
          fingerprint = this.#fp.fingerprintOfDigest(digest);
          keyAttrs[name] = fingerprint;
        } else if (rule.secretAt[i]) {
          keyAttrs[name] = this.#fp.ofLatin1(value);
        } else {
          const text = Buffer.from(value, 'latin1').toString('utf8');
          keyAttrs[name] = text.length > MAX_ATTR_CHARS ? text.slice(0, MAX_ATTR_CHARS) : text;
        }
      }
      // No secret placeholder (e.g. `{sub}:{scope}`): the key itself identifies the token.
      if (fingerprint === undefined || digest === undefined) {
        digest = this.#fp.digestLatin1(key);
        fingerprint = this.#fp.fingerprintOfDigest(digest);
      }
      return { kind: rule.kind, fingerprint, keyAttrs, digest };
    }
    return undefined;
  }
}
