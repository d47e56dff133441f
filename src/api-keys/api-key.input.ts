import { badInput } from '../errors.js';
import { parseInstant, type Instant } from '../instant.js';
import { MAX_NAME_LENGTH, validateName, type FieldNames } from '../input/name.js';
import { requireStorableString } from '../input/storable.js';
import { requireUuid } from '../uuid.js';
import type { KeyScope, TimeRange } from './api-key.repository.js';

/** What a caller asks for when creating a key; absent and null mean the same. */
export interface CreateApiKeyRequest {
  name: string;
  scopes?: readonly string[] | null;
  expiresAt?: string | null;
  principalId?: string | null;
  pactId?: string | null;
  delegationId?: string | null;
}

/** A create request whose every value is well-formed; whether the caller may ask for it is checked later. */
export interface NewApiKeyInput {
  name: string;
  scopes: string[] | undefined;
  expiresAt: Instant | undefined;
  principalId: string | undefined;
  pactId: string | undefined;
  delegationId: string | undefined;
}

export const MAX_SCOPES = 50;

export const scopePattern = /^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/;

export type ApiKeyField = 'name' | 'scopes' | 'expires_at' | 'principal_id' | 'pact_id' | 'delegation_id';

const restNames = <Field extends string>(field: Field) => field;

/** Checks the shape of every value: name length, scope syntax, a zoned future `expires_at`, uuids. */
export function validateNewApiKey(request: CreateApiKeyRequest, now = Date.now(), nameOf: FieldNames<ApiKeyField> = restNames): NewApiKeyInput {
  return {
    name: validateName(request.name, nameOf('name')),
    scopes: request.scopes == null ? undefined : validateScopes(request.scopes, nameOf('scopes')),
    expiresAt: request.expiresAt == null ? undefined : validateExpiresAt(request.expiresAt, now, nameOf('expires_at')),
    principalId: optionalUuid(request.principalId, nameOf('principal_id')),
    pactId: optionalUuid(request.pactId, nameOf('pact_id')),
    delegationId: optionalUuid(request.delegationId, nameOf('delegation_id')),
  };
}

function validateScopes(scopes: readonly string[], field: string): string[] {
  if (scopes.length > MAX_SCOPES) {
    throw badInput(`${field} may hold at most ${MAX_SCOPES} entries, got ${scopes.length}`, 'Grant fewer scopes, or "*" for all of them.');
  }
  for (const [index, scope] of scopes.entries()) {
    requireStorableString(scope, `${field}[${index}]`);
    if (scope !== '*' && !scopePattern.test(scope)) {
      throw badInput(`${field}: scope "${scope.slice(0, 60)}" is not of the form resource:action`, 'Use scopes such as "api_keys:read" and "api_keys:write", or "*" for all.');
    }
  }
  return [...new Set(scopes)];
}

function requireInstant(value: string, field: string): Instant {
  const instant = parseInstant(value);
  if (!instant) {
    throw badInput(`${field} must be an ISO 8601 date-time with a zone, got "${value.slice(0, 40)}"`, 'Pass a date-time such as "2027-01-01T00:00:00Z" (a time without Z or an offset is refused as ambiguous).');
  }
  return instant;
}

function validateExpiresAt(value: string, now: number, field: string): Instant {
  const instant = requireInstant(value, field);
  if (instant.epochMicros <= BigInt(now) * 1000n) {
    throw badInput(`${field} must be in the future, got ${instant.utc}`, `Pass a later date-time, or leave ${field} out.`);
  }
  return instant;
}

function optionalUuid(value: string | null | undefined, field: string): string | undefined {
  return value == null ? undefined : requireUuid(value, field);
}

/** A listing's filter fields, by their REST names. */
export type KeyFilterField = 'name_contains' | 'scope' | 'created_gte' | 'created_lt' | 'expires_gte' | 'expires_lt';

/**
 * Checks the filter values that no type has checked on the way in: a `nameContains` and a
 * `hasScope` of 1..255 storable characters, and range bounds that are zoned ISO 8601 date-times
 * (made RFC 3339 UTC here).
 */
export function validateKeyFilter(filter: KeyScope, nameOf: FieldNames<KeyFilterField> = restNames): KeyScope {
  const text = (value: string | undefined, field: string) => {
    if (value === undefined) return undefined;
    requireStorableString(value, field);
    const length = [...value].length;
    if (length < 1 || length > MAX_NAME_LENGTH) {
      throw badInput(`${field} must be 1 to ${MAX_NAME_LENGTH} characters, got ${length}`, `Pass a shorter ${field}, or leave it out.`);
    }
    return value;
  };
  const instant = (value: string | undefined, field: string) => (value === undefined ? undefined : requireInstant(value, field).utc);
  const range = (given: TimeRange | undefined, gte: KeyFilterField, lt: KeyFilterField) =>
    given && { gte: instant(given.gte, nameOf(gte)), lt: instant(given.lt, nameOf(lt)) };
  return {
    ...filter,
    nameContains: text(filter.nameContains, nameOf('name_contains')),
    hasScope: text(filter.hasScope, nameOf('scope')),
    createdAt: range(filter.createdAt, 'created_gte', 'created_lt'),
    expiresAt: range(filter.expiresAt, 'expires_gte', 'expires_lt'),
  };
}
