// The grammar a constrained reply must follow: JSON values shaped by a JSON Schema, with literal
// text around them (a tool-call format's markers). Nodes refer to each other by index, so a
// grammar may be recursive (any JSON value contains any JSON value). JsonAutomaton runs it one
// byte at a time; TokenConstraint turns it into a token mask for the sampler.
//
// compile_json_schema() reads the subset of JSON Schema below (the schema is untrusted input):
//   type (one name or an array of names: object array string number integer boolean null),
//   properties, required, additionalProperties (true, false or a schema; default true),
//   enum, const (any JSON values, matched as their compact JSON text), items (one schema),
//   minItems, maxItems, anyOf and oneOf (both as "one of these"; oneOf's exclusivity is not
//   enforced), and the annotations title, description, default, examples, $schema, $id,
//   $comment, which change nothing. Any other keyword (pattern, format, minimum, $ref, ...) is
//   a SchemaError naming it and its path, so a schema is never half-applied.
// Limits (hostile schemas): kMaxSchemaDepth nesting, kMaxGrammarNodes nodes, kMaxProperties
// properties per object, kMaxEnumValues enum values, enum/const texts of kMaxLiteralBytes.
// What the grammar generates is compact JSON with short whitespace runs allowed between
// tokens; numbers have at most 15 integer digits, 15 fraction digits and 2 exponent digits (always a finite double).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem {

class SchemaError : public std::runtime_error {
 public:
  SchemaError(std::string path, const std::string& message)
      : std::runtime_error(path.empty() ? message : path + ": " + message), path_(std::move(path)) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline constexpr int kMaxSchemaDepth = 16;
inline constexpr size_t kMaxGrammarNodes = 4096;
inline constexpr size_t kMaxProperties = 64;
inline constexpr size_t kMaxEnumValues = 256;
inline constexpr size_t kMaxLiteralBytes = 1024;

struct GrammarNode {
  enum class Kind : uint8_t { Literal, Seq, Choice, Object, Array, String, Number };
  Kind kind = Kind::Literal;
  std::string text;                // Literal: the exact bytes
  std::vector<uint32_t> children;  // Seq: in order; Choice: alternatives; Array: {items}
  bool integer = false;            // Number: no fraction, no exponent
  // Object: property names as they appear between the quotes (JSON-escaped), their value nodes.
  std::vector<std::string> keys;
  std::vector<uint32_t> values;
  uint64_t required = 0;           // bit i: keys[i] is required
  int64_t additional = -1;         // node of other properties' values; -1: none allowed
  uint32_t min_items = 0;          // Array
  uint32_t max_items = std::numeric_limits<uint32_t>::max();
};

struct JsonGrammar {
  std::vector<GrammarNode> nodes;
  uint32_t root = 0;
  std::vector<uint32_t> min_chars;  // per node: the length of its shortest text (finish())

  uint32_t add(GrammarNode n);  // SchemaError past kMaxGrammarNodes
  uint32_t literal(std::string text);
  uint32_t seq(std::vector<uint32_t> children);
  uint32_t choice(std::vector<uint32_t> alternatives);
  uint32_t string();
  uint32_t number(bool integer);
  // Any JSON value (shared within one grammar: the node is made once).
  uint32_t any_value();
  // An object with any properties of any values.
  uint32_t any_object();
  // The nodes of a JSON Schema (see the file comment); path names it in errors.
  uint32_t schema(const nlohmann::json& schema, const std::string& path, int depth = 0);
  // Computes min_chars; call once the grammar is complete.
  void finish();

 private:
  int64_t any_value_ = -1;
};

// A grammar whose document is one value of the schema. SchemaError names what it refuses.
std::shared_ptr<const JsonGrammar> compile_json_schema(const nlohmann::json& schema);
// response_format json_object / Ollama format "json": any JSON object.
std::shared_ptr<const JsonGrammar> json_object_grammar();

}  // namespace tandem
