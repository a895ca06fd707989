# Benchmarks: `make bench` installs what they need (scripts/ensure-packages.sh), builds
# every bench/bench_*.c into $(B)/bench/, runs them all and writes
# BENCHMARKS.md (bench/run.sh).  Included by the top Makefile.
#
# Every bench/bench_*.c is one program, built the same way: C11 with the
# project's warnings, linked with libvmcode.a and the asmjit shim
# (bench/asmjit_shim.h), so a new bench file needs no rule of its own.  A
# program prints markdown sections on stdout (see bench/bench.h).
#
#   make bench                 everything (under a minute here)
#   make bench-build           only build the programs
#   make bench BENCH=open      run only $(B)/bench/bench_open (results on stdout,
#                              BENCHMARKS.md untouched)

CXX          ?= g++
BENCH_SRC    := $(wildcard bench/bench_*.c)
BENCH_BIN    := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
BENCH_SHIM   := $(B)/bench/asmjit_shim.o
BENCH_CFLAGS := $(CFLAGS_BASE) -Iinclude -Isrc -Ibench -pthread
BENCH_CXXFLAGS := -std=c++17 -Wall -Wextra -Werror $(OPT) -D_GNU_SOURCE
BENCH_LDLIBS := -lasmjit -lstdc++ $(LDLIBS_LIB) -lm -lrt
# The command that BENCHMARKS.md names as the one that produced it.
BENCH_CMD    := make $(if $(filter build,$(B)),,B=$(B) )bench

bench-deps:
	@sh scripts/ensure-packages.sh libasmjit-dev gnuplot-nox libsqlite3-0

$(BENCH_SHIM): bench/asmjit_shim.cpp bench/asmjit_shim.h | bench-deps
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	$(Q)$(CXX) $(BENCH_CXXFLAGS) -c $< -o $@

$(B)/bench/bench_%: bench/bench_%.c $(wildcard bench/*.h) $(BENCH_SHIM) $(B)/libvmcode.a include/vmcode.h | bench-deps
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(BENCH_CFLAGS) $< $(BENCH_SHIM) $(B)/libvmcode.a $(BENCH_LDLIBS) -o $@

bench-build: $(BENCH_BIN)

ifeq ($(BENCH),)
bench: $(BENCH_BIN)
	sh bench/run.sh $(B) "$(BENCH_CMD)" BENCHMARKS.md
else
bench: $(B)/bench/bench_$(BENCH)
	$(B)/bench/bench_$(BENCH)
endif

.PHONY: bench-deps bench-build

# ---- Windows, under Wine (make bench-windows) ------------------------------------
# bench/windows/bench_region.c and bench/win_pe_load.c (private DLL loads
# against LoadLibrary, on the test DLLs) cross-built like the Windows tests
# (Makefile's WB, WIN_CC, WIN_CFLAGS), run by bench/run-windows.sh under Wine 10 (the
# chroot of scripts/wine-chroot.sh) and the host's Wine 8, which writes its
# section of BENCHMARKS.md and bench/windows.md (make bench copies the latter).
WIN_BENCH := $(WB)/bench/bench_region.exe

$(WIN_BENCH): bench/windows/bench_region.c $(WB)/libvmcode.a include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  WINCC   $@"
	$(Q)$(WIN_CC) -static $(WIN_CFLAGS) $< $(WB)/libvmcode.a $(WIN_LDLIBS) -o $@

bench-windows: windows-deps
	@$(MAKE) --no-print-directory $(WIN_BENCH) $(WB)/win_pe_load.exe $(WB_PE_DLLS)
	sh bench/run-windows.sh $(WIN_BENCH) "make bench-windows" BENCHMARKS.md $(WB)/win_pe_load.exe $(WB)/pe

.PHONY: bench-windows
