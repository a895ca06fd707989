/* The peer of libt_grp_user.so, later in the group's order.  The IFUNC
 * resolver returns a pointer that a relocation (R_X86_64_RELATIVE) puts in
 * place: run before this library is relocated it would return garbage. */
int grp_peer_value(void) { return 5; }
static int pick_impl(void) { return 7; }
static int (*volatile picks[])(void) = {pick_impl};  /* read at run time */
static int (*resolve_pick(void))(void) { return picks[0]; }
int grp_peer_pick(void) __attribute__((ifunc("resolve_pick")));
