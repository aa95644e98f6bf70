// Prompt sets of `deepserve bench` (spec/serving.md 6.1 "Datasets"; D29). Lengths are counted with
// our tokenizer (the one the server uses), so "Total input tokens" is a client-side count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace ds::bench {

/// One prompt: its text, its token count under our tokenizer, the output length to request.
struct DatasetRow {
  std::string prompt;
  int prompt_len = 0;
  int output_len = 0;
};

/// Settings of the random datasets.
struct RandomSpec {
  int input_len = 1024;     // --random-input-len
  int output_len = 1024;    // --random-output-len
  double range_ratio = 0;   // --random-range-ratio r: lengths uniform in [max(floor(L*r), 1), L]
  int num_prompts = 1000;
  uint64_t seed = 1;
};

/// Per-prompt lengths uniform in [max(floor(full*r), 1), full] (std::mt19937_64, not numpy's
/// stream: same distribution, different draws). std::invalid_argument naming the flag when
/// full < 1 or r outside [0, 1].
std::vector<int> random_lengths(int full, double range_ratio, int num, uint64_t& state, const char* flag);

/// `random-ids` (and `random` without --dataset-path, D29): token ids (offset_i + i + j) mod vocab,
/// offset_i random, decoded to text; the text is re-encoded and trimmed (up to 4 rounds) so its
/// token count is at most input_len_i; prompt_len = the final text's token count.
std::vector<DatasetRow> sample_random_ids(const Tokenizer& tok, const RandomSpec& spec);

/// `random` with --dataset-path: ShareGPT first-turn texts (shuffled), tokenized, repeated or cut to
/// input_len_i tokens, decoded (spec 6.1); prompt_len re-counted on the decoded text.
std::vector<DatasetRow> sample_random_sharegpt(const Tokenizer& tok, const RandomSpec& spec,
                                               const std::string& sharegpt_path);

/// `sharegpt`: conversations with >= 2 turns; prompt = first turn, output_len = token count of the
/// reply (or `fixed_output_len` > 0); drops prompt_len < 2 or output_len < 2, and (bench_serving's
/// default) prompt_len > 1024 or prompt_len + output_len > 2048. Shuffled with `seed`.
std::vector<DatasetRow> sample_sharegpt(const Tokenizer& tok, const std::string& path, int num_prompts,
                                        int fixed_output_len, uint64_t seed);

/// Reads the ShareGPT JSON array and returns the (first turn, first reply) pairs of conversations
/// with >= 2 turns. std::runtime_error naming the file on I/O or format errors.
std::vector<std::pair<std::string, std::string>> load_sharegpt_pairs(const std::string& path);

}  // namespace ds::bench
