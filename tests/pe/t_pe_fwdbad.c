/* A DLL whose forwarders name malformed ordinals (t_pe_fwdbad.def): each is
 * refused when looked up, never bound to whatever ordinal a lenient parse
 * of the digits would give. */
__declspec(dllexport) int t_one(void) { return 1; }
