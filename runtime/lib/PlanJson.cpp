//===- PlanJson.cpp - A loaded plan printed as JSON -----------------------===//
#include "moec/runtime/PlanJson.h"

#include "moec/schema/plan_schema_text.h"

#include "flatbuffers/idl.h"

namespace moec {

Status planToJson(const Plan &plan, std::string *json) {
  flatbuffers::IDLOptions options;
  options.strict_json = true;                    // quoted field names: valid JSON
  options.output_default_scalars_in_json = true; // every field, not only those set
  options.output_enum_identifiers = true;        // "F8E4M3", not 3
  flatbuffers::Parser parser(options);
  if (!parser.Parse(kPlanSchemaText) || !parser.SetRootType("moec.plan.Plan"))
    return Status::error("internal error: the embedded plan schema does not parse: %s",
                         parser.error_.c_str());
  json->clear();
  if (!flatbuffers::GenerateTextFromTable(parser, &plan.root(), "moec.plan.Plan", json))
    return Status::error("%s: cannot print the plan as JSON: a string in it is not valid "
                         "UTF-8",
                         plan.name().c_str());
  if (json->empty() || json->back() != '\n')
    *json += '\n';
  return Status();
}

} // namespace moec
