/* Imports t_provided from whatever the host's global scope has. */
extern int t_provided(void);
int t_consume(void) { return t_provided(); }
