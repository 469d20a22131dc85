# zklock's build. `make help` lists the targets.
#
# Tools are pinned and installed into ./bin (never into $GOPATH/bin), which
# is first on PATH for every recipe below. Each is rebuilt only when the
# binary in ./bin was not built from the pinned version.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)

# Pinned tool versions.
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION            := v1.9.4
GRPC_GATEWAY_VERSION       := v2.34.0
HELM_VERSION               := v3.22.0
# The Kubernetes version helm renders and lints for (.Capabilities.KubeVersion):
# go install leaves helm's default at v1.20, so set it, to the k8s.io v0.37
# helm v3.22.0 is built with.
HELM_KUBE_MINOR            := 37

# The well-known protos (duration, timestamp) that Debian's python3-grpc-tools
# ships, for the Python stubs.
PY_PROTO_INCLUDE = $(shell /usr/bin/python3 -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))' 2>/dev/null)

# Generated Go code (buf.gen.yaml writes it with paths=source_relative).
GEN_GO_DIR := api
# The HTTP/JSON gateway's generated code (grpc-gateway, standalone: it
# imports the stubs of api/), in the daemon's module.
GEN_GATEWAY_DIR := internal/gateway

# go test settings; override on the command line, e.g.
#   make test GO_TEST_PKGS=./zkrecipes/... GO_TEST_FLAGS='-run TestLock'
# Every package of the go.work's three modules (the daemon's, api/, clients/go/).
GO_PKGS         := ./... ./api/... ./clients/go/...
GO_TEST_PKGS    ?= $(GO_PKGS)
GO_TEST_TIMEOUT ?= 15m
GO_TEST_FLAGS   ?=

.PHONY: help
help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

## ---- machine and tools -------------------------------------------------

.PHONY: deps
deps: ## install missing system packages (zookeeper, java, protoc) with apt-get
	@scripts/deps.sh

.PHONY: tools gen-tools tool-buf tool-protoc-gen-go tool-protoc-gen-go-grpc tool-protoc-gen-grpc-gateway tool-grpcurl tool-helm
tools: gen-tools tool-grpcurl tool-helm ## install the pinned Go tools into ./bin

# What generate, lint and test need.
gen-tools: tool-buf tool-protoc-gen-go tool-protoc-gen-go-grpc tool-protoc-gen-grpc-gateway

tool-buf:
	@scripts/install-tool.sh buf github.com/bufbuild/buf/cmd/buf $(BUF_VERSION)
tool-protoc-gen-go:
	@scripts/install-tool.sh protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go $(PROTOC_GEN_GO_VERSION)
tool-protoc-gen-go-grpc:
	@scripts/install-tool.sh protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc $(PROTOC_GEN_GO_GRPC_VERSION)
tool-protoc-gen-grpc-gateway:
	@scripts/install-tool.sh protoc-gen-grpc-gateway github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway $(GRPC_GATEWAY_VERSION)
tool-grpcurl:
	@scripts/install-tool.sh grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl $(GRPCURL_VERSION) \
		-ldflags '-X main.version=$(GRPCURL_VERSION)'
# helm (270-280 s to build on 2 cores with cold caches). Its version
# and default Kubernetes version are set at link time; a bin/helm of the
# pinned module version is kept as it is.
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_MINOR) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_MINOR)
tool-helm:
	@scripts/install-tool.sh helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION) -ldflags '$(HELM_LDFLAGS)'

## ---- code generation and checks -----------------------------------------

.PHONY: generate
generate: gen-tools ## regenerate the Go, Python and Java stubs from api/
	find $(GEN_GO_DIR) -name '*.pb.go' -type f -delete
	rm -rf $(GEN_GATEWAY_DIR)
	buf generate
	rm -f clients/python/zklock/v1/lock_pb2*.py
	protoc -I api -I $(PY_PROTO_INCLUDE) --python_out=clients/python api/zklock/v1/lock.proto
	/usr/bin/python3 -m grpc_tools.protoc -I api -I $(PY_PROTO_INCLUDE) --grpc_python_out=clients/python api/zklock/v1/lock.proto
	rm -rf clients/java/gen && mkdir -p clients/java/gen
	protoc -I api -I $(PY_PROTO_INCLUDE) --java_out=clients/java/gen \
		--plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin --grpc-java_out=clients/java/gen api/zklock/v1/lock.proto
	install -D -m 0644 api/zklock/v1/lock.proto clients/node/proto/zklock/v1/lock.proto

# Fails when the checked-in generated code differs from what `make generate`
# writes (it leaves the regenerated files in place).
.PHONY: check-generated
check-generated: gen-tools
	@scripts/check-generated.sh

.PHONY: lint
lint: gen-tools ## buf lint, gofmt and go vet
	buf lint
	@files=$$(gofmt -l .); \
	if [[ -n $$files ]]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$files"; exit 1; fi
	go vet $(GO_PKGS)

## ---- build, test, run -----------------------------------------------------

# The version the binaries report (main.version): git describe, else "dev".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_LDFLAGS := -X main.version=$(VERSION)

.PHONY: build
build: ## build bin/zklockd (and bin/zklock once cmd/zklock exists)
	go build -ldflags '$(GO_LDFLAGS)' -o bin/zklockd ./cmd/zklockd
ifneq ($(wildcard cmd/zklock/*.go),)
	go build -ldflags '$(GO_LDFLAGS)' -o bin/zklock ./cmd/zklock
endif

# scripts/test.sh runs go vet, buf lint, the generated-code check and every
# fuzz target for 3s, then go test -race over GO_TEST_PKGS, and ends with a line
# "N passed, N failed, N skipped" (also written to bin/test-summary.txt).
# The full go test -v output is kept in bin/test.log.
.PHONY: test
test: deps gen-tools tool-helm ## vet, buf lint, generated-code check, fuzz 3s each, chart checks, go test -race
	@GO_TEST_PKGS='$(GO_TEST_PKGS)' GO_TEST_TIMEOUT='$(GO_TEST_TIMEOUT)' GO_TEST_FLAGS='$(GO_TEST_FLAGS)' \
		scripts/test.sh

# scripts/check-chart.sh: helm lint and template of charts/zklock, every
# rendered manifest validated offline (tools/kubecheck), the Dockerfile's
# static build, and zklockd run with the flags the chart renders.
.PHONY: chart
chart: tool-helm ## lint, render and validate the Helm chart; check the Dockerfile's build
	@scripts/check-chart.sh

# BENCH_COUNT rounds, each side of each workload running BENCH_TIME per round.
BENCH_COUNT ?= 5
BENCH_TIME ?= 1s

.PHONY: bench
bench: deps ## benchmark the sidecar against a direct go-zookeeper client in BENCH_COUNT rounds (default 5), as ratios
	BENCH_COUNT='$(BENCH_COUNT)' BENCH_TIME='$(BENCH_TIME)' scripts/bench.sh

FUZZTIME ?= 60s

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	FUZZTIME='$(FUZZTIME)' scripts/fuzz.sh

# The fault-injection run of e2e/chaos_test.go (needs root: network
# namespaces). It ends with the line
# "chaos: <ops> ops, <faults> faults, <wipes> ensemble wipes, <n> of <m> partitions, pauses and handoff cuts cost a holder its lease,
#  <violations> violations, <orphans> orphans, max regrant <ms> ms, <s> semaphore grants, <r> re-entries".
CHAOS_DURATION ?= 3m

.PHONY: chaos chaos-control
chaos: deps ## inject faults for CHAOS_DURATION (default 3m) and check the invariants
	@CHAOS_DURATION='$(CHAOS_DURATION)' scripts/chaos.sh
chaos-control: deps ## the chaos run's negative control: own clock off, it must find the double grant
	@scripts/chaos.sh control

# Extra zklockd flags for make run, e.g. ZKLOCKD_FLAGS='--session-timeout 4s'.
ZKLOCKD_FLAGS ?=

.PHONY: run zk-stop zk-start zk-start-fresh
run: deps build tool-grpcurl ## start a local ZooKeeper and zklockd (Ctrl-C stops both)
	scripts/run.sh $(ZKLOCKD_FLAGS)
# From another terminal, while make run runs (README: "Rehearse an outage").
zk-stop: ## stop make run's ZooKeeper; zklockd keeps running
	@scripts/run.sh zk-stop
zk-start: ## start make run's ZooKeeper again, with its data
	@scripts/run.sh zk-start
zk-start-fresh: ## start make run's ZooKeeper again with its data wiped, as if rebuilt empty
	@scripts/run.sh zk-start --fresh

.PHONY: clean
clean: ## remove build outputs, test logs and .run/ (keeps the tools in ./bin)
	rm -f bin/zklockd bin/zklock bin/test.log bin/test-summary.txt
	rm -f coverage.out coverage.html cover.out *.coverprofile
	rm -rf .run

.PHONY: distclean
distclean: clean ## clean, and remove the tools in ./bin too
	rm -rf bin
