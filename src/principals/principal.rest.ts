import { z } from 'zod';
import { requireScope } from '../auth/viewer.js';
import { envelope, envelopeSchema } from '../http/envelope.js';
import { listingAnswer, listingResponse, pageQuery, pageRefusals, queryPage } from '../http/listing.js';
import { operation, type RouteTable } from '../http/rest.js';
import { orNull, timestampField, uuidField } from '../http/schema-fields.js';
import { nameField } from '../input/name.js';
import { checkedBy } from '../input/request-schema.js';
import {
  createPrincipal, getPrincipal, listPrincipals, requirePrincipalLister, requirePrincipalWriter, updatePrincipal, validatePrincipalType, type Principal,
} from './principal.service.js';

/** A principal as REST shows it: the upstream's `PrincipalRead`. */
export function toPrincipalRead(principal: Principal) {
  return {
    id: principal.id,
    external_id: principal.externalId,
    type: principal.type,
    name: principal.name,
    metadata: principal.metadata,
    created_at: principal.createdAt,
    updated_at: principal.updatedAt,
  };
}

const principalTypes = ['human', 'agent'] as const;
const principalTypeDescription = '`human` for a person, `agent` for software acting for one.';

/** The upstream's `PrincipalRead`, as answers carry it: its fields, for the answers that add one. */
export const principalReadShape = {
  id: uuidField('The principal\'s id.'),
  external_id: z.string().meta({ description: 'The caller\'s own id for it, unique.' }),
  type: z.enum(principalTypes).meta({ description: principalTypeDescription }),
  name: z.string().meta({ description: 'Its display name.' }),
  metadata: z.looseObject({}).meta({ description: 'A JSON object of the caller\'s own.' }),
  created_at: timestampField('When it was created.'),
  updated_at: timestampField('When it last changed.'),
};

const principalReadSchema = z.strictObject(principalReadShape).meta({ id: 'PrincipalRead', description: 'A principal: a person or an agent, whose keys act for it.' });

const createBody = z.strictObject({
  external_id: z.string().meta({ minLength: 1, maxLength: 255, description: 'Your own system\'s id for the principal: creating it again with the same one answers the existing principal.' }),
  type: z.string().meta({ enum: [...principalTypes], description: principalTypeDescription }),
  name: nameField('Its display name.'),
  // Not walked here: `requireStorableJsonObject` bounds its depth and size without recursion.
  metadata: z.looseObject({}).nullish().meta({ description: 'A JSON object of your own, at most 16 KB of JSON and 32 levels deep. Default `{}`.' }),
}).meta({ id: 'CreatePrincipalRequest' });

/** `POST /api/v1/principals`: 201 when created, 200 with the existing principal for a known `external_id`. */
const createPrincipalOperation = operation({
  operationId: 'createPrincipal',
  summary: 'Create a principal',
  description: 'Creates a principal, or answers the one that already has this `external_id`, unchanged, so that creating is safe to retry.',
  tag: 'Principals',
  callers: 'service',
  authorize: requirePrincipalWriter,
  body: createBody,
  responses: {
    201: {
      description: 'Created.',
      schema: envelopeSchema(z.strictObject({ created: z.literal(true).meta({ description: 'True: this request created it.' }), ...principalReadShape }).meta({ id: 'CreatedPrincipal' })),
    },
    200: {
      description: 'A principal with this `external_id` existed already: it is answered unchanged.',
      schema: envelopeSchema(z.strictObject({ created: z.literal(false).meta({ description: 'False: it existed already.' }), ...principalReadShape }).meta({ id: 'ExistingPrincipal' })),
    },
  },
  errors: {
    403: 'A key: only the assistant service creates principals.',
    422: 'A body that is not a JSON object, holds an unknown field or a wrong type, or breaks a rule: `external_id` and `name` 1..255 characters, `type` human or agent, `metadata` a small JSON object; text that cannot be stored (a NUL, a lone surrogate).',
  },
  async handle({ db, viewer, body }) {
    const { principal, created } = await createPrincipal(db, viewer, {
      externalId: body.external_id,
      type: body.type,
      name: body.name,
      metadata: body.metadata,
    });
    return envelope({ created, ...toPrincipalRead(principal) }, null, { status: created ? 201 : 200 });
  },
});

const principalTypeParameter = z.string().transform(checkedBy((value: string) => validatePrincipalType(value, 'type'))).optional()
  .meta({ enum: [...principalTypes], description: `Only principals of this type: ${principalTypeDescription}` });

/** `GET /api/v1/principals`: the upstream's "List all principals", paged as the key listing is. Service only. */
const listPrincipalsOperation = operation({
  operationId: 'listPrincipals',
  summary: 'List principals',
  description: 'Every principal, newest first (`created_at`, then `id`, descending), paged as the key listing is: the `after` / `before` cursors of `meta`, or the deprecated `offset`. The cursors are the same as GraphQL\'s `principals`.',
  tag: 'Principals',
  callers: 'service',
  authorize: requirePrincipalLister,
  query: z.strictObject({ ...pageQuery, type: principalTypeParameter }),
  responses: { 200: listingResponse(principalReadSchema, 'One page of principals, and where it stands in the listing.') },
  errors: {
    403: 'A key, whatever its scopes: only the assistant service lists principals (a key reads its own at GET /api/v1/principals/{id}). Refused before the parameters are read.',
    422: `A parameter out of range or malformed: ${pageRefusals}, a \`type\` other than human or agent; or a listing the database cancelled at its statement timeout.`,
  },
  async handle({ reads, viewer, query: { type, ...paging } }) {
    const page = queryPage(paging);
    const result = await listPrincipals(reads, viewer, page, { type }, true);
    return listingAnswer(result, page, result.items.map(toPrincipalRead));
  },
});

const principalIdParams = z.strictObject({ id: z.string().meta({ format: 'uuid', description: 'The principal\'s id.' }) });

const notVisible = 'No such principal, or one the caller may not see (the same answer: a key sees only its own principal), or an id that is not a uuid.';

/** `GET /api/v1/principals/{id}`: the service, or a key of that principal. */
const getPrincipalOperation = operation({
  operationId: 'getPrincipal',
  summary: 'Get a principal',
  description: 'One principal: the service reads any, a key its own principal, with no scope needed (as GraphQL\'s `viewer { principal }`).',
  tag: 'Principals',
  callers: 'key or service',
  params: principalIdParams,
  responses: { 200: { description: 'The principal.', schema: envelopeSchema(principalReadSchema) } },
  errors: { 404: notVisible },
  handle: async ({ reads, viewer, params }) => envelope(toPrincipalRead(await reads.run((db) => getPrincipal(db, viewer, params.id!)))),
});

const updateBody = z.strictObject({
  name: orNull(nameField('Its new display name.')).optional(),
  // Not walked here: `requireStorableJsonObject` bounds its depth and size without recursion.
  metadata: z.looseObject({}).nullish().meta({ description: 'A JSON object of your own that replaces the current one whole, at most 16 KB of JSON and 32 levels deep.' }),
}).meta({ id: 'UpdatePrincipalRequest', description: 'The upstream\'s `PrincipalUpdate`, and `metadata`. A field left out, or null, is left as it is; an empty object changes nothing.' });

/** `PATCH /api/v1/principals/{id}`: the service, or a key of that principal with `principals:write`. */
const updatePrincipalOperation = operation({
  operationId: 'updatePrincipal',
  summary: 'Update a principal',
  description: 'Sets a principal\'s `name` and, replacing it whole, its `metadata`: the service any principal\'s, a key its own principal\'s when it holds `principals:write` (or `*`). The change and its audit row commit together.',
  tag: 'Principals',
  callers: 'key or service',
  authorize: (viewer) => requireScope(viewer, 'principals:write'),
  params: principalIdParams,
  body: updateBody,
  responses: { 200: { description: 'The principal as it now is.', schema: envelopeSchema(principalReadSchema) } },
  errors: {
    403: 'The key lacks the `principals:write` scope; refused before the body is read.',
    404: notVisible,
    422: 'A body that is not a JSON object, holds a field other than `name` and `metadata` or a wrong type, or breaks a rule: `name` 1..255 characters and not blank, `metadata` a JSON object of at most 16 KB and 32 levels; text that cannot be stored (a NUL, a lone surrogate).',
  },
  async handle({ db, viewer, params, body }) {
    const principal = await updatePrincipal(db, viewer, params.id!, { name: body.name ?? undefined, metadata: body.metadata ?? undefined });
    return envelope(toPrincipalRead(principal));
  },
});

export const principalRoutes: RouteTable = {
  '/api/v1/principals': { GET: listPrincipalsOperation, POST: createPrincipalOperation },
  '/api/v1/principals/{id}': { GET: getPrincipalOperation, PATCH: updatePrincipalOperation },
};
