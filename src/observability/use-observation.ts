import type { Plugin } from '@envelop/core';
import { getOperationAST, type GraphQLError } from 'graphql';
import { childSpan, endSpan, type RequestRecord } from './request-record.js';
import type { Telemetry } from './telemetry.js';

/** What carries the request's record into GraphQL: the pipeline's exchange, in every context. */
interface Observed {
  exchange?: { record?: RequestRecord };
}

const recordOf = (context: unknown): RequestRecord | undefined => (context as Observed | undefined)?.exchange?.record;

/**
 * GraphQL's part of the request's telemetry, as one envelop plugin placed first: spans for parse,
 * validate and execute under the request's span (and each SQL statement under execute), the
 * operation's type and name for the access line and metrics, admission refusals by reason, and
 * the request each unexpected error arose in. A cached parse or validation is still a (short) span.
 */
export function useObservation(telemetry: Telemetry): Plugin {
  const { tracer, metrics } = telemetry;
  return {
    onParse({ context }) {
      const record = recordOf(context);
      const span = tracer && record?.span && childSpan(tracer, record.span, 'graphql.parse');
      return ({ result }) => {
        if (result instanceof Error) telemetry.refusals([result]);
        if (span) endSpan(span, result instanceof Error ? result : undefined);
      };
    },
    onValidate({ context }) {
      const record = recordOf(context);
      const span = tracer && record?.span && childSpan(tracer, record.span, 'graphql.validate');
      if (!span) return;
      return ({ valid }) => endSpan(span, valid ? undefined : new Error('invalid'));
    },
    onExecute({ args }) {
      const record = recordOf(args.contextValue);
      const operation = getOperationAST(args.document, args.operationName);
      const type = operation?.operation ?? 'unknown';
      const name = operation?.name?.value;
      if (record) {
        record.operationType = type;
        record.operationName = name;
      }
      metrics?.graphqlOperations.inc({ type, name: metrics.operationLabel(name) });
      const span = tracer && record?.span && childSpan(tracer, record.span, 'graphql.execute', {
        'graphql.operation.type': type,
        ...(name !== undefined && { 'graphql.operation.name': name.slice(0, 100) }),
      });
      if (span) record!.parent = span;
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result ? (result.errors as readonly GraphQLError[] | undefined) : undefined;
          if (errors?.length) {
            telemetry.refusals(errors);
            // Before masking: the original error is what the masking logs, and this names its request.
            if (record) for (const error of errors) telemetry.attribute(error.originalError ?? error, record);
          }
          if (span) {
            record!.parent = record!.span;
            endSpan(span, errors?.length ? new Error('errors') : undefined);
          }
        },
      };
    },
  };
}
