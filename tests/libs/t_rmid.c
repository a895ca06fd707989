/* The middle of the search-path chain (see t_rtop.c). */
int t_rleaf(void);
int t_rmid(void) { return t_rleaf() + 10; }
