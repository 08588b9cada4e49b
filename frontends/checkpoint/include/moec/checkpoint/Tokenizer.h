//===- Tokenizer.h - A checkpoint's tokenizer, compiled for the plan -*- C++ -*-===//
//
// Reads a Hugging Face checkpoint directory's tokenizer.json and tokenizer_config.json
// into the plan's `Tokenizer` table (runtime/schema/plan.fbs): the vocabulary as raw
// bytes (byte-level characters mapped back), the merges as id triples in rank order,
// the Split pre-tokenizers' regexes, the added tokens, BOS/EOS and the chat template.
// The one supported form is DeepSeek's (V2, V3, R1): byte-level BPE with a Sequence of
// Split pre-tokenizers ending in ByteLevel, the identity normalizer and the ByteLevel
// decoder; anything else is refused naming the file and the field.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_TOKENIZER_H
#define MOEC_CHECKPOINT_TOKENIZER_H

#include "moec/schema/plan_generated.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>

namespace moec::checkpoint {

/// The tokenizer of checkpoint directory `dir`, or nullptr when it has no
/// tokenizer.json. With `vocabSize` > 0 (config.json's vocab_size), a token id at or
/// past it is an error: the tokenizer does not fit the model.
llvm::Expected<std::unique_ptr<plan::TokenizerT>> readTokenizer(llvm::StringRef dir,
                                                                int64_t vocabSize);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_TOKENIZER_H
