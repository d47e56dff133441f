import { AppError } from '../errors.js';

export type Scope = 'api_keys:read' | 'api_keys:write' | 'principals:write';

/** Who is calling: the assistant service, or one principal's API key. */
export type Viewer =
  | {
      readonly kind: 'service';
      readonly scopes: readonly string[];
      /** Set for an operator at the command line: the service's powers, audited as 'operator'. */
      readonly operator?: true;
    }
  | {
      readonly kind: 'key';
      readonly keyId: string;
      readonly principalId: string;
      /** A pact-bound key sees only its principal's keys of the same pact. */
      readonly pactId: string | null;
      readonly scopes: readonly string[];
      /** Milliseconds since the epoch, or null for a key that does not expire. */
      readonly expiresAt: number | null;
    };

export const serviceViewer: Viewer = Object.freeze({ kind: 'service', scopes: Object.freeze(['*']) });

export const operatorViewer: Viewer = Object.freeze({ kind: 'service', scopes: Object.freeze(['*']), operator: true });

/** Whether the viewer holds `scope`; the service and `*` hold every scope. */
export const hasScope = (viewer: Viewer, scope: Scope): boolean =>
  viewer.kind === 'service' || viewer.scopes.includes('*') || viewer.scopes.includes(scope);

/** Throws 403 unless the viewer holds `scope`. `api_keys:write` does not imply `api_keys:read`. */
export function requireScope(viewer: Viewer, scope: Scope): void {
  if (!hasScope(viewer, scope)) {
    throw new AppError('FORBIDDEN', `this API key lacks the ${scope} scope`, `Use a key that has the ${scope} (or *) scope.`);
  }
}
