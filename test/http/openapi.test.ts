import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asKey, asService, createTestApp, type TestApp } from '../support/app.js';
import { insertKey, insertPrincipal } from '../support/fixtures.js';
import { answerCheck } from '../support/openapi-check.js';

type Json = Record<string, any>;

describe('GET /openapi.json', () => {
  let app: TestApp;
  let document: Json;

  beforeAll(async () => {
    app = await createTestApp();
    const answer = await fetch(`${app.base}/openapi.json`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
    document = await answer.json();
  });
  afterAll(() => app.close());

  it('is a valid OpenAPI 3.1 document whose references all resolve', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  it('is what the app builds from its route tables, served without credentials', () => {
    expect(document).toEqual(app.openapi);
  });

  it('names each operation as the upstream client names its method', () => {
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods as Json).map(([method, operation]) => `${method.toUpperCase()} ${path} ${operation.operationId}`));
    expect(operations).toEqual([
      'GET /api/v1/api-keys listApiKeys',
      'POST /api/v1/api-keys createApiKey',
      'GET /api/v1/api-keys/{id} getApiKey',
      'DELETE /api/v1/api-keys/{id} revokeApiKey',
      'POST /api/v1/api-keys/{id}/rotate rotateApiKey',
      'GET /api/v1/principals listPrincipals',
      'POST /api/v1/principals createPrincipal',
      'GET /api/v1/principals/{id} getPrincipal',
      'PATCH /api/v1/principals/{id} updatePrincipal',
      'GET /api/v1/audit-events listAuditEvents',
    ]);
  });

  it('describes every operation, parameter, response and schema property', () => {
    const missing: string[] = [];
    const need = (where: string, value: unknown) => {
      if (typeof value !== 'string' || value.length < 3) missing.push(where);
    };
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods as Json) as [string, Json][]) {
        const at = `${method} ${path}`;
        need(`${at} summary`, operation.summary);
        need(`${at} description`, operation.description);
        for (const parameter of operation.parameters ?? []) need(`${at} parameter ${parameter.name}`, parameter.description);
        for (const [status, response] of Object.entries(operation.responses as Json)) need(`${at} ${status}`, response.description);
        for (const status of ['401', '422', '429', '500', '503']) if (!operation.responses[status]) missing.push(`${at} lists no ${status}`);
      }
    }
    const walk = (where: string, schema: Json) => {
      for (const [name, property] of Object.entries((schema.properties ?? {}) as Json)) {
        if (!property.$ref) need(`${where}.${name}`, property.description);
      }
    };
    for (const [name, schema] of Object.entries(document.components.schemas as Json)) walk(name, schema);
    expect(missing).toEqual([]);
  });

  it('shows the listing\'s parameters with the seed\'s ranges and default', () => {
    const parameters = Object.fromEntries(document.paths['/api/v1/api-keys'].get.parameters.map((parameter: Json) => [parameter.name, parameter]));
    expect(Object.keys(parameters)).toEqual([
      'after', 'before', 'offset', 'limit', 'principal_id', 'pact_id', 'delegation_id', 'is_revoked',
      'is_active', 'is_expired', 'name_contains', 'scope', 'created_gte', 'created_lt', 'expires_gte', 'expires_lt',
    ]);
    expect(parameters.created_gte.schema).toEqual({ type: 'string', format: 'date-time' });
    expect(parameters.is_active.schema).toEqual({ type: 'boolean' });
    expect(parameters.limit.schema).toEqual({ type: 'integer', minimum: 1, maximum: 200, default: 50 });
    expect(parameters.offset).toMatchObject({ deprecated: true, schema: { type: 'integer', minimum: 0, maximum: 9223372036854775807 } });
    expect(parameters.is_revoked.schema).toEqual({ type: 'boolean' });
    expect(Object.keys(document.components.schemas.ApiKeyRead.properties)).toEqual([
      'id', 'principal_id', 'name', 'key_prefix', 'scopes', 'expires_at', 'last_used_at', 'is_revoked', 'revoked_at', 'created_at', 'updated_at', 'delegation_id', 'pact_id',
    ]);
  });

  it('shows the principal listing with the key listing\'s paging parameters and meta, and its type filter', () => {
    const keys = document.paths['/api/v1/api-keys'].get;
    const principals = document.paths['/api/v1/principals'].get;
    const byName = (operation: Json) => Object.fromEntries(operation.parameters.map((parameter: Json) => [parameter.name, parameter]));
    const [keyParameters, principalParameters] = [byName(keys), byName(principals)];
    expect(Object.keys(principalParameters)).toEqual(['after', 'before', 'offset', 'limit', 'type']);
    for (const name of ['after', 'before', 'offset', 'limit']) expect(principalParameters[name]).toEqual(keyParameters[name]);
    expect(principalParameters.type.schema).toEqual({ type: 'string', enum: ['human', 'agent'] });
    const meta = (operation: Json) => operation.responses['200'].content['application/json'].schema.properties.meta;
    expect(meta(principals)).toEqual({ $ref: '#/components/schemas/PaginationMeta' });
    expect(meta(keys)).toEqual(meta(principals));
    const result = (path: string, method: string) => document.paths[path][method].responses['200'].content['application/json'].schema.properties.result;
    expect(result('/api/v1/principals', 'get')).toEqual({ type: 'array', items: { $ref: '#/components/schemas/PrincipalRead' } });
    expect(result('/api/v1/principals/{id}', 'get')).toEqual({ $ref: '#/components/schemas/PrincipalRead' });
    expect(result('/api/v1/principals/{id}', 'patch')).toEqual({ $ref: '#/components/schemas/PrincipalRead' });
    expect(Object.keys(document.components.schemas.PrincipalRead.properties)).toEqual(['id', 'external_id', 'type', 'name', 'metadata', 'created_at', 'updated_at']);
    expect(Object.keys(document.components.schemas.UpdatePrincipalRequest.properties)).toEqual(['name', 'metadata']);
  });

  it('shows the Idempotency-Key header on creating and rotating keys, and Idempotent-Replayed on their 201', () => {
    for (const path of ['/api/v1/api-keys', '/api/v1/api-keys/{id}/rotate']) {
      const operation = document.paths[path].post;
      expect(operation.parameters.filter((parameter: Json) => parameter.in === 'header')).toEqual([
        { name: 'Idempotency-Key', in: 'header', required: false, description: expect.stringMatching(/24 hours/), schema: { type: 'string', minLength: 1, maxLength: 255 } },
      ]);
      expect(operation.responses['201'].headers['Idempotent-Replayed']).toMatchObject({ schema: { type: 'string', const: 'true' } });
      expect(operation.responses['409'].description).toMatch(/Idempotency-Key/);
      expect(operation.responses['422'].description).toMatch(/Idempotency-Key/);
    }
    const rotate = document.paths['/api/v1/api-keys/{id}/rotate'].post;
    expect(rotate.parameters.map((parameter: Json) => `${parameter.in} ${parameter.name}`)).toEqual(['path id', 'header Idempotency-Key']);
    expect(rotate.responses['201'].content['application/json'].schema.properties.result).toEqual({ $ref: '#/components/schemas/RotatedApiKey' });
    expect(Object.keys(document.components.schemas.RotatedApiKey.properties)).toEqual(['api_key', 'raw_key', 'replaced_api_key']);
    expect(document.components.schemas.RotateApiKeyRequest).toMatchObject({
      required: ['grace_period_seconds'],
      properties: { grace_period_seconds: { type: 'integer', minimum: 0, maximum: 604800 } },
      additionalProperties: false,
    });
  });

  it('shows the audit listing with the key listing\'s cursors, limit and meta, its filters, and no offset', () => {
    const byName = (operation: Json) => Object.fromEntries(operation.parameters.map((parameter: Json) => [parameter.name, parameter]));
    const audit = document.paths['/api/v1/audit-events'].get;
    const [keyParameters, auditParameters] = [byName(document.paths['/api/v1/api-keys'].get), byName(audit)];
    expect(Object.keys(auditParameters)).toEqual(['after', 'before', 'limit', 'action', 'actor_type', 'actor_key_id', 'target_type', 'target_id', 'since', 'until']);
    for (const name of ['after', 'before', 'limit']) expect(auditParameters[name]).toEqual(keyParameters[name]);
    expect(auditParameters.actor_type.schema).toEqual({ type: 'string', enum: ['service', 'key', 'operator'] });
    expect(auditParameters.since.schema).toEqual({ type: 'string', format: 'date-time' });
    const ok = audit.responses['200'];
    expect(ok.content['application/json'].schema.properties).toMatchObject({
      result: { type: 'array', items: { $ref: '#/components/schemas/AuditEventRead' } },
      meta: { $ref: '#/components/schemas/PaginationMeta' },
    });
    expect(ok.headers.Deprecation).toBeUndefined();
    expect(Object.keys(document.components.schemas.AuditEventRead.properties)).toEqual([
      'id', 'occurred_at', 'action', 'actor_type', 'actor_key_id', 'target_type', 'target_id', 'principal_id', 'pact_id', 'details',
    ]);
  });

  it('takes either credential on key routes and on a principal\'s own, and only the service key on listing and creating principals', () => {
    expect(document.paths['/api/v1/api-keys'].get.security).toEqual([{ ApiKey: [] }, { ServiceKey: [] }]);
    expect(document.paths['/api/v1/principals'].post.security).toEqual([{ ServiceKey: [] }]);
    expect(document.paths['/api/v1/principals'].get.security).toEqual([{ ServiceKey: [] }]);
    expect(document.paths['/api/v1/principals/{id}'].patch.security).toEqual([{ ApiKey: [] }, { ServiceKey: [] }]);
    expect(document.components.securitySchemes.ApiKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
  });
});

describe('the headers /openapi.json documents', () => {
  let app: TestApp;

  // One request per 10 s window: the second is a 429.
  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_PER_MINUTE: '6' });
  });
  afterAll(() => app.close());

  const documented = (path: string, method: string, status: number) =>
    Object.keys((app.openapi as Json).paths[path][method].responses[String(status)].headers).map((name) => name.toLowerCase());

  it('lists every header of the pipeline\'s that an answer carries, 2xx and 429 alike', async () => {
    const seen: string[] = [];
    for (const expected of [200, 429]) {
      const answer = await fetch(`${app.base}/api/v1/principals?offset=0`, { headers: asService });
      expect(answer.status).toBe(expected);
      const names = ['x-request-id', 'ratelimit-policy', 'ratelimit', 'retry-after', 'deprecation'].filter((name) => answer.headers.has(name));
      expect(documented('/api/v1/principals', 'get', expected)).toEqual(expect.arrayContaining(names));
      seen.push(...names);
    }
    expect(new Set(seen)).toEqual(new Set(['x-request-id', 'ratelimit-policy', 'ratelimit', 'retry-after', 'deprecation']));
    for (const [path, methods] of Object.entries(app.openapi.paths)) {
      for (const [method, operation] of Object.entries(methods as Json)) {
        for (const status of Object.keys(operation.responses)) {
          expect(documented(path, method, Number(status))).toEqual(expect.arrayContaining(['x-request-id', 'ratelimit-policy', 'ratelimit']));
        }
        expect(documented(path, method, 429)).toContain('retry-after');
      }
    }
    expect(app.openapi.components.headers).toMatchObject({ 'RateLimit-Policy': { description: expect.stringContaining('draft-ietf-httpapi-ratelimit-headers') } });
  });
});

describe('the check every test server runs on REST answers', () => {
  let app: TestApp;
  let check: ReturnType<typeof answerCheck>;

  beforeAll(async () => {
    app = await createTestApp();
    check = answerCheck(app.openapi);
  });
  afterAll(() => app.close());

  it('passes the answers the gateway gives', async () => {
    const principal = await insertPrincipal(app.db);
    const { rawKey } = await insertKey(app.db, principal, { scopes: ['*'] });
    const page = await fetch(`${app.base}/api/v1/api-keys?limit=1`, { headers: asKey(rawKey) });
    expect(check('GET', '/api/v1/api-keys?limit=1', page.status, await page.text())).toBeUndefined();
    const created = await app.rest('/api/v1/api-keys', asService, { method: 'POST', body: JSON.stringify({ name: 'x', principal_id: principal }) });
    expect(check('POST', '/api/v1/api-keys', created.status, JSON.stringify(created.body))).toBeUndefined();
  });

  it('fails an answer with a field the document does not have, or without one it requires', () => {
    const page = { result: [], success: true, suggestion: '', message: '', meta: { total: 0, offset: null, limit: null, has_more: false, after: null, before: null } };
    expect(check('GET', '/api/v1/api-keys', 200, JSON.stringify(page))).toBeUndefined();
    expect(check('GET', '/api/v1/api-keys', 200, JSON.stringify({ ...page, extra: 1 }))).toMatch(/does not describe: .*additional properties/);
    const { has_more: _dropped, ...meta } = page.meta;
    expect(check('GET', '/api/v1/api-keys', 200, JSON.stringify({ ...page, meta }))).toMatch(/has_more/);
    expect(check('GET', '/api/v1/api-keys/x', 404, JSON.stringify({ success: false, error: 'x' }))).toMatch(/suggestion/);
  });

  it('fails a status the document does not list, and an answer on a route it does not describe', () => {
    const error = JSON.stringify({ success: false, error: 'x', suggestion: 'y' });
    expect(check('GET', '/api/v1/api-keys', 409, error)).toMatch(/a status \/openapi.json does not list for GET \/api\/v1\/api-keys/);
    expect(check('GET', '/api/v1/webhooks', 200, '{}')).toMatch(/on a route \/openapi.json does not describe/);
    expect(check('GET', '/api/v1/nothing', 404, error)).toBeUndefined();
    expect(check('PUT', '/api/v1/api-keys', 405, error)).toBeUndefined();
  });
});
