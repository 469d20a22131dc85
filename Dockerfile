# syntax=docker/dockerfile:1
#
# The zklockd image: a static zklockd, healthprobe for the Helm chart's exec
# probes (charts/zklock), and the zklock CLI (for `kubectl exec`, and for an
# app image to copy: COPY --from=REGISTRY/zklockd:VERSION
# /usr/local/bin/zklock /usr/local/bin/zklock), on distroless static, run as
# a numeric non-root user.
#
#   docker build --build-arg VERSION=0.1.0 -t REGISTRY/zklockd:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 -t REGISTRY/zklockd:0.1.0 --push .
#
# scripts/check-chart.sh (make chart, make test) runs this file's go build
# commands in a copy of the build context that .dockerignore leaves, and
# checks that the binaries are static and that zklockd and zklock report
# VERSION.

ARG GO_VERSION=1.26.8

# The build runs on the builder's platform and cross-compiles (no cgo).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ENV GOTOOLCHAIN=local
WORKDIR /src
# The modules' requirements first (a layer that changes only with them):
# go.work joins the main module, api/ and clients/go (scripts/check-chart.sh
# checks that every module go.work uses is copied here).
COPY go.mod go.sum go.work go.work.sum ./
COPY api/go.mod api/go.sum ./api/
COPY clients/go/go.mod clients/go/go.sum ./clients/go/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/zklockd ./cmd/zklockd
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w" -o /out/healthprobe ./tools/healthprobe
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/zklock ./cmd/zklock

# distroless static: CA certificates, tzdata and /etc/passwd, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="zklockd" \
	org.opencontainers.image.description="zklock sidecar: fair, fenced ZooKeeper locks over gRPC" \
	org.opencontainers.image.source="https://github.com/zklock/zklock" \
	org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/zklockd /out/healthprobe /out/zklock /usr/local/bin/
# 65532 is distroless's "nonroot"; numeric, so that runAsNonRoot can check it.
USER 65532:65532
EXPOSE 7878
ENTRYPOINT ["/usr/local/bin/zklockd"]
