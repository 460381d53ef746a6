#include "runtime/chat/jinja/value.h"

#include <charconv>
#include <cmath>
#include <unordered_set>

namespace tandem::jinja {
namespace {

std::string float_text(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

// Python's repr of a str: single quotes unless the text has a ' and no ".
std::string python_repr(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == q) out += std::string("\\") + char(q);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  out += q;
  return out;
}

void to_json_into(std::string& out, const Value& v, int indent, int depth) {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out += '\n';
    out.append(size_t(indent) * size_t(d), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
    case Value::Kind::Callable: out += "null"; break;
    case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Value::Kind::Int: out += std::to_string(v.as_int()); break;
    case Value::Kind::Float: out += float_text(v.as_number()); break;
    case Value::Kind::String: json_string(out, v.as_string()); break;
    case Value::Kind::Array: {
      const Array& a = v.array();
      if (a.empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        to_json_into(out, a[i], indent, depth + 1);
      }
      newline(depth);
      out += ']';
      break;
    }
    case Value::Kind::Object:
    case Value::Kind::Namespace: {
      const Object& o = v.object_items();
      if (o.empty()) {
        out += "{}";
        break;
      }
      out += '{';
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out += indent < 0 ? ", " : ",";
        newline(depth + 1);
        json_string(out, o[i].first);
        out += ": ";
        to_json_into(out, o[i].second, indent, depth + 1);
      }
      newline(depth);
      out += '}';
      break;
    }
  }
}

}  // namespace

Value Value::object(Object o) {
  Value v;
  v.v_ = std::make_shared<ObjectBox>(ObjectBox{std::move(o)});
  return v;
}

Value Value::namespace_object(Object o) {
  Value v;
  v.v_ = std::make_shared<NamespaceBox>(NamespaceBox{std::move(o)});
  return v;
}

bool Value::holds_namespace(const Value& ns) const {
  const auto* target = std::get_if<std::shared_ptr<NamespaceBox>>(&ns.v_);
  if (!target) return false;
  std::vector<const Value*> todo = {this};
  std::unordered_set<const void*> seen;
  while (!todo.empty()) {
    const Value* v = todo.back();
    todo.pop_back();
    const void* box = nullptr;
    if (auto* n = std::get_if<std::shared_ptr<NamespaceBox>>(&v->v_)) {
      if (*n == *target) return true;
      box = n->get();
    } else if (auto* o = std::get_if<std::shared_ptr<ObjectBox>>(&v->v_)) {
      box = o->get();
    } else if (auto* a = std::get_if<std::shared_ptr<Array>>(&v->v_)) {
      if (!seen.insert(a->get()).second) continue;
      for (const Value& x : **a) todo.push_back(&x);
      continue;
    } else {
      continue;
    }
    if (!seen.insert(box).second) continue;
    for (const auto& kv : v->object_items()) todo.push_back(&kv.second);
  }
  return false;
}

Value Value::callable(std::shared_ptr<Callable> c) {
  Value v;
  v.v_ = std::move(c);
  return v;
}

Value::Kind Value::kind() const { return Kind(v_.index()); }

double Value::as_number() const {
  if (auto* i = std::get_if<int64_t>(&v_)) return double(*i);
  if (auto* b = std::get_if<bool>(&v_)) return *b ? 1.0 : 0.0;
  return std::get<double>(v_);
}

Object& Value::object_items() const {
  if (auto* o = std::get_if<std::shared_ptr<ObjectBox>>(&v_)) return (*o)->items;
  return std::get<std::shared_ptr<NamespaceBox>>(v_)->items;
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return as_bool();
    case Kind::Int: return as_int() != 0;
    case Kind::Float: return as_number() != 0.0;
    case Kind::String: return !as_string().empty();
    case Kind::Array: return !array().empty();
    case Kind::Object:
    case Kind::Namespace: return !object_items().empty();
    case Kind::Callable: return true;
  }
  return false;
}

Value Value::get(std::string_view key) const {
  if (!is_mapping()) return {};
  for (const auto& [k, v] : object_items())
    if (k == key) return v;
  return {};
}

void Value::set(const std::string& key, Value v) const {
  Object& o = object_items();
  for (auto& [k, old] : o)
    if (k == key) {
      old = std::move(v);
      return;
    }
  o.emplace_back(key, std::move(v));
}

bool Value::equals(const Value& o) const {
  const bool num_a = is_number() || kind() == Kind::Bool, num_b = o.is_number() || o.kind() == Kind::Bool;
  if (num_a && num_b) {
    if (kind() == Kind::Int && o.kind() == Kind::Int) return as_int() == o.as_int();
    return as_number() == o.as_number();
  }
  if (kind() != o.kind()) return false;
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return true;
    case Kind::String: return as_string() == o.as_string();
    case Kind::Array: {
      const Array &a = array(), &b = o.array();
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!a[i].equals(b[i])) return false;
      return true;
    }
    case Kind::Object:
    case Kind::Namespace: {
      const Object &a = object_items(), &b = o.object_items();
      if (a.size() != b.size()) return false;
      for (const auto& [k, v] : a)
        if (!o.get(k).equals(v) || o.get(k).is_undefined()) return false;
      return true;
    }
    case Kind::Callable: return &as_callable() == &o.as_callable();
    default: return false;
  }
}

std::string Value::to_output() const {
  switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::String: return as_string();
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return as_bool() ? "True" : "False";
    case Kind::Int: return std::to_string(as_int());
    case Kind::Float: {
      std::string s = float_text(as_number());
      return s == "NaN" ? "nan" : s == "Infinity" ? "inf" : s == "-Infinity" ? "-inf" : s;
    }
    case Kind::String: return python_repr(as_string());
    case Kind::Array: {
      std::string out = "[";
      const Array& a = array();
      for (size_t i = 0; i < a.size(); ++i) out += (i ? ", " : "") + a[i].repr();
      return out + "]";
    }
    case Kind::Object:
    case Kind::Namespace: {
      std::string out = kind() == Kind::Namespace ? "<Namespace {" : "{";
      const Object& o = object_items();
      for (size_t i = 0; i < o.size(); ++i) out += (i ? ", " : "") + python_repr(o[i].first) + ": " + o[i].second.repr();
      return out + (kind() == Kind::Namespace ? "}>" : "}");
    }
    case Kind::Callable: return "<function>";
  }
  return "";
}

std::string Value::to_json(int indent) const {
  std::string out;
  to_json_into(out, *this, indent, 0);
  return out;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return None{};
    case nlohmann::ordered_json::value_t::boolean: return j.get<bool>();
    case nlohmann::ordered_json::value_t::number_integer: return j.get<int64_t>();
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      return u > uint64_t(INT64_MAX) ? Value(double(u)) : Value(int64_t(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return j.get<double>();
    case nlohmann::ordered_json::value_t::string: return j.get<std::string>();
    case nlohmann::ordered_json::value_t::array: {
      Array a;
      for (const auto& e : j) a.push_back(from_json(e));
      return a;
    }
    case nlohmann::ordered_json::value_t::object: {
      Object o;
      for (const auto& [k, v] : j.items()) o.emplace_back(k, from_json(v));
      return object(std::move(o));
    }
    default: return {};
  }
}

std::string_view Value::kind_name() const {
  switch (kind()) {
    case Kind::Undefined: return "undefined";
    case Kind::None: return "none";
    case Kind::Bool: return "boolean";
    case Kind::Int: return "integer";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::Array: return "list";
    case Kind::Object: return "dict";
    case Kind::Namespace: return "namespace";
    case Kind::Callable: return "function";
  }
  return "?";
}

}  // namespace tandem::jinja
