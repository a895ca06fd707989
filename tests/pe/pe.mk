# PE32+ test DLLs (MinGW-w64), read by tests/test_pe.c on Linux and loaded
# under Wine by the Windows suite.  Built only where the cross compiler is
# installed (make test-deps installs it); the tests skip otherwise.
PE_CC   := x86_64-w64-mingw32-gcc
PE_CXX  := x86_64-w64-mingw32-g++
PE_TOOL := x86_64-w64-mingw32-dlltool
PE_WINDRES := x86_64-w64-mingw32-windres
PE_DIR  := $(B)/tests/libs/pe
PE_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror

ifneq ($(shell command -v $(PE_CC) 2>/dev/null),)
PE_DLLS := $(addprefix $(PE_DIR)/,t_pe_basic.dll t_pe_dep.dll t_pe_delay.dll t_pe_mid.dll t_pe_chain.dll \
             t_pe_ping.dll t_pe_pong.dll t_pe_tls.dll t_pe_fwdbad.dll)
ifneq ($(shell command -v $(PE_CXX) 2>/dev/null),)
PE_DLLS += $(PE_DIR)/t_pe_cxx.dll $(PE_DIR)/t_pe_rt.dll
endif
ifneq ($(shell command -v $(PE_WINDRES) 2>/dev/null),)
PE_DLLS += $(PE_DIR)/t_pe_mod.dll
endif
# Control Flow Guard: GCC 12 cannot instrument (no -mguard=cf), clang can,
# linked by lld-link's /guard:cf against MinGW-w64's libraries
ifneq ($(shell command -v clang 2>/dev/null),)
ifneq ($(shell command -v ld.lld 2>/dev/null),)
PE_DLLS += $(PE_DIR)/t_pe_cfg.dll
endif
endif
TEST_LIBS += $(PE_DLLS)
endif

# exports by name, data, an ordinal-only one (@12 NONAME) and a forwarder
$(PE_DIR)/t_pe_basic.dll: tests/pe/t_pe_basic.c tests/pe/t_pe_basic.def
	@mkdir -p $(dir $@)
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

# implicit thread-local data in a .tls$ section (what __declspec(thread) makes)
$(PE_DIR)/t_pe_tls.dll: tests/pe/t_pe_tls.c
	@mkdir -p $(dir $@)
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $<

$(PE_DIR)/t_pe_dep.dll: tests/pe/t_pe_dep.c tests/pe/t_pe_dep.def
	@mkdir -p $(dir $@)
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

# import libraries: t_pe_basic's (t_secret by ordinal), t_pe_dep's delay-load one
$(PE_DIR)/libt_pe_basic.a: tests/pe/t_pe_basic.def
	@mkdir -p $(dir $@)
	$(PE_TOOL) --input-def $< --dllname t_pe_basic.dll --output-lib $@

$(PE_DIR)/libt_pe_dep_delay.a: tests/pe/t_pe_dep.def
	@mkdir -p $(dir $@)
	$(PE_TOOL) --input-def $< --dllname t_pe_dep.dll --output-delaylib $@

$(PE_DIR)/t_pe_delay.dll: tests/pe/t_pe_delay.c $(PE_DIR)/libt_pe_dep_delay.a $(PE_DIR)/libt_pe_basic.a
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

# C++: the runtime linked in, so the DLL needs no MinGW DLL beside it
$(PE_DIR)/t_pe_cxx.dll: tests/pe/t_pe_cxx.cc
	@mkdir -p $(dir $@)
	$(PE_CXX) -std=c++17 -O2 -Wall -Wextra -Werror -shared -static-libgcc -static-libstdc++ -o $@ $<

# C++ with MinGW's runtime DLLs imported, not linked in (libstdc++-6,
# libgcc_s_seh-1; libwinpthread-1 through pthread_self): the Windows suite
# lays it out beside copies of them and alone (Makefile, WB_PE_RT)
$(PE_DIR)/t_pe_rt.dll: tests/pe/t_pe_rt.cc
	@mkdir -p $(dir $@)
	$(PE_CXX) -std=c++17 -O2 -Wall -Wextra -Werror -shared -shared-libgcc -o $@ $< -lpthread

# the system's module calls asked from inside a DLL, and a string resource
$(PE_DIR)/t_pe_mod.res.o: tests/pe/t_pe_mod.rc
	@mkdir -p $(dir $@)
	$(PE_WINDRES) $< -o $@

$(PE_DIR)/t_pe_mod.dll: tests/pe/t_pe_mod.c $(PE_DIR)/t_pe_mod.res.o
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

# a chain: t_pe_chain -> t_pe_mid -> t_pe_basic, and a forwarder into t_pe_basic
$(PE_DIR)/libt_pe_mid.a: tests/pe/t_pe_mid.def
	@mkdir -p $(dir $@)
	$(PE_TOOL) --input-def $< --dllname t_pe_mid.dll --output-lib $@

$(PE_DIR)/t_pe_mid.dll: tests/pe/t_pe_mid.c tests/pe/t_pe_mid.def $(PE_DIR)/libt_pe_basic.a
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

$(PE_DIR)/t_pe_chain.dll: tests/pe/t_pe_chain.c $(PE_DIR)/libt_pe_mid.a
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

# two DLLs importing from each other (each linked with the other's import library)
$(PE_DIR)/libt_pe_%.a: tests/pe/t_pe_%.def
	@mkdir -p $(dir $@)
	$(PE_TOOL) --input-def $< --dllname t_pe_$*.dll --output-lib $@

$(PE_DIR)/t_pe_ping.dll: tests/pe/t_pe_ping.c tests/pe/t_pe_ping.def $(PE_DIR)/libt_pe_pong.a
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

$(PE_DIR)/t_pe_pong.dll: tests/pe/t_pe_ping.c tests/pe/t_pe_pong.def $(PE_DIR)/libt_pe_ping.a
	$(PE_CC) $(PE_CFLAGS) -DPONG -shared -o $@ $^

# forwarders to malformed ordinals (quoted: ld's .def parser takes no bare #)
$(PE_DIR)/t_pe_fwdbad.dll: tests/pe/t_pe_fwdbad.c tests/pe/t_pe_fwdbad.def
	@mkdir -p $(dir $@)
	$(PE_CC) $(PE_CFLAGS) -shared -o $@ $^

# t_pe_cfg.c: clang for MinGW-w64, its libgcc from the GCC cross compiler
$(PE_DIR)/t_pe_cfg.dll: tests/pe/t_pe_cfg.c
	@mkdir -p $(dir $@)
	clang --target=x86_64-w64-mingw32 -O2 -Wall -Wextra -Werror -Xclang -cfguard -fuse-ld=lld -shared \
	    -L$(dir $(shell $(PE_CC) -print-libgcc-file-name)) -o $@ $< -Wl,--Xlink=-guard:cf
