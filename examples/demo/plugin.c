/* The demo's plug-in: the runtime helpers that generated code calls.
 *
 * It is loaded privately into the code region by vmcode, so every fragment
 * reaches these functions with a direct `call rel32`.  It uses the host's libc
 * (stdout, fputc), bound through versioned look-up.
 */
#include <stdio.h>
#include <string.h>

#define PROFILE_SLOTS 4096

static unsigned long loop_heads;              /* every loop iteration     */
static unsigned long profile[PROFILE_SLOTS];  /* per loop id              */
static const char *input = "";                /* what ',' reads           */
static unsigned long output_bytes;
static int quiet;                             /* count, do not print      */

void bf_putchar(int c)
{
    if (!quiet) fputc(c, stdout);
    output_bytes++;
}

void bf_set_quiet(int on) { quiet = on; }

int bf_getchar(void)
{
    return *input ? (unsigned char)*input++ : 0;
}

void bf_loop_head(unsigned id)
{
    loop_heads++;
    profile[id % PROFILE_SLOTS]++;
}

void bf_set_input(const char *s) { input = s ? s : ""; }

void bf_reset(void)
{
    loop_heads = 0;
    output_bytes = 0;
    memset(profile, 0, sizeof profile);
}

unsigned long bf_loop_heads(void) { return loop_heads; }
unsigned long bf_output_bytes(void) { return output_bytes; }

/* The hottest loop: its id and count. */
unsigned long bf_hottest(unsigned *id)
{
    unsigned best = 0;
    for (unsigned i = 1; i < PROFILE_SLOTS; i++)
        if (profile[i] > profile[best]) best = i;
    *id = best;
    return profile[best];
}
