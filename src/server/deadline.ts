// A promise bounded by a request's deadline (an epoch ms): what the HTTP API and the etcd API wait
// on (a proposal, an apply) ends with the caller's own error when the deadline passes first. The
// timer is cleared either way, so a settled wait leaves nothing behind.
export function withDeadline<T>(p: Promise<T>, deadline: number, timedOut: () => Error): Promise<T> {
  const ms = deadline - Date.now();
  if (ms <= 0) return Promise.reject(timedOut());
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timedOut()), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
