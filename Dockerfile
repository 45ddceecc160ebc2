# The controller image. Build: `make image` (buildah; see hack/image/build.sh), or
#   docker build -t virtfleet .
# Stage 1 builds the TypeScript and the libvirt binding (needs libvirt-dev);
# stage 2 carries only what runs: Node, libvirt0, the built files.
# The bases are build arguments: any Debian 12 with Node.js 20 and apt. Where no registry is
# reachable, hack/image/make-base.sh makes one from Debian packages and the npm registry.
ARG BUILD_BASE=node:20-bookworm
ARG BASE=node:20-bookworm-slim

FROM ${BUILD_BASE} AS build
# Extra CAs for npm's registry requests, for builders behind a TLS-inspecting proxy (make image
# mounts the machine's bundle and sets this); build stage only, so nothing reaches the image.
ARG NODE_EXTRA_CA_CERTS
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvirt-dev pkg-config python3 g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json binding.gyp tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web console's single-page app, built by `npm run build` into dist/web-app.
COPY web ./web
# --ignore-scripts: the binding is built explicitly below, once.
RUN npm install --no-save --no-audit --no-fund --ignore-scripts \
 && npm run build:native \
 && npm run build \
 && npm prune --omit=dev

FROM ${BASE}
# libvirt0 for the binding; openssh-client for qemu+ssh:// and xen+ssh:// hosts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvirt0 openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/Release/virtfleet_libvirt.node ./build/Release/virtfleet_libvirt.node
ENV NODE_ENV=production
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["controller", "--leader-elect"]
