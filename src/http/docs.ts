import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { AppError } from '../errors.js';
import { envelope } from './envelope.js';
import type { OpenApiDocument } from './openapi.js';

/** An answer of the gateway's own pages, written by the pipeline's `answer`. */
export interface PageAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** The reference page's own files, served from the swagger-ui-dist package as installed: nothing from a CDN. */
const assets: Record<string, { file: string; type: string }> = {
  '/docs/swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'text/javascript; charset=utf-8' },
  '/docs/swagger-ui.css': { file: 'swagger-ui.css', type: 'text/css; charset=utf-8' },
};

// Swagger UI's settings: no validator badge (it would call out to the internet), requests timed.
const startScript = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#docs',
  deepLinking: true,
  displayOperationId: true,
  validatorUrl: null,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
});
`;

const docsPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>keys gateway: REST reference</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/start.js"></script>
</body>
</html>
`;

const landingPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>keys gateway</title>
</head>
<body>
  <h1>keys gateway</h1>
  <ul>
    <li><a href="/graphql">GraphQL</a>: GraphiQL, and the endpoint itself</li>
    <li><a href="/docs">REST reference</a>: every route under /api/v1, with a form to try each one</li>
    <li><a href="/openapi.json">OpenAPI document</a>: the REST API as OpenAPI 3.1</li>
  </ul>
</body>
</html>
`;

// The pages load only the gateway's own files; Swagger UI sets inline styles and shows data: images.
const pageHeaders = (type: string) => ({
  'content-type': type,
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
});

/**
 * The gateway's own pages, which need no credentials: `/` (links to the rest, HTML for a browser,
 * JSON otherwise), `/openapi.json`, and `/docs`, Swagger UI rendering that document.
 * Undefined for any other path.
 */
export function createDocs(document: OpenApiDocument) {
  const documentText = JSON.stringify(document);
  const packageDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const loaded = new Map<string, Promise<Buffer>>();
  // Read on first use, then kept: the bundle is 1.7 MB that a gateway nobody browses never needs.
  const asset = (file: string) => {
    let bytes = loaded.get(file);
    if (!bytes) {
      loaded.set(file, (bytes = readFile(path.join(packageDir, file))));
      bytes.catch(() => loaded.delete(file));
    }
    return bytes;
  };

  return async (method: string, pathname: string, accept: string | null): Promise<PageAnswer | undefined> => {
    const trimmed = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
    const known = trimmed === '/' || trimmed === '/openapi.json' || trimmed === '/docs' || trimmed === '/docs/start.js' || trimmed in assets;
    if (!known) return undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      throw new AppError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${trimmed}`, 'Use GET.', undefined, { allow: 'GET, HEAD' });
    }
    if (trimmed === '/') {
      if (accept?.includes('text/html')) return { status: 200, headers: pageHeaders('text/html; charset=utf-8'), body: landingPage };
      const links = envelope({ graphql: '/graphql', docs: '/docs', openapi: '/openapi.json', rest: '/api/v1' });
      return { status: 200, headers: {}, body: JSON.stringify(links.body) };
    }
    if (trimmed === '/openapi.json') return { status: 200, headers: {}, body: documentText };
    if (trimmed === '/docs') return { status: 200, headers: pageHeaders('text/html; charset=utf-8'), body: docsPage };
    if (trimmed === '/docs/start.js') return { status: 200, headers: pageHeaders('text/javascript; charset=utf-8'), body: startScript };
    const { file, type } = assets[trimmed]!;
    return { status: 200, headers: pageHeaders(type), body: await asset(file) };
  };
}
