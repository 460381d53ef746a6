# TANDEM_SANITIZE=address,undefined builds everything with those sanitizers.
if(TANDEM_SANITIZE)
  add_compile_options(-fsanitize=${TANDEM_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${TANDEM_SANITIZE})
endif()
