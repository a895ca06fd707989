/* Under-linked, as libtheoraenc is: it calls two functions of
 * libt_grp_peer.so without naming that library in DT_NEEDED.  It works when
 * loaded as part of a group that has the peer (libt_grp_top.so), as with
 * the system loader.  grp_peer_pick is an IFUNC whose resolver needs the
 * peer relocated. */
int grp_peer_value(void);
int grp_peer_pick(void);
int grp_user(void) { return grp_peer_value() * 10 + grp_peer_pick(); }
