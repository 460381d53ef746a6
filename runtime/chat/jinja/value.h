// The values a Jinja template computes with: Python-like, with reference semantics for lists,
// dicts and namespaces (so `{% set ns.x = 1 %}` changes the one namespace every scope sees).
// Undefined is its own kind: `x is defined`, `x | default(y)` and attribute access on missing
// keys need to tell it from none.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::jinja {

class Value;
using Array = std::vector<Value>;
// Insertion-ordered like a Python dict; templates' dicts are small, so a linear search is fine.
using Object = std::vector<std::pair<std::string, Value>>;

struct Callable;  // a macro or builtin function (interpreter.cpp)

struct Undefined {};
struct None {};

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Namespace, Callable };

  Value() : v_(Undefined{}) {}
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::make_shared<Array>(std::move(a))) {}
  static Value object(Object o = {});
  static Value namespace_object(Object o = {});
  static Value callable(std::shared_ptr<Callable> c);

  Kind kind() const;
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_number() const { return kind() == Kind::Int || kind() == Kind::Float; }
  bool is_array() const { return kind() == Kind::Array; }
  bool is_mapping() const { return kind() == Kind::Object || kind() == Kind::Namespace; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_number() const;  // Int or Float
  const std::string& as_string() const { return std::get<std::string>(v_); }
  Array& array() const { return *std::get<std::shared_ptr<Array>>(v_); }
  // Whether this value is the namespace `ns` or holds it (in lists, dicts, namespaces): storing
  // such a value into `ns` would make a reference cycle that is never freed.
  bool holds_namespace(const Value& ns) const;
  Object& object_items() const;  // Object or Namespace
  const Callable& as_callable() const { return *std::get<std::shared_ptr<Callable>>(v_); }

  // Python truthiness: undefined, none, false, 0, "", [] and {} are false.
  bool truthy() const;
  // The member `key` of a mapping, or undefined.
  Value get(std::string_view key) const;
  // Sets (or adds) a mapping member.
  void set(const std::string& key, Value v) const;
  // Python ==, with int/float/bool comparing as numbers.
  bool equals(const Value& o) const;
  // What `{{ v }}` writes: str(v) in Python (True, None, ['a', 1]); undefined writes "".
  std::string to_output() const;
  // Python repr(v) (strings quoted), used inside containers.
  std::string repr() const;
  // json.dumps(v, ensure_ascii=False) with optional indent, as transformers' tojson does.
  std::string to_json(int indent = -1) const;

  static Value from_json(const nlohmann::ordered_json& j);
  std::string_view kind_name() const;

 private:
  struct NamespaceBox {
    Object items;
  };
  struct ObjectBox {
    Object items;
  };
  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<Array>, std::shared_ptr<ObjectBox>,
               std::shared_ptr<NamespaceBox>, std::shared_ptr<Callable>>
      v_;
};

}  // namespace tandem::jinja
