// The stages a Sampler runs, each a small function over a candidate list so it can be tested on
// hand-made logits. Candidates carry a logit and, after softmax(), a probability; stages that
// cut the list keep the survivors sorted by descending logit (ties: smaller id first).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace tandem {

struct TokenCandidate {
  int32_t id;
  float logit;
  float p = 0.0f;  // filled by softmax()
};

struct PenaltyConfig {
  float repeat = 1.0f;     // divides positive logits, multiplies negative ones (1: off)
  float presence = 0.0f;   // subtracted once from every token seen in the window
  float frequency = 0.0f;  // subtracted per occurrence in the window
};

// One candidate per logit, in id order.
std::vector<TokenCandidate> make_candidates(std::span<const float> logits);

// Penalises the tokens in `recent` (the window the caller keeps). Order of candidates is kept.
void apply_penalties(std::vector<TokenCandidate>& c, std::span<const int32_t> recent, const PenaltyConfig& p);

// The highest logit; ties go to the smaller id. c must not be empty.
int32_t argmax(const std::vector<TokenCandidate>& c);

// Divides logits by temperature (> 0).
void apply_temperature(std::vector<TokenCandidate>& c, float temperature);

// Sorts by descending logit (ties: smaller id first) and keeps the first k (k <= 0: all).
void top_k(std::vector<TokenCandidate>& c, int k);

// Fills p with softmax(logit) over the current list (numerically stable).
void softmax(std::vector<TokenCandidate>& c);

// Needs p and a descending order: keeps the smallest prefix whose mass is >= top_p (at least one).
void top_p(std::vector<TokenCandidate>& c, float top_p);

// Needs p: keeps candidates with p >= min_p * max(p) (at least the best one).
void min_p(std::vector<TokenCandidate>& c, float min_p);

// A uniform double in [0, 1) from 53 random bits: the same on every standard library, unlike
// std::uniform_real_distribution, so a seed gives the same text everywhere.
double uniform01(std::mt19937_64& rng);

// Draws one candidate with probability proportional to p (p need not sum to 1).
int32_t draw(const std::vector<TokenCandidate>& c, std::mt19937_64& rng);

}  // namespace tandem
