import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseTextArray } from '../../src/db/create-db.js';

const pgParse = (pg.types.getTypeParser as (oid: number) => (value: string) => unknown)(1009);

describe('text[] as PostgreSQL prints it', () => {
  it.each([
    ['{}', []],
    ['{*}', ['*']],
    ['{api_keys:read,api_keys:write,pacts:read}', ['api_keys:read', 'api_keys:write', 'pacts:read']],
    ['{"",a}', ['', 'a']],
    ['{"a,b",c}', ['a,b', 'c']],
    ['{"say \\"hi\\"","back\\\\slash"}', ['say "hi"', 'back\\slash']],
    ['{NULL,a}', [null, 'a']],
    ['{"NULL",a}', ['NULL', 'a']],
    ['{"with space","{brace}"}', ['with space', '{brace}']],
    ['{{a,b},{c,d}}', [['a', 'b'], ['c', 'd']]],
    ['[0:1]={a,b}', pgParse('[0:1]={a,b}')],
  ])('reads %s', (text, expected) => {
    expect(parseTextArray(text)).toEqual(expected);
    expect(parseTextArray(text)).toEqual(pgParse(text));
  });
});
