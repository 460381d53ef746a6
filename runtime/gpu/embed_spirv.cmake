# cmake -DSPV=<file.spv> -DNAME=<variant> -DOUT=<file.cpp> -P embed_spirv.cmake
# Turns a SPIR-V binary into a C++ array of little-endian 32-bit words.
file(READ ${SPV} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR rem "${n} % 8")
if(n EQUAL 0 OR NOT rem EQUAL 0)
  message(FATAL_ERROR "${SPV}: not a SPIR-V word stream (${n} hex digits)")
endif()
string(REGEX REPLACE "(..)(..)(..)(..)" "0x\\4\\3\\2\\1u," words "${hex}")
string(REGEX REPLACE "(0x........u,0x........u,0x........u,0x........u,0x........u,0x........u,)" "\\1\n" words "${words}")
file(WRITE ${OUT} "// Generated from ${SPV} by embed_spirv.cmake; do not edit.\n#include <cstdint>\n#include <cstddef>\n"
  "namespace tandem::gpu::spirv {\nextern const uint32_t ${NAME}[];\nextern const size_t ${NAME}_words;\n"
  "const uint32_t ${NAME}[] = {\n${words}\n};\nconst size_t ${NAME}_words = sizeof(${NAME}) / 4;\n}\n")
