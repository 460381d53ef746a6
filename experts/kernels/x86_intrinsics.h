// <immintrin.h> with GCC 12's false -Wuninitialized warnings silenced: its AVX-512 intrinsics
// pass _mm512_undefined_*() as the merge source (GCC bug 105593).
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
