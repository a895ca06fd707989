/* Needs libt_grp_user.so, then libt_grp_peer.so: the user is mapped (and,
 * in DT_NEEDED order, relocated) before the peer it calls. */
int grp_user(void);
int grp_top(void) { return grp_user() + 100; }
