// The one wrapper every unary etcd handler runs in: authenticates the call (context.ts), computes
// its deadline, and answers any error as etcd's status (errors.ts). Nothing a handler throws
// escapes as an unhandled rejection, and nothing crashes the node.
import type { sendUnaryData, ServerUnaryCall, UntypedHandleCall } from '@grpc/grpc-js';
import type { Principal } from '../server/auth.js';
import type { EtcdContext } from './context.js';
import { toServiceError } from './errors.js';

export interface CallInfo {
  readonly principal: Principal | null;
  readonly deadline: number;
}

/** A unary handler: the request (as the loader decoded it) and the call's principal and deadline. */
export function unary<Req, Res>(ctx: EtcdContext, handle: (request: Req, call: CallInfo) => Promise<Res> | Res): UntypedHandleCall {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    let info: CallInfo;
    try {
      info = { principal: ctx.principal(call.metadata), deadline: ctx.deadline(call.getDeadline()) };
    } catch (err) {
      callback(toServiceError(err));
      return;
    }
    let answer: Promise<Res>;
    try {
      answer = Promise.resolve(handle(call.request, info));
    } catch (err) {
      callback(toServiceError(err));
      return;
    }
    answer.then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err)),
    );
  };
}
