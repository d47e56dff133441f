import { z } from 'zod';
import { envelope, envelopeSchema } from '../http/envelope.js';
import { operation, type RouteTable } from '../http/rest.js';
import { timestampField, uuidField } from '../http/schema-fields.js';
import { nameField } from '../input/name.js';
import { createPrincipal, requirePrincipalWriter, type Principal } from './principal.service.js';

/** A principal as REST shows it. */
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

/** The upstream's `PrincipalRead`, as answers carry it. */
export const principalReadShape = {
  id: uuidField('The principal\'s id.'),
  external_id: z.string().meta({ description: 'The caller\'s own id for it, unique.' }),
  type: z.enum(['human', 'agent']).meta({ description: '`human` for a person, `agent` for software acting for one.' }),
  name: z.string().meta({ description: 'Its display name.' }),
  metadata: z.looseObject({}).meta({ description: 'A JSON object of the caller\'s own.' }),
  created_at: timestampField('When it was created.'),
  updated_at: timestampField('When it last changed.'),
};

const createBody = z.strictObject({
  external_id: z.string().meta({ minLength: 1, maxLength: 255, description: 'Your own system\'s id for the principal: creating it again with the same one answers the existing principal.' }),
  type: z.string().meta({ enum: ['human', 'agent'], description: '`human` for a person, `agent` for software acting for one.' }),
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

export const principalRoutes: RouteTable = {
  '/api/v1/principals': { POST: createPrincipalOperation },
};
