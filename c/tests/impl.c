/* impl - the one translation unit holding the header's implementation for
 * the test programs (dump, verify, fmtcheck, truncate, noalloc, bench, unit),
 * which include mdjournal.h alone: the stb pattern, compiled once. */
#define MDJOURNAL_IMPLEMENTATION
#include "mdjournal.h"
