# pipelines/cifar10-mil.mk - the CIFAR-10-MIL study (the paper's construction on CIFAR-10) on the
# user's copy of the CIFAR-10 binary version (cifar-10-batches-bin: data_batch_1..5.bin,
# test_batch.bin; https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz).
#
#   make cifar10-mil CIFAR10=/data/cifar-10-batches-bin          every ratio, method and seed below
#   make cifar10-mil CIFAR10=... QUICK=1                         one ratio, ABMIL and ABMIL+WENO, a few epochs
#   make cifar10-mil-data CIFAR10=...                            only the bags
#
# Writes $(CIFAR10_OUT)/table.md shaped like the paper's Table 1 (pipelines/fmnist-table.sh).
# Variables: CIFAR10 (required), CIFAR10_POS (positive class, 9: truck), CIFAR10_RATIOS,
# CIFAR10_SEEDS, CIFAR10_EPOCHS, CIFAR10_METHODS (abmil abmil-weno dsmil dsmil-weno supervised
# meanpool maxpool), CIFAR10_WENO (options of the WENO rows; the authors' CIFAR/ABMIL setup uses
# w = 0.2), CIFAR10_FIT (options of every weno-fit), CIFAR10_MAX_BAGS (0: all), CIFAR10_OUT,
# THREADS, DEVICE, BUILD, TOOLS_NEED (all: build the tools first; empty: use BUILD as it is).  Every file is keyed on ratio, seed and method; delete a folder to redo it.

CIFAR10 ?=
CIFAR10_POS ?= 9
CIFAR10_RATIOS ?= 0.01 0.05 0.1 0.2 0.5 0.7
CIFAR10_SEEDS ?= 0 1 2
CIFAR10_EPOCHS ?= 100
CIFAR10_METHODS ?= abmil abmil-weno dsmil dsmil-weno supervised
CIFAR10_WENO ?= --w 0.2 --hpm threshold --hpm-tau 0.5 --hpm-epoch 10
CIFAR10_FIT ?=
CIFAR10_MAX_BAGS ?= 0
CIFAR10_OUT ?= runs/cifar10-mil
THREADS ?= 0
DEVICE ?= auto
BUILD ?= build
TOOLS_NEED ?= all

ifeq ($(QUICK),1)
CIFAR10_RATIOS := 0.1
CIFAR10_SEEDS := 0
CIFAR10_EPOCHS := 4
CIFAR10_METHODS := abmil abmil-weno
CIFAR10_MAX_BAGS := 50
CIFAR10_FIT := --optim adam --lr 1e-4
CIFAR10_WENO := --w 0.2
CIFAR10_OUT := runs/cifar10-mil-quick
endif

CIFAR10_FLAGS_abmil := --method teacher --teacher abmil
CIFAR10_FLAGS_abmil-weno = --method weno --teacher abmil $(CIFAR10_WENO)
CIFAR10_FLAGS_dsmil := --method teacher --teacher dsmil
CIFAR10_FLAGS_dsmil-weno = --method weno --teacher dsmil $(CIFAR10_WENO)
CIFAR10_FLAGS_supervised := --method supervised
CIFAR10_FLAGS_meanpool := --method meanpool
CIFAR10_FLAGS_maxpool := --method maxpool

.PHONY: cifar10-mil cifar10-mil-data cifar10-check
cifar10-check:
	@[ -n "$(CIFAR10)" ] || { echo "cifar10-mil: give the CIFAR-10 binary version: make cifar10-mil CIFAR10=/path/to/cifar-10-batches-bin" >&2; \
	  echo "hint: download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and unpack it (data_batch_1.bin ... test_batch.bin)" >&2; exit 2; }
	@[ -f "$(CIFAR10)/data_batch_1.bin" ] && [ -f "$(CIFAR10)/test_batch.bin" ] || { \
	  echo "cifar10-mil: $(CIFAR10): no data_batch_1.bin or test_batch.bin there" >&2; \
	  echo "hint: CIFAR10 is the cifar-10-batches-bin folder of the binary version (not the Python one)" >&2; exit 1; }

define CIFAR10_DATA_RULE
$(CIFAR10_OUT)/data-r$(1)-s$(2)/manifest.tsv: | cifar10-check $(TOOLS_NEED)
	$(BUILD)/bin/mil-synth -q --cifar $(CIFAR10) --pos-class $(CIFAR10_POS) --ratio $(1) --seed $(2) \
		--max-bags $(CIFAR10_MAX_BAGS) -o $$(@D)
endef

define CIFAR10_RUN_RULE
$(CIFAR10_OUT)/data-r$(1)-s$(2)/$(3).auc.tsv: $(CIFAR10_OUT)/data-r$(1)-s$(2)/manifest.tsv
	@echo "== CIFAR-10-MIL r = $(1), seed $(2), $(3)"
	$(BUILD)/bin/weno-fit -q -m $$< --epochs $(CIFAR10_EPOCHS) --seed $(2) --threads $(THREADS) \
		--device $(DEVICE) $$(CIFAR10_FLAGS_$(3)) $(CIFAR10_FIT) -o $$(@D)/$(3).model
	$(BUILD)/bin/weno-score -q $$(@D)/$(3).model -m $$< --split val,test --threads $(THREADS) \
		--device $(DEVICE) -o $$(@D)/$(3).scores.tsv
	$(BUILD)/bin/auc-report -q -b 1000 --tsv $$@ $$(@D)/$(3).scores.tsv > $$(@D)/$(3).auc.txt
endef

$(foreach r,$(CIFAR10_RATIOS),$(foreach s,$(CIFAR10_SEEDS),$(eval $(call CIFAR10_DATA_RULE,$(r),$(s)))))
$(foreach r,$(CIFAR10_RATIOS),$(foreach s,$(CIFAR10_SEEDS),$(foreach m,$(CIFAR10_METHODS),\
	$(eval $(call CIFAR10_RUN_RULE,$(r),$(s),$(m))))))

CIFAR10_DATA := $(foreach r,$(CIFAR10_RATIOS),$(foreach s,$(CIFAR10_SEEDS),$(CIFAR10_OUT)/data-r$(r)-s$(s)/manifest.tsv))
CIFAR10_AUCS := $(foreach r,$(CIFAR10_RATIOS),$(foreach s,$(CIFAR10_SEEDS),$(foreach m,$(CIFAR10_METHODS),\
	$(CIFAR10_OUT)/data-r$(r)-s$(s)/$(m).auc.tsv)))

cifar10-mil-data: cifar10-check $(CIFAR10_DATA)

cifar10-mil: cifar10-check $(CIFAR10_AUCS)
	BIN=$(BUILD)/bin bash pipelines/fmnist-table.sh $(CIFAR10_OUT)/table $(CIFAR10_AUCS)
	@echo "== $(CIFAR10_OUT)/table.md (epochs $(CIFAR10_EPOCHS), seeds $(CIFAR10_SEEDS), max bags $(CIFAR10_MAX_BAGS))"
	@cat $(CIFAR10_OUT)/table.md
