# syntax=docker/dockerfile:1
# One image for both roles: `livepatch-operator controller` (Deployment) and
# `livepatch-operator agent` (DaemonSet). Build with: docker build -t livepatch-operator .

# --- build: compile TypeScript, then keep only production dependencies ---
FROM node:24-bookworm-slim AS build
WORKDIR /app
# The dependency layer stays cached until package*.json change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
COPY agent/ agent/
COPY test/ test/
# The `node` devDependency is a whole Node binary for bare machines; the
# runtime image has its own Node 24, so make sure the prune took it away.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && test ! -e node_modules/node \
 && test ! -e node_modules/.bin/node

# --- runtime ---
FROM node:24-bookworm-slim
# kmod: insmod and rmmod for the agent's sysfs backend.
RUN apt-get update \
 && apt-get install -y --no-install-recommends kmod \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The node image's unprivileged "node" user, by number so that Kubernetes'
# runAsNonRoot can verify it. The chart runs the sysfs agent as root.
USER 1000:1000
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["--help"]
