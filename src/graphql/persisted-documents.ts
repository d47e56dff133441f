import { createHash } from 'node:crypto';
import { GraphQLError, Kind, type DocumentNode, type SelectionSetNode } from 'graphql';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import { LRUCache } from 'lru-cache';

/** A trusted-documents manifest: each operation's id (its hash) → its document text. */
export type Manifest = ReadonlyMap<string, string>;

/** What a request sends, as Yoga's request parsers (or the pipeline's JSON fast path) read it. */
interface Params {
  query?: unknown;
  extensions?: Record<string, unknown> | null;
  [member: string]: unknown;
}

/** How much the store of automatic persisted queries keeps: the least used go first. */
export interface StoreBounds {
  /** The documents' text, estimated as two bytes a character. */
  readonly bytes: number;
  readonly documents: number;
  /** A longer document still runs, but is not kept: its hash alone is answered `PERSISTED_QUERY_NOT_FOUND`. */
  readonly documentBytes: number;
}

export const defaultStoreBounds: StoreBounds = Object.freeze({ bytes: 16 * 1024 * 1024, documents: 10_000, documentBytes: 128 * 1024 });

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * A refusal of the request: its status under `application/graphql-response+json`; under
 * `application/json` the answer is 200 with the error, as for every other GraphQL error here.
 */
function refusal(message: string, code: string, suggestion: string, status: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code, suggestion, http: { status, spec: true } } });
}

const badRequest = (message: string, suggestion: string) => refusal(message, 'BAD_REQUEST', suggestion, 400);

/**
 * The hash of `extensions.persistedQuery` (lower case), undefined when the request names none;
 * a malformed one is refused rather than ignored.
 */
function persistedHashOf(extensions: Params['extensions']): string | undefined {
  const persisted = extensions?.persistedQuery;
  if (persisted === undefined || persisted === null) return undefined;
  const { version, sha256Hash } = persisted as { version?: unknown; sha256Hash?: unknown };
  if (version !== 1) {
    throw badRequest(`extensions.persistedQuery.version ${JSON.stringify(version ?? null)} is not supported`, 'Send version 1, as Apollo\'s PersistedQueryLink does.');
  }
  if (typeof sha256Hash !== 'string' || !/^[0-9a-f]{64}$/i.test(sha256Hash)) {
    throw badRequest('extensions.persistedQuery.sha256Hash must be the 64 hex digits of a SHA-256', 'Send the sha256 of the document\'s UTF-8 text, in hex.');
  }
  return sha256Hash.toLowerCase();
}

/**
 * Persisted operations, one Yoga plugin whose `onParams` runs on every GraphQL request before its
 * document is parsed, so that what it looks up is parsed, limited and cached by admission like any
 * document a client sends:
 * - without a manifest, automatic persisted queries as Apollo's PersistedQueryLink speaks them
 *   (GET or POST): a hash alone runs the document registered under it, or is answered
 *   `PERSISTED_QUERY_NOT_FOUND` (404) so that the client sends it again with the text, which is
 *   checked against the hash (`PERSISTED_QUERY_MISMATCH`) and registered in a store bounded in
 *   bytes and documents;
 * - with a manifest (trusted documents), only the operations listed in it run.
 */
export function usePersistedDocuments(options: { manifest?: Manifest; introspection: boolean; bounds?: StoreBounds }): Plugin {
  return options.manifest ? trustedDocuments(options.manifest, options.introspection) : automaticPersistedQueries(options.bounds ?? defaultStoreBounds);
}

function automaticPersistedQueries(bounds: StoreBounds): Plugin {
  const store = new LRUCache<string, string>({
    max: bounds.documents,
    maxSize: bounds.bytes,
    maxEntrySize: bounds.documentBytes,
    sizeCalculation: (query, hash) => (query.length + hash.length) * 2,
  });
  return {
    onParams({ params, setParams }) {
      const hash = persistedHashOf((params as Params).extensions);
      if (hash === undefined) return;
      if (params.query == null) {
        const query = store.get(hash);
        if (query === undefined) {
          throw refusal('PersistedQueryNotFound', 'PERSISTED_QUERY_NOT_FOUND', 'Send the request again with the query; the gateway keeps it under its hash for next time.', 404);
        }
        return setParams({ ...params, query });
      }
      // Yoga's own check names a query that is not a string.
      if (typeof params.query !== 'string') return;
      if (sha256(params.query) !== hash) {
        throw refusal('the query does not match extensions.persistedQuery.sha256Hash', 'PERSISTED_QUERY_MISMATCH', 'Send the sha256 of the query\'s UTF-8 text, in hex.', 400);
      }
      store.set(hash, params.query);
    },
  };
}

/**
 * Trusted documents: an operation runs when the request names its id (`extensions.persistedQuery.sha256Hash`,
 * `documentId` in the body or query string, with or without a `sha256:` prefix, or Relay's `doc_id`), or
 * sends exactly the text listed. Anything else is refused: an unknown id with
 * `PERSISTED_QUERY_NOT_IN_LIST`, other text with `QUERY_NOT_IN_SAFELIST`, unless `introspection`
 * is on and the document asks for nothing but introspection (`__schema`, `__type`, `__typename`).
 */
function trustedDocuments(manifest: Manifest, introspection: boolean): Plugin {
  const texts = new Set(manifest.values());
  /** Requests let through only for introspection: their document is checked once parsed. */
  const introspectionOnly = new WeakSet<object>();
  const notInSafelist = () =>
    refusal('this gateway runs only the operations of its trusted-documents manifest, and this document is not one of them', 'QUERY_NOT_IN_SAFELIST',
      'Send the operation\'s id (extensions.persistedQuery.sha256Hash or documentId) from the manifest your client was built with.', 400);
  return {
    onParams({ params, request, setParams, context }) {
      const { documentId, doc_id: relayId, ...rest } = params as Params;
      const id = persistedHashOf(rest.extensions) ?? idOf(documentId ?? relayId ?? new URL(request.url, 'http://gateway').searchParams.get('documentId'));
      if (id !== undefined) {
        const listed = manifest.get(id);
        if (listed === undefined) {
          throw refusal(`no operation with the id ${id} is in this gateway's trusted-documents manifest`, 'PERSISTED_QUERY_NOT_IN_LIST',
            'Build the client from the same manifest as the gateway, or add the operation to the manifest and restart the gateway.', 400);
        }
        if (rest.query != null && rest.query !== listed) {
          throw refusal('the query sent is not the document listed under its id', 'PERSISTED_QUERY_MISMATCH', 'Send the id alone.', 400);
        }
        return setParams({ ...rest, query: listed } as GraphQLParams);
      }
      if (typeof rest.query !== 'string' || texts.has(rest.query)) return;
      if (!introspection) throw notInSafelist();
      introspectionOnly.add(context);
    },
    onParse({ context }) {
      if (!introspectionOnly.has(context)) return;
      return ({ result, replaceParseResult }) => {
        if (!(result instanceof Error) && !asksOnlyIntrospection(result as DocumentNode)) replaceParseResult(notInSafelist());
      };
    },
  };
}

/** A `documentId`'s hash, or undefined when none was sent. */
function idOf(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw badRequest('documentId must be a string', 'Send the operation\'s id from the manifest, e.g. "sha256:…".');
  return value.replace(/^sha256:/, '');
}

/** Whether every operation of `document` selects nothing but introspection at its root (fragments followed). */
function asksOnlyIntrospection(document: DocumentNode): boolean {
  const fragments = new Map<string, SelectionSetNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition.selectionSet);
  }
  const seen = new Set<string>();
  const only = (set: SelectionSetNode): boolean =>
    set.selections.every((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value.startsWith('__');
      if (selection.kind === Kind.INLINE_FRAGMENT) return only(selection.selectionSet);
      const name = selection.name.value;
      if (seen.has(name)) return true;
      seen.add(name);
      const fragment = fragments.get(name);
      return fragment !== undefined && only(fragment);
    });
  return document.definitions.every((definition) => definition.kind !== Kind.OPERATION_DEFINITION || only(definition.selectionSet));
}

/**
 * Reads a manifest as the tools write it: graphql-codegen's client preset (`persisted-documents.json`)
 * and relay-compiler (`persisted_queries.json`) write `{id: document}`; Apollo's
 * generate-persisted-query-manifest writes `{format: "apollo-persisted-query-manifest", operations: [{id, body}]}`.
 * Throws an Error naming what is wrong.
 */
export function parseManifest(text: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('must be a JSON object of {id: document}');
  const manifest = new Map<string, string>();
  const add = (id: unknown, document: unknown) => {
    if (typeof id !== 'string' || id === '' || typeof document !== 'string' || document.trim() === '') {
      throw new Error(`holds an entry that is not an id with a document: ${JSON.stringify(id).slice(0, 80)}`);
    }
    manifest.set(id.replace(/^sha256:/, ''), document);
  };
  const apollo = value as { format?: unknown; operations?: unknown };
  if (apollo.format === 'apollo-persisted-query-manifest') {
    if (!Array.isArray(apollo.operations)) throw new Error('is an Apollo manifest without an operations list');
    for (const operation of apollo.operations as { id?: unknown; body?: unknown }[]) add(operation?.id, operation?.body);
  } else {
    for (const [id, document] of Object.entries(value)) add(id, document);
  }
  if (manifest.size === 0) throw new Error('lists no operations');
  return manifest;
}
