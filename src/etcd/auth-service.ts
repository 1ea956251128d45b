// etcd's Auth.Authenticate over raftkv's --auth-file: the user name is a principal's name and the
// password is its token, so `etcdctl --user NAME:TOKEN` and clients configured with a user and
// password work; the token they are given back is that same token, which every later call
// carries as `token` metadata (context.ts). Users and roles are managed in the auth file, not over
// the API: the other Auth RPCs are not served (UNIMPLEMENTED).
import { status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { EtcdError, toServiceError } from './errors.js';

const AUTH_FAILED = 'etcdserver: authentication failed, invalid user ID or password';

export function authService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    Authenticate: (call: ServerUnaryCall<{ name: string; password: string }, { header: ResponseHeader; token: string }>, callback: sendUnaryData<{ header: ResponseHeader; token: string }>) => {
      try {
        const auth = ctx.parts.auth;
        if (auth === undefined) throw new EtcdError(status.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled');
        const { name, password } = call.request;
        if (typeof name !== 'string' || name === '') throw new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
        const principal = typeof password === 'string' ? auth.authenticate(password) : null;
        if (principal === null || principal.name !== name) throw new EtcdError(status.INVALID_ARGUMENT, AUTH_FAILED);
        callback(null, { header: ctx.header(), token: password });
      } catch (err) {
        callback(toServiceError(err));
      }
    },
  };
}
