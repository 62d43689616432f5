# pipelines/camelyon16.mk - the Camelyon16 study, end to end.
#
#   make camelyon16 CAMELYON16=/data/camelyon16     the whole study on a download (either layout)
#   make camelyon16                                 the same on a small generated Camelyon16-shaped set
#   make camelyon16 CAMELYON16=... FEATURES=/feats   CLAM/TRIDENT .h5 features instead of tiling (mlp encoder)
#   make camelyon16-list / camelyon16-tiles          only the slide list / only the tiling
#
# Steps: list the slides (pipelines/c16-list.sh: label, split, annotation; test_049 removed; ids
# lowercase) -> tile every slide with GNU Parallel, one slide per job (pipelines/c16-tile-one.sh:
# wsi-tile | bag-pack with its id and label; each patch's tumour fraction from the ASAP XML, 0 on
# normal slides) -> manifest with the official split plus a seeded validation split carved from
# training -> weno-fit -> weno-score on val and test -> auc-report -> froc-report, Camelyon16's
# lesion-level FROC, for the student and the teacher -> heatmaps (PNG + GeoJSON) of the test slides
# with the student's detections marked.
#
# A slide that fails does not stop the others: its job fails in the joblog
# ($(C16_OUT)/tiles-KEY/joblog), its stderr is kept in tiles-KEY/logs/ID.err, the run goes on
# without it, and at the end make lists every failure with its reason and exits non-zero.
# Running again retries only the failed jobs (--resume-failed) and skips the done ones.
# Tiles go to tiles-KEY, KEY a short hash of the tiling parameters; training to
# tiles-KEY/fit-KEY2, KEY2 a hash of the training parameters: a changed parameter redoes exactly
# what it affects.
#
# Variables (defaults for a real download; the synthetic set's in brackets):
#   CAMELYON16         the download (training/ + testing/, or images/ + annotations/ + reference.csv);
#                      empty: generate one with slide-synth --camelyon into $(C16_OUT)/synth
#   C16_OUT            outputs [runs/camelyon16 | runs/camelyon16-synth]
#   C16_SYNTH_OPTS     slide-synth options of the generated set
#                      [--normal 6 --tumor 6 --test-normal 4 --test-tumor 4 --size 4096x3072]
#   C16_TILE           wsi-tile options.  Real: --mag 5 --size 512 --threads 1, the WENO authors'
#                      protocol (5x, 512-px patches, about 1 mm), read from level 3 of a 40x slide;
#                      use --mag 5 --size 224 for the same magnification at a third of the compute.
#                      [--mpp 2 --size 32 --a_t 1 --threads 1: CLAM's default a_t removes all the
#                      tissue of small synthetic slides]
#   C16_JOBS           GNU Parallel jobs (-j) [100%: one per core]
#   PARALLEL_OPTS      more GNU Parallel options, e.g. --sshloginfile nodes.txt (same paths there)
#   C16_RESUME         --resume-failed (redo failed jobs, skip done ones); --resume skips both
#   FEATURES           folder of <slide>.h5 feature files (CLAM features/h5_files, TRIDENT
#                      features_*/): imported with bag-pack --h5 instead of tiling (labels unknown)
#   C16_ENCODER        resnet18 (mlp with FEATURES) [cifar: 32x32x3 pixel bags]
#   C16_METHOD         --method weno --teacher abmil
#   C16_EPOCHS         50 [6]
#   C16_FIT            more weno-fit options [--optim adam --lr 1e-4]
#                      (real: --optim adam --lr 1e-4 --accum 4 --batch 64 --hpm threshold --hpm-epoch 10)
#   C16_POS_THRESHOLD  a patch is positive at this tumour-area fraction: 0.25 (the WENO authors')
#   C16_VAL_FRAC       training slides moved to validation, stratified: 0.1 [0.3]
#   C16_SEED           seed of the validation split and of training: 0
#   C16_HEATMAP        weno-heatmap options: --score student --alpha 0.5 --max-side 2048
#   C16_PATCH          patch side in level-0 px for the heatmaps and the FROC, when the bags do not
#                      record it (feature files without CLAM's patch_size/patch_level attributes)
#   C16_FROC           froc-report options: --rule maxima --threshold 0.5 --bootstrap 1000
#   C16_FROC_MPP       µm per level-0 pixel the FROC assumes: 0.243, the challenge's constant [2]
#   C16_FROC_LEVEL     level of the FROC's evaluation masks: 5, the challenge's [2]; the generated
#                      slides say 0.25 µm/px but are 1 mm wide, each tumour an isolated tumour cell
#                      cluster: their FROC takes them as 8 mm wide, at level 2, whose 8 µm pixels are
#                      the challenge's level-5 pixels (lib/wsi/FROC.md)
#   C16_FROC_SCORES    whose FROC: student teacher (a method without a teacher: student)
#   C16_HEATMAP_DETS   whose detections the heatmaps mark: student (empty: none)
#   THREADS, DEVICE    weno-fit/weno-score threads and device
#   BUILD              where the tools are (build; bin/ under it)
#   C16_NEED           prerequisite that builds the tools (all; empty to use BUILD as it is)

C16_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD ?= build
THREADS ?= 0
DEVICE ?= auto
CAMELYON16 ?=
FEATURES ?=
PARALLEL_OPTS ?=
C16_NEED ?= all
C16_JOBS ?= 100%
C16_RESUME ?= --resume-failed
C16_POS_THRESHOLD ?= 0.25
C16_SEED ?= 0
C16_METHOD ?= --method weno --teacher abmil
C16_HEATMAP ?= --score student --alpha 0.5 --max-side 2048
C16_PATCH ?=

ifeq ($(strip $(CAMELYON16)),)
C16_OUT ?= runs/camelyon16-synth
C16_SYNTH_OPTS ?= --normal 6 --tumor 6 --test-normal 4 --test-tumor 4 --size 4096x3072
C16_TILE ?= --mpp 2 --size 32 --a_t 1 --threads 1
C16_ENCODER ?= cifar
C16_EPOCHS ?= 6
C16_FIT ?= --optim adam --lr 1e-4
C16_VAL_FRAC ?= 0.3
C16_DATA = $(C16_OUT)/synth
C16_DATA_DEP = $(C16_OUT)/synth/.done
else
C16_OUT ?= runs/camelyon16
C16_TILE ?= --mag 5 --size 512 --threads 1
C16_ENCODER ?= $(if $(FEATURES),mlp,resnet18)
C16_EPOCHS ?= 50
C16_FIT ?= --optim adam --lr 1e-4 --accum 4 $(if $(FEATURES),,--batch 64) --hpm threshold --hpm-epoch 10
C16_VAL_FRAC ?= 0.1
C16_DATA = $(CAMELYON16)
C16_DATA_DEP =
endif

C16_BIN = $(abspath $(BUILD))/bin
C16_TILE_PARAMS = $(if $(FEATURES),features $(abspath $(FEATURES)),$(C16_TILE))
C16_TILE_KEY := $(shell printf '%s' '$(C16_TILE_PARAMS)' | sha1sum | cut -c1-8)
C16_TILES = $(C16_OUT)/tiles-$(C16_TILE_KEY)
C16_FIT_ALL = --encoder $(C16_ENCODER) --epochs $(C16_EPOCHS) --seed $(C16_SEED) $(C16_METHOD) $(C16_FIT) \
	--pos-threshold $(C16_POS_THRESHOLD)
C16_FIT_KEY := $(shell printf '%s' '$(C16_FIT_ALL) val=$(C16_VAL_FRAC)' | sha1sum | cut -c1-8)
C16_MANIFEST = $(C16_TILES)/manifest-v$(C16_VAL_FRAC)-s$(C16_SEED).tsv
C16_RUN = $(C16_TILES)/fit-$(C16_FIT_KEY)

.PHONY: camelyon16 camelyon16-list camelyon16-tiles c16-force

# the generated set
$(C16_OUT)/synth/.done: | $(C16_NEED)
	@echo "== camelyon16: no CAMELYON16=/path given: generating a small Camelyon16-shaped set in $(@D)"
	rm -rf $(@D) && $(C16_BIN)/slide-synth -q --camelyon $(@D) $(C16_SYNTH_OPTS) && touch $@

# the slide list (rewritten only when it changes, so later steps stay done)
$(C16_OUT)/slides.tsv: $(C16_DATA_DEP) c16-force
	@mkdir -p $(@D)
	@[ -n "$(C16_DATA)" ] && [ -d "$(C16_DATA)" ] || { echo "camelyon16: CAMELYON16=$(C16_DATA): no such folder" >&2; \
	  echo "hint: give the folder that holds training/ and testing/ (or images/ and reference.csv)" >&2; exit 1; }
	bash $(C16_DIR)/c16-list.sh $(C16_DATA) >$@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# an ASAP XML without annotations: every patch of a normal slide gets tumour fraction 0
$(C16_OUT)/empty.xml:
	@mkdir -p $(@D)
	printf '<?xml version="1.0"?>\n<ASAP_Annotations><Annotations></Annotations><AnnotationGroups></AnnotationGroups></ASAP_Annotations>\n' >$@

# tiling: one GNU Parallel job per slide; never stops the run (failures are listed at the end)
$(C16_TILES)/labels.csv: $(C16_OUT)/slides.tsv $(C16_OUT)/empty.xml c16-force | $(C16_NEED)
	@mkdir -p $(C16_TILES)/logs
	@printf '%s\n' '$(C16_TILE_PARAMS)' >$(C16_TILES)/params.txt
	@awk -F'\t' -v OFS='\t' -v empty=$(abspath $(C16_OUT)/empty.xml) \
	  '{ x = $$5 != "" ? $$5 : ($$2 == 0 ? empty : "-"); print $$1, $$2, $$4, x }' $< >$(C16_TILES)/jobs.tsv
	@echo "== camelyon16: tiling $$(wc -l <$<) slides into $(C16_TILES) ($(C16_TILE_PARAMS))"
	$(if $(FEATURES),FEATURES=$(abspath $(FEATURES))) parallel --colsep '\t' --joblog $(C16_TILES)/joblog $(C16_RESUME) \
	  -j $(C16_JOBS) $(if $(FEATURES),--env FEATURES) $(PARALLEL_OPTS) \
	  bash $(C16_DIR)/c16-tile-one.sh $(C16_BIN) $(abspath $(C16_TILES)) {1} {2} {3} {4} $(C16_TILE) \
	  :::: $(C16_TILES)/jobs.tsv || true
	@bash $(C16_DIR)/c16-failures.sh $(C16_TILES)/joblog $(C16_TILES) $(C16_TILES)/jobs.tsv >$(C16_TILES)/failed.tsv
	@awk -F'\t' -v d=$(C16_TILES) 'BEGIN { print "slide_id,label,split" } \
	  { f = d "/" $$1 ".wbag"; if ((getline line < f) > 0) { close(f); print $$1 "," $$2 "," $$3 } }' $< >$@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
	@n=$$(wc -l <$(C16_TILES)/failed.tsv); [ $$n = 0 ] || \
	  echo "camelyon16: $$n slides failed (listed at the end); going on with the others" >&2

$(C16_MANIFEST): $(C16_TILES)/labels.csv
	cd $(@D) && $(C16_BIN)/bag-pack -q --manifest labels.csv --bag-dir . --val-frac $(C16_VAL_FRAC) \
	  --seed $(C16_SEED) -o $(@F)

$(C16_RUN)/model: $(C16_MANIFEST)
	@mkdir -p $(@D)
	@printf '%s\n' '$(C16_FIT_ALL) val=$(C16_VAL_FRAC)' >$(@D)/params.txt
	$(C16_BIN)/weno-fit -q -m $< $(C16_FIT_ALL) --threads $(THREADS) --device $(DEVICE) -o $@

$(C16_RUN)/scores.tsv: $(C16_RUN)/model
	$(C16_BIN)/weno-score -q $< -m $(C16_MANIFEST) --split val,test --threads $(THREADS) --device $(DEVICE) -o $@

$(C16_RUN)/auc.txt: $(C16_RUN)/scores.tsv
	$(C16_BIN)/auc-report -q -b 1000 --pos-threshold $(C16_POS_THRESHOLD) --tsv $(@D)/auc.tsv \
	  --roc-svg $(@D)/roc.svg $< >$@.tmp && mv $@.tmp $@

# lesion-level FROC: the test slides' annotations linked by slide id, froc-report per score
C16_FROC ?= --rule maxima --threshold 0.5 --bootstrap 1000
C16_FROC_MPP ?= $(if $(strip $(CAMELYON16)),0.243,2)
C16_FROC_LEVEL ?= $(if $(strip $(CAMELYON16)),5,2)
C16_FROC_SCORES ?= student teacher
C16_HEATMAP_DETS ?= student
C16_FROC_ANN = $(C16_OUT)/froc-annotations

$(C16_FROC_ANN)/.done: $(C16_OUT)/slides.tsv
	@rm -rf $(@D) && mkdir -p $(@D)
	@awk -F'\t' '$$3 == "test" && $$5 != "" { print $$1 "\t" $$5 }' $< | while IFS="$$(printf '\t')" read -r id x; do \
	  ln -s "$$(realpath "$$x")" "$(@D)/$$id.$${x##*.}" || exit 1; done
	@touch $@

C16_FROC_ALL = $(if $(C16_PATCH),--patch $(C16_PATCH),--bags $(C16_TILES)) --mpp $(C16_FROC_MPP) \
	--level $(C16_FROC_LEVEL) $(C16_FROC)

# the FROC's parameters (rewritten only when they change, so that a changed one redoes the FROC)
$(C16_RUN)/froc-params.txt: $(C16_RUN)/scores.tsv c16-force
	@printf '%s\n' '$(C16_FROC_ALL)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

$(C16_RUN)/froc-%.txt: $(C16_RUN)/scores.tsv $(C16_FROC_ANN)/.done $(C16_RUN)/froc-params.txt
	$(C16_BIN)/froc-report -q --scores $< --score $* --split test -a $(C16_FROC_ANN) $(C16_FROC_ALL) \
	  --title "camelyon16, $*: lesion-level FROC" --json-out $(@D)/froc-$*.json --tsv $(@D)/froc-$*.tsv \
	  --svg $(@D)/froc-$*.svg --lesions $(@D)/froc-$*-lesions.tsv --detections-out $(@D)/detections-$* >$@.tmp
	@mv $@.tmp $@

$(C16_RUN)/heatmaps/.done: $(C16_RUN)/scores.tsv $(if $(C16_HEATMAP_DETS),$(C16_RUN)/froc-$(C16_HEATMAP_DETS).txt)
	@mkdir -p $(@D)
	@echo "== camelyon16: heatmaps of the test slides in $(@D)"
	awk -F'\t' 'NR == FNR { if ($$3 == "test") t[$$1] = 1; next } ($$1 in t) { print $$1 "\t" $$4 }' \
	  $(C16_MANIFEST) $(C16_OUT)/slides.tsv | \
	  parallel --colsep '\t' -j $(C16_JOBS) $(C16_BIN)/weno-heatmap -q --slide {2} --scores $< \
	  --bag $(C16_TILES)/{1}.wbag $(if $(C16_PATCH),--patch $(C16_PATCH)) $(C16_HEATMAP) -o $(@D)/{1}.png --geojson $(@D)/{1}.geojson \
	  $(if $(C16_HEATMAP_DETS),--detections $(abspath $(C16_RUN))/detections-$(C16_HEATMAP_DETS)/{1}.csv)
	@touch $@

camelyon16-list: $(C16_OUT)/slides.tsv
	@cat $<

camelyon16-tiles: $(C16_TILES)/labels.csv

camelyon16: $(C16_RUN)/auc.txt $(foreach s,$(C16_FROC_SCORES),$(C16_RUN)/froc-$(s).txt) $(C16_RUN)/heatmaps/.done
	@echo "== camelyon16: $(C16_RUN) (tiles: $(C16_TILE_PARAMS); fit: $(C16_FIT_ALL))"
	@cat $(C16_RUN)/auc.txt
	@for s in $(C16_FROC_SCORES); do echo "== lesion-level FROC, $$s (froc-report $(C16_FROC_ALL))"; \
	  cat $(C16_RUN)/froc-$$s.txt; done
	@echo "== heatmaps: $$(ls $(C16_RUN)/heatmaps/*.png 2>/dev/null | wc -l) PNG + GeoJSON in $(C16_RUN)/heatmaps"
	@if [ -s $(C16_TILES)/failed.tsv ]; then \
	  echo "camelyon16: $$(wc -l <$(C16_TILES)/failed.tsv) slides failed (joblog: $(C16_TILES)/joblog):" >&2; \
	  awk -F'\t' '{ printf "  %s: exit %s: %s\n", $$1, $$2, $$3 }' $(C16_TILES)/failed.tsv >&2; \
	  echo "hint: fix or remove them and run make again: only the failed jobs are redone" >&2; exit 1; fi

c16-force:
