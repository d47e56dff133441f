import { builder } from './builder.js';
import '../principals/principal.graphql.js';
import '../api-keys/api-key.graphql.js';
import '../auth/viewer.graphql.js';

/** The one schema both the server and `npm run print-schema` use. */
export const schema = builder.toSchema({ sortSchema: false });
