import { envelope, type RestAnswer } from '../http/envelope.js';
import { readJsonObject, requiredString } from '../http/json-body.js';
import type { RestRequest, RouteTable } from '../http/rest.js';
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

const createFields = ['external_id', 'type', 'name', 'metadata'] as const;

/** `POST /api/v1/principals`: 201 when created, 200 with the existing principal for a known `external_id`. */
async function createPrincipalRoute({ db, viewer, body: text }: RestRequest): Promise<RestAnswer> {
  requirePrincipalWriter(viewer);
  const body = readJsonObject(text, createFields);
  const { principal, created } = await createPrincipal(db, viewer, {
    externalId: requiredString(body, 'external_id'),
    type: requiredString(body, 'type'),
    name: requiredString(body, 'name'),
    metadata: body.metadata,
  });
  return envelope({ created, ...toPrincipalRead(principal) }, null, { status: created ? 201 : 200 });
}

export const principalRoutes: RouteTable = {
  '/api/v1/principals': { POST: createPrincipalRoute },
};
