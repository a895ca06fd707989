# Test libraries, loaded privately by tests/test_loader.c.  Built without
# the sanitizer flags: they are loaded by vmcode, not by the system loader.
TLIB        := $(B)/tests/libs
TLIB_CFLAGS := -std=c11 -O2 -g -fPIC -Wall -Wextra -Werror -D_GNU_SOURCE
TLIB_LD     := -shared -Wl,-z,now
TEST_LIBS := $(addprefix $(TLIB)/libt_,basic.so ifunc.so ver.so veruse.so weak.so ctor.so \
               chain_b.so chain_a.so host.so relr.so sysv.so tlsdep.so usetls.so nodelete.so \
               prov.so consumer.so forkctor.so bigdata.so many.so chatty.so \
               objects.so)

# A C++ library, where a C++ compiler is installed (its test skips otherwise).
TLIB_CXX := $(shell command -v $(CXX) 2>/dev/null)
ifneq ($(TLIB_CXX),)
TEST_LIBS += $(TLIB)/libt_cxx.so
endif

$(TLIB)/libt_%.so: tests/libs/t_%.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_$*.so -o $@ $<

$(TLIB)/libt_ver.so: tests/libs/t_ver.c tests/libs/t_ver.map
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_ver.so -Wl,--version-script=tests/libs/t_ver.map -o $@ $<

$(TLIB)/libt_veruse.so: tests/libs/t_veruse.c $(TLIB)/libt_ver.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_veruse.so -o $@ $< -L$(TLIB) -l:libt_ver.so

$(TLIB)/libt_ctor.so: tests/libs/t_ctor.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_ctor.so -Wl,-init,t_ctor_init -Wl,-fini,t_ctor_fini -o $@ $<

$(TLIB)/libt_chain_a.so: tests/libs/t_chain_a.c $(TLIB)/libt_chain_b.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_chain_a.so -o $@ $< -L$(TLIB) -l:libt_chain_b.so

# DT_RELR where the linker has it (binutils 2.38+); the test skips otherwise.
$(TLIB)/libt_relr.so: tests/libs/t_relr.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_relr.so -Wl,-z,pack-relative-relocs -o $@ $< 2>/dev/null || \
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_relr.so -o $@ $<

# The same as libt_basic.so with only a SysV DT_HASH (no DT_GNU_HASH).
$(TLIB)/libt_sysv.so: tests/libs/t_basic.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_sysv.so -Wl,--hash-style=sysv -o $@ $<

$(TLIB)/libt_usetls.so: tests/libs/t_usetls.c $(TLIB)/libt_tlsdep.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_usetls.so -o $@ $< -L$(TLIB) -l:libt_tlsdep.so

$(TLIB)/libt_nodelete.so: tests/libs/t_nodelete.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_nodelete.so -Wl,-z,nodelete -o $@ $<

$(TLIB)/libt_cxx.so: tests/libs/t_cxx.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -fPIC -Wall -Wextra -Werror $(TLIB_LD) -Wl,-soname,libt_cxx.so -o $@ $<
