# Fuzzing the private loader with libFuzzer (clang).
#
#   make fuzz                        build $(FUZZ_OUT)/fuzz_elf and fuzz_pe
#   make fuzz-run FUZZ_SECONDS=60    run each for a bounded time (ELF, then PE)
#
# The seed corpora are copied at run time from system libraries (and the test
# libraries when they are built) and from the PE test DLLs (built here when
# MinGW-w64 is installed); nothing of them is committed.  Crashes are
# written to $(FUZZ_OUT)/crash-*: minimise them and add them to
# tests/elf-corpus/, which `make check` loads (loader_elf_corpus_refused_cleanly).

FUZZ_CC      ?= clang
FUZZ_OUT     ?= fuzz-out
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                -fno-strict-aliasing $(FUZZ_SAN) -Iinclude -Isrc
FUZZ_SEEDS   := libz.so.1 libzstd.so.1 libbz2.so.1.0 liblzma.so.5 libffi.so.8 libexpat.so.1 \
                libpcre2-8.so.0 libcrypt.so.1 libuuid.so.1 libacl.so.1
FUZZ_LIB_OBJ := $(patsubst src/%.c,$(FUZZ_OUT)/obj/%.o,$(LIB_SRC))

$(FUZZ_OUT)/obj/%.o: src/%.c $(LIB_HDR) include/vmcode.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/fuzz_elf: fuzz/fuzz_elf.c $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJ) -ldl -lpthread -o $@

# The PE reader needs only its own layer, the error messages and what the
# architecture says of PE (the machine, the base-relocation types).
FUZZ_PE_OBJ := $(filter $(FUZZ_OUT)/obj/pe/% $(FUZZ_OUT)/obj/base/% $(FUZZ_OUT)/obj/arch/x86_64_pe.o,$(FUZZ_LIB_OBJ))

$(FUZZ_OUT)/fuzz_pe: fuzz/fuzz_pe.c $(FUZZ_PE_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_PE_OBJ) -o $@

fuzz: $(FUZZ_OUT)/fuzz_elf $(FUZZ_OUT)/fuzz_pe

fuzz-run: $(FUZZ_OUT)/fuzz_elf $(FUZZ_OUT)/fuzz_pe $(PE_DLLS)
	@mkdir -p $(FUZZ_OUT)/corpus $(FUZZ_OUT)/seeds
	@for n in $(FUZZ_SEEDS); do \
	    for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do \
	        if [ -f $$d/$$n ]; then cp -L $$d/$$n $(FUZZ_OUT)/seeds/$$n; break; fi; \
	    done; \
	done
	@if [ -d $(B)/tests/libs ]; then cp $(B)/tests/libs/*.so $(FUZZ_OUT)/seeds/ 2>/dev/null || true; fi
	@cp tests/elf-corpus/* $(FUZZ_OUT)/seeds/ 2>/dev/null || true
	@rm -f $(FUZZ_OUT)/seeds/README
	$(FUZZ_OUT)/fuzz_elf -max_total_time=$(FUZZ_SECONDS) -max_len=262144 -timeout=10 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/ $(FUZZ_OUT)/corpus $(FUZZ_OUT)/seeds
	@mkdir -p $(FUZZ_OUT)/pe-corpus $(FUZZ_OUT)/pe-seeds
	@for f in $(PE_DLLS); do cp $$f $(FUZZ_OUT)/pe-seeds/; done
	$(FUZZ_OUT)/fuzz_pe -max_total_time=$(FUZZ_SECONDS) -max_len=1048576 -timeout=10 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/pe- $(FUZZ_OUT)/pe-corpus $(FUZZ_OUT)/pe-seeds

.PHONY: fuzz fuzz-run
