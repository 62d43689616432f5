# Makefile - builds the WENO toolkit.
#
#   make                  every tool into $(BUILD)/bin (CPU; CUDA too when found)
#   make test             every unit, CLI and fuzz-replay test; ends "N passed, N failed"
#   make bench            the benchmarks (slow; not part of the tests)
#   make probe            the probe suite at full scale (tests/probe; make test runs it small)
#   make deps             installs the missing Debian packages (root: apt-get; a user: sudo)
#   make deps demo        and then the README's demo in a new make (make deps test: the tests)
#   make bench-deps       and the baselines the benchmarks compare with (PyTorch, openslide-python)
#   make fuzz             libFuzzer targets with clang (FUZZ_SECONDS=60 make fuzz-run)
#   make CUDA=0|1         force the CUDA backend off or on (default: probe)
#   make SANITIZE=address,undefined test    the suite under ASan and UBSan
#   make emu              the CUDA backend on a CPU emulation (tests/emu; make test builds it);
#                         EMU_SANITIZE=address for it under ASan (rm -rf $(BUILD)/emu first)
#   make WERROR=1         warnings are errors (CI)

.DEFAULT_GOAL := all
VERSION := 0.1.0
BUILD ?= build
CC ?= cc
OPT ?= -O2
WERROR ?= 0
SANITIZE ?=
CUDA ?= auto

PKGS := libzstd zlib hdf5 libpng libjpeg libtiff-4 libxml-2.0 openslide openblas
DEB_PKGS := build-essential pkg-config libzstd-dev zlib1g-dev libhdf5-dev libpng-dev \
	libjpeg-dev libtiff-dev libxml2-dev libopenslide-dev libopenblas-dev zstd parallel \
	dataset-fashion-mnist clang libclang-rt-dev python3 python3-numpy python3-scipy python3-skimage

# `make deps` installs what is missing of DEB_PKGS: with apt-get as root,
# through sudo for a user who has it, and otherwise prints the command to run
# as root and fails.  Nothing missing: nothing to do, root or not.
# $(call apt_install,packages)
define apt_install
	@missing=; for p in $(1); do \
	  case "$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null)" in \
	    *" installed") ;; *) missing="$$missing $$p";; esac; done; \
	if [ -z "$$missing" ]; then echo "deps: all $(words $(1)) packages are installed"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then run=; export DEBIAN_FRONTEND=noninteractive; \
	elif command -v sudo >/dev/null 2>&1; then run="sudo env DEBIAN_FRONTEND=noninteractive"; \
	  echo "deps: installing$$missing with sudo"; \
	else echo "deps: missing:$$missing" >&2; \
	  echo "deps: not root and no sudo: run this as root, then make again:" >&2; \
	  echo "  apt-get update && apt-get install -y$$missing" >&2; exit 1; fi; \
	$$run apt-get update -qq && $$run apt-get install -y -qq$$missing
endef

.PHONY: deps bench-deps
deps:
	$(call apt_install,$(DEB_PKGS))

# the baselines that `make bench` measures against (PyTorch twins, openslide-python)
BENCH_PKGS := python3-torch python3-openslide python3-numpy python3-sklearn openslide-tools hyperfine
bench-deps: deps
	$(call apt_install,$(BENCH_PKGS))

# `make deps demo`, `make deps test`: the library flags below are read from
# pkg-config when make starts, before deps has installed anything, so with a
# deps goal among others this make runs deps and then a new make for the rest
# (and reads nothing below: a fresh machine may not have pkg-config yet).
DEPS_GOALS := $(filter deps bench-deps,$(MAKECMDGOALS))
AFTER_DEPS := $(filter-out deps bench-deps,$(MAKECMDGOALS))
ifneq ($(DEPS_GOALS),)
ifneq ($(AFTER_DEPS),)
.PHONY: $(AFTER_DEPS)
$(firstword $(AFTER_DEPS)): $(DEPS_GOALS)
	@$(MAKE) --no-print-directory $(AFTER_DEPS)
$(wordlist 2,$(words $(AFTER_DEPS)),$(AFTER_DEPS)): $(firstword $(AFTER_DEPS))
	@:
endif
else

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 \
	-fno-common
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
PKG_OK := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)

CFLAGS := -std=c11 $(OPT) -g -fopenmp -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
	-DWENO_VERSION='"$(VERSION)"' $(WARN) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS := $(PKG_LIBS) -lm -fopenmp $(EXTRA_LDLIBS)
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS += -fsanitize=$(SANITIZE)
endif

# ---- CUDA probe ----
NVCC ?= $(shell command -v nvcc 2>/dev/null)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDNN_H := $(firstword $(wildcard $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h \
	/usr/include/x86_64-linux-gnu/cudnn.h))
ifeq ($(CUDA),1)
ifeq ($(and $(NVCC),$(CUDNN_H)),)
$(error CUDA=1 but nvcc or cudnn.h was not found (nvcc: '$(NVCC)', cudnn.h: '$(CUDNN_H)'); install the CUDA toolkit and cuDNN, or build with CUDA=0)
endif
endif
ifeq ($(CUDA),auto)
ifneq ($(and $(NVCC),$(CUDNN_H)),)
CUDA_ON := 1
else
CUDA_ON := 0
endif
else
CUDA_ON := $(CUDA)
endif

LIB_SRC := $(sort $(wildcard lib/*.c lib/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CUDA_SRC := $(sort $(wildcard kernels/*.cu))
ifeq ($(CUDA_ON)$(if $(CUDA_SRC),y,n),1y)
CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
# The CUDA backend is a shared library beside the tools, loaded with dlopen
# the first time a GPU is asked for (lib/nn/backend.c): the tools start and
# run on the CPU without the CUDA libraries, and without their memory.
CUDA_SO := $(BUILD)/lib/libweno_cuda.so
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -Xlinker -rpath,$(CUDA_HOME)/lib64 \
	-Xlinker -rpath,$(CUDA_HOME)/lib -lcudnn -lcublas
# A100 (sm_80) and H100/H200 (sm_90) machine code, plus compute_90 PTX that
# the driver compiles for newer GPUs.  No --use_fast_math: the kernels keep
# IEEE division, square root and denormals like the CPU reference.
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O2 -std=c++17 $(CUDA_ARCH) -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra
ifeq ($(WERROR),1)
NVCCFLAGS += -Werror all-warnings -Xcompiler -Werror
endif
endif
# The same backend on a CPU emulation of the CUDA runtime, cuBLAS and cuDNN
# (tests/emu): its host code and kernels, unchanged but for the launch
# syntax, run and are tested without a GPU (tests/cli/test_cuda_emu.sh).
# Built by g++ alone, with or without nvcc (not with CUDA=0).
CXX_FOUND := $(shell command -v $(CXX) 2>/dev/null)
ifneq ($(CUDA),0)
ifneq ($(and $(CXX_FOUND),$(CUDA_SRC)),)
EMU_SO := $(BUILD)/emu/libweno_cuda.so
EMU_OBJ := $(CUDA_SRC:kernels/%.cu=$(BUILD)/emu/obj/%.o) $(BUILD)/emu/obj/emu.o
EMU_CXXFLAGS := -std=c++17 -O2 -g -fPIC -fvisibility=hidden -ffp-contract=off -Wall \
	-Wno-unused-function -Itests/emu -Ikernels $(shell pkg-config --cflags openblas 2>/dev/null)
EMU_LDFLAGS :=
ifeq ($(WERROR),1)
EMU_CXXFLAGS += -Werror
endif
# EMU_SANITIZE=address: the kernels' device memory is heap memory here, so
# AddressSanitizer sees a kernel reading or writing outside its buffers
# (rm -rf build/emu first; test_cuda_emu.sh preloads the runtime)
ifneq ($(EMU_SANITIZE),)
EMU_CXXFLAGS += -fsanitize=$(EMU_SANITIZE) -fno-omit-frame-pointer
EMU_LDFLAGS += -fsanitize=$(EMU_SANITIZE)
endif
endif
endif
# The tools hold the loader of the CUDA backend (lib/nn/backend.c) when
# there is a backend to load: the real one or, for the tests, the emulation.
ifneq ($(CUDA_SO)$(EMU_SO),)
CFLAGS += -DWENO_CUDA=1 -DWENO_CUDA_BUILT=$(if $(CUDA_SO),1,0)
LDLIBS += -ldl
endif
LIBA := $(BUILD)/libweno.a

TOOL_COMMON := tools/cli.c
TOOL_SRC := $(filter-out $(TOOL_COMMON),$(sort $(wildcard tools/*.c)))
TOOLS := $(TOOL_SRC:tools/%.c=$(BUILD)/bin/%)
TOOL_COMMON_OBJ := $(TOOL_COMMON:%.c=$(BUILD)/obj/%.o)

TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TESTS := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay_%)
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCHES := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

.PHONY: emu all test bench deps bench-deps fuzz fuzz-run clean probe build-info check-pkgs device-bundle
all: check-pkgs build-info $(TOOLS) $(CUDA_SO)

check-pkgs:
ifneq ($(PKG_OK),yes)
	@echo "make: missing libraries: pkg-config cannot find some of: $(PKGS)" >&2
	@echo "hint: run 'make deps' (as root) to install them" >&2
	@exit 1
endif

build-info:
	@echo "build: CPU backend (OpenBLAS, OpenMP); nvcc: $(if $(NVCC),$(NVCC),not found);\
	 cuDNN: $(if $(CUDNN_H),$(CUDNN_H),not found); CUDA backend:\
	 $(if $(filter 1,$(CUDA_ON)),$(if $(CUDA_SRC),on,found but kernels/ has no sources yet),off);\
	 its CPU emulation for the tests: $(if $(EMU_SO),on ($(CXX)),off)"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -I$(CUDA_HOME)/include -MD -MP -MF $(@:.o=.d) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libweno_cuda.so: $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	$(NVCC) -shared $(CUDA_ARCH) $^ -o $@.tmp $(CUDA_LIBS) && mv $@.tmp $@

# a launch k<<<g, b, sh, st>>>(args) becomes emu_launch("k", k, g, b, sh, st, args)
# (the sources are kept, for debugging the emulation)
.PRECIOUS: $(BUILD)/emu/src/%.cpp
$(BUILD)/emu/src/%.cpp: kernels/%.cu
	@mkdir -p $(dir $@)
	sed -E 's/([A-Za-z_][A-Za-z_0-9]*)<<<(.*)>>>\(/emu_launch("\1", \1, \2, /' $< >$@.tmp && mv $@.tmp $@

# on the project headers nn_cuda.cuh includes too (nn.h holds the table's layout)
$(BUILD)/emu/obj/%.o: $(BUILD)/emu/src/%.cpp kernels/nn_cuda.cuh lib/nn/nn.h lib/nn/cuda_api.h \
		lib/base/rng.h $(wildcard tests/emu/*.h)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(BUILD)/emu/obj/emu.o: tests/emu/emu.cpp $(wildcard tests/emu/*.h)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c $< -o $@

$(EMU_SO): $(EMU_OBJ)
	@mkdir -p $(dir $@)
	$(CXX) -shared $(EMU_LDFLAGS) $^ -o $@.tmp $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas) && mv $@.tmp $@

emu: $(EMU_SO)

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(TOOL_COMMON_OBJ) $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIBA) tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(LIBA) -o $@ $(LDLIBS)

# test_cli compiles in tools/cli.c, which is not in libweno.a
$(BUILD)/tests/test_cli: tools/cli.c tools/cli.h

$(BUILD)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay.c tests/fuzz/scratch.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< tests/fuzz/replay.c $(LIBA) -o $@ $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c tests/bench/bench.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIBA) -o $@ $(LDLIBS)

# the probe suite's HDF5 generator (tests/probe/mkevil.c)
$(BUILD)/tests/probe_mkevil: tests/probe/mkevil.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

test: all $(TESTS) $(FUZZ_REPLAY) $(EMU_SO) $(BUILD)/tests/probe_mkevil
	@BUILD=$(BUILD) bash tests/run.sh

# hostile inputs and conditions, many of each (make test runs a few)
probe: all $(BUILD)/tests/probe_mkevil
	@BIN=$(BUILD)/bin BUILD=$(BUILD) PROBE_SCALE=full bash tests/probe/probe.sh

bench: all $(BENCHES)
	@BUILD=$(BUILD) bash tests/bench/run.sh

# what a GPU machine without our Debian packages needs for the CUDA checks
# (tests/device/gpu-checks.sh): tools, tests, libraries and Fashion-MNIST
device-bundle: all $(TESTS) $(BENCHES)
	bash tests/device/bundle.sh $(BUILD) $(BUILD)/device/bundle.tar.zst

FUZZ_SECONDS ?= 60
fuzz: check-pkgs
	@mkdir -p $(BUILD)/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "clang $$f -> $(BUILD)/fuzz/$$n"; \
	  clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fopenmp -D_DEFAULT_SOURCE \
	    -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION \
	    -D_POSIX_C_SOURCE=200809L $(PKG_CFLAGS) $$f $(LIB_SRC) -o $(BUILD)/fuzz/$$n \
	    $(PKG_LIBS) -lm || exit 1; done

fuzz-run: fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); t=$${n#fuzz_}; \
	  mkdir -p $(BUILD)/fuzz/corpus-$$t tests/fuzz/crashes/$$t; \
	  $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=tests/fuzz/crashes/$$t/ $(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t \
	    || exit 1; done

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/obj/*/*/*.d)
-include $(wildcard pipelines/*.mk)
endif
