# Targets only; see README.md.
GO ?= go
STATICCHECK_VERSION ?= 2025.1.1
FUZZTIME ?= 60s
ADDR ?= 127.0.0.1:8080

.PHONY: test bench fuzz lint run loadtest loadtest-smoke

# vet, then every package under the race detector in shuffled order; the fuzz
# targets' seed corpora (testdata/fuzz) run as ordinary tests.
test:
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -count=1 -timeout 10m $$($(GO) list ./... | grep -v /failtest)
	FASTSSE_TEST_TRANSPORT=dense $(GO) test -race -shuffle=on -count=1 -timeout 10m ./fastsse
	# The failure tests measure latency and timing: alone, with and without -race.
	$(GO) test -race -count=1 -timeout 10m ./fastsse/failtest
	$(GO) test -count=1 -timeout 10m ./fastsse/failtest
	cd bench/compare && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	cd bench/servers && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	cd examples/e2e && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	cd examples/lambda && $(GO) vet -tags lambda.norpc ./... && $(GO) test -race -count=1 -timeout 5m ./...
	cd fastsse/promsse && $(GO) vet ./... && $(GO) test -race -shuffle=on -count=1 -timeout 5m ./...
	cd examples/feed && $(GO) vet ./... && $(GO) test -race -shuffle=on -count=1 -timeout 5m ./...
	cd examples/news && $(GO) vet ./... && $(GO) test -race -shuffle=on -count=1 -timeout 5m ./...

BENCHSTAT ?= $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 10 ./fastsse | tee bench/fastsse.txt
	cd bench/compare && $(GO) test -run '^$$' -bench . -benchmem -count 10 . | tee ../compare.txt
	$(BENCHSTAT) bench/fastsse.txt
	$(BENCHSTAT) -col /lib -row /event bench/compare.txt

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzAppendEvent$$' -fuzztime $(FUZZTIME) ./fastsse

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) mod tidy -diff
	cd bench/compare && $(GO) mod tidy -diff
	cd bench/servers && $(GO) mod tidy -diff
	cd examples/e2e && $(GO) mod tidy -diff
	cd examples/lambda && $(GO) mod tidy -diff
	cd fastsse/promsse && $(GO) mod tidy -diff
	cd examples/feed && $(GO) mod tidy -diff
	cd examples/news && $(GO) mod tidy -diff

run:
	$(GO) run ./examples/pingpong -addr $(ADDR)

# sse-bench against fastsse (stream, dense), a raw fasthttp loop, go-sse and
# r3labs/sse; see bench/loadtest.sh. The full run writes bench/RESULTS.md.
loadtest:
	bash bench/loadtest.sh full

loadtest-smoke:
	bash bench/loadtest.sh smoke
