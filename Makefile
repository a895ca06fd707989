# vmcode: GNU make, C11, warnings are errors.
#
#   make              libvmcode.a, libvmcode.so and the vmcode CLI in build/
#   make check        build and run every test
#   make check-asan   the same under AddressSanitizer + UBSan (build/asan)
#   make check-tsan   the threaded tests under ThreadSanitizer (build/tsan)
#   make check-newer-libgcc  unwinding and loader tests with Debian 13's libgcc_s (GCC 14)
#   make demo         build and run the demonstration
#   make bench        build and run the benchmarks (results: BENCHMARKS.md)
#   make bench-windows  the Windows benchmark under Wine 10 and 8 (its section of BENCHMARKS.md)
#   make fuzz-run     fuzz the private loader and the PE reader (clang, libFuzzer;
#                     FUZZ_SECONDS=60 each)
#   make install PREFIX=/usr/local, make uninstall PREFIX=/usr/local

CC      ?= gcc
PREFIX  ?= /usr/local
B       ?= build
SAN     ?=
OPT     ?= -O2 -g
CFLAGS_BASE := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE $(OPT) $(SAN) -fno-strict-aliasing
# -fno-plt: calls to libc go through the GOT, bound when the program starts
# (libvmcode.so is linked -z now for the same reason), not lazily by the
# first load in a process.
LIB_CFLAGS  := $(CFLAGS_BASE) -fPIC -fno-plt -fvisibility=hidden -Iinclude -Isrc
LDLIBS_LIB  := -ldl -lpthread
VERSION     := 0.1.0

# WIN_ONLY files are the Windows build's (make windows).
WIN_ONLY := src/os/windows.c src/os/winload.c src/lib/noelf.c src/api/names_none.c
LIB_SRC := $(filter-out $(WIN_ONLY),$(wildcard src/*/*.c))
LIB_OBJ := $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(patsubst tests/%.c,$(B)/tests/%.o,$(TEST_SRC))

all: $(B)/libvmcode.a $(B)/libvmcode.so $(B)/vmcode

Q ?= @
LIB_HDR := $(wildcard src/*/*.h)
$(B)/obj/%.o: src/%.c $(LIB_HDR) include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(LIB_CFLAGS) -c $< -o $@

# The gdb script rides in the library's .debug_gdb_scripts section
# (src/lib/debug_registry.c says why).
$(B)/obj/lib/debug_registry.o: tools/vmcode-gdb.py
$(B)/obj/lib/debug_registry.o: LIB_CFLAGS += -DVMC_GDB_SCRIPT='"$(CURDIR)/tools/vmcode-gdb.py"'

$(B)/libvmcode.a: $(LIB_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

$(B)/libvmcode.so: $(LIB_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(SAN) -shared -Wl,-soname,libvmcode.so.0 -Wl,-z,now -o $@ $^ $(LDLIBS_LIB)

$(B)/vmcode: tools/vmcode.c $(B)/libvmcode.a
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS_BASE) -Iinclude -DVMC_VERSION_TEXT='"$(VERSION)"' $< $(B)/libvmcode.a $(LDLIBS_LIB) -o $@

# ---- tests --------------------------------------------------------------------
-include tests/libs.mk
-include tests/pe/pe.mk

$(B)/tests/%.o: tests/%.c tests/test.h $(LIB_HDR) include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS_BASE) -Iinclude -Isrc -Itests -c $< -o $@

$(B)/tests/vmc-tests: $(TEST_OBJ) $(B)/libvmcode.a
	@echo "  LD      $@"
	$(Q)$(CC) $(SAN) -rdynamic -o $@ $(TEST_OBJ) $(B)/libvmcode.a $(LDLIBS_LIB) -lm

# A host program linked -no-pie (its image at 0x400000), run by tests/test_place.c.
$(B)/tests/nopie_host: tests/progs/nopie_host.c $(B)/libvmcode.a include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS_BASE) -no-pie -Iinclude -Isrc $< $(B)/libvmcode.a $(LDLIBS_LIB) -o $@

# A C program with libgcc_s among the objects it starts with, run by
# tests/test_unwind.c (the unwinder found in the host scope).
$(B)/tests/gcc_host: tests/progs/gcc_host.c tests/libs/t_walk.h $(B)/libvmcode.a include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS_BASE) -Iinclude $< $(B)/libvmcode.a -Wl,--no-as-needed -lgcc_s -Wl,--as-needed $(LDLIBS_LIB) -o $@

# The program the debugger tests run, linked with the static library and
# with the shared one (each carries the gdb script in .debug_gdb_scripts).
$(B)/tests/debugee: tests/progs/debugee.c $(B)/libvmcode.a include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS_BASE) -O0 -Iinclude $< $(B)/libvmcode.a $(LDLIBS_LIB) -o $@
$(B)/tests/debugee_so: tests/progs/debugee.c $(B)/libvmcode.so include/vmcode.h
	@mkdir -p $(dir $@)
	@ln -sf libvmcode.so $(B)/libvmcode.so.0
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS_BASE) -O0 -Iinclude $< -L$(B) -l:libvmcode.so -Wl,-rpath,$(abspath $(B)) $(LDLIBS_LIB) -o $@

TEST_DEPS = $(B)/tests/vmc-tests $(B)/vmcode $(B)/examples/demo $(B)/examples/readme $(B)/examples/hello \
            $(B)/tests/nopie_host $(B)/tests/gcc_host $(B)/tests/debugee $(B)/tests/debugee_so $(TEST_LIBS)

# Test tools from Debian, installed when missing: pkg-config (the install
# test), g++ (a C++ test library), binutils (the linker's -z options),
# gdb, valgrind and linux-perf (tests/test_debug.c), MinGW-w64 (the PE test
# DLLs, and objdump -p that their tests compare with), clang and lld (the
# Control Flow Guard test DLL, which GCC cannot build), libjson-c5 and
# libmpfr6 (system libraries with TLS, loaded privately).
test-deps:
	@sh scripts/ensure-packages.sh pkg-config g++ binutils gdb valgrind linux-perf gcc-mingw-w64-x86-64 \
	    g++-mingw-w64-x86-64 binutils-mingw-w64-x86-64 clang lld libjson-c5 libmpfr6

check: test-deps
	@$(MAKE) --no-print-directory run-tests

run-tests: $(TEST_DEPS)
	VMC_TEST_BUILD=$(B) VMC_TEST_SRC=$(CURDIR) $(B)/tests/vmc-tests $(T)

check-asan:
	$(MAKE) B=build/asan SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" check

check-tsan:
	$(MAKE) B=build/tsan SAN="-fsanitize=thread" T="--threaded" check

# ---- Windows x64 (cross-built with MinGW-w64, tested under Wine) -----------------
#   make windows         build/windows/: libvmcode.a, vmcode.dll (+ libvmcode.dll.a),
#                        the CLI vmcode.exe and vmc-tests.exe
#   make check-windows   the tests under Wine 10 (placeholders; a Debian 13 chroot,
#                        built once into /var/cache/vmcode) and the host's Wine 8
#                        (the slot fallback): scripts/wine-chroot.sh
# The Windows build holds the layers ported so far: all but the ELF side of
# the library lifecycle (lib/noelf.c instead of lib/elfload.c and the other
# Linux-only parts of lib/: the lifecycle loads DLLs, lib/peload.c) and the
# debugger interfaces, which hand out ELF objects (names_none.c); W^X
# (region/wx.c) is the same file on both.
WB       := build/windows
WIN_CC   := x86_64-w64-mingw32-gcc
# C99 printf (%zu, %llx) from MinGW's own stdio; the project's printf-like
# functions are checked against it (gnu_printf: src/base/error.h), so format
# warnings are errors here as on Linux.
WIN_CFLAGS := -std=c11 -Wall -Wextra -Werror $(OPT) -fno-strict-aliasing -D_WIN32_WINNT=0x0A00 \
              -D__USE_MINGW_ANSI_STDIO=1 -Iinclude -Isrc
WIN_LIB_SRC := $(filter-out src/api/jitnames.c src/api/jitdump.c,$(wildcard src/base/*.c src/api/*.c \
               src/alloc/*.c)) src/os/windows.c src/os/hold.c \
               src/arch/x86_64.c src/arch/x86_64_pe.c src/region/region.c src/region/place.c src/region/reserve.c \
               src/region/wx.c src/lib/loader.c src/lib/kept.c src/lib/peload.c src/lib/noelf.c src/lib/addrinfo.c \
               src/os/winload.c $(wildcard src/pe/*.c)
WIN_TEST_SRC := tests/runner.c tests/windows/child_process.c tests/test_os_space.c tests/test_guards.c \
                $(filter-out tests/windows/child_process.c,$(wildcard tests/windows/*.c))
# Static: Wine finds no MinGW runtime DLLs (winpthread) beside the program.
WIN_LDLIBS := -lpthread -lbcrypt
WIN_LIB_OBJ := $(patsubst src/%.c,$(WB)/obj/%.o,$(WIN_LIB_SRC))
WIN_CXX  := x86_64-w64-mingw32-g++
# C++ halves of Windows tests (exceptions through generated code): the suite
# is linked by g++, statically (libstdc++ and its SEH unwinder inside).
WIN_TEST_CXX_SRC := $(wildcard tests/windows/*.cc)
WIN_TEST_OBJ := $(patsubst tests/%.c,$(WB)/tests/%.o,$(WIN_TEST_SRC)) \
                $(patsubst tests/%.cc,$(WB)/tests/%.o,$(WIN_TEST_CXX_SRC))

windows-deps:
	@sh scripts/ensure-packages.sh gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 clang lld

windows: windows-deps
	@$(MAKE) --no-print-directory $(WB)/libvmcode.a $(WB)/vmcode.dll $(WB)/vmcode.exe $(WB)/vmc-tests.exe \
	    $(WB_PE_DLLS) $(WB_PE_RT)

# The PE test DLLs the Windows suite loads (tests/windows/test_pe_load.c, test_pe_lib.c).
WB_PE_DLLS := $(patsubst $(PE_DIR)/%,$(WB)/pe/%,$(PE_DLLS))
$(WB)/pe/%.dll: $(PE_DIR)/%.dll
	@mkdir -p $(dir $@)
	cp $< $@
# t_pe_rt.dll beside copies of MinGW's runtime DLLs (pe/rt/), and alone
# (pe/rt_alone/): the runtimes found beside a plug-in (test_pe_lib.c).
PE_RUNTIMES := libstdc++-6.dll libgcc_s_seh-1.dll libwinpthread-1.dll
WB_PE_RT := $(if $(filter %/t_pe_rt.dll,$(PE_DLLS)),$(WB)/pe/rt/t_pe_rt.dll $(WB)/pe/rt_alone/t_pe_rt.dll \
            $(addprefix $(WB)/pe/rt/,$(PE_RUNTIMES)))
$(WB)/pe/rt/t_pe_rt.dll $(WB)/pe/rt_alone/t_pe_rt.dll: $(PE_DIR)/t_pe_rt.dll
	@mkdir -p $(dir $@)
	cp $< $@
$(addprefix $(WB)/pe/rt/,$(PE_RUNTIMES)):
	@mkdir -p $(dir $@)
	cp "$$($(PE_CXX) -print-file-name=$(notdir $@))" $@

$(WB)/obj/%.o: src/%.c $(LIB_HDR) include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  WINCC   $<"
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -c $< -o $@

$(WB)/tests/%.o: tests/%.c tests/test.h tests/child.h $(LIB_HDR) include/vmcode.h
	@mkdir -p $(dir $@)
	@echo "  WINCC   $<"
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -Itests -c $< -o $@

$(WB)/tests/%.o: tests/%.cc
	@mkdir -p $(dir $@)
	@echo "  WINCXX  $<"
	$(Q)$(WIN_CXX) -std=c++17 -Wall -Wextra -Werror $(OPT) -c $< -o $@

$(WB)/libvmcode.a: $(WIN_LIB_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)x86_64-w64-mingw32-ar rcs $@ $^

# The DLL exports every external symbol (MinGW's default without dllexport);
# libvmcode.dll.a is its import library.
$(WB)/vmcode.dll: $(WIN_LIB_OBJ)
	@echo "  WINLD   $@"
	$(Q)$(WIN_CC) -shared -static-libgcc -o $@ $^ -Wl,--out-implib,$(WB)/libvmcode.dll.a \
	    -Wl,-Bstatic $(WIN_LDLIBS)

$(WB)/vmcode.exe: tools/vmcode.c $(WB)/libvmcode.a
	@echo "  WINCC   $@"
	$(Q)$(WIN_CC) -static $(WIN_CFLAGS) -DVMC_VERSION_TEXT='"$(VERSION)"' $< $(WB)/libvmcode.a $(WIN_LDLIBS) -o $@

$(WB)/vmc-tests.exe: $(WIN_TEST_OBJ) $(WB)/libvmcode.a
	@echo "  WINLD   $@"
	$(Q)$(WIN_CXX) -static -o $@ $(WIN_TEST_OBJ) $(WB)/libvmcode.a $(WIN_LDLIBS)

# The unwinding, exception and loader tests with a newer libgcc_s (GCC 14,
# Debian 13's, taken from the chroot check-windows uses) first on
# LD_LIBRARY_PATH: its registered frames are a b-tree, and it takes records
# back differently from Debian 12's GCC 12 (src/lib/unwinder.c).
check-newer-libgcc: test-deps
	@$(MAKE) --no-print-directory $(TEST_DEPS)
	@sh scripts/wine-chroot.sh --setup
	@mkdir -p $(B)/newer-libgcc
	@cp $${VMC_WINE_CACHE:-/var/cache/vmcode}/wine-trixie/usr/lib/x86_64-linux-gnu/libgcc_s.so.1 $(B)/newer-libgcc/
	LD_LIBRARY_PATH=$(CURDIR)/$(B)/newer-libgcc VMC_TEST_BUILD=$(B) VMC_TEST_SRC=$(CURDIR) \
	    $(B)/tests/vmc-tests unwind cxx exception loader_ tls

check-windows: windows
	sh scripts/wine-chroot.sh $(WB)/vmc-tests.exe $(T)
	sh scripts/wine-chroot.sh --host $(WB)/vmc-tests.exe $(T)

# Private DLL load+unload against LoadLibrary+FreeLibrary, under Wine 10
# (bench/win_pe_load.c; the figures are in BENCHMARKS.md).
$(WB)/win_pe_load.exe: bench/win_pe_load.c $(WB)/libvmcode.a include/vmcode.h
	@echo "  WINLD   $@"
	$(Q)$(WIN_CC) $(WIN_CFLAGS) -static -o $@ $< $(WB)/libvmcode.a $(WIN_LDLIBS)

bench-windows-pe: windows
	@$(MAKE) --no-print-directory $(WB)/win_pe_load.exe
	sh scripts/wine-chroot.sh $(WB)/win_pe_load.exe $(WB)/pe $(ROUNDS)

# ---- demo, examples, bench ----------------------------------------------------
$(B)/examples/%: examples/%.c $(B)/libvmcode.a
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS_BASE) -Iinclude $< $(B)/libvmcode.a $(LDLIBS_LIB) -o $@

# The demonstration: a Brainfuck JIT (examples/demo/) and its plug-in, which
# vmcode loads privately into the code region.
$(B)/examples/demo: examples/demo/demo.c $(B)/libvmcode.a $(B)/examples/libbfplug.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS_BASE) -Iinclude $< $(B)/libvmcode.a $(LDLIBS_LIB) -o $@

$(B)/examples/libbfplug.so: examples/demo/plugin.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) -std=c11 -O2 -g -fPIC -Wall -Wextra -Werror -shared -Wl,-z,now -o $@ $<

demo: $(B)/examples/demo
	$(B)/examples/demo

-include bench/bench.mk
-include fuzz/fuzz.mk

# ---- install --------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/vmcode.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(B)/libvmcode.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libvmcode.so $(DESTDIR)$(PREFIX)/lib/libvmcode.so.$(VERSION)
	ln -sf libvmcode.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libvmcode.so.0
	ln -sf libvmcode.so.0 $(DESTDIR)$(PREFIX)/lib/libvmcode.so
	install -m 755 $(B)/vmcode $(DESTDIR)$(PREFIX)/bin/
	# gdb's auto-load: by the library's real name (found when the prefix is
	# in gdb's scripts-directory, /usr/share/gdb/auto-load for PREFIX=/usr),
	# and by itself, to source by hand
	install -d $(DESTDIR)$(PREFIX)/share/gdb/auto-load$(PREFIX)/lib
	install -m 644 tools/vmcode-gdb.py \
	    $(DESTDIR)$(PREFIX)/share/gdb/auto-load$(PREFIX)/lib/libvmcode.so.$(VERSION)-gdb.py
	install -m 644 tools/vmcode-gdb.py $(DESTDIR)$(PREFIX)/share/gdb/auto-load/vmcode-gdb.py
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' vmcode.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/vmcode.pc

# Every file install made, then the directories it made that are left empty
# (the prefix's own include, lib, bin and share stay).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/vmcode.h $(DESTDIR)$(PREFIX)/lib/libvmcode.a \
	    $(DESTDIR)$(PREFIX)/lib/libvmcode.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libvmcode.so.0 \
	    $(DESTDIR)$(PREFIX)/lib/libvmcode.so $(DESTDIR)$(PREFIX)/bin/vmcode \
	    $(DESTDIR)$(PREFIX)/share/gdb/auto-load$(PREFIX)/lib/libvmcode.so.$(VERSION)-gdb.py \
	    $(DESTDIR)$(PREFIX)/share/gdb/auto-load/vmcode-gdb.py $(DESTDIR)$(PREFIX)/lib/pkgconfig/vmcode.pc
	-rmdir $(DESTDIR)$(PREFIX)/lib/pkgconfig 2>/dev/null
	-d=$(DESTDIR)$(PREFIX)/share/gdb/auto-load$(PREFIX)/lib; \
	while [ "$$d" != "$(DESTDIR)$(PREFIX)/share" ] && rmdir "$$d" 2>/dev/null; do d=$${d%/*}; done

clean:
	rm -rf build

.PHONY: check-newer-libgcc windows windows-deps check-windows bench-windows-pe all check run-tests test-deps check-asan check-tsan demo bench install uninstall clean
.DELETE_ON_ERROR:
