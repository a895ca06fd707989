/* Weak undefined references: bound to 0. */
extern int t_missing_fn(void) __attribute__((weak));
extern int t_missing_var __attribute__((weak));
int t_weak_is_null(void) { return t_missing_fn == 0 && &t_missing_var == 0; }
