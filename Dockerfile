# syntax=docker/dockerfile:1
#
# CPU image. Build:  docker build -t sk-tuning-server .
# Run:               docker run -p 8080:8080 -e SKT_ADMIN_TOKEN=... -v skt-adapters:/app/adapters sk-tuning-server
# GPU variant:       Dockerfile.gpu (WebGPU over Vulkan, SKT_DEVICE=webgpu).

ARG NODE_IMAGE=node:20-slim

# ---- build: install everything, type-check, build the backbone into models/, compile to dist/ -----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV CI=true
# .npmrc carries onnxruntime-node-install=skip: the CPU runtime ships inside the npm package.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY . .
# adapters/ may be empty (and so absent from a git checkout); the runtime stage copies it.
# `build` type-checks and builds the backbone; `build:js` compiles src/ to dist/ (tsconfig.build.json).
RUN mkdir -p adapters models && npm run build && npm run build:js

# ---- production dependencies only ----------------------------------------------------------------
# No dev dependencies (tsc, vitest, eslint…) and no optional ones: the optional `webgpu` package
# (Dawn's Node binding, 130 MB) only names WebGPU adapters and the CPU image has no Vulkan (the
# server runs without it: the adapter name is then null); the other optional packages are esbuild's
# binaries for tsx, which the compiled server does not use.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV CI=true
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# ---- runtime: compiled JavaScript + production node_modules + the built backbone ----------------
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    SKT_MODELS_DIR=/app/models \
    SKT_ADAPTERS_DIR=/app/adapters \
    SKT_DEVICE=cpu
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/package.json ./
COPY --from=build /app/dist ./dist
COPY --from=build /app/models ./models
# Adapters are written at run time (uploads), so the non-root user must own that folder.
COPY --from=build --chown=node:node /app/adapters ./adapters
USER node
EXPOSE 8080
# No curl in slim images: probe with node itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 (not npm) so SIGTERM reaches the server's graceful-shutdown handler directly.
# Same as `npm run start:js` (test/deploy/compiled-start.test.ts runs this command).
CMD ["node", "dist/src/cli.js", "serve"]
