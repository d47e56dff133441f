import { z } from 'zod';
import { badInput } from '../errors.js';
import { requireStorableString } from './storable.js';

export const MAX_NAME_LENGTH = 255;

/** How the caller spells a field in its messages: REST's own names unless told (the CLI names its flags). */
export type FieldNames<Field extends string> = (field: Field) => string;

/** A display name, of a key or a principal: 1..255 characters, not only spaces, storable as text. */
export function validateName(value: string, field: string): string {
  requireStorableString(value, field);
  const length = [...value].length;
  if (length < 1 || length > MAX_NAME_LENGTH || value.trim() === '') {
    throw badInput(`${field} must be 1 to ${MAX_NAME_LENGTH} characters and not blank, got ${length}`, `Pass a ${field} that says what it is for, e.g. "ci deploy".`);
  }
  return value;
}

/** A name in a REST body: a string, whose length `validateName` checks (the schema shows it). */
export const nameField = (description: string) =>
  z.string().meta({ minLength: 1, maxLength: MAX_NAME_LENGTH, description });
