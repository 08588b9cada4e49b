# Writes OUTPUT, a C++ header that holds the text of INPUT as
# `inline constexpr const char NAME[]` in namespace moec (a raw string literal).
# Run with cmake -DINPUT=... -DOUTPUT=... -DNAME=... -P EmbedText.cmake.
file(READ ${INPUT} text)
if(text MATCHES "\\)moectxt\"")
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )moectxt\"")
endif()
get_filename_component(source ${INPUT} NAME)
file(WRITE ${OUTPUT}.tmp
  "// Generated from ${source} by cmake/EmbedText.cmake; do not edit.\n"
  "#pragma once\n"
  "namespace moec {\n"
  "inline constexpr const char ${NAME}[] = R\"moectxt(${text})moectxt\";\n"
  "} // namespace moec\n")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
