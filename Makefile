# Targets only; see README.md.
GO ?= go
# staticcheck 2025.1.1, by its module version (the proxy serves no tag query).
STATICCHECK_VERSION ?= v0.6.1
FUZZTIME ?= 60s
ADDR ?= 127.0.0.1:8080

.PHONY: test bench fuzz lint run loadtest loadtest-smoke

# vet, then every package under the race detector in shuffled order; the fuzz
# targets' seed corpora (testdata/fuzz) run as ordinary tests. Every behaviour
# test ranges over internal/ssetest.Transports itself: one run covers them all.
test:
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -count=1 -timeout 10m $$($(GO) list ./... | grep -v /failtest)
	# The zero-allocation gates build only without -race (the detector allocates).
	$(GO) test -count=1 -run 'Allocs' ./fastsse ./fastsse/sseclient ./loadtest
	# The failure tests measure latency and timing: alone, with and without -race.
	$(GO) test -race -count=1 -timeout 10m ./fastsse/failtest
	$(GO) test -count=1 -timeout 10m ./fastsse/failtest
	cd examples && $(GO) vet ./... && $(GO) test -race -shuffle=on -count=1 -timeout 10m ./...
	cd bench/compare && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	cd bench/servers && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	cd examples/e2e && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	cd examples/lambda && $(GO) vet -tags lambda.norpc ./... && $(GO) test -race -count=1 -timeout 5m ./...
	cd fastsse/natsbus && $(GO) vet ./... && $(GO) test -race -shuffle=on -count=1 -timeout 5m ./...
	cd fastsse/promsse && $(GO) vet ./... && $(GO) test -race -shuffle=on -count=1 -timeout 5m ./...

BENCHSTAT ?= $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 10 ./fastsse | tee bench/fastsse.txt
	cd bench/compare && $(GO) test -run '^$$' -bench . -benchmem -count 10 . | tee ../compare.txt
	$(BENCHSTAT) bench/fastsse.txt
	$(BENCHSTAT) -col /lib -row /event bench/compare.txt

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzAppendEvent$$' -fuzztime $(FUZZTIME) ./fastsse
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./fastsse/sseclient

# Every module: each directory that holds a go.mod, found afresh on every run,
# so that a module added later is linted too.
MODULES = $(shell find . -name go.mod -not -path './.git/*' -exec dirname {} \; | sort)
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	set -e; for m in $(MODULES); do \
		echo "lint $$m"; \
		(cd $$m && $(GO) vet ./... && $(STATICCHECK) ./... && $(GO) mod tidy -diff); \
	done

run:
	cd examples && $(GO) run ./pingpong -addr $(ADDR)

# sse-bench against fastsse (stream, dense), a raw fasthttp loop, go-sse and
# r3labs/sse; see bench/loadtest.sh. The full run writes bench/RESULTS.md.
loadtest:
	bash bench/loadtest.sh full

loadtest-smoke:
	bash bench/loadtest.sh smoke
