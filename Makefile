# bitcoin-operator: run `make help` for the targets.

IMG ?= bitcoin-operator:latest
# Kubernetes version of the envtest binaries and of the local control plane.
KUBE_VERSION ?= 1.37.2

CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.7.1

# Tools are built once per version into a cache outside the repository.
TOOLS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/bitcoin-operator/tools
CONTROLLER_GEN ?= $(TOOLS_CACHE)/controller-gen-$(CONTROLLER_TOOLS_VERSION)/controller-gen
KUSTOMIZE ?= $(TOOLS_CACHE)/kustomize-$(KUSTOMIZE_VERSION)/kustomize
KUBECTL ?= kubectl

# The version a tools module under hack/tools requires of a module: its go.mod is the
# one place each tool's version is written.
tool_version = $(shell awk '{ for (i = 1; i < NF; i++) if ($$i == "$(2)") { print $$(i + 1); exit } }' hack/tools/$(1)/go.mod)

# operator-sdk and the scorecard's test runner, built from hack/tools/operator-sdk.
# Set OPERATOR_SDK=operator-sdk to use one on your PATH instead.
OPERATOR_SDK_VERSION := $(call tool_version,operator-sdk,github.com/operator-framework/operator-sdk)
OPERATOR_SDK_TOOLS = $(TOOLS_CACHE)/operator-sdk-$(OPERATOR_SDK_VERSION)
OPERATOR_SDK ?= $(OPERATOR_SDK_TOOLS)/operator-sdk
SCORECARD_TEST ?= $(OPERATOR_SDK_TOOLS)/scorecard-test
# operator-registry's opm, built with OLM's olm and catalog from hack/tools/olm by
# hack/olm-tools.sh, cached by version. Set OPM=opm to use one on your PATH instead.
OLM_TOOLS = $(TOOLS_CACHE)/olm-$(call tool_version,olm,github.com/operator-framework/operator-lifecycle-manager)-opm-$(call tool_version,olm,github.com/operator-framework/operator-registry)
OPM ?= $(OLM_TOOLS)/opm
# Built only when the default path is in use.
OPM_BIN = $(filter $(OLM_TOOLS)/%,$(OPM))
# Prometheus' server and promtool (github.com/prometheus/prometheus, Go module versions
# v0.3xx.y for Prometheus 3.x), built by hack/prometheus.sh, cached by version.
PROMETHEUS_VERSION ?= v0.316.0
PROMETHEUS_TOOLS = $(TOOLS_CACHE)/prometheus-$(PROMETHEUS_VERSION)
PROMTOOL ?= $(PROMETHEUS_TOOLS)/promtool
LOCAL_CLUSTER_BINARIES = etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-24s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRD and the RBAC role from the kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the API types' DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify-generated
verify-generated: manifests generate ## Fail if the generated files are not up to date with the code.
	@git diff --exit-code -- config api || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }

.PHONY: envtest
envtest: ## Provide kube-apiserver and etcd for envtest (built once per version, cached).
	@KUBE_VERSION=$(KUBE_VERSION) hack/kube-assets.sh etcd kube-apiserver >/dev/null

.PHONY: btcd
btcd: ## Provide btcd, which stands in for bitcoind in the real-node tests and the demo (built once per version, cached).
	@hack/btcd.sh >/dev/null

.PHONY: prometheus
prometheus: ## Provide Prometheus' server and promtool, for the alert rules' tests, test-prometheus and the demo (built once per version, cached).
	@PROMETHEUS_VERSION=$(PROMETHEUS_VERSION) TOOLS_CACHE=$(TOOLS_CACHE) hack/prometheus.sh >/dev/null

.PHONY: local-cluster-binaries
local-cluster-binaries: ## Provide every binary of the local control plane (built once per version, cached).
	@KUBE_VERSION=$(KUBE_VERSION) hack/kube-assets.sh $(LOCAL_CLUSTER_BINARIES) >/dev/null

##@ Tests

# Which to run when: test-quick while changing code (a few minutes); the suite of what
# you changed (test-e2e, test-nodes, test-olm, test-run-bundle) before a commit; test before a merge, as
# CI does (.ci/run).

.PHONY: test
test: verify-generated verify-bundle scorecard-local vet local-cluster-binaries test-unit test-fuzz test-promql test-prometheus-rules test-e2e test-faults test-nodes test-prometheus test-olm test-run-bundle bench-smoke ## Run every test: unit, chart, envtest, fuzz, PromQL and alert rules, bundle, e2e, faults, real nodes, a real Prometheus, OLM's install, operator-sdk run bundle and the bench's smoke run.

.PHONY: test-quick
test-quick: verify-generated vet test-unit ## Check the generated files, vet, and run the unit, chart and envtest suites: minutes, not half an hour.

.PHONY: test-unit
test-unit: envtest ## Run the unit, chart and envtest suites.
	KUBEBUILDER_ASSETS="$$(hack/kube-assets.sh etcd kube-apiserver)" go test ./... -count=1

# FUZZTIME bounds the fuzzing in `make test`; run longer by hand, e.g. FUZZTIME=10m.
FUZZTIME ?= 15s

.PHONY: test-fuzz
test-fuzz: ## Fuzz the RPC response decoding for FUZZTIME (its seed corpus runs in test-unit too).
	go test ./internal/bitcoin/ -run '^$$' -fuzz '^FuzzDecodeResponse$$' -fuzztime $(FUZZTIME)

.PHONY: test-e2e
test-e2e: local-cluster-binaries ## Run the end-to-end suite on a local control plane (test/cluster).
	go test -tags e2e ./test/e2e/ -count=1 -timeout 20m

.PHONY: test-faults
test-faults: local-cluster-binaries ## Run the fault suite on a local control plane: leader killed, API server outage and etcd restart, a lost Node, hostile tenants.
	go test -tags faults ./test/faults/ -count=1 -timeout 15m -v

.PHONY: test-nodes
test-nodes: local-cluster-binaries btcd ## Run the real-node suites: one btcd per pod IP, wired by the operator on the local control plane.
	go test -tags nodes ./test/btcd/ ./test/fleet/ ./test/nodes/ -count=1 -timeout 15m

.PHONY: test-promql
test-promql: ## Parse the alert rules' and the dashboard's PromQL with Prometheus' parser, and check their metric names against the operator's registry (test/promql, a module of its own).
	cd test/promql && go test ./... -count=1

.PHONY: test-prometheus-rules
test-prometheus-rules: prometheus ## promtool check rules and promtool test rules (config/prometheus/tests) on the PrometheusRule's groups.
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  go run ./hack/promrules config/prometheus/rules.yaml > "$$tmp/rules.yaml" && \
	  cp config/prometheus/tests/*_test.yaml "$$tmp/" && \
	  $(PROMTOOL) check rules "$$tmp/rules.yaml" && \
	  $(PROMTOOL) test rules "$$tmp"/*_test.yaml

.PHONY: test-prometheus
test-prometheus: local-cluster-binaries prometheus ## Run a real Prometheus against the operator on a local control plane: authenticated scrape, the shipped rules, a node-down alert firing and resolving (test/prometheus).
	go test -tags prometheus ./test/prometheus/ -count=1 -timeout 10m -v

.PHONY: test-olm
test-olm: local-cluster-binaries ## Install, upgrade and uninstall bundle/ through the real OLM on a local control plane (test/olm), and build the catalog image twice with the real opm (internal/publish).
	go test -tags olm ./internal/publish/ ./test/olm/ -count=1 -timeout 25m -skip '^TestRunBundle$$'

.PHONY: test-run-bundle
test-run-bundle: local-cluster-binaries ## operator-sdk run bundle, bundle-upgrade and cleanup of the pushed images through the real OLM on a local control plane (test/olm).
	go test -tags olm ./test/olm/ -count=1 -timeout 25m -run '^TestRunBundle$$' -v

##@ Local cluster

PROPAGATION_SIZES ?= 10,50

.PHONY: bench
bench: local-cluster-binaries ## Measure the operator with an RPC double on every pod (BENCH_SIZES, BENCH_QUIET, BENCH_IDLE, BENCH_UNRELATED, BENCH_HOSTILE); report in bench/results/<date>/.
	go run ./test/bench

.PHONY: bench-smoke
bench-smoke: local-cluster-binaries ## The bench's smallest size, failing unless every figure is measured and the operator writes nothing once settled.
	BENCH_SIZES=1x3 BENCH_UNRELATED=1000 BENCH_HOSTILE=1 BENCH_CHECK=1 go run ./test/bench

.PHONY: bench-propagation
bench-propagation: local-cluster-binaries btcd ## Measure block propagation and time to Synced on real P2P (btcd per pod) for networks of PROPAGATION_SIZES nodes.
	NODES_PROPAGATION=$(PROPAGATION_SIZES) go test -tags nodes -run TestPropagation -count=1 -v -timeout 60m ./test/nodes/

# DEMO_PROMETHEUS=1 make demo also runs a Prometheus that scrapes the operator and evaluates the alerts.
DEMO_PROMETHEUS ?=

.PHONY: demo
demo: local-cluster-binaries btcd $(if $(DEMO_PROMETHEUS),prometheus) ## Start a local control plane, the operator and a btcd per pod, apply the sample, mine (DEMO_PROMETHEUS=1: and a Prometheus); Ctrl-C stops it all.
	DEMO_PROMETHEUS=$(DEMO_PROMETHEUS) go run ./test/demo

.PHONY: demo-down
demo-down: ## Remove what a killed `make demo` left behind.
	hack/demo-down.sh

##@ Build

.PHONY: build
build: fmt vet ## Build the manager binary into bin/.
	go build -o bin/manager ./cmd

.PHONY: run
run: fmt vet ## Run the operator against the cluster of the current kubeconfig.
	go run ./cmd

.PHONY: docker-build
docker-build: ## Build the operator image.
	docker build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the operator image.
	docker push $(IMG)

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRD into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Remove the CRD (and so every BitcoinNetwork) from the cluster.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the operator with image IMG.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove the operator (and the CRD) from the cluster.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

##@ Bundle (Operator Lifecycle Manager)

# The operator's version: the CSV's, and the tag of the operator and bundle images.
VERSION ?= 0.1.0
# Channel names the operatorframework validators accept without a warning.
CHANNELS ?= stable-v0
DEFAULT_CHANNEL ?= stable-v0
IMAGE_TAG_BASE ?= ghcr.io/bitcoinops/bitcoin-operator
BUNDLE_IMG ?= $(IMAGE_TAG_BASE)-bundle:v$(VERSION)
# The operator image the bundle's Deployment runs.
BUNDLE_OPERATOR_IMG ?= $(IMAGE_TAG_BASE):v$(VERSION)
# Built only when the default paths are in use.
OPERATOR_SDK_BIN = $(filter $(OPERATOR_SDK_TOOLS)/%,$(OPERATOR_SDK))
SCORECARD_TEST_BIN = $(filter $(OPERATOR_SDK_TOOLS)/%,$(SCORECARD_TEST))

.PHONY: bundle
bundle: manifests $(KUSTOMIZE) $(OPERATOR_SDK_BIN) ## Generate bundle/ and bundle.Dockerfile for VERSION from config/, then validate them.
	$(OPERATOR_SDK) generate kustomize manifests --interactive=false --quiet
	@# Set the image in a copy of config/, so that the tree keeps the committed image.
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cp -r config "$$tmp/" && \
	  (cd "$$tmp/config/manager" && $(KUSTOMIZE) edit set image controller=$(BUNDLE_OPERATOR_IMG)) && \
	  $(KUSTOMIZE) build "$$tmp/config/manifests" | $(OPERATOR_SDK) generate bundle --quiet --overwrite \
	    --package bitcoin-operator --version $(VERSION) --channels $(CHANNELS) --default-channel $(DEFAULT_CHANNEL)
	@# generate bundle stamps the time into createdAt, which would make every run differ.
	sed -i '/^    createdAt: /d' bundle/manifests/bitcoin-operator.clusterserviceversion.yaml
	$(MAKE) --no-print-directory bundle-validate

.PHONY: bundle-validate
bundle-validate: $(OPERATOR_SDK_BIN) ## Validate bundle/ with operator-sdk and the operatorframework suite; warnings fail too.
	@out=$$($(OPERATOR_SDK) bundle validate ./bundle --select-optional suite=operatorframework 2>&1); echo "$$out"; \
	  ! grep -qE 'level=(warn|error|fatal)|^(WARN|ERRO|FATA)' <<<"$$out" || { echo "bundle validate: errors or warnings above"; exit 1; }

.PHONY: verify-bundle
verify-bundle: bundle ## Fail if regenerating the bundle changes bundle/, bundle.Dockerfile or config/manifests.
	@git diff --exit-code -- bundle bundle.Dockerfile config/manifests && \
	  [ -z "$$(git ls-files --others --exclude-standard -- bundle bundle.Dockerfile config/manifests)" ] || \
	  { echo "the bundle is stale: run 'make bundle' and commit"; exit 1; }

.PHONY: scorecard-local
scorecard-local: $(SCORECARD_TEST_BIN) ## Run bundle/'s scorecard tests with scorecard-test, without a cluster (test/scorecard).
	go run ./test/scorecard -bundle bundle -scorecard-test $(SCORECARD_TEST)

.PHONY: scorecard
scorecard: $(OPERATOR_SDK_BIN) ## Run the scorecard on bundle/ in the cluster of the current kubeconfig (pulls the scorecard-test image).
	$(OPERATOR_SDK) scorecard ./bundle --wait-time 120s

.PHONY: bundle-build
bundle-build: ## Build the bundle image BUNDLE_IMG (BuildKit: its context is bundle.Dockerfile.dockerignore's).
	DOCKER_BUILDKIT=1 docker build -f bundle.Dockerfile -t $(BUNDLE_IMG) .

.PHONY: bundle-push
bundle-push: ## Push the bundle image BUNDLE_IMG.
	docker push $(BUNDLE_IMG)

##@ Catalog (Operator Lifecycle Manager)

CATALOG_IMG ?= $(IMAGE_TAG_BASE)-catalog:v$(VERSION)

.PHONY: catalog
catalog: $(OPM_BIN) ## Write catalog/, the file-based catalog of bundle/ whose bundle is image BUNDLE_IMG, and validate it with opm.
	go run ./hack/catalog -opm $(OPM) -bundle bundle -image $(BUNDLE_IMG) -o catalog/bitcoin-operator/catalog.yaml
	$(OPM) validate catalog

# Where catalog-build writes the catalog image, as a tarball that `docker load` reads.
CATALOG_TARBALL ?= dist/catalog-image.tar

.PHONY: catalog-build
catalog-build: catalog $(OPM_BIN) ## Build the catalog image CATALOG_IMG of catalog/ without a daemon, into CATALOG_TARBALL (catalog.Dockerfile describes it).
	go run ./hack/images -catalog catalog -tag $(CATALOG_IMG) -o $(CATALOG_TARBALL) -opm $(OPM)

.PHONY: catalog-push
catalog-push: ## Push the catalog image in CATALOG_TARBALL as CATALOG_IMG.
	go run ./hack/images -push $(CATALOG_TARBALL) -tag $(CATALOG_IMG)

##@ Images without a daemon

# The registry (and path) `make images` pushes to, e.g. 127.0.0.1:5000/bitcoinops;
# `go run ./hack/registry` serves one on loopback. IMAGES_FLAGS may pin the Bitcoin Core
# image by digest in the release bundle: -pin bitcoin/bitcoin:28.1=<image>@sha256:<digest>.
REGISTRY ?=
IMAGES_FLAGS ?=

.PHONY: images
images: $(OPM_BIN) ## Build the operator, bundle, opm and catalog images reproducibly, without a daemon, push them under REGISTRY, and write dist/release/bundle pinned by digest.
	@[ -n "$(REGISTRY)" ] || { echo "images: set REGISTRY, e.g. REGISTRY=127.0.0.1:5000/bitcoinops"; exit 1; }
	go run ./hack/images -registry $(REGISTRY) -version $(VERSION) -opm $(OPM) -bundle bundle -release dist/release $(IMAGES_FLAGS)

##@ Tools

$(OPERATOR_SDK_TOOLS)/operator-sdk $(OPERATOR_SDK_TOOLS)/scorecard-test &:
	OPERATOR_SDK_TOOLS_DIR=$(OPERATOR_SDK_TOOLS) hack/operator-sdk-tools.sh >/dev/null

$(OLM_TOOLS)/opm $(OLM_TOOLS)/olm $(OLM_TOOLS)/catalog &:
	TOOLS_CACHE=$(TOOLS_CACHE) hack/olm-tools.sh >/dev/null

$(CONTROLLER_GEN):
	GOBIN=$(dir $@) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

$(KUSTOMIZE):
	GOBIN=$(dir $@) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
