/* Two versions of one symbol: t_ver@VER_1 (old) and t_ver@@VER_2 (default). */
int t_ver_old(void) { return 1; }
int t_ver_new(void) { return 2; }
__asm__(".symver t_ver_old, t_ver@VER_1");
__asm__(".symver t_ver_new, t_ver@@VER_2");
int t_ver_marker(void) { return 7; }
