# syntax=docker/dockerfile:1
# tokenwatch: multi-stage build on Node 22 LTS (slim), running as a non-root user.

FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 >= 13 ships its N-API binaries (glibc and musl, x64 and arm64) inside the npm
# package: no compiler and no download at install time. --ignore-scripts: npm infers a
# `node-gyp rebuild` from its binding.gyp, and the npm this image bundles may predate
# package.json's allowScripts (npm >= 11.16) that skips it; nothing here needs an install script.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --ignore-scripts

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    TOKENWATCH_HOST=0.0.0.0 \
    TOKENWATCH_AUDIT_PATH=/var/lib/tokenwatch/tokenwatch.db
WORKDIR /app
# Fixed ids: Kubernetes checks runAsNonRoot against a numeric user (deploy/kubernetes/).
RUN groupadd --system --gid 10001 tokenwatch \
 && useradd --system --uid 10001 --gid tokenwatch --home-dir /var/lib/tokenwatch --shell /usr/sbin/nologin tokenwatch \
 && mkdir -p /var/lib/tokenwatch \
 && chown tokenwatch:tokenwatch /var/lib/tokenwatch
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
USER 10001:10001
VOLUME ["/var/lib/tokenwatch"]
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TOKENWATCH_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
