import type { Plugin } from 'graphql-yoga';

/**
 * `Cache-Control: no-store` on every answer from `endpoint`: GraphQL answers depend on the
 * caller's credentials, and a `createApiKey` answer holds a raw key that no cache may keep.
 */
export function useNoStore(endpoint: string): Plugin {
  return {
    onResponse({ request, response }) {
      if (new URL(request.url).pathname === endpoint) response.headers.set('cache-control', 'no-store');
    },
  };
}
