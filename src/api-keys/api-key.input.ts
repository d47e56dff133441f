import { badInput } from '../errors.js';
import { parseInstant, type Instant } from '../instant.js';
import { validateName } from '../input/name.js';
import { requireStorableString } from '../input/storable.js';
import { requireUuid } from '../uuid.js';

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

const scopePattern = /^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/;

/** Checks the shape of every value: name length, scope syntax, a zoned future `expires_at`, uuids. */
export function validateNewApiKey(request: CreateApiKeyRequest, now = Date.now()): NewApiKeyInput {
  return {
    name: validateName(request.name, 'name'),
    scopes: request.scopes == null ? undefined : validateScopes(request.scopes),
    expiresAt: request.expiresAt == null ? undefined : validateExpiresAt(request.expiresAt, now),
    principalId: optionalUuid(request.principalId, 'principal_id'),
    pactId: optionalUuid(request.pactId, 'pact_id'),
    delegationId: optionalUuid(request.delegationId, 'delegation_id'),
  };
}

function validateScopes(scopes: readonly string[]): string[] {
  if (scopes.length > MAX_SCOPES) {
    throw badInput(`scopes may hold at most ${MAX_SCOPES} entries, got ${scopes.length}`, 'Grant fewer scopes, or "*" for all of them.');
  }
  for (const [index, scope] of scopes.entries()) {
    requireStorableString(scope, `scopes[${index}]`);
    if (scope !== '*' && !scopePattern.test(scope)) {
      throw badInput(`scope "${scope.slice(0, 60)}" is not of the form resource:action`, 'Use scopes such as "api_keys:read" and "api_keys:write", or "*" for all.');
    }
  }
  return [...new Set(scopes)];
}

function validateExpiresAt(value: string, now: number): Instant {
  const instant = parseInstant(value);
  if (!instant) {
    throw badInput(`expires_at must be an ISO 8601 date-time with a zone, got "${value.slice(0, 40)}"`, 'Pass a date-time such as "2027-01-01T00:00:00Z" (a time without Z or an offset is refused as ambiguous).');
  }
  if (instant.epochMicros <= BigInt(now) * 1000n) {
    throw badInput(`expires_at must be in the future, got ${instant.utc}`, 'Pass a later date-time, or leave expires_at out.');
  }
  return instant;
}

function optionalUuid(value: string | null | undefined, field: string): string | undefined {
  return value == null ? undefined : requireUuid(value, field);
}
