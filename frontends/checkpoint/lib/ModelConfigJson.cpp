//===- ModelConfigJson.cpp - config.json <-> ModelConfig ------------------===//
#include "JsonFile.h"
#include "moec/checkpoint/ModelConfig.h"

#include <limits>

using namespace llvm;
using json = nlohmann::json;

namespace moec::checkpoint {

namespace {

/// Reads typed keys from one JSON object, remembering the first problem so a
/// parse reads straight through and reports one error at the end. A key that is
/// absent or null takes its default; without a default it is required.
class KeyReader {
public:
  KeyReader(const json &Object, StringRef Prefix)
      : Object(Object), Prefix(Prefix) {}

  /// Returns true if \p Key is present and not null.
  bool has(StringRef Key) const {
    auto It = Object.find(Key.str());
    return It != Object.end() && !It->is_null();
  }

  /// Returns true if \p Key is present, null or not.
  bool present(StringRef Key) const { return Object.contains(Key.str()); }

  /// Reads an integer key (JSON integers only).
  int64_t integer(StringRef Key, std::optional<int64_t> Default) {
    const json *Value = lookup(Key, Default.has_value());
    if (!Value)
      return Default.value_or(0);
    if (Value->is_number_unsigned() &&
        Value->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      return fail(Key, "is too large", 0);
    if (!Value->is_number_integer())
      return typeError(Key, "an integer", *Value, 0);
    return Value->get<int64_t>();
  }

  /// Reads a number key (integer or floating point).
  double number(StringRef Key, std::optional<double> Default) {
    const json *Value = lookup(Key, Default.has_value());
    if (!Value)
      return Default.value_or(0.0);
    if (!Value->is_number())
      return typeError(Key, "a number", *Value, 0.0);
    return Value->get<double>();
  }

  /// Reads a boolean key.
  bool boolean(StringRef Key, std::optional<bool> Default) {
    const json *Value = lookup(Key, Default.has_value());
    if (!Value)
      return Default.value_or(false);
    if (!Value->is_boolean())
      return typeError(Key, "a boolean", *Value, false);
    return Value->get<bool>();
  }

  /// Reads a string key.
  std::string string(StringRef Key, std::optional<std::string> Default) {
    const json *Value = lookup(Key, Default.has_value());
    if (!Value)
      return Default.value_or("");
    if (!Value->is_string())
      return typeError(Key, "a string", *Value, std::string());
    return Value->get<std::string>();
  }

  /// Returns the object under \p Key, nullptr if absent/null or not an object
  /// (the latter recorded as an error).
  const json *object(StringRef Key) {
    const json *Value = lookup(Key, /*Optional=*/true);
    if (Value && !Value->is_object())
      return typeError(Key, "an object or null", *Value, nullptr);
    return Value;
  }

  /// Records \p Message about \p Key unless an earlier problem was recorded.
  template <typename T> T fail(StringRef Key, const Twine &Message, T Result) {
    if (!FirstError)
      FirstError = ("key '" + Prefix + Key + "' " + Message).str();
    return Result;
  }

  /// Records a whole message unless an earlier problem was recorded.
  void failMessage(const Twine &Message) {
    if (!FirstError)
      FirstError = Message.str();
  }

  /// Returns true once a problem was recorded.
  bool failed() const { return FirstError.has_value(); }
  /// Returns the first recorded problem (only valid when failed()).
  const std::string &message() const { return *FirstError; }

private:
  /// Returns the value of \p Key, or nullptr when absent or null (an error
  /// unless \p Optional).
  const json *lookup(StringRef Key, bool Optional) {
    auto It = Object.find(Key.str());
    if (It == Object.end() || It->is_null()) {
      if (!Optional)
        failMessage("missing required key '" + Prefix + Key + "'");
      return nullptr;
    }
    return &*It;
  }

  /// Records "key 'K' must be <Expected>, got <type>".
  template <typename T>
  T typeError(StringRef Key, StringRef Expected, const json &Value, T Result) {
    return fail(Key,
                "must be " + Twine(Expected) + ", got " + jsonTypeName(Value),
                Result);
  }

  const json &Object;
  std::string Prefix;
  std::optional<std::string> FirstError;
};

/// Reads `architectures` / `model_type`; records an error for anything else.
Architecture readArchitecture(const json &Root, KeyReader &Reader) {
  std::optional<Architecture> FromList, FromType;
  if (Reader.has("architectures")) {
    const json &List = Root["architectures"];
    if (!List.is_array() || List.empty() || !List[0].is_string()) {
      Reader.fail("architectures", "must be a non-empty list of strings",
                  Architecture::DeepseekV3);
    } else {
      std::string Name = List[0].get<std::string>();
      if (Name == "DeepseekV2ForCausalLM")
        FromList = Architecture::DeepseekV2;
      else if (Name == "DeepseekV3ForCausalLM")
        FromList = Architecture::DeepseekV3;
      else
        Reader.failMessage("unsupported architecture '" +
                           escapeForMessage(Name) +
                           "' (expected DeepseekV2ForCausalLM or "
                           "DeepseekV3ForCausalLM)");
    }
  }
  if (Reader.has("model_type")) {
    std::string Type = Reader.string("model_type", std::string());
    if (Type == "deepseek_v2")
      FromType = Architecture::DeepseekV2;
    else if (Type == "deepseek_v3")
      FromType = Architecture::DeepseekV3;
    else if (!Reader.failed())
      Reader.failMessage("unsupported model_type '" + escapeForMessage(Type) +
                         "' (expected deepseek_v2 or deepseek_v3)");
  }
  if (Reader.failed())
    return Architecture::DeepseekV3;
  if (!FromList && !FromType) {
    Reader.failMessage(
        "missing required key 'architectures' (or 'model_type')");
    return Architecture::DeepseekV3;
  }
  if (FromList && FromType && *FromList != *FromType)
    Reader.failMessage(
        "'architectures' and 'model_type' name different models");
  return FromList ? *FromList : *FromType;
}

void readRopeScaling(const json &Scaling, ModelConfig &Config,
                     KeyReader &Outer) {
  KeyReader Reader(Scaling, "rope_scaling.");
  std::string Type = Reader.string("type", std::string());
  std::string RopeType = Reader.string("rope_type", std::string());
  if (Type.empty())
    Type = RopeType;
  if (!Reader.failed() && !RopeType.empty() && RopeType != Type)
    Reader.failMessage("'rope_scaling.type' (" + escapeForMessage(Type) +
                       ") and 'rope_scaling.rope_type' (" +
                       escapeForMessage(RopeType) + ") disagree");
  if (!Reader.failed() && Type != "yarn")
    Reader.failMessage(Type.empty()
                           ? Twine("missing required key 'rope_scaling.type'")
                           : "unsupported 'rope_scaling.type' '" +
                                 escapeForMessage(Type) +
                                 "' (only yarn is supported)");
  YarnScaling Yarn;
  Yarn.Factor = Reader.number("factor", std::nullopt);
  Yarn.OriginalMaxPositionEmbeddings =
      Reader.integer("original_max_position_embeddings", 4096);
  Yarn.BetaFast = Reader.number("beta_fast", 32.0);
  Yarn.BetaSlow = Reader.number("beta_slow", 1.0);
  Yarn.Mscale = Reader.number("mscale", 1.0);
  Yarn.MscaleAllDim = Reader.number("mscale_all_dim", 0.0);
  if (Reader.failed())
    Outer.failMessage(Reader.message());
  Config.RopeScaling = Yarn;
}

void readQuantization(const json &Quant, ModelConfig &Config,
                      KeyReader &Outer) {
  KeyReader Reader(Quant, "quantization_config.");
  Fp8Quantization Fp8;
  std::string Method = Reader.string("quant_method", std::nullopt);
  std::string Format = Reader.string("fmt", std::string("e4m3"));
  Fp8.ActivationScheme =
      Reader.string("activation_scheme", std::string("dynamic"));
  if (Reader.has("scale_fmt"))
    Fp8.ScaleFormat = Reader.string("scale_fmt", std::nullopt);
  if (!Reader.failed() && Method != "fp8")
    Reader.fail("quant_method",
                "is '" + escapeForMessage(Method) + "'; only fp8 is supported",
                0);
  if (!Reader.failed() && Format != "e4m3")
    Reader.fail("fmt",
                "is '" + escapeForMessage(Format) + "'; only e4m3 is supported",
                0);
  if (!Reader.failed() && Fp8.ActivationScheme != "dynamic")
    Reader.fail("activation_scheme",
                "is '" + escapeForMessage(Fp8.ActivationScheme) +
                    "'; only dynamic is supported",
                0);
  if (!Reader.failed()) {
    if (!Reader.has("weight_block_size")) {
      Reader.failMessage("missing required key "
                         "'quantization_config.weight_block_size'");
    } else {
      const json &Block = Quant["weight_block_size"];
      if (!Block.is_array() || Block.size() != 2 ||
          !Block[0].is_number_integer() || !Block[1].is_number_integer()) {
        Reader.fail("weight_block_size", "must be a list of two integers", 0);
      } else {
        Fp8.BlockRows = Block[0].get<int64_t>();
        Fp8.BlockCols = Block[1].get<int64_t>();
      }
    }
  }
  if (Reader.failed())
    Outer.failMessage(Reader.message());
  Config.Quantization = Fp8;
}

} // namespace

Expected<ModelConfig> parseModelConfig(StringRef JsonText, StringRef FileName) {
  Expected<json> Parsed = parseJson(JsonText, FileName);
  if (!Parsed)
    return Parsed.takeError();
  const json &Root = *Parsed;
  if (!Root.is_object())
    return fileError(FileName,
                     "expected a JSON object, got " + jsonTypeName(Root));

  KeyReader Reader(Root, "");
  ModelConfig Config;
  Config.Arch = readArchitecture(Root, Reader);
  if (Reader.failed())
    return fileError(FileName, Reader.message());
  bool IsV3 = Config.Arch == Architecture::DeepseekV3;

  Config.VocabSize = Reader.integer("vocab_size", std::nullopt);
  Config.HiddenSize = Reader.integer("hidden_size", std::nullopt);
  Config.MoeIntermediateSize =
      Reader.integer("moe_intermediate_size", std::nullopt);
  Config.NumHiddenLayers = Reader.integer("num_hidden_layers", std::nullopt);
  Config.FirstKDenseReplace =
      Reader.integer("first_k_dense_replace", IsV3 ? 3 : 0);
  Config.MoeLayerFreq = Reader.integer("moe_layer_freq", 1);
  Config.NumAttentionHeads =
      Reader.integer("num_attention_heads", std::nullopt);
  Config.NumKeyValueHeads =
      Reader.integer("num_key_value_heads", Config.NumAttentionHeads);
  Config.NumRoutedExperts = Reader.integer("n_routed_experts", std::nullopt);
  Config.NumSharedExperts = Reader.integer("n_shared_experts", IsV3 ? 1 : 0);
  Config.NumExpertsPerTok = Reader.integer("num_experts_per_tok", std::nullopt);
  Config.NumGroups = Reader.integer("n_group", IsV3 ? 8 : 1);
  Config.TopkGroup = Reader.integer("topk_group", IsV3 ? 4 : 1);

  std::string Scoring =
      Reader.string("scoring_func", IsV3 ? "sigmoid" : "softmax");
  if (Scoring == "softmax")
    Config.Scoring = ScoringFunc::Softmax;
  else if (Scoring == "sigmoid")
    Config.Scoring = ScoringFunc::Sigmoid;
  else if (!Reader.failed())
    Reader.fail("scoring_func",
                "is '" + escapeForMessage(Scoring) +
                    "'; expected softmax or sigmoid",
                0);

  std::string Method =
      Reader.string("topk_method", IsV3 ? "noaux_tc" : "greedy");
  // "gready" is the (misspelt) default of Hugging Face's DeepseekV2Config.
  if (Method == "greedy" || Method == "gready")
    Config.Topk = TopkMethod::Greedy;
  else if (Method == "group_limited_greedy")
    Config.Topk = TopkMethod::GroupLimitedGreedy;
  else if (Method == "noaux_tc")
    Config.Topk = TopkMethod::NoauxTc;
  else if (!Reader.failed())
    Reader.fail("topk_method",
                "is '" + escapeForMessage(Method) +
                    "'; expected greedy, group_limited_greedy or noaux_tc",
                0);

  Config.RoutedScalingFactor =
      Reader.number("routed_scaling_factor", IsV3 ? 2.5 : 1.0);
  Config.NormTopkProb = Reader.boolean("norm_topk_prob", IsV3);
  // Absent means the config class default; an explicit null means no q LoRA.
  if (!Reader.present("q_lora_rank"))
    Config.QLoraRank = 1536;
  else if (Reader.has("q_lora_rank"))
    Config.QLoraRank = Reader.integer("q_lora_rank", std::nullopt);
  Config.KvLoraRank = Reader.integer("kv_lora_rank", std::nullopt);
  Config.QkNopeHeadDim = Reader.integer("qk_nope_head_dim", std::nullopt);
  Config.QkRopeHeadDim = Reader.integer("qk_rope_head_dim", std::nullopt);
  Config.VHeadDim = Reader.integer("v_head_dim", std::nullopt);
  Config.RopeTheta = Reader.number("rope_theta", 10000.0);
  Config.RmsNormEps = Reader.number("rms_norm_eps", 1e-6);
  Config.MaxPositionEmbeddings =
      Reader.integer("max_position_embeddings", IsV3 ? 4096 : 2048);
  Config.TieWordEmbeddings = Reader.boolean("tie_word_embeddings", false);

  // The dense MLP width is needed only when some layer is dense.
  bool HasDenseLayer =
      Config.NumHiddenLayers > 0 &&
      (Config.FirstKDenseReplace > 0 || Config.MoeLayerFreq > 1);
  Config.IntermediateSize =
      Reader.integer("intermediate_size",
                     HasDenseLayer ? std::nullopt : std::optional<int64_t>(0));

  // Keys that, if present, must describe the architecture moec implements.
  if (Reader.has("hidden_act") && Reader.string("hidden_act", "") != "silu" &&
      !Reader.failed())
    Reader.fail("hidden_act",
                "is '" + escapeForMessage(Reader.string("hidden_act", "")) +
                    "'; DeepSeek MLPs use silu",
                0);
  if (Reader.boolean("attention_bias", false))
    Reader.fail("attention_bias", "is true; DeepSeek projections have no bias",
                0);

  // Rope keys that would change the function but that moec does not read are
  // refused by name rather than ignored (ignoring them gives wrong logits).
  if (!Reader.boolean("rope_interleave", true))
    Reader.fail("rope_interleave",
                "is false; moec expects the checkpoint's interleaved rope dims",
                0);
  if (Reader.has("rope_parameters") && !Reader.failed())
    Reader.fail("rope_parameters",
                "is not supported; give 'rope_theta' and 'rope_scaling' instead",
                0);
  if (const json *Scaling = Reader.object("rope_scaling"))
    readRopeScaling(*Scaling, Config, Reader);
  if (const json *Quant = Reader.object("quantization_config"))
    readQuantization(*Quant, Config, Reader);

  if (Reader.failed())
    return fileError(FileName, Reader.message());
  if (Error Err = verifyModelConfig(Config, FileName))
    return std::move(Err);
  return Config;
}

Expected<ModelConfig> loadModelConfig(StringRef Path) {
  Expected<std::string> Text = readTextFile(Path);
  if (!Text)
    return Text.takeError();
  return parseModelConfig(*Text, Path);
}

std::string modelConfigToJson(const ModelConfig &Config) {
  json Root;
  Root["architectures"] = json::array({Config.architectureName().str()});
  Root["model_type"] = Config.modelType().str();
  Root["vocab_size"] = Config.VocabSize;
  Root["hidden_size"] = Config.HiddenSize;
  Root["intermediate_size"] = Config.IntermediateSize;
  Root["moe_intermediate_size"] = Config.MoeIntermediateSize;
  Root["num_hidden_layers"] = Config.NumHiddenLayers;
  Root["first_k_dense_replace"] = Config.FirstKDenseReplace;
  Root["moe_layer_freq"] = Config.MoeLayerFreq;
  Root["num_attention_heads"] = Config.NumAttentionHeads;
  Root["num_key_value_heads"] = Config.NumKeyValueHeads;
  Root["n_routed_experts"] = Config.NumRoutedExperts;
  Root["n_shared_experts"] = Config.NumSharedExperts;
  Root["num_experts_per_tok"] = Config.NumExpertsPerTok;
  Root["n_group"] = Config.NumGroups;
  Root["topk_group"] = Config.TopkGroup;
  Root["scoring_func"] =
      Config.Scoring == ScoringFunc::Sigmoid ? "sigmoid" : "softmax";
  switch (Config.Topk) {
  case TopkMethod::Greedy:
    Root["topk_method"] = "greedy";
    break;
  case TopkMethod::GroupLimitedGreedy:
    Root["topk_method"] = "group_limited_greedy";
    break;
  case TopkMethod::NoauxTc:
    Root["topk_method"] = "noaux_tc";
    break;
  }
  Root["routed_scaling_factor"] = Config.RoutedScalingFactor;
  Root["norm_topk_prob"] = Config.NormTopkProb;
  Root["q_lora_rank"] =
      Config.QLoraRank ? json(*Config.QLoraRank) : json(nullptr);
  Root["kv_lora_rank"] = Config.KvLoraRank;
  Root["qk_nope_head_dim"] = Config.QkNopeHeadDim;
  Root["qk_rope_head_dim"] = Config.QkRopeHeadDim;
  Root["v_head_dim"] = Config.VHeadDim;
  Root["rope_theta"] = Config.RopeTheta;
  if (Config.RopeScaling) {
    const YarnScaling &Yarn = *Config.RopeScaling;
    Root["rope_scaling"] = {{"type", "yarn"},
                            {"factor", Yarn.Factor},
                            {"original_max_position_embeddings",
                             Yarn.OriginalMaxPositionEmbeddings},
                            {"beta_fast", Yarn.BetaFast},
                            {"beta_slow", Yarn.BetaSlow},
                            {"mscale", Yarn.Mscale},
                            {"mscale_all_dim", Yarn.MscaleAllDim}};
  } else {
    Root["rope_scaling"] = nullptr;
  }
  Root["rms_norm_eps"] = Config.RmsNormEps;
  Root["max_position_embeddings"] = Config.MaxPositionEmbeddings;
  Root["tie_word_embeddings"] = Config.TieWordEmbeddings;
  Root["hidden_act"] = "silu";
  Root["attention_bias"] = false;
  if (Config.Quantization) {
    const Fp8Quantization &Fp8 = *Config.Quantization;
    json Quant = {{"quant_method", "fp8"},
                  {"fmt", "e4m3"},
                  {"activation_scheme", Fp8.ActivationScheme},
                  {"weight_block_size", {Fp8.BlockRows, Fp8.BlockCols}}};
    if (Fp8.ScaleFormat)
      Quant["scale_fmt"] = *Fp8.ScaleFormat;
    Root["quantization_config"] = Quant;
  }
  return Root.dump(2) + "\n";
}

} // namespace moec::checkpoint
