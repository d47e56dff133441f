import { readFileSync } from 'node:fs';
import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isIntrospectionType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  type GraphQLSchema,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../../src/graphql/print-schema.js';
import { schema } from '../../src/graphql/schema.js';

/** Every type, field, argument, input field and enum value of the schema's own that has no description. */
function undescribed(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const check = (where: string, description: string | null | undefined) => {
    if (!description?.trim()) missing.push(where);
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (isIntrospectionType(type) || (isScalarType(type) && isSpecifiedScalarType(type))) continue;
    check(type.name, type.description);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        check(`${type.name}.${field.name}`, field.description);
        for (const arg of field.args) check(`${type.name}.${field.name}(${arg.name})`, arg.description);
      }
    }
    if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) check(`${type.name}.${field.name}`, field.description);
    }
    if (isEnumType(type)) {
      for (const value of type.getValues()) check(`${type.name}.${value.name}`, value.description);
    }
  }
  return missing;
}

describe('schema.graphql', () => {
  it('is the schema the code builds (run `npm run print-schema` after changing it)', () => {
    const committed = readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8');
    expect(committed).toBe(printedSchema());
  });

  it('describes every type, field, argument, input field and enum value', () => {
    expect(undescribed(schema)).toEqual([]);
  });

  it('names the specification of each scalar that has one', () => {
    const specifiedBy = (name: string) => (schema.getType(name) as { specifiedByURL?: string }).specifiedByURL;
    expect(specifiedBy('DateTime')).toBe('https://www.rfc-editor.org/rfc/rfc3339');
    expect(specifiedBy('JSON')).toBe('https://www.rfc-editor.org/rfc/rfc8259');
    expect(specifiedBy('UUID')).toBe('https://www.rfc-editor.org/rfc/rfc9562');
    expect(printedSchema()).toContain('scalar DateTime @specifiedBy(url: "https://www.rfc-editor.org/rfc/rfc3339")');
  });
});
