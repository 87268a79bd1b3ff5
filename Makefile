# raasbench build. `make` builds build/raasbench; `make test` builds and runs every test.
#   SAN=address,undefined   build with sanitizers (the test suite must pass under it)
#   CUDA=0|1                build the CUDA kernels (default: 1 when nvcc is found)
#   BUILD=dir               build directory (default: build, or build-san with SAN)
#   ARCH=...                -march value (default x86-64-v3: AVX2+FMA)
#   V=1                     show full compiler command lines
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

HDF5_CFLAGS := $(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
HDF5_LIBS := $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
BLAS_LIBS := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)

CC ?= cc
# The layers, lowest first: base (status codes, errors, arguments), kernels, policies, then
# the harness by role. tests/e2e_layers.sh checks that no layer includes one above it.
HARNESS_DIRS := harness/io harness/engine harness/model harness/analysis harness/eval harness/cli
INC_DIRS := base kernels policies $(HARNESS_DIRS)
CFLAGS := -std=c11 -O2 -g -march=$(ARCH) -fPIC -Wall -Wextra -Werror -pthread \
          $(addprefix -I,$(INC_DIRS)) $(HDF5_CFLAGS) $(BLAS_CFLAGS) \
          -DRB_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS := $(HDF5_LIBS) $(BLAS_LIBS) -lcjson -lpthread -lm
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
CUDA_LIBDIR := $(dir $(NVCC))../lib64
CFLAGS += -DRB_HAVE_CUDA=1
LDLIBS += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lstdc++
NVCCFLAGS := -O3 -std=c++17 -arch=sm_90 -Ibase -Ikernels -Xcompiler -Wall,-Werror,-fPIC
endif

all: deps-check banner $(BUILD)/raasbench $(BENCH_BIN)

# Install missing Debian packages (as root) or say what to install.
deps-check:
	@tools/install-deps.sh --check-or-install

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
$(BUILD)/base/rb.o: base/rb.c $(COMMIT_STAMP) $(CONFIG_STAMP)
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
$(BUILD)/%.o: %.c $(CONFIG_STAMP)
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

test: all $(TEST_BIN)
	@BUILD=$(BUILD) tests/run_tests.sh

model:
	@tools/get-model.sh

clean:
	rm -rf build build-san

.PHONY: all deps-check banner test model clean lib
.PRECIOUS: $(BUILD)/%.o $(BUILD)/tests/%.o $(BUILD)/kernels/%.o

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
