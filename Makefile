# mdjournal — make targets. Only Go is needed; everything else is built here.
GO       ?= go
BIN      := bin
PKGS     := ./...
FUZZTIME ?= 3s

.PHONY: all build test vet staticcheck fmt-check unit race fuzz-smoke fuzz crashtest powerloss chaos wire nats bench demo demo-nats clean
.PHONY: pipeline

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: the CI gate (README quick start). Formatting, vet, every test
## (crash loop of 50 SIGKILLs, fault table, fuzz seed corpora, cross-process
## tests), the race detector over all packages (-short bounds the process
## loops), and a bounded slice of every fuzz target.
test: fmt-check vet staticcheck unit race fuzz-smoke

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) vet ./journal/...

## staticcheck: pinned as a tool in go.mod, so nothing is installed by hand.
staticcheck:
	$(GO) tool staticcheck $(PKGS)

unit:
	$(GO) test -count=1 -timeout 20m $(PKGS)

race:
	$(GO) test -count=1 -race -short -timeout 20m $(PKGS)

## fuzz-smoke: every native fuzz target for FUZZTIME (bounded slice for CI);
## a failing run's log is always printed (scripts/fuzz-smoke.sh says how
## findings and the Go engine's deadline flake are told apart).
fuzz-smoke:
	GO=$(GO) FUZZTIME=$(FUZZTIME) PKGS='$(PKGS)' scripts/fuzz-smoke.sh

## fuzz: the long campaign (FUZZTIME=5m by default here).
fuzz:
	$(MAKE) fuzz-smoke FUZZTIME=5m

## crashtest: the long SIGKILL campaign (1000 kills).
crashtest:
	MDJ_CRASH_ITERS=$${MDJ_CRASH_ITERS:-1000} $(GO) test -count=1 -timeout 2h -run '^TestCrash$$' -v ./writer/

## chaos: the long adversarial campaign (real journalctl processes under
## SIGKILL, concurrent maintenance, damage injected on copies; 30 minutes by
## default, MDJ_CHAOS_DURATION and MDJ_CHAOS_SEED to change it; make test
## runs a 60 s slice and a 25 s one under -race).
chaos:
	MDJ_CHAOS_DURATION=$${MDJ_CHAOS_DURATION:-30m} $(GO) test -count=1 -timeout 3h -run '^TestChaos$$' -v ./tests/chaos/

## wire: the wire path's fidelity campaign on the six full LOBSTER days of
## ../shared/data (publish → lossy relay → feed → compare; a few minutes).
## make test runs it on the head2000 excerpts.
wire:
	MDJ_WIRE_FULL=1 $(GO) test -count=1 -timeout 1h -v ./tests/wire/

## powerloss: the long power-cut campaign on lossyfs (needs root and
## /dev/fuse; skips loudly otherwise): 1000 rounds across the durability
## policies (MDJ_POWERLOSS_ROUNDS, MDJ_POWERLOSS_SEED; tests/powerloss/README.md).
powerloss:
	MDJ_POWERLOSS_ROUNDS=$${MDJ_POWERLOSS_ROUNDS:-1000} $(GO) test -count=1 -timeout 3h -run '^TestPowerLossCampaign$$' -v ./tests/powerloss/

## nats: the long shipping campaigns (kill -9 of shipper and mirror, a
## three-node JetStream cluster with a node killed) against real
## nats-server processes on 127.0.0.1.
nats:
	MDJ_NATS_ROUNDS=$${MDJ_NATS_ROUNDS:-200} $(GO) test -count=1 -timeout 60m -v ./tests/nats/

## demo-nats: ship → NATS → mirror → tail on the replica (scripts/demo-nats.sh).
demo-nats: build
	$(GO) build -o $(BIN)/ github.com/nats-io/nats-server/v2
	bash scripts/demo-nats.sh

## bench: every go benchmark with its same-run baseline (see README).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $${COUNT:-5} $(PKGS)

## demo: the main job end to end on built-in data (scripts/demo.sh).
demo: build
	bash scripts/demo.sh

## pipeline: the design's pipeline (examples/pipeline: feed → engine → risk,
## three processes) on the built-in LOBSTER day (../shared/data/lobster;
## synthetic data, loudly, if it is missing): at max speed, then 10 s at 1x
## (PIPELINE_WAIT idle strategy, default backoff; PIPELINE_CPUS=F,E,R pins
## the stages), each printing the per-hop
## table; then bench ipc's raw, ring and journal floors in the same run.
PIPELINE_DATA ?= ../shared/data/lobster
PIPELINE_WAIT ?= backoff
PIPELINE_CPUS ?= -1,-1,-1
pipeline:
	$(GO) build -o $(BIN)/ ./examples/pipeline ./cmd/journalctl
	@if [ -d $(PIPELINE_DATA) ]; then src="-lobster $(PIPELINE_DATA)"; else \
	  echo "*** $(PIPELINE_DATA) missing: running on SYNTHETIC data, not the LOBSTER day ***"; src=""; fi; \
	$(BIN)/pipeline run $$src -wait $(PIPELINE_WAIT) -cpus $(PIPELINE_CPUS) -q && \
	$(BIN)/pipeline run $$src -wait $(PIPELINE_WAIT) -cpus $(PIPELINE_CPUS) -pace 1 -duration 10s -q
	$(BIN)/journalctl bench ipc --transports raw,ring,journal --rounds 1 --messages 20000 --quiet

clean:
	rm -rf $(BIN) demo
