/* A library that writes to stdout from its constructor and destructor. */
#include <stdio.h>

__attribute__((constructor)) static void hello(void) { printf("hello from a constructor\n"); }
__attribute__((destructor)) static void bye(void) { printf("bye from a destructor\n"); }
int t_chatty(void) { return 7; }
