# pipelines/fmnist-mil.mk - Fashion-MNIST-MIL, the paper's synthetic MIL
# construction on Debian's dataset-fashion-mnist.
#
#   make fmnist-mil-data                 bags for every ratio in FMNIST_RATIOS
#   make demo                            the README's first command: one ratio, built and summarised
#
# Variables: FMNIST_DIR (IDX files), FMNIST_OUT (results), FMNIST_RATIOS,
# FMNIST_POS (positive class; 6 = shirt), SEED.

FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
FMNIST_OUT ?= runs/fmnist-mil
FMNIST_RATIOS ?= 0.01 0.05 0.1 0.2 0.5 0.7
FMNIST_POS ?= 6
SEED ?= 0

FMNIST_DATA := $(foreach r,$(FMNIST_RATIOS),$(FMNIST_OUT)/data-r$(r)-s$(SEED)/manifest.tsv)

.PHONY: fmnist-mil-data demo
fmnist-mil-data: $(FMNIST_DATA)

$(FMNIST_OUT)/data-r%-s$(SEED)/manifest.tsv: | all
	$(BUILD)/bin/mil-synth --idx $(FMNIST_DIR) --pos-class $(FMNIST_POS) --ratio $* --seed $(SEED) \
		-o $(FMNIST_OUT)/data-r$*-s$(SEED)

demo: all
	@echo "== building Fashion-MNIST-MIL (shirt positive, r = 0.1) into $(FMNIST_OUT)/demo"
	$(BUILD)/bin/mil-synth --idx $(FMNIST_DIR) --pos-class $(FMNIST_POS) --ratio 0.1 --seed $(SEED) \
		-o $(FMNIST_OUT)/demo
	@echo "== every bag checked (bag-info --check)"
	@$(BUILD)/bin/bag-info --check -q $(FMNIST_OUT)/demo/bags/*.wbag | tail -n 1
	@echo "== the first positive training bag"
	@$(BUILD)/bin/bag-info $(FMNIST_OUT)/demo/bags/train-p0000.wbag
	@echo "== bags per split and label"
	@awk -F'\t' '!/^#/ && NR > 2 { n[$$3 "\t" $$2]++ } END { for (k in n) print k "\t" n[k] }' \
		$(FMNIST_OUT)/demo/manifest.tsv | sort
