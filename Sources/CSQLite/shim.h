#ifndef APT_CSQLITE_SHIM_H
#define APT_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
