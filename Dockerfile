# raftkv's container image: one `raftkv serve` per container (docs/deploy.md).
#
# Stage 1 compiles the sources and packs the npm tarball, as `npm publish` would ship it. Stage 2
# installs that tarball alone, without dev dependencies, on a clean node:20-slim, and runs it as
# an unprivileged user: what runs in production is exactly the published package.
#
#   docker build -t raftkv:dev .
#   docker run --rm -p 2379:2379 -p 2380:2380 -v raftkv-data:/var/lib/raftkv raftkv:dev serve \
#     --id n1 --listen-client-urls http://0.0.0.0:2379 --listen-peer-urls http://0.0.0.0:2380 \
#     --advertise-client-urls http://HOST:2379 --initial-advertise-peer-urls http://HOST:2380 \
#     --initial-cluster n1=HOST:2380

FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# npm pack runs prepack, which builds (tsc and the browser bundle) and lints.
RUN mkdir /pkg && npm pack --pack-destination /pkg && mv /pkg/raftkv-*.tgz /pkg/raftkv.tgz

FROM node:20-slim AS runtime
ENV NODE_ENV=production
COPY --from=build /pkg/raftkv.tgz /tmp/raftkv.tgz
# The packed tarball, its runtime dependencies only; no sources, no dev dependencies, no cache.
RUN npm install --global --omit=dev --no-audit --no-fund /tmp/raftkv.tgz \
 && rm /tmp/raftkv.tgz \
 && npm cache clean --force \
 && groupadd --system --gid 10001 raftkv \
 && useradd --system --uid 10001 --gid raftkv --home-dir /var/lib/raftkv --shell /usr/sbin/nologin raftkv \
 && mkdir -p /var/lib/raftkv \
 && chown raftkv:raftkv /var/lib/raftkv \
 && chmod 0700 /var/lib/raftkv
USER 10001:10001
WORKDIR /var/lib/raftkv
ENV RAFTKV_DATA_DIR=/var/lib/raftkv/data
# glibc's malloc on transparent huge pages, as raftkv's own launchers start members
# (src/cli/member-env.ts): a restart reads the snapshot and WAL into large buffers, and page
# faults per 4 KiB page were most of its time on a VM. Set GLIBC_TUNABLES=glibc.malloc.hugetlb=0
# at `docker run` to turn it off.
ENV GLIBC_TUNABLES=glibc.malloc.hugetlb=1
VOLUME ["/var/lib/raftkv"]
# Client port, peer port (etcd's numbers; any may be used).
EXPOSE 2379 2380
# Liveness only (/livez: the process serves). RAFTKV_HEALTH_URL points it elsewhere, https too;
# the certificate is not checked here, since this probe learns nothing secret and sends nothing.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const u=new URL(process.env.RAFTKV_HEALTH_URL||'http://127.0.0.1:2379/livez');require(u.protocol==='https:'?'node:https':'node:http').get(u,{rejectUnauthorized:false,timeout:2000},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
ENTRYPOINT ["raftkv"]
CMD ["--help"]
