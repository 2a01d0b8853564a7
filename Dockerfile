# syntax=docker/dockerfile:1
# A thin wrapper of `npm run image` (lab/image), the one build of the image:
# the same Debian packages, the project's pinned Node and the product only
# (src/ and agent/, compiled). The build stage runs it on the build machine's
# own platform (it fetches every architecture's packages, nothing is
# emulated) and unpacks the target architecture's result; the image is those
# files and the run config that `npm run image` writes (lab/image/config.ts;
# test/unit/chart.test.ts keeps the two equal, test/integration/image.test.ts
# checks the build context against the image's files).
# Build with: docker build -t livepatch-operator .
#        or:  docker buildx build --platform linux/amd64,linux/arm64 -t … .

FROM --platform=$BUILDPLATFORM node:24-bookworm-slim AS build
# apt's own keyring and gpgv verify the Debian packages the build fetches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates debian-archive-keyring gpgv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependency layer stays cached until package*.json change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# No .git in the build context: the image's creation date comes from here.
ARG SOURCE_DATE_EPOCH=0
# Set by BuildKit (amd64 or arm64); without it, the build machine's architecture.
ARG TARGETARCH
RUN npm run image -- --out /image/livepatch-operator.oci.tar --rootfs /image ${TARGETARCH:+--rootfs-arch $TARGETARCH}

FROM scratch
COPY --from=build /image/root/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV NODE_ENV=production
WORKDIR /app
# The image's unprivileged "livepatch" user, by number so that Kubernetes'
# runAsNonRoot can verify it. The chart runs the sysfs agent as root.
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/src/cli/main.js"]
CMD ["--help"]
