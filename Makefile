# Every module of the repository: the core at the root and the nested ones
# (integration tests with real SDKs, the demo and its contenders, adapters),
# which keep their heavy dependencies out of the core's go.mod. go.work joins
# them, so one go command builds and tests them all: one module graph, and
# every package compiled in parallel instead of module after module.
MODULES := $(patsubst %/go.mod,%,$(shell find . -name go.mod -not -path './.git/*' | sort))
PACKAGES := $(addsuffix /...,$(MODULES))
FUZZTIME ?= 2000x

# The AI SDKs are the largest packages the tests compile: generated code, a
# third of a cold run's compiling. Built without inlining (-l) they compile
# about 40% faster and behave the same. Only the integration tests use them,
# and genai's own dependencies (gRPC, protobuf, Google's auth) with them.
# GOFLAGS carries the setting to every go command, the one
# TestDocSnippetsCompile starts included, so that all share one build cache.
SDK_PACKAGES := github.com/openai/openai-go/v3/... github.com/anthropics/anthropic-sdk-go/... \
	google.golang.org/genai/... google.golang.org/grpc/... google.golang.org/protobuf/... \
	github.com/google/s2a-go/... go.opencensus.io/... cloud.google.com/go/...
# Nothing here is run under a debugger: every package is compiled without
# DWARF (-dwarf=false), a tenth less work; stack traces and race reports do
# not need it. Where two -gcflags patterns match a package, the later wins.
export GOFLAGS := $(strip $(shell go env GOFLAGS) -gcflags=all=-dwarf=false $(foreach p,$(SDK_PACKAGES),-gcflags=$(p)=-l))

.PHONY: test deps vet race fuzz bench demo

# test is what CI runs: vet, every module's tests under the race detector,
# and a short run of every fuzz target. The tests go first: the go command
# runs each package's tests as soon as they are built, the core's while the
# SDKs still compile, and vet then finds every package compiled.
test: deps race vet fuzz
	@echo "== $$(date +%T) make test: all passed"

# deps downloads the modules the packages and their tests import, and
# nothing else (go mod download would fetch whole module graphs).
deps:
	@echo "== $$(date +%T) modules: downloading what is missing"
	@go list -deps -test $(PACKAGES) >/dev/null

race:
	@echo "== $$(date +%T) go test -race -count=1 $(PACKAGES)"
	@echo "   (on a cold build cache this compiles every dependency with -race first: a few minutes on 2 cores)"
	@go test -race -count=1 $(PACKAGES)

# vet runs with -race so that it analyses the very packages the race tests
# compiled (the AI SDKs, the OpenTelemetry SDK, gonum/plot, go-redis, the
# standard library: most of a cold run's work) instead of compiling them all
# a second time without it.
vet:
	@echo "== $$(date +%T) go vet -race $(PACKAGES)"
	@go vet -race $(PACKAGES)

# fuzz runs each fuzz target of the core for FUZZTIME, a count of executions
# rather than a duration so a loaded machine runs as many (make fuzz
# FUZZTIME=10m for a long run). The instrumented test binary is built once
# and runs every target; interesting inputs go where go test -fuzz keeps
# them, and crashers land in testdata/fuzz and become regression seeds.
fuzz:
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	echo "== $$(date +%T) fuzz: building the core's test binary with coverage instrumentation"; \
	go test -c -fuzz=. -o "$$dir/fuzz.test" .; \
	for f in $$("$$dir/fuzz.test" -test.list '^Fuzz'); do \
		echo "== $$(date +%T) fuzz $$f ($(FUZZTIME))"; \
		"$$dir/fuzz.test" -test.run='^$$' -test.fuzz="^$$f$$" -test.fuzztime=$(FUZZTIME) \
			-test.fuzzcachedir="$$(go env GOCACHE)/fuzz/github.com/pacehttp/pacehttp"; \
	done

bench:
	go test -run='^$$' -bench=. -benchmem .

# demo runs the demo as the README's first command does.
demo:
	go run ./cmd/pacedemo
