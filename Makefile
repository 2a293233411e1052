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
LOCAL_CLUSTER_BINARIES = etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok

GOBIN ?= $(shell go env GOPATH)/bin
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

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

.PHONY: test
test: verify-generated vet local-cluster-binaries test-unit test-fuzz test-e2e test-nodes bench-smoke ## Run every test: unit, chart, envtest, fuzz, e2e, real nodes and the bench's smoke run.

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

.PHONY: test-nodes
test-nodes: local-cluster-binaries btcd ## Run the real-node suites: one btcd per pod IP, wired by the operator on the local control plane.
	go test -tags nodes ./test/btcd/ ./test/fleet/ ./test/nodes/ -count=1 -timeout 15m

.PHONY: envtest
envtest: ## Provide kube-apiserver and etcd for envtest (built once per version, cached).
	@KUBE_VERSION=$(KUBE_VERSION) hack/kube-assets.sh etcd kube-apiserver >/dev/null

.PHONY: btcd
btcd: ## Provide btcd, which stands in for bitcoind in the real-node tests and the demo (built once per version, cached).
	@hack/btcd.sh >/dev/null

.PHONY: local-cluster-binaries
local-cluster-binaries: ## Provide every binary of the local control plane (built once per version, cached).
	@KUBE_VERSION=$(KUBE_VERSION) hack/kube-assets.sh $(LOCAL_CLUSTER_BINARIES) >/dev/null

##@ Local cluster

.PHONY: bench
bench: local-cluster-binaries ## Measure the operator on a local control plane (BENCH_SIZES, BENCH_IDLE, BENCH_UNRELATED).
	go run ./test/bench

.PHONY: bench-smoke
bench-smoke: local-cluster-binaries ## The bench's smallest size, failing unless every figure is measured and idle writes are 0.
	BENCH_SIZES=1x3 BENCH_UNRELATED=1000 BENCH_CHECK=1 go run ./test/bench

.PHONY: demo
demo: local-cluster-binaries btcd ## Start a local control plane, the operator and a btcd per pod, apply the sample, mine; Ctrl-C stops it all.
	go run ./test/demo

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

##@ Tools

$(CONTROLLER_GEN):
	GOBIN=$(dir $@) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

$(KUSTOMIZE):
	GOBIN=$(dir $@) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
