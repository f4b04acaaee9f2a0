#include "config.h"
#include "util.h"

const char *greeting(void) { return GREETING; }
