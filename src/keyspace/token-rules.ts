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
}

interface CompiledRule {
  kind: string;
  template: KeyTemplate;
  secret: ReadonlySet<string>;
  primary: string | undefined;
}

const MAX_ATTR_CHARS = 256;

/**
 * The configured token rules, compiled. The first matching rule wins; keys that match none are
 * not tokens (the caller counts them). Keys are latin1 strings (one char per byte).
 */
export class TokenRules {
  readonly kinds: readonly string[];
  readonly #rules: readonly CompiledRule[];
  readonly #fp: Fingerprinter;

  constructor(rules: readonly TokenRuleConfig[], fingerprinter: Fingerprinter) {
    this.#fp = fingerprinter;
    this.#rules = rules.map((r) => {
      const template = new KeyTemplate(r.key);
      const secret = new Set(
        template.placeholders.filter(
          (p) => DEFAULT_SECRET_PLACEHOLDERS.includes(p) || r.secret.includes(p),
        ),
      );
      return {
        kind: r.kind,
        template,
        secret,
        primary: template.placeholders.find((p) => secret.has(p)),
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
    for (const rule of this.#rules) {
      const values = rule.template.match(key);
      if (!values) continue;
      const keyAttrs = Object.create(null) as Record<string, string>;
      let fingerprint: string | undefined;
      for (const [name, value] of Object.entries(values)) {
        if (rule.secret.has(name)) {
          const fp = this.#fp.ofLatin1(value);
          keyAttrs[name] = fp;
          if (name === rule.primary) fingerprint = fp;
        } else {
          const text = Buffer.from(value, 'latin1').toString('utf8');
          keyAttrs[name] = text.length > MAX_ATTR_CHARS ? text.slice(0, MAX_ATTR_CHARS) : text;
        }
      }
      // No secret placeholder (e.g. `{sub}:{scope}`): the key itself identifies the token.
      fingerprint ??= this.#fp.ofLatin1(key);
      return { kind: rule.kind, fingerprint, keyAttrs };
    }
    return undefined;
  }
}
