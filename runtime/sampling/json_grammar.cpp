#include "runtime/sampling/json_grammar.h"

#include <algorithm>
#include <set>

namespace tandem {
namespace {

using nlohmann::json;

constexpr uint32_t kUnreachable = 1u << 30;  // min_chars before the fixpoint reaches a node

uint32_t add_sat(uint64_t a, uint64_t b) { return uint32_t(std::min<uint64_t>(a + b, kUnreachable)); }

const std::set<std::string>& annotations() {
  static const std::set<std::string> s = {"title", "description", "default", "examples", "$schema", "$id", "$comment"};
  return s;
}

const std::set<std::string>& supported() {
  static const std::set<std::string> s = {"type",  "properties", "required", "additionalProperties",
                                          "enum",  "const",      "items",    "minItems",
                                          "maxItems", "anyOf",   "oneOf"};
  return s;
}

std::string compact(const json& v, const std::string& path) {
  std::string t;
  try {
    t = v.dump();
  } catch (const json::exception&) {
    throw SchemaError(path, "holds a string that is not valid UTF-8");
  }
  if (t.size() > kMaxLiteralBytes)
    throw SchemaError(path, "is " + std::to_string(t.size()) + " bytes of JSON, more than the " +
                                std::to_string(kMaxLiteralBytes) + " a constant may have");
  return t;
}

uint32_t count_of(const json& s, const char* key, const std::string& path) {
  const json& v = s[key];
  if (!v.is_number_integer() && !v.is_number_unsigned())
    throw SchemaError(path + "." + key, std::string("must be a non-negative integer, not ") + v.type_name());
  if (v.is_number_integer() && v.get<int64_t>() < 0) throw SchemaError(path + "." + key, "must not be negative");
  return uint32_t(std::min<uint64_t>(v.get<uint64_t>(), 1000000));
}

}  // namespace

uint32_t JsonGrammar::add(GrammarNode n) {
  if (nodes.size() >= kMaxGrammarNodes)
    throw SchemaError("", "the schema needs more than " + std::to_string(kMaxGrammarNodes) + " grammar nodes");
  nodes.push_back(std::move(n));
  return uint32_t(nodes.size() - 1);
}

uint32_t JsonGrammar::literal(std::string text) {
  GrammarNode n;
  n.kind = GrammarNode::Kind::Literal;
  n.text = std::move(text);
  return add(std::move(n));
}

uint32_t JsonGrammar::seq(std::vector<uint32_t> children) {
  GrammarNode n;
  n.kind = GrammarNode::Kind::Seq;
  n.children = std::move(children);
  return add(std::move(n));
}

uint32_t JsonGrammar::choice(std::vector<uint32_t> alternatives) {
  if (alternatives.size() == 1) return alternatives[0];
  GrammarNode n;
  n.kind = GrammarNode::Kind::Choice;
  n.children = std::move(alternatives);
  return add(std::move(n));
}

uint32_t JsonGrammar::string() {
  GrammarNode n;
  n.kind = GrammarNode::Kind::String;
  return add(std::move(n));
}

uint32_t JsonGrammar::number(bool integer) {
  GrammarNode n;
  n.kind = GrammarNode::Kind::Number;
  n.integer = integer;
  return add(std::move(n));
}

uint32_t JsonGrammar::any_value() {
  if (any_value_ >= 0) return uint32_t(any_value_);
  // The Choice is made first so the object and array inside can point back at it.
  GrammarNode c;
  c.kind = GrammarNode::Kind::Choice;
  const uint32_t self = add(std::move(c));
  any_value_ = self;
  GrammarNode obj;
  obj.kind = GrammarNode::Kind::Object;
  obj.additional = self;
  const uint32_t o = add(std::move(obj));
  GrammarNode arr;
  arr.kind = GrammarNode::Kind::Array;
  arr.children = {self};
  const uint32_t a = add(std::move(arr));
  const uint32_t s = string(), num = number(false);
  const uint32_t t = literal("true"), f = literal("false"), nul = literal("null");
  nodes[self].children = {o, a, s, num, t, f, nul};
  return self;
}

uint32_t JsonGrammar::any_object() {
  GrammarNode obj;
  obj.kind = GrammarNode::Kind::Object;
  obj.additional = any_value();
  return add(std::move(obj));
}

uint32_t JsonGrammar::schema(const json& s, const std::string& path, int depth) {
  if (depth > kMaxSchemaDepth)
    throw SchemaError(path, "the schema nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
  if (s.is_boolean()) {
    if (s.get<bool>()) return any_value();
    throw SchemaError(path, "the schema false accepts no value");
  }
  if (!s.is_object()) throw SchemaError(path, std::string("a schema must be an object or a boolean, not ") + s.type_name());
  for (const auto& [key, _] : s.items())
    if (!supported().contains(key) && !annotations().contains(key))
      throw SchemaError(path, "the keyword '" + key + "' is not supported (supported: type, properties, required, "
                              "additionalProperties, enum, const, items, minItems, maxItems, anyOf, oneOf)");

  if (s.contains("const")) return literal(compact(s["const"], path + ".const"));
  if (s.contains("enum")) {
    const json& e = s["enum"];
    if (!e.is_array() || e.empty()) throw SchemaError(path + ".enum", "must be a non-empty array");
    if (e.size() > kMaxEnumValues)
      throw SchemaError(path + ".enum", "has " + std::to_string(e.size()) + " values, more than " +
                                            std::to_string(kMaxEnumValues));
    std::vector<uint32_t> alts;
    std::set<std::string> texts;
    for (size_t i = 0; i < e.size(); ++i) {
      std::string t = compact(e[i], path + ".enum[" + std::to_string(i) + "]");
      if (texts.insert(t).second) alts.push_back(literal(std::move(t)));
    }
    return choice(std::move(alts));
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (!s.contains(key)) continue;
    for (const char* other : {"type", "properties", "items", "additionalProperties", "required", "anyOf", "oneOf"})
      if (std::string(other) != key && s.contains(other))
        throw SchemaError(path, std::string(key) + " together with '" + other +
                                    "' is not supported: put the constraints inside each alternative");
    const json& alts = s[key];
    if (!alts.is_array() || alts.empty()) throw SchemaError(path + "." + key, "must be a non-empty array");
    if (alts.size() > kMaxEnumValues) throw SchemaError(path + "." + key, "has too many alternatives");
    std::vector<uint32_t> nodes_of;
    for (size_t i = 0; i < alts.size(); ++i)
      nodes_of.push_back(schema(alts[i], path + "." + key + "[" + std::to_string(i) + "]", depth + 1));
    return choice(std::move(nodes_of));
  }

  std::vector<std::string> types;
  if (s.contains("type")) {
    const json& t = s["type"];
    if (t.is_string()) {
      types.push_back(t.get<std::string>());
    } else if (t.is_array() && !t.empty()) {
      for (const auto& x : t) {
        if (!x.is_string()) throw SchemaError(path + ".type", "must list type names");
        types.push_back(x.get<std::string>());
      }
    } else {
      throw SchemaError(path + ".type", "must be a type name or a non-empty array of them");
    }
  } else if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required")) {
    types.push_back("object");
  } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
    types.push_back("array");
  } else {
    return any_value();
  }

  std::vector<uint32_t> alts;
  for (const std::string& type : types) {
    if (type == "string") {
      alts.push_back(string());
    } else if (type == "number" || type == "integer") {
      alts.push_back(number(type == "integer"));
    } else if (type == "boolean") {
      alts.push_back(choice({literal("true"), literal("false")}));
    } else if (type == "null") {
      alts.push_back(literal("null"));
    } else if (type == "object") {
      GrammarNode obj;
      obj.kind = GrammarNode::Kind::Object;
      if (s.contains("properties")) {
        const json& props = s["properties"];
        if (!props.is_object()) throw SchemaError(path + ".properties", "must be an object");
        if (props.size() > kMaxProperties)
          throw SchemaError(path + ".properties", "has " + std::to_string(props.size()) + " properties, more than " +
                                                      std::to_string(kMaxProperties));
        for (const auto& [name, sub] : props.items()) {
          std::string quoted = compact(json(name), path + ".properties");
          obj.keys.push_back(quoted.substr(1, quoted.size() - 2));
          obj.values.push_back(schema(sub, path + ".properties." + name, depth + 1));
        }
      }
      if (s.contains("required")) {
        const json& req = s["required"];
        if (!req.is_array()) throw SchemaError(path + ".required", "must be an array of property names");
        for (const auto& r : req) {
          if (!r.is_string()) throw SchemaError(path + ".required", "must be an array of property names");
          std::string quoted = compact(r, path + ".required");
          const auto it = std::find(obj.keys.begin(), obj.keys.end(), quoted.substr(1, quoted.size() - 2));
          if (it == obj.keys.end())
            throw SchemaError(path + ".required", "names '" + r.get<std::string>() + "', which is not in properties");
          obj.required |= uint64_t(1) << (it - obj.keys.begin());
        }
      }
      obj.additional = any_value();
      if (s.contains("additionalProperties")) {
        const json& ap = s["additionalProperties"];
        if (ap.is_boolean() && !ap.get<bool>())
          obj.additional = -1;
        else
          obj.additional = schema(ap, path + ".additionalProperties", depth + 1);
      }
      alts.push_back(add(std::move(obj)));
    } else if (type == "array") {
      GrammarNode arr;
      arr.kind = GrammarNode::Kind::Array;
      arr.children = {s.contains("items") ? schema(s["items"], path + ".items", depth + 1) : any_value()};
      if (s.contains("minItems")) arr.min_items = count_of(s, "minItems", path);
      if (s.contains("maxItems")) arr.max_items = count_of(s, "maxItems", path);
      if (arr.min_items > arr.max_items) throw SchemaError(path, "minItems is larger than maxItems");
      if (arr.min_items > 4096) throw SchemaError(path + ".minItems", "is larger than 4096");
      alts.push_back(add(std::move(arr)));
    } else {
      throw SchemaError(path + ".type", "unknown type '" + type + "'");
    }
  }
  return choice(std::move(alts));
}

void JsonGrammar::finish() {
  min_chars.assign(nodes.size(), kUnreachable);
  for (int round = 0; round < 256; ++round) {
    bool changed = false;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const GrammarNode& n = nodes[i];
      uint32_t m = kUnreachable;
      switch (n.kind) {
        case GrammarNode::Kind::Literal: m = uint32_t(n.text.size()); break;
        case GrammarNode::Kind::Seq:
          m = 0;
          for (uint32_t c : n.children) m = add_sat(m, min_chars[c]);
          break;
        case GrammarNode::Kind::Choice:
          for (uint32_t c : n.children) m = std::min(m, min_chars[c]);
          break;
        case GrammarNode::Kind::Object: {
          m = 2;
          int required = 0;
          for (size_t k = 0; k < n.keys.size(); ++k)
            if (n.required >> k & 1) {
              m = add_sat(m, add_sat(n.keys[k].size() + 3, min_chars[n.values[k]]));
              ++required;
            }
          if (required > 1) m = add_sat(m, uint64_t(required - 1));
          break;
        }
        case GrammarNode::Kind::Array:
          m = n.min_items == 0 ? 2
                               : add_sat(uint64_t(n.min_items) * min_chars[n.children[0]], 2 + uint64_t(n.min_items) - 1);
          break;
        case GrammarNode::Kind::String: m = 2; break;
        case GrammarNode::Kind::Number: m = 1; break;
      }
      if (m < min_chars[i]) {
        min_chars[i] = m;
        changed = true;
      }
    }
    if (!changed) break;
  }
  for (size_t i = 0; i < nodes.size(); ++i)
    if (min_chars[i] >= kUnreachable)
      throw SchemaError("", "the schema admits no finite value (it requires itself without end)");
}

std::shared_ptr<const JsonGrammar> compile_json_schema(const json& schema) {
  auto g = std::make_shared<JsonGrammar>();
  g->root = g->schema(schema, "schema");
  g->finish();
  return g;
}

std::shared_ptr<const JsonGrammar> json_object_grammar() {
  auto g = std::make_shared<JsonGrammar>();
  g->root = g->any_object();
  g->finish();
  return g;
}

}  // namespace tandem
