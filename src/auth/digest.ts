import { createHash } from 'node:crypto';

/** sha256 of a secret's UTF-8 bytes: how keys are stored and looked up, and how callers are told apart. */
export const digestOf = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();
