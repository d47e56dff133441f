import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

const primary = 'postgres://gateway@db.internal:6432/keys';

describe('the database variables', () => {
  it('need nothing new: direct URL defaults to DATABASE_URL, no replica, prepared statements decided per connection', () => {
    expect(loadConfig({})).toMatchObject({ databaseUrl: undefined, databaseDirectUrl: undefined, databaseReadUrl: undefined, preparedStatements: 'auto' });
    expect(loadConfig({ DATABASE_URL: primary })).toMatchObject({ databaseDirectUrl: primary, databaseReadUrl: undefined, databaseReadMaxLagMs: 1000 });
  });

  it('take a direct URL, a replica and a lag bound beside DATABASE_URL', () => {
    const config = loadConfig({
      DATABASE_URL: primary, DATABASE_DIRECT_URL: 'postgres://gateway@db.internal:5432/keys', DATABASE_READ_URL: 'postgresql://gateway@replica:5432/keys',
      DATABASE_READ_MAX_LAG_MS: '250', DATABASE_PREPARED_STATEMENTS: 'off',
    });
    expect(config).toMatchObject({
      databaseDirectUrl: 'postgres://gateway@db.internal:5432/keys', databaseReadUrl: 'postgresql://gateway@replica:5432/keys', databaseReadMaxLagMs: 250, preparedStatements: 'off',
    });
  });

  it('refuse what cannot work, naming the variable', () => {
    expect(() => loadConfig({ DATABASE_READ_URL: primary })).toThrow('DATABASE_READ_URL needs DATABASE_URL, the primary it goes with');
    expect(() => loadConfig({ DATABASE_URL: primary, DATABASE_DIRECT_URL: 'mysql://x' })).toThrow('DATABASE_DIRECT_URL must start with postgres://');
    expect(() => loadConfig({ DATABASE_URL: primary, DATABASE_PREPARED_STATEMENTS: 'yes' })).toThrow('DATABASE_PREPARED_STATEMENTS must be one of auto, on, off, got "yes"');
    expect(() => loadConfig({ DATABASE_URL: primary, DATABASE_READ_MAX_LAG_MS: '10' })).toThrow('DATABASE_READ_MAX_LAG_MS must be an integer from 100 to 600000, got "10"');
  });
});
