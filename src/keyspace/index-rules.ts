import type { IndexRuleConfig } from '../config/cache-health-schema.js';
import type { TokenRuleConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { KeyTemplate, toLatin1 } from './key-template.js';

/** One index rule, compiled: which keys are indexes and how a member names its token's key. */
export interface CompiledIndexRule {
  name: string;
  kind: string;
  template: KeyTemplate;
  /** Latin1 literal text before and after `{member}` in the token key. */
  memberPrefix: string;
  memberSuffix: string;
}

/**
 * Index rules: keys (sets or hashes) whose members or fields are ids of tokens of one kind, such
 * as Spring Session's principal index (`...:index:...:principalName:{user}` -> session ids).
 * A member names its token through `memberKey` (default: the kind's token rule, when that rule
 * has exactly one placeholder).
 */
export class IndexRules {
  readonly rules: readonly CompiledIndexRule[];

  /** @throws ConfigError when a rule names an unknown kind or its member key cannot be derived. */
  constructor(rules: readonly IndexRuleConfig[], tokens: readonly TokenRuleConfig[]) {
    this.rules = rules.map((r, i) => {
      const tokenRule = tokens.find((t) => t.kind === r.kind);
      if (!tokenRule) {
        throw issue(`indexes.rules.${i}.kind`, `no token rule has kind "${r.kind}"`);
      }
      let memberKey = r.memberKey;
      if (memberKey === undefined) {
        const tpl = new KeyTemplate(tokenRule.key);
        if (tpl.placeholders.length !== 1) {
          throw issue(
            `indexes.rules.${i}.memberKey`,
            `the token rule ${tokenRule.key} has several placeholders; say which key a member names, e.g. "session:{member}"`,
          );
        }
        memberKey = tokenRule.key.replace(`{${tpl.placeholders[0] as string}}`, '{member}');
      }
      const at = memberKey.indexOf('{member}');
      return {
        name: r.name,
        kind: r.kind,
        template: new KeyTemplate(r.key),
        memberPrefix: toLatin1(memberKey.slice(0, at)),
        memberSuffix: toLatin1(memberKey.slice(at + '{member}'.length)),
      };
    });
    const names = new Set<string>();
    for (const [i, r] of this.rules.entries()) {
      if (names.has(r.name)) throw issue(`indexes.rules.${i}.name`, `"${r.name}" is used twice`);
      names.add(r.name);
    }
  }

  get names(): string[] {
    return this.rules.map((r) => r.name);
  }

  /** The first rule whose template matches the (latin1) key. */
  match(key: string): CompiledIndexRule | undefined {
    return this.rules.find((r) => r.template.match(key) !== undefined);
  }

  /** The token key a member (latin1) of an index of `rule` refers to. */
  static tokenKey(rule: CompiledIndexRule, member: string): string {
    return rule.memberPrefix + member + rule.memberSuffix;
  }
}

function issue(path: string, message: string): ConfigError {
  return new ConfigError([{ path, message }]);
}
