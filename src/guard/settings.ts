import { type Facts, refuse, refuseWithMessage, type SessionReset } from './analysis.js';
import { arrayOf, type Json, literalOf, node, type Obj, scalarConst, stringConst } from './json.js';
import { PARSER_SETTINGS, PROTECTED_SETTINGS } from './rules.js';
import type { Scope } from './scope.js';
import { quoteSearchPathName } from './search-path.js';

/**
 * SET / RESET / SET LOCAL, and the SET clauses of CREATE/ALTER FUNCTION (`inSession` false):
 * every setting changed is recorded for the verdict; statements that run in the client's session
 * also leave a session effect for transaction pooling to replay. `clientText`: a top-level
 * statement of the client's own text, where a literal search_path is left to the tenant's verdict.
 */
export function visitSet(body: Obj, f: Facts, inSession: boolean, clientText: boolean): void {
  const kind = body['kind'];
  const name = typeof body['name'] === 'string' ? body['name'].toLowerCase() : '';
  if (name === 'session characteristics') {
    if (inSession) f.sessionEffects.push({ kind: 'unsupported', what: 'SET SESSION CHARACTERISTICS' });
    return;
  }
  if (name === '' || kind === 'VAR_SET_MULTI') return; // SET TRANSACTION and friends: this transaction only
  const args = arrayOf(body['args']);
  const value = kind === 'VAR_SET_VALUE' ? setValue(name, args) : 'default';
  if (name === SEARCH_PATH && kind === 'VAR_SET_VALUE' && value !== undefined && inSession && clientText) f.searchPaths.push(value);
  else record(f, name, value);
  if (!inSession || body['is_local'] === true || TRANSACTION_SETTINGS.has(name)) return;
  if (kind === 'VAR_SET_VALUE' && value !== undefined) f.sessionEffects.push({ kind: 'set', name, value });
  else if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') f.sessionEffects.push({ kind: 'set', name, value: null });
  else f.sessionEffects.push({ kind: 'unsupported', what: `SET ${name} FROM CURRENT` });
}

const SEARCH_PATH = 'search_path';

/**
 * The value SET gives a setting, from the constants it lists: joined with ', ', search_path's
 * string elements written as identifiers (Postgres quotes them, so `SET search_path = 'a, b'`
 * names the one schema "a, b"). undefined when an element is not a constant.
 */
function setValue(name: string, args: readonly Json[]): string | undefined {
  const parts: string[] = [];
  for (const arg of args) {
    const text = stringConst(arg);
    const part = text !== undefined && name === SEARCH_PATH ? quoteSearchPathName(text) : (text ?? scalarConst(arg));
    if (part === undefined) return undefined;
    parts.push(part);
  }
  return parts.join(', ');
}

/**
 * RESET ALL and DISCARD ALL reset every setting, the pin included. Allowed as top-level statements
 * of the client's text that nothing but other such statements follow, which pgfence answers with
 * a fresh pin right after the text; refused anywhere else (`key`: where the statement sits in its
 * parent, '' for a statement of its own). DISCARD PLANS/SEQUENCES/TEMP do not touch the pin.
 */
export function visitSessionReset(reset: SessionReset, key: string, scope: Scope): void {
  const f = scope.facts;
  const at = scope.clientStatement;
  const what = reset === 'reset_all' ? 'RESET ALL' : 'DISCARD ALL';
  if (at !== null && key === '' && scope.runsNow && at.onlyResetsFollow) {
    if (f.sessionReset !== 'discard_all') f.sessionReset = reset;
    return;
  }
  f.settings.add('*'); // judge() refuses it, and ALTER FUNCTION ... RESET ALL (`key` 'arg') with it
  if (key === 'arg') return;
  refuseWithMessage(
    f,
    'pin_change',
    at === null || key !== ''
      ? `pgfence: ${what} inside a function body or DO block is not allowed (pgfence could not re-pin the tenant after it)`
      : `pgfence: ${what} must be the last statement of its query string (pgfence re-pins the tenant right after it)`,
  );
}

/**
 * Settings of the current transaction only, whatever the scope they are set with: never replayed
 * (a set_config of them in a later pin fails once the pin's query has taken its snapshot).
 */
const TRANSACTION_SETTINGS: ReadonlySet<string> = new Set(['transaction_isolation', 'transaction_read_only', 'transaction_deferrable']);

const SET_CONFIG_PARAMETERS = ['setting_name', 'new_value', 'is_local'];

/**
 * set_config(name, value, is_local) anywhere in an expression. `clientText`: in the client's own
 * text, where a literal search_path is left to the tenant's verdict.
 */
export function visitSetConfig(args: readonly Json[], f: Facts, inSession: boolean, clientText: boolean): void {
  const [nameArg, valueArg, localArg] = byPosition(args, SET_CONFIG_PARAMETERS);
  const setting = literalOf(nameArg);
  if (setting === undefined) {
    refuse(f, 'dynamic_sql', 'set_config() with a computed setting name');
    return;
  }
  const name = setting.toLowerCase();
  const value = literalOf(valueArg);
  if (name === SEARCH_PATH && value !== undefined && inSession && clientText) f.searchPaths.push(value);
  else record(f, name, value);
  if (!inSession || TRANSACTION_SETTINGS.has(name)) return;
  const isLocal = unwrapNamed(localArg);
  const local = scalarConst(isLocal) ?? literalOf(isLocal)?.toLowerCase();
  if (local === 'on' || local === 'true' || local === 't') return;
  if (value === undefined || local === undefined) f.sessionEffects.push({ kind: 'unsupported', what: 'set_config() with a computed value or scope' });
  else f.sessionEffects.push({ kind: 'set', name, value });
}

function record(f: Facts, name: string, value: string | undefined): void {
  f.settings.add(name);
  if (PROTECTED_SETTINGS.has(name)) refuse(f, 'forbidden_statement', `changing ${name}`);
  const safe = PARSER_SETTINGS.get(name);
  if (safe !== undefined && (value === undefined || !safe(value))) {
    refuse(f, 'parser_divergence', `${name} = ${value ?? '(computed)'}`);
  }
}

/** Arguments in parameter order, `name => value` notation resolved; an unknown name leaves a gap. */
function byPosition(args: readonly Json[], parameters: readonly string[]): Array<Json | undefined> {
  const out: Array<Json | undefined> = [];
  args.forEach((arg, i) => {
    const named = node(arg, 'NamedArgExpr');
    const at = named === undefined ? i : parameters.indexOf(String(named['name']));
    if (at >= 0) out[at] = arg;
  });
  return out;
}

function unwrapNamed(arg: Json | undefined): Json | undefined {
  return node(arg, 'NamedArgExpr')?.['arg'] ?? arg;
}
