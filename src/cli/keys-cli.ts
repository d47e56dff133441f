import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { sql } from 'kysely';
import type { Config } from '../config.js';
import { createDb, type Db } from '../db/create-db.js';
import { migrate } from '../db/migrate.js';
import { primaryReads } from '../db/reads.js';
import { describeOpenFailure } from '../db/open-failure.js';
import { AppError, toAppError } from '../errors.js';
import { operatorViewer } from '../auth/viewer.js';
import { validateNewApiKey, type ApiKeyField } from '../api-keys/api-key.input.js';
import { toApiKeyRead } from '../api-keys/api-key.rest.js';
import { toAuditEventRead } from '../audit/audit.rest.js';
import { listAuditEvents, validateAuditFilter, type AuditEntry } from '../audit/audit.service.js';
import {
  createApiKey, findApiKeysByPrefix, getApiKey, listApiKeys, revokeApiKey, revokePrincipalKeys, type ApiKey,
} from '../api-keys/api-key.service.js';
import { MAX_GRACE_PERIOD_SECONDS, rotateApiKey, validateGracePeriod } from '../api-keys/api-key-rotation.service.js';
import { KEY_PREFIX_LENGTH } from '../api-keys/raw-key.js';
import { decodeCursor } from '../pagination/cursor.js';
import { newestEventFirst, newestFirst, type Order } from '../pagination/order.js';
import { listPage, MAX_PAGE_SIZE } from '../pagination/page.js';
import { toPrincipalRead } from '../principals/principal.rest.js';
import {
  createPrincipal, findPrincipal, listPrincipals, validateNewPrincipal, type Principal, type PrincipalField,
} from '../principals/principal.service.js';
import { isUuid } from '../uuid.js';

/** Where the CLI writes: `out` gets results (tables, JSON, a raw key alone on its line), `err` everything else. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

type Values = Record<string, string | boolean | undefined>;

/** What a command does once its flags are checked: the database is opened only then. */
type Action = (db: Db, io: Io, config: Config) => Promise<void>;

interface Command {
  summary: string;
  usage: string;
  details: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals?: number;
  /** Checks the flags (throwing a `UsageError` or a 422 `AppError` naming the flag) and returns what to do. */
  prepare(values: Values, positionals: string[]): Action;
}

const common = { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } } as const;

/** The flag that carries a field of the services' requests. */
const flagOf = (field: ApiKeyField | PrincipalField) => (field === 'principal_id' ? '--principal' : `--${field.replace(/_/g, '-')}`);

const commands: Record<string, Command> = {
  'create-principal': {
    summary: 'create a principal (a human or an agent that holds keys)',
    usage: 'create-principal --external-id ID --type human|agent --name NAME [--metadata JSON_OBJECT] [--json]',
    details: 'An --external-id that exists already prints that principal unchanged (and exits 0).',
    options: { 'external-id': { type: 'string' }, type: { type: 'string' }, name: { type: 'string' }, metadata: { type: 'string' }, ...common },
    prepare(values) {
      const request = {
        externalId: required(values, 'external-id'),
        type: required(values, 'type'),
        name: required(values, 'name'),
        metadata: values.metadata === undefined ? undefined : parseJson(values.metadata as string, '--metadata'),
      };
      validateNewPrincipal(request, flagOf);
      return async (db, io) => {
        const { principal, created } = await createPrincipal(db.kysely, operatorViewer, request);
        if (values.json) return json(io, { created, ...toPrincipalRead(principal) });
        io.err(created ? 'Created principal:' : `A principal with external id ${principal.externalId} exists already, unchanged:`);
        principalTable(io, [principal]);
      };
    },
  },
  'create-key': {
    summary: 'create a key for a principal and print the raw key, once',
    usage: 'create-key --principal ID_OR_EXTERNAL_ID --name NAME [--scopes a:b,c:d|*] [--expires-at ISO_8601] [--pact-id UUID] [--delegation-id UUID] [--json]',
    details: 'Scopes default to *. The raw key goes alone to stdout (KEY=$(npm run -s keys -- create-key …)), the key\'s row to stderr;\n' +
      'with --json, {"api_key": …, "raw_key": …} goes to stdout. The raw key is not stored and cannot be shown again.',
    options: {
      principal: { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string' }, 'expires-at': { type: 'string' },
      'pact-id': { type: 'string' }, 'delegation-id': { type: 'string' }, ...common,
    },
    prepare(values) {
      const principal = required(values, 'principal');
      const request = {
        name: required(values, 'name'),
        scopes: values.scopes === undefined ? undefined : (values.scopes as string).split(',').map((scope) => scope.trim()).filter(Boolean),
        expiresAt: values['expires-at'] as string | undefined,
        pactId: values['pact-id'] as string | undefined,
        delegationId: values['delegation-id'] as string | undefined,
      };
      validateNewApiKey(request, Date.now(), flagOf);
      return async (db, io, config) => {
        const principalId = (await principalOf(db, principal)).id;
        const { apiKey, rawKey } = await createApiKey(db.kysely, operatorViewer, { ...request, principalId }, config);
        if (values.json) return json(io, { api_key: toApiKeyRead(apiKey), raw_key: rawKey });
        keyTable({ out: io.err, err: io.err }, [apiKey]);
        io.err('The raw key is shown this once:');
        io.out(rawKey);
      };
    },
  },
  'list-keys': {
    summary: 'list keys, newest first',
    usage: 'list-keys [--principal ID_OR_EXTERNAL_ID] [--revoked | --active] [--limit 1..200] [--after CURSOR] [--json]',
    details: '--active lists keys neither revoked nor expired. When more keys follow, stderr ends with the command for the next page;\n' +
      'with --json, stdout is {"keys": […], "has_more": …, "after": CURSOR}.',
    options: {
      principal: { type: 'string' }, revoked: { type: 'boolean' }, active: { type: 'boolean' }, limit: { type: 'string' },
      after: { type: 'string' }, ...common,
    },
    prepare(values) {
      if (values.revoked && values.active) throw usage('--revoked and --active cannot be used together');
      const limit = pageSize(values, 20);
      const after = cursor(values, 'list-keys');
      return async (db, io) => {
        const principalId = values.principal === undefined ? undefined : (await principalOf(db, values.principal as string)).id;
        const filter = { principalId, ...(values.revoked && { isRevoked: true }), ...(values.active && { isActive: true }) };
        const page = await listApiKeys(primaryReads(db.kysely), operatorViewer, listPage({ limit, after }), { filter });
        if (values.json) return json(io, { keys: page.items.map(toApiKeyRead), has_more: page.hasNext, after: page.endCursor });
        if (page.items.length === 0) io.err('No keys.');
        else keyTable(io, page.items);
        if (page.hasNext) io.err(`More: npm run keys -- ${nextPage('list-keys', values, page.endCursor!, ['principal', 'revoked', 'active', 'limit'])}`);
      };
    },
  },
  'show-key': {
    summary: 'show one key, by its id or by its key prefix',
    usage: 'show-key KEY_ID_OR_PREFIX [--json]',
    details: `The prefix is the first ${KEY_PREFIX_LENGTH} characters of the raw key ("ak_" and 8 more), as list-keys prints it.`,
    options: { ...common },
    positionals: 1,
    prepare(values, [idOrPrefix]) {
      if (idOrPrefix === undefined) throw usage('show-key needs the id of the key or its prefix');
      if (!isUuid(idOrPrefix) && !(idOrPrefix.startsWith('ak_') && idOrPrefix.length === KEY_PREFIX_LENGTH)) {
        throw usage(`"${idOrPrefix.slice(0, 40)}" is neither a key id (a UUID) nor a key prefix ("ak_" and 8 more characters)`);
      }
      return async (db, io) => {
        const keys = isUuid(idOrPrefix) ? [await getApiKey(db.kysely, operatorViewer, idOrPrefix)] : await findApiKeysByPrefix(db.kysely, operatorViewer, idOrPrefix);
        if (keys.length === 0) throw new AppError('NOT_FOUND', `no key has the prefix ${idOrPrefix}`, 'Check the prefix: npm run keys -- list-keys prints every key\'s.');
        if (keys.length > 1) {
          throw new AppError('NOT_FOUND', `${keys.length} keys have the prefix ${idOrPrefix}`, `Show one by its id: ${keys.map((key) => key.id).join(', ')}.`);
        }
        if (values.json) return json(io, toApiKeyRead(keys[0]));
        keyTable(io, keys);
      };
    },
  },
  'revoke-key': {
    summary: 'revoke a key for good',
    usage: 'revoke-key KEY_ID [--json]',
    details: 'Revoking a revoked key changes nothing. Gateways running on the same PostgreSQL database refuse the key within 1 s.',
    options: { ...common },
    positionals: 1,
    prepare(values, [keyId]) {
      if (keyId === undefined) throw usage('revoke-key needs the id of the key');
      return async (db, io) => {
        const key = await revokeApiKey(db.kysely, operatorViewer, keyId, () => {});
        if (values.json) return json(io, toApiKeyRead(key));
        keyTable(io, [key]);
      };
    },
  },
  'rotate-key': {
    summary: 'replace a key with a new one of the same values, printing the new raw key once',
    usage: 'rotate-key KEY_ID --grace-period-seconds 0..604800 [--json]',
    details: 'The new key has the old one\'s principal, name, scopes, pact, delegation and expiry. The old key keeps working for the\n' +
      'grace period (its expiry becomes now + grace, never later than it was); 0 revokes it at once. The raw key goes alone\n' +
      'to stdout, both keys\' rows to stderr; with --json, {"api_key": …, "raw_key": …, "replaced_api_key": …} goes to stdout.',
    options: { 'grace-period-seconds': { type: 'string' }, ...common },
    positionals: 1,
    prepare(values, [keyId]) {
      if (keyId === undefined) throw usage('rotate-key needs the id of the key');
      const grace = required(values, 'grace-period-seconds');
      if (!/^\d{1,7}$/.test(grace)) throw usage(`--grace-period-seconds must be a whole number of seconds from 0 to ${MAX_GRACE_PERIOD_SECONDS}, got "${grace.slice(0, 40)}"`);
      const gracePeriodSeconds = validateGracePeriod(Number(grace), '--grace-period-seconds');
      return async (db, io, config) => {
        const rotated = await rotateApiKey(db.kysely, operatorViewer, keyId, { gracePeriodSeconds }, config, () => {});
        if (values.json) {
          return json(io, { api_key: toApiKeyRead(rotated.apiKey), raw_key: rotated.rawKey, replaced_api_key: toApiKeyRead(rotated.replacedApiKey) });
        }
        keyTable({ out: io.err, err: io.err }, [rotated.apiKey, rotated.replacedApiKey]);
        io.err(`The replacement's raw key is shown this once (the old key ${rotated.replacedApiKey.isRevoked ? 'is revoked' : `works until ${rotated.replacedApiKey.expiresAt}`}):`);
        io.out(rotated.rawKey);
      };
    },
  },
  'revoke-principal-keys': {
    summary: 'revoke every key of a principal for good',
    usage: 'revoke-principal-keys --principal ID_OR_EXTERNAL_ID [--json]',
    details: 'Prints the keys it revoked; keys revoked before are left as they are. With --json: {"principal_id": …, "revoked": […]}.',
    options: { principal: { type: 'string' }, ...common },
    prepare(values) {
      const principal = required(values, 'principal');
      return async (db, io) => {
        const { id } = await principalOf(db, principal);
        const revoked = await revokePrincipalKeys(db.kysely, operatorViewer, id, () => {});
        if (values.json) return json(io, { principal_id: id, revoked: revoked.map(toApiKeyRead) });
        if (revoked.length === 0) return io.err(`No key of principal ${principal} was left to revoke.`);
        keyTable(io, revoked);
        io.err(`Revoked ${revoked.length} key${revoked.length === 1 ? '' : 's'} of principal ${principal}.`);
      };
    },
  },
  audit: {
    summary: 'read the audit trail, newest first',
    usage: 'audit [--action ACTION] [--actor-type service|key|operator] [--actor-key-id UUID] [--target-type api_key|principal] [--target-id UUID] [--since ISO_8601] [--until ISO_8601] [--limit 1..200] [--after CURSOR] [--json]',
    details: 'Every event: who (actor), what (action), to which key or principal (target), when, and what changed (never a secret).\n' +
      '--since is included, --until is not. When more events follow, stderr ends with the command for the next page;\n' +
      'with --json, stdout is {"events": […], "has_more": …, "after": CURSOR}, each event as GET /api/v1/audit-events shows it.',
    options: {
      action: { type: 'string' }, 'actor-type': { type: 'string' }, 'actor-key-id': { type: 'string' }, 'target-type': { type: 'string' },
      'target-id': { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' }, after: { type: 'string' }, ...common,
    },
    prepare(values) {
      const limit = pageSize(values, 20);
      const after = cursor(values, 'audit', newestEventFirst);
      const filter = {
        action: values.action as string | undefined,
        actorType: values['actor-type'] as string | undefined,
        actorKeyId: values['actor-key-id'] as string | undefined,
        targetType: values['target-type'] as string | undefined,
        targetId: values['target-id'] as string | undefined,
        since: values.since as string | undefined,
        until: values.until as string | undefined,
      };
      validateAuditFilter(filter);
      return async (db, io) => {
        const page = await listAuditEvents(primaryReads(db.kysely), operatorViewer, listPage({ limit, after }, newestEventFirst), filter);
        if (values.json) return json(io, { events: page.items.map(toAuditEventRead), has_more: page.hasNext, after: page.endCursor });
        if (page.items.length === 0) io.err('No events.');
        else auditTable(io, page.items);
        const kept = ['action', 'actor-type', 'actor-key-id', 'target-type', 'target-id', 'since', 'until', 'limit'];
        if (page.hasNext) io.err(`More: npm run keys -- ${nextPage('audit', values, page.endCursor!, kept)}`);
      };
    },
  },
  'list-principals': {
    summary: 'list principals, newest first',
    usage: 'list-principals [--limit 1..200] [--after CURSOR] [--json]',
    details: 'When more principals follow, stderr ends with the command for the next page;\n' +
      'with --json, stdout is {"principals": […], "has_more": …, "after": CURSOR}.',
    options: { limit: { type: 'string' }, after: { type: 'string' }, ...common },
    prepare(values) {
      const limit = pageSize(values, 20);
      const after = cursor(values, 'list-principals');
      return async (db, io) => {
        const page = await listPrincipals(primaryReads(db.kysely), operatorViewer, listPage({ limit, after }));
        if (values.json) return json(io, { principals: page.items.map(toPrincipalRead), has_more: page.hasNext, after: page.endCursor });
        if (page.items.length === 0) io.err('No principals.');
        else principalTable(io, page.items);
        if (page.hasNext) io.err(`More: npm run keys -- ${nextPage('list-principals', values, page.endCursor!, ['limit'])}`);
      };
    },
  },
};

/** The command line is wrong: exit 2, with the command's usage. */
class UsageError extends Error {}
const usage = (message: string) => new UsageError(message);

function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string') throw usage(`--${name} is required`);
  return value;
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw usage(`${name} must be JSON, e.g. '{"team": "payments"}'`);
  }
}

function pageSize(values: Values, fallback: number): number {
  if (values.limit === undefined) return fallback;
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw usage(`--limit must be an integer from 1 to ${MAX_PAGE_SIZE}, got "${values.limit}"`);
  }
  return limit;
}

/** The `--after` cursor, checked, of the listing's `order`. */
function cursor(values: Values, command: string, order: Order = newestFirst): string | undefined {
  const after = values.after as string | undefined;
  if (after !== undefined) decodeCursor(after, '--after', { order, suggestion: `Pass the cursor exactly as the "More: ${command} --after …" line or the "after" field of --json printed it.` });
  return after;
}

/** The command for the next page: the same flags, and the new cursor. */
function nextPage(command: string, values: Values, after: string, kept: string[]): string {
  const flags = kept.flatMap((name) => {
    const value = values[name];
    if (value === undefined || value === false) return [];
    return value === true ? [`--${name}`] : [`--${name}`, shellWord(value)];
  });
  return [command, ...flags, '--after', after].join(' ');
}

const shellWord = (value: string) => (/^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`);

async function principalOf(db: Db, idOrExternalId: string): Promise<Principal> {
  const principal = await findPrincipal(db.kysely, operatorViewer, idOrExternalId);
  if (!principal) {
    throw new AppError('NOT_FOUND', `no principal has the id or external id "${idOrExternalId}"`, 'Create it first (npm run keys -- create-principal --help), or list them: npm run keys -- list-principals');
  }
  return principal;
}

function json(io: Io, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}

/** Columns padded to their widest cell, under a header line. */
function table(io: Io, headers: string[], rows: string[][]): void {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column].length)));
  for (const row of [headers, ...rows]) io.out(row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('  '));
}

function keyState(key: ApiKey, now = Date.now()): string {
  if (key.isRevoked) return 'revoked';
  return key.expiresAt !== null && Date.parse(key.expiresAt) <= now ? 'expired' : 'active';
}

function keyTable(io: Io, keys: ApiKey[]): void {
  table(io, ['ID', 'PREFIX', 'PRINCIPAL', 'NAME', 'SCOPES', 'STATE', 'EXPIRES', 'REVOKED', 'LAST USED', 'CREATED'], keys.map((key) => [
    key.id, key.keyPrefix, key.principalId, JSON.stringify(key.name), key.scopes.join(',') || '-', keyState(key),
    key.expiresAt ?? 'never', key.revokedAt ?? '-', key.lastUsedAt ?? 'never', key.createdAt,
  ]));
}

function auditTable(io: Io, events: AuditEntry[]): void {
  table(io, ['OCCURRED', 'ACTION', 'ACTOR', 'TARGET', 'DETAILS'], events.map((event) => [
    event.occurredAt, event.action, event.actorKeyId === null ? event.actorType : `key ${event.actorKeyId}`,
    `${event.targetType} ${event.targetId}`, JSON.stringify(event.details),
  ]));
}

function principalTable(io: Io, principals: Principal[]): void {
  table(io, ['ID', 'EXTERNAL ID', 'TYPE', 'NAME', 'CREATED'], principals.map((principal) => [
    principal.id, principal.externalId, principal.type, JSON.stringify(principal.name), principal.createdAt,
  ]));
}

function version(): string {
  const { name, version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return `${name} ${version} (Node ${process.version})`;
}

function overview(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  return [
    'Usage: npm run keys -- <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`),
    '',
    'Every command takes --json (fields as in the REST API) and --help. --version prints the version.',
    'The database is the gateway\'s: DATABASE_URL, or embedded PGlite in PGLITE_DIR (default .data/pglite),',
    'which must not be in use by a running gateway.',
    'Exit codes: 0 done, 1 refused or failed, 2 a misused command.',
  ].join('\n');
}

const commandHelp = (command: Command) => `Usage: npm run keys -- ${command.usage}\n\n${command.summary}.\n${command.details}`;

/**
 * Runs one operator command against the gateway's database, through the services the APIs use;
 * returns the exit code: 0 done, 1 refused or failed (a message and a suggestion), 2 misused
 * (a wrong command, flag or flag value, with the command's usage). `open` opens the database
 * for the command and is closed after it.
 */
export async function runKeysCli(argv: string[], config: Config, io: Io, open: (config: Config) => Db = createDb): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' && rest[0] ? commands[rest[0]] : undefined;
    io.out(topic ? commandHelp(topic) : overview());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    io.out(version());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    io.err(`error: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  let action: Action;
  try {
    const parsed = parseArgs({ args: rest, options: command.options, allowPositionals: (command.positionals ?? 0) > 0, strict: true });
    if (parsed.positionals.length > (command.positionals ?? 0)) throw usage(`unexpected argument "${parsed.positionals.at(-1)}"`);
    if (parsed.values.help) {
      io.out(commandHelp(command));
      return 0;
    }
    action = command.prepare(parsed.values as Values, parsed.positionals);
  } catch (error) {
    const app = error instanceof AppError ? error : undefined;
    io.err(`error: ${(error as Error).message}${app ? `\n${app.suggestion}` : ''}\n\nUsage: npm run keys -- ${command.usage}`);
    return 2;
  }

  let db: Db | undefined;
  try {
    db = open(config);
    // Connect before migrating, so that an embedded database in use is reported as such.
    await sql`select 1`.execute(db.kysely);
    await migrate(config, db);
    await action(db, io, config);
    return 0;
  } catch (error) {
    const opening = describeOpenFailure(error, config);
    if (opening) {
      io.err(`error: ${opening}`);
      return 1;
    }
    const app = toAppError(error);
    io.err(app ? `error: ${app.message}\n${app.suggestion}` : `error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await db?.close().catch(() => {});
  }
}
