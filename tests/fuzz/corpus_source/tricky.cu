#include <cuda_fp16.h>
#if __has_include(<cuda_bf16.h>)
#pragma unroll 4
#endif
_Pragma("unroll")
const char *s = u8"/*x*/"; char c = '\''; int n = 1'000;
#define A(x) #x /* c
 */ int y;
