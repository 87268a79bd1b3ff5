# raasbench build. `make` builds build/raasbench; `make test` builds and runs every test.
#   SAN=address,undefined   build with sanitizers (the test suite must pass under it)
#   CUDA=0|1                build the CUDA kernels (default: 1 when nvcc is found)
#   NVCC=path               which nvcc (default: on PATH, else /usr/local/cuda); its libcudart
#                           is taken from beside it (CUDA_LIBDIR=, CUDART= override)
#   BUILD=dir               build directory (default: build, or build-san with SAN)
#   ARCH=...                -march value (default x86-64-v3: AVX2+FMA)
#   OPT=-O2                 optimisation flags (CI also builds with OPT=-O3 and with CC=clang)
#   V=1                     show full compiler command lines
#   HDF5_CFLAGS= HDF5_LIBS= CJSON_CFLAGS= CJSON_LIBS= BLAS_CFLAGS= BLAS_LIBS=
#                           where the libraries are (default: pkg-config, then Debian's paths)
# `make` needs only a compiler and the three libraries (HDF5, cJSON, OpenBLAS); run-time tools
# (gnuplot, h5dump, python3 with numpy/h5py/gguf) are checked by the tests that use them,
# which skip with the reason. `make deps` installs everything (tools/install-deps.sh).
# `make fuzz` builds the libFuzzer targets of tests/fuzz/ with clang into build-fuzz/;
# `make fuzz-ci` runs each for FUZZ_SECONDS (default 60).
.DEFAULT_GOAL := all
SHELL := /bin/bash
comma := ,

SAN ?=
ifeq ($(filter $(SAN),address undefined address$(comma)undefined undefined$(comma)address),)
ifneq ($(SAN),)
$(error SAN must be empty, address, undefined or address,undefined; got '$(SAN)')
endif
endif
ifeq ($(SAN),)
BUILD ?= build
else
BUILD ?= build-san
endif

NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(origin CUDA),undefined)
CUDA := $(if $(NVCC),1,0)
endif
ifneq ($(filter-out 0 1,$(CUDA)),)
$(error CUDA must be 0 or 1; got '$(CUDA)')
endif
ifeq ($(CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but nvcc was not found)
endif
endif

ARCH ?= x86-64-v3
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
VERSION := 0.1.0

# Libraries: given on the command line or in the environment, else from pkg-config, else
# Debian's paths. `make` checks each header before compiling (the lib-check target).
pc_first = $(firstword $(foreach p,$(1),$(shell pkg-config --exists $(p) 2>/dev/null && echo $(p))))
HDF5_PC := $(call pc_first,hdf5 hdf5-serial)
CJSON_PC := $(call pc_first,libcjson cjson)
BLAS_PC := $(call pc_first,openblas openblas-pthread)
ifeq ($(origin HDF5_CFLAGS),undefined)
HDF5_CFLAGS := $(if $(HDF5_PC),$(shell pkg-config --cflags $(HDF5_PC)),-I/usr/include/hdf5/serial)
endif
ifeq ($(origin HDF5_LIBS),undefined)
HDF5_LIBS := $(if $(HDF5_PC),$(shell pkg-config --libs $(HDF5_PC)),-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
endif
ifeq ($(origin CJSON_CFLAGS),undefined)
CJSON_CFLAGS := $(if $(CJSON_PC),$(shell pkg-config --cflags $(CJSON_PC)),)
endif
ifeq ($(origin CJSON_LIBS),undefined)
CJSON_LIBS := $(if $(CJSON_PC),$(shell pkg-config --libs $(CJSON_PC)),-lcjson)
endif
ifeq ($(origin BLAS_CFLAGS),undefined)
BLAS_CFLAGS := $(if $(BLAS_PC),$(shell pkg-config --cflags $(BLAS_PC)),-I/usr/include/x86_64-linux-gnu/openblas-pthread)
endif
ifeq ($(origin BLAS_LIBS),undefined)
BLAS_LIBS := $(if $(BLAS_PC),$(shell pkg-config --libs $(BLAS_PC)),-lopenblas)
endif

CC ?= cc
# The layers, lowest first: base (status codes, errors, arguments), kernels, policies, then
# the harness by role. tests/e2e_layers.sh checks that no layer includes one above it.
HARNESS_DIRS := harness/io harness/engine harness/model harness/analysis harness/eval harness/cli
INC_DIRS := base kernels policies $(HARNESS_DIRS)
OPT ?= -O2
CFLAGS := -std=c11 $(OPT) -g -march=$(ARCH) -fPIC -Wall -Wextra -Werror -pthread \
          $(addprefix -I,$(INC_DIRS)) $(HDF5_CFLAGS) $(CJSON_CFLAGS) $(BLAS_CFLAGS) \
          -DRB_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS := $(HDF5_LIBS) $(BLAS_LIBS) $(CJSON_LIBS) -lpthread -lm
ifneq ($(SAN),)
CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif

LIB_SRC := $(filter-out harness/cli/main.c kernels/bench_%.c,\
           $(wildcard base/*.c kernels/*.c policies/*.c $(addsuffix /*.c,$(HARNESS_DIRS))))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard kernels/bench_*.c)
BENCH_BIN := $(BENCH_SRC:kernels/%.c=$(BUILD)/%)

CUDA_SRC := $(wildcard kernels/cuda/*.cu)
ifeq ($(CUDA),1)
CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
# The toolkit beside nvcc: lib64/ in /usr/local/cuda, lib/ in the pip wheels
# (tools/install-cuda-build.sh), whose libcudart has only its versioned name: it is linked by
# path, found again at run time through the rpath. Neither (Debian's nvcc in /usr/bin): the
# linker's own paths.
CUDA_HOME := $(patsubst %/bin/,%,$(dir $(NVCC)))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib))
CUDART ?= $(or $(firstword $(wildcard $(CUDA_LIBDIR)/libcudart.so $(CUDA_LIBDIR)/libcudart.so.[0-9]*)),-lcudart)
CFLAGS += -DRB_HAVE_CUDA=1
LDLIBS += $(CUDART) $(if $(CUDA_LIBDIR),-Wl$(comma)-rpath$(comma)$(CUDA_LIBDIR)) -lstdc++
NVCCFLAGS := -O3 -std=c++17 -arch=sm_90 -Ibase -Ikernels -Xcompiler -Wall,-Werror,-fPIC
endif

all: lib-check $(BUILD)/raasbench $(BENCH_BIN)

# The libraries the build needs: each header must compile with its flags. Nothing is
# installed here (`make deps` does that).
lib-check: banner
	@ok=1; \
	 chk() { if printf '#include <%s>\n' "$$2" | $(CC) $$3 -E -x c - >/dev/null 2>&1; \
	   then echo "✓ $$1 found ($$4)"; \
	   else echo "✗ $$1 missing: <$$2> not found with '$$3' (install $$5, or set $$6)"; ok=0; fi; }; \
	 chk HDF5 hdf5.h "$(HDF5_CFLAGS)" "$(if $(HDF5_PC),pkg-config $(HDF5_PC),default paths)" libhdf5-dev "HDF5_CFLAGS= HDF5_LIBS="; \
	 chk cJSON cjson/cJSON.h "$(CJSON_CFLAGS)" "$(if $(CJSON_PC),pkg-config $(CJSON_PC),default paths)" libcjson-dev "CJSON_CFLAGS= CJSON_LIBS="; \
	 chk OpenBLAS cblas.h "$(BLAS_CFLAGS)" "$(if $(BLAS_PC),pkg-config $(BLAS_PC),default paths)" libopenblas-dev "BLAS_CFLAGS= BLAS_LIBS="; \
	 [ $$ok = 1 ]

# Install whatever is missing (Debian packages as root, Python packages with pip) for the
# whole test suite, or say what to install; `make test` runs it and goes on either way (the
# tests whose tools are missing skip, and say why).
deps:
	@tools/install-deps.sh

deps-check:
	@tools/install-deps.sh --check-or-install || \
	  echo "✗ some test dependencies are missing (above): the tests that need them will skip"

banner:
	@echo "✓ building into $(BUILD)/ (SAN=$(if $(SAN),$(SAN),none), ARCH=$(ARCH))"
	@if [ "$(CUDA)" = 1 ]; then echo "✓ nvcc found ($(NVCC)): building CUDA kernels"; \
	 else echo "✗ CUDA off (no nvcc, or CUDA=0): CPU kernels only"; fi
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then echo "✓ GPU present"; \
	 else echo "✗ no GPU: GPU tests will skip"; fi

# The commit is baked into rb.o only, which is rebuilt whenever the commit changes.
COMMIT_STAMP := $(BUILD)/.commit-$(GIT_COMMIT)
$(COMMIT_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/.commit-* && touch $@
$(BUILD)/base/rb.o: base/rb.c $(COMMIT_STAMP) $(CONFIG_STAMP) | lib-check
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -DRB_GIT_COMMIT='"$(GIT_COMMIT)"' -c $< -o $@

# Objects depend on the settings they were compiled with: switching CUDA, ARCH or SAN in one
# build directory (`make CUDA=0` after `make`) rebuilds everything instead of linking objects
# compiled for the other setting.
CONFIG_STAMP := $(BUILD)/.config-cuda$(CUDA)-$(ARCH)-san$(subst $(comma),+,$(SAN))-pic
$(CONFIG_STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/.config-* && touch $@

Q := $(if $(V),,@)
$(BUILD)/%.o: %.c $(CONFIG_STAMP) | lib-check
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC  $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(BUILD)/libraasbench.a: $(LIB_OBJ) $(CUDA_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR    $@")
	$(Q)ar rcs $@ $^

# The shared library python/ loads with ctypes: the same objects (all built -fPIC).
lib: $(BUILD)/libraasbench.so
$(BUILD)/libraasbench.so: $(LIB_OBJ) $(CUDA_OBJ)
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) -shared $(LDFLAGS) -pthread $^ -o $@ $(LDLIBS)

$(BUILD)/raasbench: $(BUILD)/harness/cli/main.o $(BUILD)/libraasbench.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -pthread $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libraasbench.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -pthread $^ -o $@ $(LDLIBS)

$(BUILD)/bench_%: $(BUILD)/kernels/bench_%.o $(BUILD)/libraasbench.a
	@$(if $(Q),echo "  LD    $@")
	$(Q)$(CC) $(LDFLAGS) -pthread $^ -o $@ $(LDLIBS)

# Everything compiled and linked, nothing run (CI's clang and -O3 builds).
build-tests: all $(TEST_BIN)

test: deps-check all $(TEST_BIN)
	@BUILD=$(BUILD) tests/run_tests.sh

model:
	@tools/get-model.sh

# libFuzzer targets (tests/fuzz/fuzz_*.c): the library built by clang with the fuzzer's
# coverage and ASan+UBSan into build-fuzz/, one binary per target, seeds generated from the
# repository's fixtures (tests/fuzz/seeds.sh). FUZZ=1 is that build's own setting.
FUZZ ?= 0
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 60
ifeq ($(FUZZ),1)
CFLAGS += -fsanitize=fuzzer-no-link
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(BUILD)/libraasbench.a $(CONFIG_STAMP) | lib-check
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ  $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -fsanitize=fuzzer $< $(BUILD)/libraasbench.a -o $@ $(LDLIBS)
fuzz-bins: lib-check $(FUZZ_BIN)
endif
fuzz:
	@command -v clang >/dev/null || { echo "✗ clang missing: make fuzz needs clang (apt-get install clang)"; exit 1; }
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory CC=clang CUDA=0 SAN=address,undefined FUZZ=1 BUILD=build-fuzz fuzz-bins
	@tests/fuzz/seeds.sh build-fuzz/seeds
	@echo "✓ fuzz targets in build-fuzz/fuzz/, seeds in build-fuzz/seeds/ (tests/fuzz/README.md)"

fuzz-ci: fuzz
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-san build-fuzz

.PHONY: build-tests all lib lib-check deps deps-check banner test model clean fuzz fuzz-ci fuzz-bins
.PRECIOUS: $(BUILD)/%.o $(BUILD)/tests/%.o $(BUILD)/kernels/%.o

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
