// Structured output requests (spec/serving.md 4.2 `response_format`, 4.5 `json_schema`): the JSON
// grammar a request asks for and the per-choice constraint the engine applies while sampling.
// docs/constrained_decoding.md.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "server/openai_protocol.h"
#include "text/json_schema.h"
#include "text/token_mask.h"

namespace ds {

struct ServeContext;

/// Reads `response_format` ({"type": "text"} -> none, {"type": "json_object"} -> any JSON object,
/// {"type": "json_schema", "json_schema": {"name", "schema", "strict"}} or with a top-level
/// "schema" -> the schema's grammar) and SGLang's `json_schema` (the schema as a JSON string;
/// completions and /generate sampling_params) into `r.grammar`, and the test hook
/// `debug_forced_prefix` (text) into `r.debug_forced_prefix`.
/// Throws ApiError 400 naming the parameter: a wrong shape, an unknown type (structural_tag is not
/// supported), a missing schema ("schema_ is required for json_schema response format request."),
/// a schema the compiler refuses (the message names the JSON Schema keyword), both fields set.
void parse_structured_output(const ordered_json& body, ChatCompletionRequest& r);

/// A fresh constraint for one generated sequence, or null when `grammar` is null. `end_ids`: the
/// request's stop ids (EOS), allowed only once the JSON is complete. `think_open`: the prompt left
/// the model inside `<think>`; the grammar then starts after the `</think>` token (the reasoning
/// stays free, as SGLang's reasoning-aware grammar).
std::shared_ptr<TokenConstraint> make_json_constraint(const ServeContext& ctx,
                                                      const std::shared_ptr<const JsonGrammar>& grammar,
                                                      const std::vector<int32_t>& end_ids, bool think_open);

}  // namespace ds
