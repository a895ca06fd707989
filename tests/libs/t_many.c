/* 4096 exported functions: symbol and string tables of about 150 KiB, over
 * what the loader copies into its own memory, so they are read in place. */
#define F(n) int t_fn_##n(void) { return n; }
#define D1(n) F(n##0) F(n##1) F(n##2) F(n##3) F(n##4) F(n##5) F(n##6) F(n##7)
#define D2(n) D1(n##0) D1(n##1) D1(n##2) D1(n##3) D1(n##4) D1(n##5) D1(n##6) D1(n##7)
#define D3(n) D2(n##0) D2(n##1) D2(n##2) D2(n##3) D2(n##4) D2(n##5) D2(n##6) D2(n##7)
#define D4(n) D3(n##0) D3(n##1) D3(n##2) D3(n##3) D3(n##4) D3(n##5) D3(n##6) D3(n##7)
D4(1)
