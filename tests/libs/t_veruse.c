/* Uses both versions of t_ver from libt_ver.so (a private dependency). */
extern int t_ver_v1(void);
__asm__(".symver t_ver_v1, t_ver@VER_1");
extern int t_ver(void);
int t_use_old(void) { return t_ver_v1(); }
int t_use_new(void) { return t_ver(); }
