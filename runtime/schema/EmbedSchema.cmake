# Writes OUTPUT, a C++ header that holds the text of INPUT (plan.fbs) as
# moec::kPlanSchemaText, so tools print plans with flatbuffers' own JSON printer
# without reading the schema from disk. Run with cmake -DINPUT=... -DOUTPUT=... -P.
file(READ ${INPUT} text)
if(text MATCHES "\\)moecfbs\"")
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )moecfbs\"")
endif()
file(WRITE ${OUTPUT}.tmp
  "// Generated from plan.fbs by runtime/schema/EmbedSchema.cmake; do not edit.\n"
  "#ifndef MOEC_SCHEMA_PLAN_SCHEMA_TEXT_H\n"
  "#define MOEC_SCHEMA_PLAN_SCHEMA_TEXT_H\n"
  "namespace moec {\n"
  "/// The text of runtime/schema/plan.fbs.\n"
  "inline constexpr const char kPlanSchemaText[] = R\"moecfbs(${text})moecfbs\";\n"
  "} // namespace moec\n"
  "#endif\n")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
