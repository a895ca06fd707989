/* vmcode: the command-line tool.
 *
 *   vmcode info [--json] [OPTIONS...]   open a region and say what it got
 */
#include "vmcode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *placement_name(int p)
{
    switch (p) {
    case VMC_PLACED_NEAR_APP: return "near_app";
    case VMC_PLACED_VM_BASE: return "vm_base";
    case VMC_PLACED_ANYWHERE: return "anywhere";
    default: return "none";
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vmcode COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  info [--json] [OPTIONS...]  open a region with OPTIONS and print what it got:\n"
            "                              bases, sizes, W^X, how much of the code region\n"
            "                              reaches the main program, the placement step\n"
            "\n"
            "OPTIONS are vmcode option text, e.g. -vm_size 1G -vmheap_size 0 -no_near_app -w_xor_x\n"
            "(the same as the VMCODE_OPTIONS environment variable).\n");
}

/* Joins argv[from..] into option text, taking out --json. */
static int gather(int argc, char **argv, int from, char *text, size_t len, int *json)
{
    size_t n = 0;
    text[0] = 0;
    for (int i = from; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            *json = 1;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
        int w = snprintf(text + n, len - n, "%s%s", n ? " " : "", argv[i]);
        if (w < 0 || (size_t)w >= len - n) return -1;
        n += (size_t)w;
    }
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    char text[4096];
    int json = 0;
    int g = gather(argc, argv, 2, text, sizeof text, &json);
    if (g) {
        usage(g > 0 ? stdout : stderr);
        return g > 0 ? 0 : 2;
    }
    vmc_options_t o;
    vmc_options_init(&o);
    const char *env = getenv("VMCODE_OPTIONS");
    int r = vmc_options_parse(&o, env);
    if (!r) r = vmc_options_parse(&o, text);
    if (r) {
        fprintf(stderr, "vmcode info: %s\n", vmc_last_error());
        return 2;
    }
    vmc_t *v;
    r = vmc_open(&o, &v);
    if (r) {
        fprintf(stderr, "vmcode info: %s (%s)\n", vmc_last_error(), vmc_strerror(r));
        return 1;
    }
    vmc_info_t in;
    vmc_info(v, &in);
    double pct = in.code_size ? 100.0 * (double)in.code_reaching / (double)in.code_size : 0;
    uintptr_t cb = (uintptr_t)in.code_base, hb = (uintptr_t)in.heap_base;
    if (json) {
        printf("{\"code_base\":\"%#lx\",\"code_size\":%zu,\"code_wbase\":\"%#lx\","
               "\"heap_base\":\"%#lx\",\"heap_size\":%zu,\"w_xor_x\":%s,"
               "\"placement\":\"%s\",\"reach_lo\":\"%#lx\",\"reach_hi\":\"%#lx\","
               "\"code_reaching\":%zu,\"reaching_percent\":%.2f,"
               "\"requested_code_size\":%zu,\"requested_heap_size\":%zu}\n",
               (unsigned long)cb, in.code_size, (unsigned long)(uintptr_t)in.code_wbase,
               (unsigned long)hb, in.heap_size, in.w_xor_x ? "true" : "false",
               placement_name(in.placement), (unsigned long)in.reach_lo,
               (unsigned long)in.reach_hi, in.code_reaching, pct, in.requested_code_size,
               in.requested_heap_size);
    } else {
        printf("code region   %#014lx-%#014lx  %8zu MiB  (asked %zu MiB)\n", (unsigned long)cb,
               (unsigned long)(cb + in.code_size), in.code_size >> 20, in.requested_code_size >> 20);
        if (in.w_xor_x)
            printf("writable view %#014lx-%#014lx  (W^X: dual mapped)\n",
                   (unsigned long)(uintptr_t)in.code_wbase,
                   (unsigned long)((uintptr_t)in.code_wbase + in.code_size));
        if (in.heap_size)
            printf("heap region   %#014lx-%#014lx  %8zu MiB  (asked %zu MiB)\n", (unsigned long)hb,
                   (unsigned long)(hb + in.heap_size), in.heap_size >> 20,
                   in.requested_heap_size >> 20);
        else
            printf("heap region   none\n");
        printf("W^X           %s\n", in.w_xor_x ? "on" : "off");
        printf("placement     %s\n", placement_name(in.placement));
        printf("reach target  %#lx-%#lx (%s)\n", (unsigned long)in.reach_lo,
               (unsigned long)in.reach_hi,
               o.reach_lo || o.reach_hi ? "-reach_lo/-reach_hi" : "the main program's image");
        printf("reaching      %zu MiB of %zu MiB (%.1f %%) reach all of it by rel32\n",
               in.code_reaching >> 20, in.code_size >> 20, pct);
    }
    vmc_close(v);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "info")) return cmd_info(argc, argv);
    fprintf(stderr, "vmcode: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
