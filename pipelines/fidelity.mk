# pipelines/fidelity.mk - weno-fit's learning curves beside the authors' loop (issue #17).
#
#   make -j2 fidelity        S seeds of weno-fit and of the PyTorch transcription of the authors'
#                            loop (tests/golden/make_weno_golden.py curves: dropout on, PyTorch's
#                            own initialisation and random numbers) on one Fashion-MNIST-MIL
#                            construction, E epochs, in each configuration below; then the table:
#                            per epoch, mean +- sd of the four test AUCs for both, Welch's t-test,
#                            and the ABMIL teacher's instance AUC seed by seed.  A benchmark, not
#                            a test: about an hour on 2 idle cores with the defaults (each fit
#                            single-threaded, -j2 runs weno-fit and PyTorch side by side; an
#                            epoch is about 30 s of one core for either).  Needs Debian's
#                            python3-torch and python3-scipy (make bench-deps).
#
# Configurations (FIDELITY_CONFIGS), plain SGD lr 1e-3 and no mining in both:
#   authors   the defaults of the authors' image script (tCA): w = 0.2
#   wenofit   weno-fit's defaults: w = 0.1
# weno-fit runs with --eval-teacher-early (the teacher judged after its pass, as the authors do)
# and --eval-test; both train on the same training bags and are judged on the same test bags.
#
# Variables: FIDELITY_SEEDS (0 1 2 3 4), FIDELITY_EPOCHS (8), FIDELITY_MAX_BAGS (25 bags of each
# label per split: 5000 training and 5000 test instances), FIDELITY_RATIO (0.1), FIDELITY_CONFIGS,
# FIDELITY_OUT (runs/fidelity).
# Each run's log is kept; delete it to redo that run.

FIDELITY_SEEDS ?= 0 1 2 3 4
FIDELITY_EPOCHS ?= 8
FIDELITY_MAX_BAGS ?= 25
FIDELITY_RATIO ?= 0.1
FIDELITY_CONFIGS ?= authors wenofit
FIDELITY_OUT ?= runs/fidelity
FIDELITY_PY ?= /usr/bin/python3
FIDELITY_W_authors := 0.2
FIDELITY_W_wenofit := 0.1

FIDELITY_DATA := $(FIDELITY_OUT)/data/manifest.tsv

$(FIDELITY_DATA): | all
	$(BUILD)/bin/mil-synth -q --idx $(FMNIST_DIR) --pos-class $(FMNIST_POS) --ratio $(FIDELITY_RATIO) \
		--seed 0 --val-frac 0 --max-bags $(FIDELITY_MAX_BAGS) -o $(@D)

# $(call FIDELITY_RULES,config,seed)
define FIDELITY_RULES
$(FIDELITY_OUT)/$(1)/c-s$(2).tsv: $(FIDELITY_DATA) | all
	@mkdir -p $$(@D)
	@echo "== fidelity $(1) seed $(2): weno-fit"
	$(BUILD)/bin/weno-fit -q -m $$< --epochs $(FIDELITY_EPOCHS) --seed $(2) --w $(FIDELITY_W_$(1)) \
		--lr 1e-3 --hpm off --eval-test --eval-teacher-early --select last --threads 1 \
		-o $$(@D)/c-s$(2).model --log $$@.tmp
	rm -f $$(@D)/c-s$(2).model $$(@D)/c-s$(2).model.last
	mv $$@.tmp $$@
$(FIDELITY_OUT)/$(1)/py-s$(2).tsv: $(FIDELITY_DATA) | all
	@mkdir -p $$(@D)
	@echo "== fidelity $(1) seed $(2): the authors' loop in PyTorch"
	$(FIDELITY_PY) tests/golden/make_weno_golden.py curves -m $$< --bin $(BUILD)/bin --seed $(2) \
		--epochs $(FIDELITY_EPOCHS) --w $(FIDELITY_W_$(1)) --lr 1e-3 --threads 1 --log $$@.tmp
	mv $$@.tmp $$@
endef
$(foreach c,$(FIDELITY_CONFIGS),$(foreach s,$(FIDELITY_SEEDS),$(eval $(call FIDELITY_RULES,$(c),$(s)))))

FIDELITY_LOGS := $(foreach c,$(FIDELITY_CONFIGS),$(foreach s,$(FIDELITY_SEEDS),\
	$(FIDELITY_OUT)/$(c)/c-s$(s).tsv $(FIDELITY_OUT)/$(c)/py-s$(s).tsv))

.PHONY: fidelity
fidelity: $(FIDELITY_LOGS)
	$(FIDELITY_PY) pipelines/fidelity-table.py --out $(FIDELITY_OUT)/fidelity \
		$(foreach c,$(FIDELITY_CONFIGS),--config $(c)=$(FIDELITY_OUT)/$(c))
	@cat $(FIDELITY_OUT)/fidelity.md
