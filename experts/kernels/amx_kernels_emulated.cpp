// The AMX kernels with their tile instructions emulated in C++ (amx_tiles.h): same source, same
// layout and fp32 scaling code, runnable on any AVX-512 CPU, so tests check the kernel logic
// where there is no AMX (this machine, CI). Never picked by the engine for speed.
#define TANDEM_AMX_EMULATE 1
#define TANDEM_AMX_NAMESPACE amx_emulated
#include "experts/kernels/amx_kernels.cpp"
