/* A second library for the debugger tests: several at once. */
int t_dbg2_fn(int x);

int t_dbg2_fn(int x)
{
    return x - 7;
}
