import { type Facts, refuse } from './analysis.js';
import { arrayOf, type Json, literalOf, node, type Obj, scalarConst, stringConst } from './json.js';
import { PARSER_SETTINGS, PROTECTED_SETTINGS } from './rules.js';

/**
 * SET / RESET / SET LOCAL, and the SET clauses of CREATE/ALTER FUNCTION (`inSession` false):
 * every setting changed is recorded for the verdict; statements that run in the client's session
 * also leave a session effect for transaction pooling to replay.
 */
export function visitSet(body: Obj, f: Facts, inSession: boolean): void {
  const kind = body['kind'];
  if (kind === 'VAR_RESET_ALL') {
    f.settings.add('*');
    return;
  }
  const name = typeof body['name'] === 'string' ? body['name'].toLowerCase() : '';
  if (name === 'session characteristics') {
    if (inSession) f.sessionEffects.push({ kind: 'unsupported', what: 'SET SESSION CHARACTERISTICS' });
    return;
  }
  if (name === '' || kind === 'VAR_SET_MULTI') return; // SET TRANSACTION and friends: this transaction only
  const parts = arrayOf(body['args']).map((arg) => stringConst(arg) ?? scalarConst(arg));
  const value = kind === 'VAR_SET_VALUE' ? (parts.every((p) => p !== undefined) ? parts.join(', ') : undefined) : 'default';
  record(f, name, value);
  if (!inSession || body['is_local'] === true || TRANSACTION_SETTINGS.has(name)) return;
  if (kind === 'VAR_SET_VALUE' && value !== undefined) f.sessionEffects.push({ kind: 'set', name, value });
  else if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') f.sessionEffects.push({ kind: 'set', name, value: null });
  else f.sessionEffects.push({ kind: 'unsupported', what: `SET ${name} FROM CURRENT` });
}

/** DISCARD ALL resets every setting, the pin included; DISCARD PLANS/SEQUENCES/TEMP do not touch it. */
export function visitDiscard(body: Obj, f: Facts): void {
  if (body['target'] === 'DISCARD_ALL') f.settings.add('*');
}

/**
 * Settings of the current transaction only, whatever the scope they are set with: never replayed
 * (a set_config of them in a later pin fails once the pin's query has taken its snapshot).
 */
const TRANSACTION_SETTINGS: ReadonlySet<string> = new Set(['transaction_isolation', 'transaction_read_only', 'transaction_deferrable']);

const SET_CONFIG_PARAMETERS = ['setting_name', 'new_value', 'is_local'];

/** set_config(name, value, is_local) anywhere in an expression. */
export function visitSetConfig(args: readonly Json[], f: Facts, inSession: boolean): void {
  const [nameArg, valueArg, localArg] = byPosition(args, SET_CONFIG_PARAMETERS);
  const setting = literalOf(nameArg);
  if (setting === undefined) {
    refuse(f, 'dynamic_sql', 'set_config() with a computed setting name');
    return;
  }
  const name = setting.toLowerCase();
  const value = literalOf(valueArg);
  record(f, name, value);
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
