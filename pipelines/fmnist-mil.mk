# pipelines/fmnist-mil.mk - the Fashion-MNIST-MIL study (the paper's Table 1
# construction) on Debian's dataset-fashion-mnist.
#
#   make fmnist-mil                 every ratio, method and seed below; writes $(FMNIST_OUT)/table.md
#                                   (test AUCs of the epoch chosen on validation and of the last epoch)
#   make fmnist-mil QUICK=1         one ratio, ABMIL and ABMIL+WENO, a few epochs: minutes on 2 cores
#   make demo                       the README's first command: QUICK=1 plus a look at the bags
#   make fmnist-mil-data            only the bags
#
# Variables: FMNIST_RATIOS, FMNIST_SEEDS, FMNIST_EPOCHS, FMNIST_METHODS (abmil abmil-weno dsmil
# dsmil-weno supervised meanpool maxpool), FMNIST_WENO (options of the WENO rows), FMNIST_FIT
# (options of every weno-fit), FMNIST_MAX_BAGS (0: all), FMNIST_POS, FMNIST_DIR, FMNIST_OUT,
# THREADS, DEVICE.  Every file is keyed on ratio, seed and method, so make redoes only what a
# change affects; delete a folder to redo it.

FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
FMNIST_POS ?= 6
FMNIST_RATIOS ?= 0.01 0.05 0.1 0.2 0.5 0.7
FMNIST_SEEDS ?= 0 1 2
FMNIST_EPOCHS ?= 100
FMNIST_METHODS ?= abmil abmil-weno dsmil dsmil-weno supervised
# The WENO rows mine hard positives from epoch 11 with the threshold chosen on the validation bags
# (the paper's grid search; one run per threshold, the chosen one's files take the row's names):
# a fixed 0.5 left FMNIST's positive bags nearly empty (results/fmnist-mil-r10-full-30ep.md).
FMNIST_WENO ?= --hpm-search 0.5,0.7,0.9 --hpm-epoch 10
FMNIST_FIT ?=
FMNIST_MAX_BAGS ?= 0
FMNIST_OUT ?= runs/fmnist-mil
THREADS ?= 0
DEVICE ?= auto

ifeq ($(QUICK),1)
FMNIST_RATIOS := 0.1
FMNIST_SEEDS := 0
FMNIST_EPOCHS := 4
FMNIST_METHODS := abmil abmil-weno
FMNIST_MAX_BAGS := 50
FMNIST_FIT := --optim adam --lr 1e-4
FMNIST_WENO :=
FMNIST_OUT := runs/fmnist-mil-quick
endif

FMNIST_FLAGS_abmil := --method teacher --teacher abmil
# The WENO rows keep a second model, the epoch of the best validation bag AUC of the teacher
# (MODEL.teacher_bag): the table reads their bag AUC from it, as the teachers alone are chosen.
FMNIST_FLAGS_abmil-weno := --method weno --teacher abmil --keep-best teacher_bag $(FMNIST_WENO)
FMNIST_FLAGS_dsmil := --method teacher --teacher dsmil
FMNIST_FLAGS_dsmil-weno := --method weno --teacher dsmil --keep-best teacher_bag $(FMNIST_WENO)
FMNIST_FLAGS_supervised := --method supervised
FMNIST_FLAGS_meanpool := --method meanpool
FMNIST_FLAGS_maxpool := --method maxpool

define FMNIST_DATA_RULE
$(FMNIST_OUT)/data-r$(1)-s$(2)/manifest.tsv: | all
	$(BUILD)/bin/mil-synth -q --idx $(FMNIST_DIR) --pos-class $(FMNIST_POS) --ratio $(1) --seed $(2) \
		--max-bags $(FMNIST_MAX_BAGS) -o $$(@D)
endef

define FMNIST_RUN_RULE
$(FMNIST_OUT)/data-r$(1)-s$(2)/$(3).auc.tsv: $(FMNIST_OUT)/data-r$(1)-s$(2)/manifest.tsv | all
	@echo "== r = $(1), seed $(2), $(3)"
	$(BUILD)/bin/weno-fit -m $$< --epochs $(FMNIST_EPOCHS) --seed $(2) --threads $(THREADS) \
		--device $(DEVICE) $(FMNIST_FLAGS_$(3)) $(FMNIST_FIT) -o $$(@D)/$(3).model
	$(BUILD)/bin/weno-score -q $$(@D)/$(3).model.last -m $$< --split val,test --threads $(THREADS) \
		--device $(DEVICE) -o $$(@D)/$(3).last.scores.tsv
	$(BUILD)/bin/auc-report -b 1000 --tsv $$(@D)/$(3).last.auc.tsv $$(@D)/$(3).last.scores.tsv \
		> $$(@D)/$(3).last.auc.txt
	if [ -e $$(@D)/$(3).model.teacher_bag ]; then \
	  $(BUILD)/bin/weno-score -q $$(@D)/$(3).model.teacher_bag -m $$< --split val,test --threads $(THREADS) \
		--device $(DEVICE) -o $$(@D)/$(3).teacher_bag.scores.tsv && \
	  $(BUILD)/bin/auc-report -b 1000 --tsv $$(@D)/$(3).teacher_bag.auc.tsv $$(@D)/$(3).teacher_bag.scores.tsv \
		> $$(@D)/$(3).teacher_bag.auc.txt; fi
	$(BUILD)/bin/weno-score -q $$(@D)/$(3).model -m $$< --split val,test --threads $(THREADS) \
		--device $(DEVICE) -o $$(@D)/$(3).scores.tsv
	$(BUILD)/bin/auc-report -b 1000 --tsv $$@ $$(@D)/$(3).scores.tsv > $$(@D)/$(3).auc.txt
endef

$(foreach r,$(FMNIST_RATIOS),$(foreach s,$(FMNIST_SEEDS),$(eval $(call FMNIST_DATA_RULE,$(r),$(s)))))
$(foreach r,$(FMNIST_RATIOS),$(foreach s,$(FMNIST_SEEDS),$(foreach m,$(FMNIST_METHODS),\
	$(eval $(call FMNIST_RUN_RULE,$(r),$(s),$(m))))))

FMNIST_DATA := $(foreach r,$(FMNIST_RATIOS),$(foreach s,$(FMNIST_SEEDS),$(FMNIST_OUT)/data-r$(r)-s$(s)/manifest.tsv))
FMNIST_AUCS := $(foreach r,$(FMNIST_RATIOS),$(foreach s,$(FMNIST_SEEDS),$(foreach m,$(FMNIST_METHODS),\
	$(FMNIST_OUT)/data-r$(r)-s$(s)/$(m).auc.tsv)))

.PHONY: fmnist-mil fmnist-mil-data demo
fmnist-mil-data: $(FMNIST_DATA)

fmnist-mil: $(FMNIST_AUCS)
	BIN=$(BUILD)/bin bash pipelines/fmnist-table.sh $(FMNIST_OUT)/table $(FMNIST_AUCS) \
		$(FMNIST_AUCS:.auc.tsv=.last.auc.tsv)
	@echo "== $(FMNIST_OUT)/table.md (epochs $(FMNIST_EPOCHS), seeds $(FMNIST_SEEDS), max bags $(FMNIST_MAX_BAGS))"
	@cat $(FMNIST_OUT)/table.md

demo:
	@$(MAKE) -s --no-print-directory fmnist-mil QUICK=1
	@echo "== the first positive test bag, checked"
	@$(BUILD)/bin/bag-info --check runs/fmnist-mil-quick/data-r0.1-s0/bags/test-p0000.wbag
	@echo "== ABMIL+WENO on the test split (student and teacher, bag and instance level)"
	@cat runs/fmnist-mil-quick/data-r0.1-s0/abmil-weno.auc.txt
