# pipelines/tcga-lung.mk - TCGA lung (LUSC vs LUAD) from the user's slides: bag AUC only (TCGA
# has no patch annotations).
#
#   make tcga-lung TCGA=/data/tcga-lung                       slides anywhere under it + labels.csv
#   make tcga-lung TCGA=... FEATURES=/feats                    CLAM/TRIDENT .h5 features instead of tiling
#
# The same steps as pipelines/camelyon16.mk: list the slides (pipelines/tcga-list.sh) -> tile with
# GNU Parallel, one slide per job, --joblog and --resume-failed, failures listed with their reason
# and a non-zero exit at the end -> bags -> manifest with a seeded validation split -> weno-fit ->
# weno-score -> auc-report (bag level).  Tiles go to tiles-KEY (a hash of the tiling parameters),
# training to tiles-KEY/fit-KEY2.
#
# Variables:
#   TCGA              folder holding the slides (.svs, any depth)
#   TCGA_LABELS       labels CSV with a header: slide_id,label[,case_id][,split] [$(TCGA)/labels.csv]
#   TCGA_POSITIVE, TCGA_NEGATIVE   the label texts meaning 1 and 0 [LUSC, LUAD]
#   TCGA_TEST_FRAC    without a split column: cases of each label sent to test, seeded [0.2]
#   TCGA_VAL_FRAC     training patients moved to validation, stratified, all their slides [0.1]
#   TCGA_SEED         seed of both splits and of training [0]
#   TCGA_TILE         wsi-tile options [--mag 5 --size 224 --preset tcga --threads 1]
#   TCGA_JOBS, PARALLEL_OPTS, TCGA_RESUME   GNU Parallel: -j [100%], more options, --resume-failed
#   FEATURES          folder of <slide>.h5 features: imported with bag-pack --h5 instead of tiling
#   TCGA_ENCODER      resnet18 (mlp with FEATURES)
#   TCGA_METHOD       --method weno --teacher abmil
#   TCGA_EPOCHS       50
#   TCGA_FIT          --optim adam --lr 1e-4 --accum 4 (--batch 64 on pixels) --hpm threshold --hpm-epoch 10
#   TCGA_OUT          runs/tcga-lung
#   THREADS, DEVICE, BUILD, TOOLS_NEED (all: build the tools first; empty: use BUILD as it is)

TCGA_MK_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD ?= build
THREADS ?= 0
DEVICE ?= auto
TOOLS_NEED ?= all
TCGA ?=
FEATURES ?=
PARALLEL_OPTS ?=
TCGA_LABELS ?= $(TCGA)/labels.csv
TCGA_POSITIVE ?= LUSC
TCGA_NEGATIVE ?= LUAD
TCGA_TEST_FRAC ?= 0.2
TCGA_VAL_FRAC ?= 0.1
TCGA_SEED ?= 0
TCGA_TILE ?= --mag 5 --size 224 --preset tcga --threads 1
TCGA_JOBS ?= 100%
TCGA_RESUME ?= --resume-failed
TCGA_ENCODER ?= $(if $(FEATURES),mlp,resnet18)
TCGA_METHOD ?= --method weno --teacher abmil
TCGA_EPOCHS ?= 50
TCGA_FIT ?= --optim adam --lr 1e-4 --accum 4 $(if $(FEATURES),,--batch 64) --hpm threshold --hpm-epoch 10
TCGA_OUT ?= runs/tcga-lung

TCGA_BIN = $(abspath $(BUILD))/bin
TCGA_TILE_PARAMS = $(if $(FEATURES),features $(abspath $(FEATURES)),$(TCGA_TILE))
TCGA_TILE_KEY := $(shell printf '%s' '$(TCGA_TILE_PARAMS)' | sha1sum | cut -c1-8)
TCGA_TILES = $(TCGA_OUT)/tiles-$(TCGA_TILE_KEY)
TCGA_FIT_ALL = --encoder $(TCGA_ENCODER) --epochs $(TCGA_EPOCHS) --seed $(TCGA_SEED) $(TCGA_METHOD) $(TCGA_FIT)
TCGA_SPLIT_KEY = t$(TCGA_TEST_FRAC)-v$(TCGA_VAL_FRAC)-s$(TCGA_SEED)
TCGA_FIT_KEY := $(shell printf '%s' '$(TCGA_FIT_ALL) $(TCGA_SPLIT_KEY)' | sha1sum | cut -c1-8)
TCGA_MANIFEST = $(TCGA_TILES)/manifest-$(TCGA_SPLIT_KEY).tsv
TCGA_RUN = $(TCGA_TILES)/fit-$(TCGA_FIT_KEY)

.PHONY: tcga-lung tcga-lung-tiles tcga-check tcga-force

tcga-check:
	@[ -n "$(TCGA)" ] || { echo "tcga-lung: give your TCGA lung slides: make tcga-lung TCGA=/path (slides under it, labels.csv in it)" >&2; \
	  echo "hint: labels.csv has a header slide_id,label[,case_id][,split] with label LUSC or LUAD (TCGA_POSITIVE, TCGA_NEGATIVE); TCGA_LABELS=FILE if it lives elsewhere" >&2; exit 2; }
	@[ -d "$(TCGA)" ] || { echo "tcga-lung: TCGA=$(TCGA): no such folder" >&2; exit 1; }
	@[ -f "$(TCGA_LABELS)" ] || { echo "tcga-lung: $(TCGA_LABELS): no labels CSV" >&2; \
	  echo "hint: write slide_id,label[,case_id][,split] rows (label LUSC or LUAD), or point TCGA_LABELS at yours" >&2; exit 1; }

$(TCGA_OUT)/slides-$(TCGA_SPLIT_KEY).tsv: tcga-force | tcga-check
	@mkdir -p $(@D)
	bash $(TCGA_MK_DIR)/tcga-list.sh $(TCGA) $(TCGA_LABELS) $(TCGA_POSITIVE) $(TCGA_NEGATIVE) $(TCGA_TEST_FRAC) \
	  $(TCGA_SEED) >$@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

$(TCGA_TILES)/labels-$(TCGA_SPLIT_KEY).csv: $(TCGA_OUT)/slides-$(TCGA_SPLIT_KEY).tsv tcga-force | $(TOOLS_NEED)
	@mkdir -p $(TCGA_TILES)/logs
	@printf '%s\n' '$(TCGA_TILE_PARAMS)' >$(TCGA_TILES)/params.txt
	@awk -F'\t' -v OFS='\t' '{ print $$1, $$2, $$4, $$5 }' $< >$(TCGA_TILES)/jobs.tsv
	@echo "== tcga-lung: tiling $$(wc -l <$<) slides into $(TCGA_TILES) ($(TCGA_TILE_PARAMS))"
	$(if $(FEATURES),FEATURES=$(abspath $(FEATURES))) parallel --colsep '\t' --joblog $(TCGA_TILES)/joblog \
	  $(TCGA_RESUME) -j $(TCGA_JOBS) $(if $(FEATURES),--env FEATURES) $(PARALLEL_OPTS) \
	  bash $(TCGA_MK_DIR)/c16-tile-one.sh $(TCGA_BIN) $(abspath $(TCGA_TILES)) {1} {2} {3} {4} $(TCGA_TILE) \
	  :::: $(TCGA_TILES)/jobs.tsv || true
	@bash $(TCGA_MK_DIR)/c16-failures.sh $(TCGA_TILES)/joblog $(TCGA_TILES) $(TCGA_TILES)/jobs.tsv >$(TCGA_TILES)/failed.tsv
	@awk -F'\t' -v d=$(TCGA_TILES) 'BEGIN { print "slide_id,label,split,case_id" } \
	  { f = d "/" $$1 ".wbag"; if ((getline line < f) > 0) { close(f); print $$1 "," $$2 "," $$3 "," $$6 } }' $< >$@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

$(TCGA_MANIFEST): $(TCGA_TILES)/labels-$(TCGA_SPLIT_KEY).csv
	cd $(@D) && $(TCGA_BIN)/bag-pack -q --manifest $(<F) --bag-dir . --val-frac $(TCGA_VAL_FRAC) \
	  --seed $(TCGA_SEED) -o $(@F)

$(TCGA_RUN)/model: $(TCGA_MANIFEST)
	@mkdir -p $(@D)
	@printf '%s\n' '$(TCGA_FIT_ALL) $(TCGA_SPLIT_KEY)' >$(@D)/params.txt
	$(TCGA_BIN)/weno-fit -q -m $< $(TCGA_FIT_ALL) --threads $(THREADS) --device $(DEVICE) -o $@

$(TCGA_RUN)/scores.tsv: $(TCGA_RUN)/model
	$(TCGA_BIN)/weno-score -q $< -m $(TCGA_MANIFEST) --split val,test --threads $(THREADS) --device $(DEVICE) -o $@

$(TCGA_RUN)/auc.txt: $(TCGA_RUN)/scores.tsv
	$(TCGA_BIN)/auc-report -q -b 1000 --tsv $(@D)/auc.tsv --roc-svg $(@D)/roc.svg $< >$@.tmp && mv $@.tmp $@

tcga-lung-tiles: $(TCGA_TILES)/labels-$(TCGA_SPLIT_KEY).csv

tcga-lung: $(TCGA_RUN)/auc.txt
	@echo "== tcga-lung: $(TCGA_RUN) (tiles: $(TCGA_TILE_PARAMS); fit: $(TCGA_FIT_ALL)); bag AUC (no patch labels)"
	@grep -v '^instance' $(TCGA_RUN)/auc.txt
	@if [ -s $(TCGA_TILES)/failed.tsv ]; then \
	  echo "tcga-lung: $$(wc -l <$(TCGA_TILES)/failed.tsv) slides failed (joblog: $(TCGA_TILES)/joblog):" >&2; \
	  awk -F'\t' '{ printf "  %s: exit %s: %s\n", $$1, $$2, $$3 }' $(TCGA_TILES)/failed.tsv >&2; \
	  echo "hint: fix or remove them and run make again: only the failed jobs are redone" >&2; exit 1; fi

tcga-force:
