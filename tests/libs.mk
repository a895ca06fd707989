# Test libraries, loaded privately by tests/test_loader.c.  Built without
# the sanitizer flags: they are loaded by vmcode, not by the system loader.
TLIB        := $(B)/tests/libs
TLIB_CFLAGS := -std=c11 -O2 -g -fPIC -Wall -Wextra -Werror -D_GNU_SOURCE
TLIB_LD     := -shared -Wl,-z,now
TEST_LIBS := $(addprefix $(TLIB)/libt_,basic.so ifunc.so ver.so veruse.so weak.so ctor.so \
               chain_b.so chain_a.so host.so relr.so sysv.so tlsdep.so usetls.so nodelete.so \
               prov.so consumer.so forkctor.so bigdata.so many.so chatty.so hostdup.so \
               objects.so interp.so runpath.so rpath.so rplain.so rdst.so rtop.so rtopnew.so usehost.so \
               tls.so tls_desc.so tls_ie.so tls_desc_small.so tls_iebig.so tlsdesc_probe.so tlshost.so \
               tlshost_desc.so tlshost_ie.so tlsvar.so tlsdyn.so tlsdyn_desc.so tlsdyn_ie.so tlsuse.so) \
             $(TLIB)/sub/libt_rdep.so $(TLIB)/sub3/libt_rdep.so $(TLIB)/sub/libt_rmid.so \
             $(TLIB)/sub2/libt_rleaf.so $(TLIB)/t_pie $(TLIB)/t_dlopen $(TLIB)/libt_needhost.so \
             $(TLIB)/t_nordynamic $(TLIB)/t_rdynamic $(TLIB)/t_nordynamic_stripped
# A load group whose first dependency calls the second without naming it
# (tests/test_search.c: group_*).
TEST_LIBS += $(addprefix $(TLIB)/libt_,grp_peer.so grp_user.so grp_top.so)
$(TLIB)/libt_grp_top.so: tests/libs/t_grp_top.c $(TLIB)/libt_grp_user.so $(TLIB)/libt_grp_peer.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_grp_top.so -o $@ $< -L$(TLIB) -Wl,--no-as-needed \
	    -l:libt_grp_user.so -l:libt_grp_peer.so -Wl,-rpath,'$$ORIGIN'

# Unwinding, thread-exit destructors, introspection (tests/test_unwind.c,
# test_tlsdtor.c, test_addrinfo.c).
TEST_LIBS += $(addprefix $(TLIB)/libt_,tldtor.so bt.so unwind.so unwind_static.so addr.so dladdr.so faildep.so)
# What runs at the process's exit without an unload (tests/test_exit.c).
TEST_LIBS += $(TLIB)/libt_atexit.so

# The debugger tests' libraries (tests/test_debug.c): -O0 for exact lines.
TEST_LIBS += $(TLIB)/libt_dbg.so $(TLIB)/libt_dbg2.so
$(TLIB)/libt_dbg.so: tests/libs/t_dbg.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -O0 $(TLIB_LD) -Wl,-soname,libt_dbg.so -o $@ $<

# A C++ library, where a C++ compiler is installed (its test skips otherwise).
TLIB_CXX := $(shell command -v $(CXX) 2>/dev/null)
ifneq ($(TLIB_CXX),)
TEST_LIBS += $(TLIB)/libt_cxx.so $(TLIB)/libt_cxxstatic.so $(TLIB)/libt_tlcxx.so $(TLIB)/libt_hostthrow.so \
             $(TLIB)/t_cxxhost
endif

# A C++ program that catches a plug-in's exceptions; linked with
# libvmcode.a, so built with its sanitizer flags.
$(TLIB)/t_cxxhost: tests/libs/t_cxxhost.cc $(B)/libvmcode.a include/vmcode.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -Werror $(SAN) -Iinclude -o $@ $< $(B)/libvmcode.a -ldl -lpthread

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

$(TLIB)/libt_faildep.so: tests/libs/t_faildep.c $(TLIB)/libt_basic.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_faildep.so -o $@ $< -L$(TLIB) -l:libt_basic.so

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

# PT_INTERP and an entry point in a shared library (as libc.so.6, libcap.so.2);
# the same source as a PIE, an executable the loaders refuse.
$(TLIB)/libt_interp.so: tests/libs/t_interp.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_interp.so -Wl,-e,t_interp_main -o $@ $<

$(TLIB)/t_pie: tests/libs/t_interp.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -DT_PIE -pie -rdynamic -Wl,-z,now -o $@ $<

$(TLIB)/t_dlopen: tests/libs/t_dlopen.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -o $@ $< -ldl

# Search paths: libt_rdep.so in sub/ (returns 1) and sub3/ (returns 3),
# found through DT_RUNPATH (--enable-new-dtags), DT_RPATH
# (--disable-new-dtags), or $LIB and $PLATFORM; a chain whose leaf only the
# top library's DT_RPATH finds (t_rtop.c).
$(TLIB)/sub/libt_rdep.so $(TLIB)/sub3/libt_rdep.so: tests/libs/t_rdep.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -DT_RDEP_VALUE=$(if $(findstring sub3,$@),3,1) -Wl,-soname,libt_rdep.so -o $@ $<

$(TLIB)/libt_runpath.so: tests/libs/t_ruser.c $(TLIB)/sub/libt_rdep.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_runpath.so -o $@ $< -L$(TLIB)/sub -l:libt_rdep.so \
	    -Wl,--enable-new-dtags -Wl,-rpath,'$$ORIGIN/sub'

$(TLIB)/libt_rpath.so: tests/libs/t_ruser.c $(TLIB)/sub/libt_rdep.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_rpath.so -o $@ $< -L$(TLIB)/sub -l:libt_rdep.so \
	    -Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/sub'

# No search path of its own: libt_rdep.so only through the ld.so cache,
# LD_LIBRARY_PATH or beside it (tests/test_ldcache.c).
$(TLIB)/libt_rplain.so: tests/libs/t_ruser.c $(TLIB)/sub/libt_rdep.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_rplain.so -o $@ $< -L$(TLIB)/sub -l:libt_rdep.so

$(TLIB)/libt_rdst.so: tests/libs/t_ruser.c $(TLIB)/sub/libt_rdep.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_rdst.so -o $@ $< -L$(TLIB)/sub -l:libt_rdep.so \
	    -Wl,--enable-new-dtags -Wl,-rpath,'$${ORIGIN}/dst/$$LIB/$${PLATFORM}'

$(TLIB)/sub2/libt_rleaf.so: tests/libs/t_rleaf.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_rleaf.so -o $@ $<

$(TLIB)/sub/libt_rmid.so: tests/libs/t_rmid.c $(TLIB)/sub2/libt_rleaf.so
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_rmid.so -o $@ $< -L$(TLIB)/sub2 -l:libt_rleaf.so

$(TLIB)/libt_rtop.so: tests/libs/t_rtop.c $(TLIB)/sub/libt_rmid.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_rtop.so -o $@ $< -L$(TLIB)/sub -l:libt_rmid.so \
	    -Wl,-rpath-link,$(TLIB)/sub2 -Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/sub:$$ORIGIN/sub2'

$(TLIB)/libt_rtopnew.so: tests/libs/t_rtop.c $(TLIB)/sub/libt_rmid.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_rtopnew.so -o $@ $< -L$(TLIB)/sub -l:libt_rmid.so \
	    -Wl,-rpath-link,$(TLIB)/sub2 -Wl,--enable-new-dtags -Wl,-rpath,'$$ORIGIN/sub:$$ORIGIN/sub2'

$(TLIB)/libt_unwind.so: tests/libs/t_walk.h
# The same with libgcc's unwinder linked in (it finds frames itself).
$(TLIB)/libt_unwind_static.so: tests/libs/t_unwind.c tests/libs/t_walk.h
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -static-libgcc -Wl,-soname,libt_unwind_static.so -o $@ $<

# The same C++ library carrying its own libstdc++ and unwinder.
$(TLIB)/libt_cxxstatic.so: tests/libs/t_cxx.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -fPIC -Wall -Wextra -Werror $(TLIB_LD) -static-libgcc -static-libstdc++ -Wl,-soname,libt_cxxstatic.so -o $@ $<

# Opened by the tests with dlopen (host code that throws through private frames).
$(TLIB)/libt_hostthrow.so: tests/libs/t_hostthrow.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -fPIC -Wall -Wextra -Werror $(TLIB_LD) -Wl,-soname,libt_hostthrow.so -o $@ $<

$(TLIB)/libt_tlcxx.so: tests/libs/t_tlcxx.cc
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -fPIC -Wall -Wextra -Werror $(TLIB_LD) -Wl,-soname,libt_tlcxx.so -o $@ $<

# A program whose function a plug-in calls: exported (-rdynamic), not
# exported, and not exported from a stripped program (no .symtab to tell);
# linked with libvmcode.a, so built with its sanitizer flags.
$(TLIB)/t_nordynamic: tests/libs/t_nordynamic.c $(B)/libvmcode.a
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(SAN) -Iinclude -o $@ $< $(B)/libvmcode.a -ldl -lpthread

$(TLIB)/t_rdynamic: tests/libs/t_nordynamic.c $(B)/libvmcode.a
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(SAN) -Iinclude -rdynamic -o $@ $< $(B)/libvmcode.a -ldl -lpthread

$(TLIB)/t_nordynamic_stripped: tests/libs/t_nordynamic.c $(B)/libvmcode.a
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(SAN) -Iinclude -s -o $@ $< $(B)/libvmcode.a -ldl -lpthread

# Thread-local storage: one source, three dialects.
$(TLIB)/libt_tls_desc.so: tests/libs/t_tls.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -mtls-dialect=gnu2 $(TLIB_LD) -Wl,-soname,libt_tls_desc.so -o $@ $<

# initial-exec and small descriptor blocks go to glibc's static TLS: a
# 64-byte aligned block there instead of 8 KiB, which would not fit
$(TLIB)/libt_tls_ie.so: tests/libs/t_tls.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -DT_TLS_BIG=64 -ftls-model=initial-exec $(TLIB_LD) -Wl,-soname,libt_tls_ie.so -o $@ $<

$(TLIB)/libt_tls_desc_small.so: tests/libs/t_tls.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -DT_TLS_BIG=64 -mtls-dialect=gnu2 $(TLIB_LD) -Wl,-soname,libt_tls_desc_small.so -o $@ $<

$(TLIB)/libt_tls_iebig.so: tests/libs/t_tls.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -ftls-model=initial-exec $(TLIB_LD) -Wl,-soname,libt_tls_iebig.so -o $@ $<

$(TLIB)/libt_tlsdesc_probe.so: tests/libs/t_tlsdesc_probe.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -mtls-dialect=gnu2 $(TLIB_LD) -Wl,-soname,libt_tlsdesc_probe.so -o $@ $<

$(TLIB)/libt_tlshost_desc.so: tests/libs/t_tlshost.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -mtls-dialect=gnu2 $(TLIB_LD) -Wl,-soname,libt_tlshost_desc.so -o $@ $<

$(TLIB)/libt_tlshost_ie.so: tests/libs/t_tlshost.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -ftls-model=initial-exec $(TLIB_LD) -Wl,-soname,libt_tlshost_ie.so -o $@ $<

$(TLIB)/libt_tlsdyn_desc.so: tests/libs/t_tlsdyn.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -mtls-dialect=gnu2 $(TLIB_LD) -Wl,-soname,libt_tlsdyn_desc.so -o $@ $<

$(TLIB)/libt_tlsdyn_ie.so: tests/libs/t_tlsdyn.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -ftls-model=initial-exec $(TLIB_LD) -Wl,-soname,libt_tlsdyn_ie.so -o $@ $<

$(TLIB)/libt_tlsuse.so: tests/libs/t_tlsuse.c $(TLIB)/libt_tls.so
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libt_tlsuse.so -o $@ $< -L$(TLIB) -l:libt_tls.so

# Initial-exec access to another private library's variables: t_tls.c with a
# small block (general dynamic: its module has no static block of its own),
# and t_tlsuse.c built initial-exec, with it as a dependency, without (it
# binds to whichever private library defines the variable), and against the
# 8 KiB block of libt_tls.so, which the surplus cannot hold.
TEST_LIBS += $(addprefix $(TLIB)/libt_,tls_small.so tlsuse_ie.so tlsuse_ie_nodep.so tlsuse_iebig.so)
$(TLIB)/libt_tls_small.so: tests/libs/t_tls.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -DT_TLS_BIG=64 $(TLIB_LD) -Wl,-soname,libt_tls_small.so -o $@ $<

$(TLIB)/libt_tlsuse_ie.so: tests/libs/t_tlsuse.c $(TLIB)/libt_tls_small.so
	$(CC) $(TLIB_CFLAGS) -ftls-model=initial-exec $(TLIB_LD) -Wl,-soname,libt_tlsuse_ie.so -o $@ $< -L$(TLIB) \
	    -l:libt_tls_small.so

$(TLIB)/libt_tlsuse_ie_nodep.so: tests/libs/t_tlsuse.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -ftls-model=initial-exec $(TLIB_LD) -Wl,-soname,libt_tlsuse_ie_nodep.so -o $@ $<

$(TLIB)/libt_tlsuse_iebig.so: tests/libs/t_tlsuse.c $(TLIB)/libt_tls.so
	$(CC) $(TLIB_CFLAGS) -ftls-model=initial-exec $(TLIB_LD) -Wl,-soname,libt_tlsuse_iebig.so -o $@ $< -L$(TLIB) \
	    -l:libt_tls.so

$(TLIB)/libt_tlsdep.so: tests/libs/t_tlsdep.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-z,execstack -Wl,-soname,libt_tlsdep.so -o $@ $<

# Stand-ins for libgcc_s.so.1, each in a folder of its own, and a program
# linked with one (tests/test_unwind.c: which registration each kind of
# unwinder gets).
# Not with a sanitizer: its runtime links the real libgcc_s (the test skips).
FAKEGCC := $(addprefix $(TLIB)/fakegcc_,list btree llvm)
ifeq ($(SAN),)
TEST_LIBS += $(addsuffix /libgcc_s.so.1,$(FAKEGCC)) $(TLIB)/t_fakegcc_host
endif
$(TLIB)/fakegcc_list/libgcc_s.so.1: tests/libs/t_fakegcc.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) $(TLIB_LD) -Wl,-soname,libgcc_s.so.1 -o $@ $<
$(TLIB)/fakegcc_btree/libgcc_s.so.1: tests/libs/t_fakegcc.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -DFAKE_BTREE $(TLIB_LD) -Wl,-soname,libgcc_s.so.1 -o $@ $<
$(TLIB)/fakegcc_llvm/libgcc_s.so.1: tests/libs/t_fakegcc.c
	@mkdir -p $(dir $@)
	$(CC) $(TLIB_CFLAGS) -DFAKE_LLVM $(TLIB_LD) -Wl,-soname,libgcc_s.so.1 -o $@ $<
# Linked against the list stand-in; the others replace it at run time.
$(TLIB)/t_fakegcc_host: tests/libs/t_fakegcc_host.c $(TLIB)/fakegcc_list/libgcc_s.so.1 $(B)/libvmcode.a include/vmcode.h
	$(CC) -std=c11 -O2 -g -Wall -Wextra -Werror $(SAN) -Iinclude -o $@ $< $(B)/libvmcode.a \
	    -Wl,--no-as-needed $(TLIB)/fakegcc_list/libgcc_s.so.1 -Wl,--as-needed -ldl -lpthread
