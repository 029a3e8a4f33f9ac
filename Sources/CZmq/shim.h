#ifndef APT_CZMQ_SHIM_H
#define APT_CZMQ_SHIM_H
#include <zmq.h>
#endif
