# Every module of the repository: the core at the root and the nested ones
# (integration tests with real SDKs, the demo and its contenders, adapters),
# which keep their heavy dependencies out of the core's go.mod.
MODULES := $(patsubst %/go.mod,%,$(shell find . -name go.mod -not -path './.git/*' | sort))
FUZZTIME ?= 10s

.PHONY: test vet race fuzz bench demo

# test is what CI runs: vet, every module's tests under the race detector,
# and a short run of every fuzz target.
test: vet race fuzz

vet:
	@set -e; for m in $(MODULES); do echo "== go vet $$m"; (cd $$m && go vet ./...); done

race:
	@set -e; for m in $(MODULES); do echo "== go test -race $$m"; (cd $$m && go test -race -count=1 ./...); done

# fuzz runs each fuzz target of the core for FUZZTIME (make fuzz FUZZTIME=10m
# for a long run). Crashers land in testdata/fuzz and become regression seeds.
fuzz:
	@set -e; for f in $$(go test -list '^Fuzz' . | grep '^Fuzz'); do \
		echo "== fuzz $$f ($(FUZZTIME))"; \
		go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) . ; \
	done

bench:
	go test -run='^$$' -bench=. -benchmem .
