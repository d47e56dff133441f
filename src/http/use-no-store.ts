import type { Plugin } from 'graphql-yoga';

/**
 * `Cache-Control: no-store` on every answer Yoga sends: answers depend on the caller's
 * credentials, a `createApiKey` answer holds a raw key that no cache may keep, and GraphQL is
 * served at more paths than `/graphql` (`/graphql/`, any path ending in `/graphql`).
 */
export function useNoStore(): Plugin {
  return {
    onResponse({ response }) {
      response.headers.set('cache-control', 'no-store');
    },
  };
}
