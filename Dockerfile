# syntax=docker/dockerfile:1.7
# One image per service: docker build --build-arg SERVICE=gate -t ghcr.io/allot-dev/allot-gate:0.1.0 .
# (or all of them: docker buildx bake). SERVICE is one of gate, credits, metering, governance,
# control-plane, mcp, uplink. The build stage installs the lock file and writes the service's
# self-contained bundle (scripts/bundle.ts); the runtime stage is that directory on distroless
# Node.js: no shell, no package manager, non-root, nothing written to its filesystem.
ARG NODE_IMAGE=node:20.20-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund
ARG SERVICE
RUN test -n "${SERVICE}" && npm run bundle -- "${SERVICE}" --out /out

FROM ${RUNTIME_IMAGE} AS runtime
ARG SERVICE
LABEL org.opencontainers.image.title="allot-${SERVICE}"
WORKDIR /app
COPY --from=build --chown=0:0 --chmod=a=rX /out/${SERVICE} /app
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/nodejs/bin/node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The image's entrypoint is node: `/app` runs the service (package.json main); the other
# processes are named instead: worker.mjs, migrate.mjs.
CMD ["/app"]
