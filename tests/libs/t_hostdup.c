/* Defines a name the test program exports (vt_host_add): loaded privately,
 * it comes before the host in the scope of libraries loaded after it. */
int vt_host_add(int a, int b);
int vt_host_add(int a, int b) { return 1000 + a + b; }
