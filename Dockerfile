# pgfence container image: build the TypeScript, then run on a slim Node runtime as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config/pgfence.example.yaml ./config/pgfence.example.yaml
USER node
EXPOSE 6432
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve", "--config", "/etc/pgfence/pgfence.yaml"]
