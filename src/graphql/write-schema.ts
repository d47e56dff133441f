import { writeFileSync } from 'node:fs';
import { printedSchema } from './print-schema.js';

writeFileSync(new URL('../../schema.graphql', import.meta.url), printedSchema());
console.log('wrote schema.graphql');
