# pgfence container image: build the TypeScript, then run on a slim Node runtime as a non-root user.
# Untested here (no Docker engine on the build machines); it uses only standard instructions.
#
#   docker build -t pgfence .
#   docker run -p 6432:6432 -p 9432:9432 \
#     -v "$PWD/pgfence.yaml:/etc/pgfence/pgfence.yaml:ro" \
#     -e PGFENCE_JWT_SECRET -e PGFENCE_BACKEND_PASSWORD pgfence
#
# The configuration is mounted as a file; secrets come from the environment (${VAR} in the YAML).
# Set admin.enabled: true and admin.host: 0.0.0.0 in it for the HEALTHCHECK and /metrics.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
COPY --chown=node:node config/pgfence.example.yaml ./config/pgfence.example.yaml
USER node
EXPOSE 6432 9432
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PGFENCE_ADMIN_PORT || 9432) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--config", "/etc/pgfence/pgfence.yaml"]
