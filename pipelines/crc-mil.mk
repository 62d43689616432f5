# pipelines/crc-mil.mk - the CRC-MIL study: the paper's MIL construction on the user's copy of the
# NCT-CRC-HE-100K training images and the CRC-VAL-HE-7K test images (Kather et al. 2019,
# https://zenodo.org/record/1214456; 224x224 px H&E patches in class folders ADI BACK DEB LYM MUC
# MUS NORM STR TUM), tumour (TUM) positive, the resnet18 encoder and the authors' CRC student
# dropout.
#
#   make crc-mil CRC=/data/crc       CRC holds NCT-CRC-HE-100K/ and CRC-VAL-HE-7K/
#   make crc-mil CRC=... QUICK=1     one ratio, ABMIL and ABMIL+WENO, a few epochs, few bags
#   make crc-mil-data CRC=...        only the bags
#
# Writes $(CRC_OUT)/table.md shaped like the paper's tables (pipelines/fmnist-table.sh).
# Variables: CRC (required), CRC_TRAIN, CRC_TEST (the two folder names under CRC), CRC_POS
# (positive class, TUM), CRC_RATIOS, CRC_SEEDS, CRC_EPOCHS, CRC_METHODS (abmil abmil-weno dsmil
# dsmil-weno supervised meanpool maxpool), CRC_WENO (options of the WENO rows), CRC_FIT (options
# of every weno-fit: the encoder is resnet18 for 224 px), CRC_MAX_BAGS (0: all), CRC_OUT,
# THREADS, DEVICE, BUILD, TOOLS_NEED (all: build the tools first; empty: use BUILD as it is).

CRC ?=
CRC_TRAIN ?= NCT-CRC-HE-100K
CRC_TEST ?= CRC-VAL-HE-7K
CRC_POS ?= TUM
CRC_RATIOS ?= 0.05 0.1 0.2
CRC_SEEDS ?= 0 1 2
CRC_EPOCHS ?= 50
CRC_METHODS ?= abmil abmil-weno dsmil dsmil-weno supervised
CRC_WENO ?= --student-dropout 0.5 --hpm threshold --hpm-tau 0.5 --hpm-epoch 10
CRC_FIT ?= --encoder resnet18 --batch 64
CRC_MAX_BAGS ?= 0
CRC_OUT ?= runs/crc-mil
THREADS ?= 0
DEVICE ?= auto
BUILD ?= build
TOOLS_NEED ?= all

ifeq ($(QUICK),1)
CRC_RATIOS := 0.1
CRC_SEEDS := 0
CRC_EPOCHS := 2
CRC_METHODS := abmil abmil-weno
CRC_MAX_BAGS := 10
CRC_FIT := --encoder resnet18 --batch 32 --optim adam --lr 1e-4
CRC_WENO := --student-dropout 0.5
CRC_OUT := runs/crc-mil-quick
endif

CRC_FLAGS_abmil := --method teacher --teacher abmil
CRC_FLAGS_abmil-weno = --method weno --teacher abmil $(CRC_WENO)
CRC_FLAGS_dsmil := --method teacher --teacher dsmil
CRC_FLAGS_dsmil-weno = --method weno --teacher dsmil $(CRC_WENO)
CRC_FLAGS_supervised := --method supervised
CRC_FLAGS_meanpool := --method meanpool
CRC_FLAGS_maxpool := --method maxpool

.PHONY: crc-mil crc-mil-data crc-check
crc-check:
	@[ -n "$(CRC)" ] || { echo "crc-mil: give the CRC images: make crc-mil CRC=/path (holding $(CRC_TRAIN)/ and $(CRC_TEST)/)" >&2; \
	  echo "hint: download NCT-CRC-HE-100K.zip and CRC-VAL-HE-7K.zip from https://zenodo.org/record/1214456 and unzip both into one folder" >&2; exit 2; }
	@[ -d "$(CRC)/$(CRC_TRAIN)/$(CRC_POS)" ] && [ -d "$(CRC)/$(CRC_TEST)/$(CRC_POS)" ] || { \
	  echo "crc-mil: $(CRC): expected the class folders $(CRC_TRAIN)/$(CRC_POS)/ and $(CRC_TEST)/$(CRC_POS)/ there" >&2; \
	  echo "hint: set CRC_TRAIN and CRC_TEST to the folder names if yours differ (e.g. NCT-CRC-HE-100K-NONORM)" >&2; exit 1; }

define CRC_DATA_RULE
$(CRC_OUT)/data-r$(1)-s$(2)/manifest.tsv: | crc-check $(TOOLS_NEED)
	$(BUILD)/bin/mil-synth -q --folder $(CRC)/$(CRC_TRAIN) --test-folder $(CRC)/$(CRC_TEST) --pos-class $(CRC_POS) --ratio $(1) --seed $(2) \
		--max-bags $(CRC_MAX_BAGS) -o $$(@D)
endef

define CRC_RUN_RULE
$(CRC_OUT)/data-r$(1)-s$(2)/$(3).auc.tsv: $(CRC_OUT)/data-r$(1)-s$(2)/manifest.tsv
	@echo "== CRC-MIL r = $(1), seed $(2), $(3)"
	$(BUILD)/bin/weno-fit -q -m $$< --epochs $(CRC_EPOCHS) --seed $(2) --threads $(THREADS) \
		--device $(DEVICE) $$(CRC_FLAGS_$(3)) $(CRC_FIT) -o $$(@D)/$(3).model
	$(BUILD)/bin/weno-score -q $$(@D)/$(3).model -m $$< --split val,test --threads $(THREADS) \
		--device $(DEVICE) -o $$(@D)/$(3).scores.tsv
	$(BUILD)/bin/auc-report -q -b 1000 --tsv $$@ $$(@D)/$(3).scores.tsv > $$(@D)/$(3).auc.txt
endef

$(foreach r,$(CRC_RATIOS),$(foreach s,$(CRC_SEEDS),$(eval $(call CRC_DATA_RULE,$(r),$(s)))))
$(foreach r,$(CRC_RATIOS),$(foreach s,$(CRC_SEEDS),$(foreach m,$(CRC_METHODS),\
	$(eval $(call CRC_RUN_RULE,$(r),$(s),$(m))))))

CRC_DATA := $(foreach r,$(CRC_RATIOS),$(foreach s,$(CRC_SEEDS),$(CRC_OUT)/data-r$(r)-s$(s)/manifest.tsv))
CRC_AUCS := $(foreach r,$(CRC_RATIOS),$(foreach s,$(CRC_SEEDS),$(foreach m,$(CRC_METHODS),\
	$(CRC_OUT)/data-r$(r)-s$(s)/$(m).auc.tsv)))

crc-mil-data: crc-check $(CRC_DATA)

crc-mil: crc-check $(CRC_AUCS)
	BIN=$(BUILD)/bin bash pipelines/fmnist-table.sh $(CRC_OUT)/table $(CRC_AUCS)
	@echo "== $(CRC_OUT)/table.md (epochs $(CRC_EPOCHS), seeds $(CRC_SEEDS), max bags $(CRC_MAX_BAGS))"
	@cat $(CRC_OUT)/table.md
