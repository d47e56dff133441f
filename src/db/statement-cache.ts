import type { Compilable, CompiledQuery } from 'kysely';

/** Where a value goes in a statement compiled once per shape. */
class Slot {
  constructor(readonly name: string) {}
}

/**
 * Statements compiled once per shape. A statement's text depends only on its shape (which
 * filters, which cursors); building and compiling it with Kysely costs tens of microseconds a
 * request. So each shape is built once with a slot where each value goes, and a request binds
 * its own values to the compiled text. Whatever changes the text must be in the shape.
 *
 * @example
 * const statement = cache.bind('by principal', { principal: id, limit: 50 }, (slot) =>
 *   db.selectFrom('api_keys').selectAll().where('principal_id', '=', slot('principal')).limit(slot('limit')));
 * await db.executeQuery(statement);
 */
export class StatementCache<Values extends Record<string, unknown>> {
  readonly #compiled = new Map<string, CompiledQuery>();

  /** At most this many shapes are kept; past it the cache starts over rather than grow. */
  constructor(private readonly maxShapes = 1000) {}

  bind<Row>(
    shape: string,
    values: Values,
    build: (slot: <K extends keyof Values & string>(name: K) => Values[K]) => Compilable<Row>,
  ): CompiledQuery<Row> {
    let compiled = this.#compiled.get(shape);
    if (!compiled) {
      compiled = build((name) => new Slot(name) as never).compile();
      if (this.#compiled.size >= this.maxShapes) this.#compiled.clear();
      this.#compiled.set(shape, compiled);
    }
    const parameters = compiled.parameters.map((value) => (value instanceof Slot ? values[value.name] : value));
    return { ...compiled, parameters } as CompiledQuery<Row>;
  }
}
