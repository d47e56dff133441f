import { parseArgs, type ParseArgsConfig } from 'node:util';
import { sql } from 'kysely';
import type { Config } from '../config.js';
import { createDb, type Db } from '../db/create-db.js';
import { migrate } from '../db/migrate.js';
import { AppError, badInput } from '../errors.js';
import { operatorViewer } from '../auth/viewer.js';
import { createApiKey, listApiKeys, revokeApiKey, type ApiKey } from '../api-keys/api-key.service.js';
import { listPage } from '../pagination/page.js';
import { createPrincipal, findPrincipal } from '../principals/principal.service.js';

/** Where the CLI writes: `out` gets results (a raw key alone on its line), `err` everything else. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

interface Command {
  summary: string;
  usage: string;
  details: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals?: number;
  run(db: Db, values: Record<string, string | boolean | undefined>, positionals: string[], io: Io, config: Config): Promise<void>;
}

const help = { help: { type: 'boolean', short: 'h' } } as const;

const commands: Record<string, Command> = {
  'create-principal': {
    summary: 'create a principal (a human or an agent that holds keys)',
    usage: 'create-principal --external-id <id> --type human|agent --name <name> [--metadata <json object>]',
    details: 'An --external-id that exists already prints that principal unchanged (and exits 0).',
    options: { 'external-id': { type: 'string' }, type: { type: 'string' }, name: { type: 'string' }, metadata: { type: 'string' }, ...help },
    async run(db, values, _positionals, io) {
      const { principal, created } = await createPrincipal(db.kysely, operatorViewer, {
        externalId: required(values, 'external-id'),
        type: required(values, 'type'),
        name: required(values, 'name'),
        metadata: values.metadata === undefined ? undefined : parseJson(values.metadata as string, '--metadata'),
      });
      io.err(created ? 'Created principal:' : `A principal with external id ${principal.externalId} exists already, unchanged:`);
      io.out(`${principal.id}  ${principal.type}  ${principal.externalId}  ${principal.name}`);
    },
  },
  'create-key': {
    summary: 'create a key for a principal and print the raw key, once',
    usage: 'create-key --principal <principal id or external id> --name <name> [--scopes <a:b,c:d|*>] [--expires-at <ISO 8601>] [--pact-id <uuid>] [--delegation-id <uuid>]',
    details: 'Scopes default to *. The raw key goes alone to stdout (KEY=$(npm run -s keys -- create-key …)); it is not stored and cannot be shown again.',
    options: {
      principal: { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string' }, 'expires-at': { type: 'string' },
      'pact-id': { type: 'string' }, 'delegation-id': { type: 'string' }, ...help,
    },
    async run(db, values, _positionals, io, config) {
      const principal = await principalOf(db, required(values, 'principal'));
      const scopes = values.scopes === undefined ? undefined : (values.scopes as string).split(',').map((scope) => scope.trim()).filter(Boolean);
      const { apiKey, rawKey } = await createApiKey(db.kysely, operatorViewer, {
        name: required(values, 'name'),
        principalId: principal,
        scopes,
        expiresAt: values['expires-at'] as string | undefined,
        pactId: values['pact-id'] as string | undefined,
        delegationId: values['delegation-id'] as string | undefined,
      }, config);
      io.err(`Created key ${apiKey.id} (${apiKey.keyPrefix}…) with scopes ${apiKey.scopes.join(', ') || 'none'}` +
        `${apiKey.expiresAt ? `, expiring ${apiKey.expiresAt}` : ''}. The raw key is shown this once:`);
      io.out(rawKey);
    },
  },
  'list-keys': {
    summary: 'list keys, newest first',
    usage: 'list-keys [--principal <principal id or external id>] [--revoked | --active] [--limit <1..200>] [--after <cursor>] [--json]',
    details: 'Prints one key per line; when more exist, the command for the next page.',
    options: {
      principal: { type: 'string' }, revoked: { type: 'boolean' }, active: { type: 'boolean' }, limit: { type: 'string' },
      after: { type: 'string' }, json: { type: 'boolean' }, ...help,
    },
    async run(db, values, _positionals, io) {
      if (values.revoked && values.active) throw usage('--revoked and --active cannot be used together');
      const limit = values.limit === undefined ? 20 : Number(values.limit);
      if (!Number.isInteger(limit)) throw usage(`--limit must be an integer from 1 to 200, got "${values.limit}"`);
      const principalId = values.principal === undefined ? undefined : await principalOf(db, values.principal as string);
      const isRevoked = values.revoked ? true : values.active ? false : undefined;
      const page = await listApiKeys(db.kysely, operatorViewer, listPage({ limit, after: values.after as string | undefined }), { principalId, isRevoked });
      if (values.json) {
        io.out(JSON.stringify({ keys: page.items.map(({ position: _position, ...key }) => key), next: page.hasNext ? page.endCursor : null }, null, 2));
        return;
      }
      if (page.items.length === 0) io.err('No keys.');
      for (const key of page.items) io.out(keyLine(key));
      if (page.hasNext) io.err(`More: list-keys --after ${page.endCursor}${values.limit ? ` --limit ${limit}` : ''}`);
    },
  },
  'revoke-key': {
    summary: 'revoke a key for good',
    usage: 'revoke-key <key id>',
    details: 'Revoking a revoked key changes nothing. Gateways running on the same PostgreSQL database refuse the key within 1 s.',
    options: { ...help },
    positionals: 1,
    async run(db, _values, [keyId], io) {
      if (keyId === undefined) throw usage('revoke-key needs the id of the key');
      const key = await revokeApiKey(db.kysely, operatorViewer, keyId, () => {});
      io.out(`revoked ${key.id} (${key.keyPrefix}…) at ${key.revokedAt}`);
    },
  },
};

class UsageError extends Error {}
const usage = (message: string) => new UsageError(message);

function required(values: Record<string, string | boolean | undefined>, name: string): string {
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

async function principalOf(db: Db, idOrExternalId: string): Promise<string> {
  const principal = await findPrincipal(db.kysely, operatorViewer, idOrExternalId);
  if (!principal) throw badInput(`no principal has the id or external id "${idOrExternalId}"`, 'Create it first: npm run keys -- create-principal --help');
  return principal.id;
}

function keyLine(key: ApiKey): string {
  const state = key.isRevoked ? `revoked ${key.revokedAt}` : key.expiresAt ? `expires ${key.expiresAt}` : 'active';
  return [key.id, key.keyPrefix, key.principalId, JSON.stringify(key.name), key.scopes.join(',') || '-', state,
    `created ${key.createdAt}`, `last used ${key.lastUsedAt ?? 'never'}`].join('  ');
}

function overview(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  return [
    'Usage: npm run keys -- <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`),
    '',
    'Run a command with --help for its options. The database is the gateway\'s: DATABASE_URL, or',
    'embedded PGlite in PGLITE_DIR (default .data/pglite), which must not be in use by a running gateway.',
  ].join('\n');
}

const commandHelp = (command: Command) => `Usage: npm run keys -- ${command.usage}\n\n${command.summary}.\n${command.details}`;

/**
 * Runs one operator command against the gateway's database; returns the exit code
 * (0 done, 1 refused or failed, 2 misused).
 */
export async function runKeysCli(argv: string[], config: Config, io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' && rest[0] ? commands[rest[0]] : undefined;
    io.out(topic ? commandHelp(topic) : overview());
    return 0;
  }
  const command = commands[name];
  if (!command) {
    io.err(`error: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: (command.positionals ?? 0) > 0, strict: true });
    if (parsed.positionals.length > (command.positionals ?? 0)) throw usage(`unexpected argument "${parsed.positionals.at(-1)}"`);
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${commandHelp(command)}`);
    return 2;
  }
  if (parsed.values.help) {
    io.out(commandHelp(command));
    return 0;
  }

  let db: Db | undefined;
  try {
    db = createDb(config);
    // Connect before migrating, so that an embedded database in use is reported as such.
    await sql`select 1`.execute(db.kysely);
    await migrate(config, db);
    await command.run(db, parsed.values as Record<string, string | boolean | undefined>, parsed.positionals, io, config);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`error: ${error.message}\n\n${commandHelp(command)}`);
      return 2;
    }
    if (error instanceof AppError) {
      io.err(`error: ${error.message}\n${error.suggestion}`);
      return 1;
    }
    io.err(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await db?.close().catch(() => {});
  }
}
