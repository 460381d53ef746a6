# Warnings on for our own targets only; call tandem_warnings(<target>).
function(tandem_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
endfunction()
