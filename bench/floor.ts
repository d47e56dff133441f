/**
 * The floor: the fastest a Node process can answer one page of the contract's list, to measure the gateway against.
 * node:http and a pg Pool, the same keyset SELECT as the gateway, the same envelope; no framework, no auth,
 * no count, one fixed principal (argv[2] or PRINCIPAL_ID).
 *
 *   DATABASE_URL=… PORT=… tsx bench/floor.ts <principal uuid>
 *   GET /api/v1/api-keys?limit=50[&after=<cursor>]
 */
import { createServer, type ServerResponse } from 'node:http';
import pg from 'pg';
import { decodeCursor, encodeCursor, rfc3339 } from './cursor.js';

const principalId = process.argv[2] ?? process.env.PRINCIPAL_ID;
if (!principalId) throw new Error('usage: tsx bench/floor.ts <principal uuid> (or PRINCIPAL_ID)');

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });

// Timestamps are printed by PostgreSQL, so responses and cursors keep microseconds without a Date round trip.
const COLUMNS = `id, principal_id, name, key_prefix, scopes, ${rfc3339('expires_at')} as expires_at,
  ${rfc3339('last_used_at')} as last_used_at, is_revoked, ${rfc3339('revoked_at')} as revoked_at,
  ${rfc3339('created_at')} as created_at, ${rfc3339('updated_at')} as updated_at, delegation_id, pact_id`;

// Named, so each pooled connection prepares each statement once, as a tuned gateway would.
// ORDER BY names the table's columns: bare created_at would mean the to_char() output column and sort every row.
const FIRST_PAGE = {
  name: 'floor-first-page',
  text: `select ${COLUMNS} from api_keys where principal_id = $1
         order by api_keys.created_at desc, api_keys.id desc limit $2`,
};
const AFTER = {
  name: 'floor-after',
  text: `select ${COLUMNS} from api_keys where principal_id = $1 and (created_at, id) < ($3::timestamptz, $4::uuid)
         order by api_keys.created_at desc, api_keys.id desc limit $2`,
};

interface Row {
  id: string;
  created_at: string;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

const invalid = (error: string) => ({ success: false, error, suggestion: 'limit is 1..200; after is a cursor from meta.after' });

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://floor');
  if (req.method !== 'GET' || url.pathname !== '/api/v1/api-keys') {
    return send(res, 404, { success: false, error: 'not found', suggestion: 'GET /api/v1/api-keys' });
  }
  const limit = Number(url.searchParams.get('limit') ?? 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) return send(res, 422, invalid('limit out of range'));
  const after = url.searchParams.get('after');
  const position = after === null ? null : decodeCursor(after);
  if (after !== null && !position) return send(res, 422, invalid('after does not decode'));

  try {
    // One row more than the page tells has_more without a count.
    const { rows } = position
      ? await pool.query<Row>({ ...AFTER, values: [principalId, limit + 1, position.createdAt, position.id] })
      : await pool.query<Row>({ ...FIRST_PAGE, values: [principalId, limit + 1] });
    const page = rows.slice(0, limit);
    const cursor = (row: Row | undefined) => (row ? encodeCursor({ createdAt: row.created_at, id: row.id }) : null);
    send(res, 200, {
      result: page,
      success: true,
      suggestion: '',
      message: '',
      meta: { total: null, offset: null, limit: null, has_more: rows.length > limit, after: cursor(page.at(-1)), before: cursor(page[0]) },
    });
  } catch {
    send(res, 503, { success: false, error: 'database unavailable', suggestion: 'retry shortly' });
  }
});

server.listen(Number(process.env.PORT ?? 4100), process.env.HOST ?? '127.0.0.1');

process.on('SIGTERM', () => server.close(() => void pool.end()));
