import { requireScope } from '../auth/viewer.js';
import { envelope, type RestAnswer } from '../http/envelope.js';
import { optionalString, readJsonObject, requiredString } from '../http/json-body.js';
import { listingAnswer, pageParameters, readListPage, readQuery } from '../http/listing.js';
import type { RestRequest, RouteTable } from '../http/rest.js';
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

/** `GET /api/v1/principals` takes the seed's paging parameters and a `type` filter. */
const listParameters = [...pageParameters, 'type'] as const;

/** `GET /api/v1/principals`: the upstream's "List all principals", paged as the key listing is. Service only. */
async function listPrincipalsRoute({ reads, viewer, query }: RestRequest): Promise<RestAnswer> {
  requirePrincipalLister(viewer);
  const params = readQuery(query, listParameters);
  const page = readListPage(params);
  const type = params.type === undefined ? undefined : validatePrincipalType(params.type, 'type');
  const result = await listPrincipals(reads, viewer, page, { type }, true);
  return listingAnswer(result, page, result.items.map(toPrincipalRead));
}

/** `GET /api/v1/principals/{id}`: the service, or a key of that principal. */
async function getPrincipalRoute({ reads, viewer, params }: RestRequest): Promise<RestAnswer> {
  return envelope(toPrincipalRead(await reads.run((db) => getPrincipal(db, viewer, params.id!))));
}

/** `PATCH /api/v1/principals/{id}` takes these fields (the upstream's `PrincipalUpdate` and `metadata`), each optional. */
const updateFields = ['name', 'metadata'] as const;

/** `PATCH /api/v1/principals/{id}`: the service, or a key of that principal with `principals:write`. */
async function updatePrincipalRoute({ db, viewer, params, body: text }: RestRequest): Promise<RestAnswer> {
  requireScope(viewer, 'principals:write');
  const body = readJsonObject(text, updateFields);
  const principal = await updatePrincipal(db, viewer, params.id!, { name: optionalString(body, 'name'), metadata: body.metadata ?? undefined });
  return envelope(toPrincipalRead(principal));
}

export const principalRoutes: RouteTable = {
  '/api/v1/principals': { GET: listPrincipalsRoute, POST: createPrincipalRoute },
  '/api/v1/principals/{id}': { GET: getPrincipalRoute, PATCH: updatePrincipalRoute },
};
