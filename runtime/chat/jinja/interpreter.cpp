#include "runtime/chat/jinja/interpreter.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "runtime/chat/jinja/lexer.h"
#include "runtime/core/error.h"

namespace tandem::jinja {
namespace {

using Kwargs = std::vector<std::pair<std::string, Value>>;
constexpr std::string_view kWhitespace = " \t\n\r\f\v";

// Byte offsets of each code point's start (any byte that is not a UTF-8 continuation byte),
// plus the end: Python indexes strings by code point.
std::vector<size_t> code_points(const std::string& s) {
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) at.push_back(i);
  if (!at.empty() && at[0] != 0) at.insert(at.begin(), 0);
  at.push_back(s.size());
  return at;
}

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}
std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return s;
}

std::string strip(const std::string& s, std::string_view chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && chars.find(s[b]) != std::string_view::npos) ++b;
  if (right)
    while (e > b && chars.find(s[e - 1]) != std::string_view::npos) --e;
  return s.substr(b, e - b);
}

bool k_is(const Value& v, Value::Kind k) { return v.kind() == k; }

enum class Flow { Normal, Break, Continue };

class Interpreter {
 public:
  Interpreter(const Limits& limits, Clock clock) : lim_(limits), clock_(std::move(clock)) {}

  std::string run(const Program& p, const Value& context) {
    scopes_.emplace_back();
    if (context.is_mapping())
      for (const auto& [k, v] : context.object_items()) scopes_[0][k] = v;
    std::string out;
    out_ = &out;
    exec_body(p.body);
    return out;
  }

 private:
  [[noreturn]] static void error(Pos p, const std::string& what) { fail(where(p.line, p.column), what); }

  void charge(Pos p, uint64_t n = 1) {
    steps_ += n;
    if (steps_ > lim_.max_steps) error(p, "the template took more than " + std::to_string(lim_.max_steps) + " steps");
  }
  Value checked(Pos p, std::string s) {
    if (s.size() > lim_.max_output_bytes)
      error(p, "a string of " + std::to_string(s.size()) + " bytes is over the limit of " +
                   std::to_string(lim_.max_output_bytes));
    charge(p, s.size() / 64);
    return Value(std::move(s));
  }
  void emit(Pos p, std::string_view s) {
    if (out_->size() + s.size() > lim_.max_output_bytes)
      error(p, "the output is over the limit of " + std::to_string(lim_.max_output_bytes) + " bytes");
    charge(p, s.size() / 64);
    out_->append(s);
  }

  // Variables: scopes_[0] holds the context and top-level sets; a macro call sees only its own
  // scopes (from floor_) and scopes_[0].
  Value lookup(const std::string& name) const {
    for (size_t i = scopes_.size(); i-- > floor_;) {
      auto it = scopes_[i].find(name);
      if (it != scopes_[i].end()) return it->second;
    }
    auto it = scopes_[0].find(name);
    if (it != scopes_[0].end()) return it->second;
    return global(name);
  }
  void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  Value global(const std::string& name) const;

  // ---- statements ----
  Flow exec_body(const Body& body) {
    for (const auto& s : body) {
      const Flow f = exec(*s);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Stmt& s) {
    charge(s.pos);
    switch (s.kind) {
      case Stmt::Kind::Text: emit(s.pos, s.text); break;
      case Stmt::Kind::Output: {
        const Value v = eval(*s.expr);
        emit(s.pos, v.to_output());
        break;
      }
      case Stmt::Kind::If:
        for (size_t i = 0; i < s.branches.size(); ++i)
          if (i >= s.conditions.size() || eval(*s.conditions[i]).truthy()) return exec_body(s.branches[i]);
        break;
      case Stmt::Kind::For: return exec_for(s);
      case Stmt::Kind::Set: {
        Value v = eval(*s.expr);
        if (!s.attribute.empty()) {
          const Value target = lookup(s.targets[0]);
          if (target.kind() != Value::Kind::Namespace)
            error(s.pos, "'" + s.targets[0] + "' is not a namespace (only namespace() attributes can be set)");
          if (v.holds_namespace(target))
            error(s.pos, "'" + s.targets[0] + "." + s.attribute + "' would hold its own namespace");
          target.set(s.attribute, std::move(v));
        } else if (s.targets.size() == 1) {
          assign(s.targets[0], std::move(v));
        } else {
          unpack(s.pos, s.targets, v);
        }
        break;
      }
      case Stmt::Kind::SetBlock: assign(s.targets[0], checked(s.pos, capture(s.body))); break;
      case Stmt::Kind::Macro: define_macro(s); break;
      case Stmt::Kind::Break:
      case Stmt::Kind::Continue:
        if (loop_depth_ == 0) error(s.pos, "break/continue outside a loop");
        return s.kind == Stmt::Kind::Break ? Flow::Break : Flow::Continue;
      case Stmt::Kind::CallBlock: error(s.pos, "call blocks are not supported");
    }
    return Flow::Normal;
  }

  std::string capture(const Body& body) {
    std::string text;
    std::string* saved = out_;
    out_ = &text;
    try {
      exec_body(body);
    } catch (...) {
      out_ = saved;
      throw;
    }
    out_ = saved;
    return text;
  }

  void unpack(Pos p, const std::vector<std::string>& names, const Value& v) {
    if (!v.is_array() || v.array().size() != names.size())
      error(p, "cannot unpack " + std::string(v.kind_name()) + " into " + std::to_string(names.size()) + " names");
    for (size_t i = 0; i < names.size(); ++i) assign(names[i], v.array()[i]);
  }

  Array iterate(Pos p, const Value& v) {
    switch (v.kind()) {
      case Value::Kind::Undefined: return {};
      case Value::Kind::Array: return v.array();
      case Value::Kind::Object:
      case Value::Kind::Namespace: {
        Array keys;
        for (const auto& kv : v.object_items()) keys.emplace_back(kv.first);
        return keys;
      }
      case Value::Kind::String: {
        const std::string& s = v.as_string();
        const auto at = code_points(s);
        Array chars;
        for (size_t i = 0; i + 1 < at.size(); ++i) chars.emplace_back(s.substr(at[i], at[i + 1] - at[i]));
        return chars;
      }
      default: error(p, std::string("cannot iterate over ") + std::string(v.kind_name()));
    }
  }

  struct ScopeGuard {
    explicit ScopeGuard(Interpreter& in) : in_(in) { in_.scopes_.emplace_back(); }
    ~ScopeGuard() { in_.scopes_.pop_back(); }
    Interpreter& in_;
  };

  Flow exec_for(const Stmt& s) {
    Array items = iterate(s.expr->pos, eval(*s.expr));
    ScopeGuard scope(*this);
    if (s.filter) {
      Array kept;
      for (auto& item : items) {
        bind_loop_targets(s, item);
        if (eval(*s.filter).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(s.else_body) == Flow::Normal ? Flow::Normal : Flow::Normal;
    ++loop_depth_;
    const int64_t n = int64_t(items.size());
    for (int64_t i = 0; i < n; ++i) {
      charge(s.pos);
      bind_loop_targets(s, items[size_t(i)]);
      Object loop = {{"index", Value(i + 1)},
                     {"index0", Value(i)},
                     {"revindex", Value(n - i)},
                     {"revindex0", Value(n - i - 1)},
                     {"first", Value(i == 0)},
                     {"last", Value(i == n - 1)},
                     {"length", Value(n)},
                     {"depth", Value(int64_t(1))},
                     {"depth0", Value(int64_t(0))}};
      if (i > 0) loop.emplace_back("previtem", items[size_t(i - 1)]);
      if (i + 1 < n) loop.emplace_back("nextitem", items[size_t(i + 1)]);
      assign("loop", Value::object(std::move(loop)));
      Flow f;
      try {
        f = exec_body(s.body);
      } catch (...) {
        --loop_depth_;
        throw;
      }
      if (f == Flow::Break) break;
    }
    --loop_depth_;
    return Flow::Normal;
  }

  void bind_loop_targets(const Stmt& s, const Value& item) {
    if (s.targets.size() == 1) assign(s.targets[0], item);
    else unpack(s.pos, s.targets, item);
  }

  void define_macro(const Stmt& s) {
    auto c = std::make_shared<Callable>();
    const Stmt* def = &s;
    c->fn = [this, def](std::vector<Value>& args, Kwargs& kwargs) { return call_macro(*def, args, kwargs); };
    assign(s.name, Value::callable(std::move(c)));
  }

  Value call_macro(const Stmt& def, std::vector<Value>& args, Kwargs& kwargs) {
    if (call_depth_ >= lim_.max_call_depth)
      error(def.pos, "macro calls nested deeper than " + std::to_string(lim_.max_call_depth));
    if (args.size() > def.params.size())
      error(def.pos, "macro '" + def.name + "' takes " + std::to_string(def.params.size()) + " arguments, got " +
                         std::to_string(args.size()));
    const size_t saved_floor = floor_;
    const int saved_loops = loop_depth_;
    // Defaults are evaluated in the caller's scope, then the macro's scope starts.
    std::unordered_map<std::string, Value> bound;
    for (size_t i = 0; i < def.params.size(); ++i) {
      const MacroParam& mp = def.params[i];
      Value v;
      if (i < args.size()) v = args[i];
      else if (mp.default_value) v = eval(*mp.default_value);
      bound[mp.name] = v;
    }
    for (auto& [k, v] : kwargs) {
      if (!bound.count(k)) error(def.pos, "macro '" + def.name + "' has no parameter '" + k + "'");
      bound[k] = v;
    }
    scopes_.push_back(std::move(bound));
    floor_ = scopes_.size() - 1;
    loop_depth_ = 0;
    ++call_depth_;
    std::string text;
    try {
      text = capture(def.body);
    } catch (...) {
      --call_depth_;
      loop_depth_ = saved_loops;
      floor_ = saved_floor;
      scopes_.pop_back();
      throw;
    }
    --call_depth_;
    loop_depth_ = saved_loops;
    floor_ = saved_floor;
    scopes_.pop_back();
    return Value(std::move(text));
  }

  // ---- expressions ----
  Value eval(const Expr& e) {
    charge(e.pos);
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: return lookup(e.name);
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        Array a;
        for (const auto& item : e.items) a.push_back(eval(*item));
        return a;
      }
      case Expr::Kind::Dict: {
        Value d = Value::object();
        for (size_t i = 0; i < e.keys.size(); ++i) {
          const Value k = eval(*e.keys[i]);
          if (!k.is_string()) error(e.keys[i]->pos, "dict keys must be strings here");
          d.set(k.as_string(), eval(*e.items[i]));
        }
        return d;
      }
      case Expr::Kind::Attribute: {
        const Value obj = eval(*e.object);
        if (obj.is_undefined()) error(e.pos, "cannot read '" + e.name + "' of an undefined value");
        if (obj.is_mapping()) return obj.get(e.name);
        return {};
      }
      case Expr::Kind::Subscript: return subscript(e.pos, eval(*e.object), eval(*e.right));
      case Expr::Kind::Slice: return slice(e);
      case Expr::Kind::Call: return call(e);
      case Expr::Kind::Filter: {
        Value in = eval(*e.object);
        std::vector<Value> args;
        Kwargs kwargs;
        eval_args(e.args, args, kwargs);
        return filter(e.pos, e.name, std::move(in), args, kwargs);
      }
      case Expr::Kind::Test: {
        const Value in = eval(*e.object);
        std::vector<Value> args;
        Kwargs kwargs;
        eval_args(e.args, args, kwargs);
        return test(e.pos, e.name, in, args) != e.negated;
      }
      case Expr::Kind::Unary: {
        const Value v = eval(*e.object);
        if (e.name == "not") return !v.truthy();
        if (v.kind() == Value::Kind::Int) return e.name == "-" ? Value(-v.as_int()) : v;
        if (v.is_number() || v.kind() == Value::Kind::Bool) return e.name == "-" ? Value(-v.as_number()) : v;
        error(e.pos, "unary " + e.name + " needs a number, not " + std::string(v.kind_name()));
      }
      case Expr::Kind::Binary: return binary(e);
      case Expr::Kind::Conditional:
        if (eval(*e.object).truthy()) return eval(*e.items[0]);
        return e.items[1] ? eval(*e.items[1]) : Value();
    }
    return {};
  }

  void eval_args(const std::vector<Arg>& in, std::vector<Value>& args, Kwargs& kwargs) {
    for (const auto& a : in) {
      if (a.name.empty()) args.push_back(eval(*a.value));
      else kwargs.emplace_back(a.name, eval(*a.value));
    }
  }

  static int64_t normalize_index(int64_t i, size_t n) { return i < 0 ? i + int64_t(n) : i; }

  Value subscript(Pos p, const Value& obj, const Value& key) {
    if (obj.is_mapping()) {
      if (!key.is_string()) return {};
      return obj.get(key.as_string());
    }
    if (obj.is_array() || obj.is_string()) {
      if (key.kind() != Value::Kind::Int) error(p, "an index must be an integer, not " + std::string(key.kind_name()));
      if (obj.is_array()) {
        const Array& a = obj.array();
        const int64_t i = normalize_index(key.as_int(), a.size());
        if (i < 0 || i >= int64_t(a.size())) return {};
        return a[size_t(i)];
      }
      const std::string& s = obj.as_string();
      const auto at = code_points(s);
      const int64_t i = normalize_index(key.as_int(), at.size() - 1);
      if (i < 0 || i >= int64_t(at.size()) - 1) return {};
      return s.substr(at[size_t(i)], at[size_t(i) + 1] - at[size_t(i)]);
    }
    if (obj.is_undefined()) error(p, "cannot index an undefined value");
    return {};
  }

  Value slice(const Expr& e) {
    const Value obj = eval(*e.object);
    int64_t part[3];
    bool given[3];
    for (int k = 0; k < 3; ++k) {
      given[k] = e.items[size_t(k)] != nullptr;
      part[k] = 0;
      if (given[k]) {
        const Value v = eval(*e.items[size_t(k)]);
        if (v.is_none()) given[k] = false;
        else if (v.kind() != Value::Kind::Int) error(e.pos, "slice bounds must be integers");
        else part[k] = v.as_int();
      }
    }
    const int64_t step = given[2] ? part[2] : 1;
    if (step == 0) error(e.pos, "slice step cannot be zero");
    std::vector<size_t> at;
    size_t n = 0;
    if (obj.is_array()) n = obj.array().size();
    else if (obj.is_string()) {
      at = code_points(obj.as_string());
      n = at.size() - 1;
    } else {
      error(e.pos, "cannot slice " + std::string(obj.kind_name()));
    }
    // Python's slice.indices.
    auto clamp = [&](int64_t v, bool is_given, int64_t def) {
      if (!is_given) return def;
      if (v < 0) v += int64_t(n);
      if (step > 0) return std::clamp<int64_t>(v, 0, int64_t(n));
      return std::clamp<int64_t>(v, -1, int64_t(n) - 1);
    };
    const int64_t start = clamp(part[0], given[0], step > 0 ? 0 : int64_t(n) - 1);
    const int64_t stop = clamp(part[1], given[1], step > 0 ? int64_t(n) : -1);
    std::vector<size_t> picks;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      picks.push_back(size_t(i));
      charge(e.pos);
    }
    if (obj.is_array()) {
      Array r;
      for (size_t i : picks) r.push_back(obj.array()[i]);
      return r;
    }
    std::string r;
    const std::string& s = obj.as_string();
    for (size_t i : picks) r += s.substr(at[i], at[i + 1] - at[i]);
    return r;
  }

  Value call(const Expr& e) {
    std::vector<Value> args;
    Kwargs kwargs;
    if (e.object->kind == Expr::Kind::Attribute) {
      const Value self = eval(*e.object->object);
      if (self.is_string() || self.is_mapping() || self.is_array()) {
        const Value member = self.is_mapping() ? self.get(e.object->name) : Value();
        if (member.kind() != Value::Kind::Callable) {
          eval_args(e.args, args, kwargs);
          return method(e.pos, self, e.object->name, args, kwargs);
        }
      }
    }
    const Value callee = eval(*e.object);
    if (callee.kind() != Value::Kind::Callable) {
      std::string what = e.object->kind == Expr::Kind::Name ? "'" + e.object->name + "'" : "the value";
      error(e.pos, what + " is " + std::string(callee.kind_name()) + ", not something to call");
    }
    eval_args(e.args, args, kwargs);
    if (!callee.as_callable().builtin) return callee.as_callable().fn(args, kwargs);
    try {
      return callee.as_callable().fn(args, kwargs);
    } catch (const Error& err) {
      error(e.pos, err.what());
    }
  }

  static const Value* kwarg(const Kwargs& kw, std::string_view name) {
    for (const auto& [k, v] : kw)
      if (k == name) return &v;
    return nullptr;
  }
  // Positional i, else the keyword, else nullptr.
  static const Value* arg(const std::vector<Value>& a, size_t i, const Kwargs& kw, std::string_view name) {
    if (i < a.size()) return &a[i];
    return kwarg(kw, name);
  }
  std::string string_arg(Pos p, const Value* v, std::string_view what, std::string def = "") {
    if (!v || v->is_none()) return def;
    if (!v->is_string()) error(p, std::string(what) + " must be a string, not " + std::string(v->kind_name()));
    return v->as_string();
  }
  int64_t int_arg(Pos p, const Value* v, std::string_view what, int64_t def) {
    if (!v || v->is_none()) return def;
    if (v->kind() != Value::Kind::Int) error(p, std::string(what) + " must be an integer");
    return v->as_int();
  }

  Value method(Pos p, const Value& self, const std::string& name, std::vector<Value>& a, Kwargs& kw);
  Value filter(Pos p, const std::string& name, Value in, std::vector<Value>& a, Kwargs& kw);
  bool test(Pos p, const std::string& name, const Value& in, const std::vector<Value>& a);
  Value binary(const Expr& e);
  int compare(Pos p, const Value& a, const Value& b);
  Value attribute_path(const Value& v, const std::string& path);
  Value split(Pos p, const std::string& s, const Value* sep, int64_t maxsplit);
  std::string replace(Pos p, const std::string& s, const std::string& from, const std::string& to, int64_t count);

  const Limits& lim_;
  Clock clock_;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  int loop_depth_ = 0;
  size_t floor_ = 1;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string* out_ = nullptr;
  mutable std::unordered_map<std::string, Value> globals_;
  friend struct Globals;
};

Value Interpreter::global(const std::string& name) const {
  auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  auto make = [&](auto fn) {
    auto c = std::make_shared<Callable>();
    c->fn = fn;
    c->builtin = true;
    Value v = Value::callable(std::move(c));
    globals_[name] = v;
    return v;
  };
  auto* self = const_cast<Interpreter*>(this);
  if (name == "range")
    return make([self](std::vector<Value>& a, Kwargs&) {
      int64_t start = 0, stop = 0, step = 1;
      for (const auto& v : a)
        if (v.kind() != Value::Kind::Int) fail("range() takes integers");
      if (a.size() == 1) stop = a[0].as_int();
      else if (a.size() == 2 || a.size() == 3) {
        start = a[0].as_int();
        stop = a[1].as_int();
        if (a.size() == 3) step = a[2].as_int();
      } else {
        fail("range() takes 1 to 3 arguments");
      }
      if (step == 0) fail("range() step cannot be zero");
      const double count = std::ceil((double(stop) - double(start)) / double(step));
      if (count > double(self->lim_.max_range))
        fail("range() of ", count, " elements is over the limit of ", self->lim_.max_range);
      Array r;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) r.emplace_back(i);
      self->charge({}, r.size());
      return Value(std::move(r));
    });
  if (name == "namespace" || name == "dict")
    return make([is_ns = name == "namespace"](std::vector<Value>& a, Kwargs& kw) {
      Object o;
      for (const auto& v : a) {
        if (!v.is_mapping()) fail(is_ns ? "namespace()" : "dict()", " takes keyword arguments or a dict");
        for (const auto& kv : v.object_items()) o.push_back(kv);
      }
      for (auto& kv : kw) o.push_back(kv);
      return is_ns ? Value::namespace_object(std::move(o)) : Value::object(std::move(o));
    });
  if (name == "raise_exception")
    return make([](std::vector<Value>& a, Kwargs&) -> Value {
      fail("the chat template raised an error: ", a.empty() ? std::string() : a[0].to_output());
    });
  if (name == "strftime_now")
    return make([self](std::vector<Value>& a, Kwargs&) {
      if (a.size() != 1 || !a[0].is_string()) fail("strftime_now() takes one format string");
      const std::time_t now = self->clock_ ? std::time_t(self->clock_())
                                           : std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const size_t n = a[0].as_string().size() < 64 ? std::strftime(buf, sizeof buf, a[0].as_string().c_str(), &tm) : 0;
      return Value(std::string(buf, n));
    });
  return {};
}

std::string Interpreter::replace(Pos p, const std::string& s, const std::string& from, const std::string& to,
                                 int64_t count) {
  if (from.empty()) error(p, "replace() of an empty string is not supported");
  std::string r;
  size_t at = 0;
  for (int64_t done = 0; count < 0 || done < count; ++done) {
    const size_t next = s.find(from, at);
    if (next == std::string::npos) break;
    r.append(s, at, next - at);
    r += to;
    if (r.size() > lim_.max_output_bytes) error(p, "replace() result over the size limit");
    at = next + from.size();
  }
  r.append(s, at, std::string::npos);
  return r;
}

Value Interpreter::split(Pos p, const std::string& s, const Value* sep, int64_t maxsplit) {
  Array parts;
  if (!sep || sep->is_none()) {  // runs of whitespace, no empty parts
    size_t i = 0;
    for (;;) {
      i = s.find_first_not_of(kWhitespace, i);
      if (i == std::string::npos) break;
      if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) {
        parts.emplace_back(strip(s.substr(i), kWhitespace, false, true));
        break;
      }
      const size_t e = std::min(s.find_first_of(kWhitespace, i), s.size());
      parts.emplace_back(s.substr(i, e - i));
      i = e;
    }
    return parts;
  }
  if (!sep->is_string()) error(p, "split() separator must be a string");
  const std::string& d = sep->as_string();
  if (d.empty()) error(p, "split() separator is empty");
  size_t at = 0;
  for (;;) {
    charge(p);
    const size_t next = (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) ? std::string::npos : s.find(d, at);
    if (next == std::string::npos) {
      parts.emplace_back(s.substr(at));
      break;
    }
    parts.emplace_back(s.substr(at, next - at));
    at = next + d.size();
  }
  return parts;
}

Value Interpreter::method(Pos p, const Value& self, const std::string& name, std::vector<Value>& a, Kwargs& kw) {
  if (self.is_string()) {
    const std::string& s = self.as_string();
    if (name == "startswith" || name == "endswith") {
      const Value* what = arg(a, 0, kw, "prefix");
      if (!what) error(p, name + "() needs an argument");
      std::vector<std::string> options;
      if (what->is_array()) {
        for (const auto& o : what->array()) options.push_back(string_arg(p, &o, name + "() argument"));
      } else {
        options.push_back(string_arg(p, what, name + "() argument"));
      }
      for (const auto& o : options) {
        if (o.size() > s.size()) continue;
        if (name == "startswith" ? s.compare(0, o.size(), o) == 0 : s.compare(s.size() - o.size(), o.size(), o) == 0)
          return true;
      }
      return false;
    }
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      const std::string chars = string_arg(p, arg(a, 0, kw, "chars"), name + "() argument", std::string(kWhitespace));
      return strip(s, chars, name != "rstrip", name != "lstrip");
    }
    if (name == "split") return split(p, s, arg(a, 0, kw, "sep"), int_arg(p, arg(a, 1, kw, "maxsplit"), "maxsplit", -1));
    if (name == "splitlines") {
      Array lines;
      size_t at = 0;
      while (at < s.size()) {
        const size_t nl = s.find('\n', at);
        const size_t e = nl == std::string::npos ? s.size() : nl;
        std::string line = s.substr(at, e - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.emplace_back(std::move(line));
        at = e + 1;
      }
      return lines;
    }
    if (name == "replace") {
      return checked(p, replace(p, s, string_arg(p, arg(a, 0, kw, "old"), "replace() old"),
                                string_arg(p, arg(a, 1, kw, "new"), "replace() new"),
                                int_arg(p, arg(a, 2, kw, "count"), "count", -1)));
    }
    if (name == "lower") return ascii_lower(s);
    if (name == "upper") return ascii_upper(s);
    if (name == "title" || name == "capitalize") {
      std::vector<Value> none;
      return filter(p, name, self, none, kw);
    }
    if (name == "find" || name == "count") {
      const std::string sub = string_arg(p, arg(a, 0, kw, "sub"), name + "() argument");
      if (name == "find") {
        const size_t at = s.find(sub);
        if (at == std::string::npos) return int64_t(-1);
        return int64_t(code_points(s.substr(0, at)).size() - 1);
      }
      if (sub.empty()) return int64_t(code_points(s).size());
      int64_t n = 0;
      for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
      return n;
    }
    if (name == "join") {
      const Value* items = arg(a, 0, kw, "iterable");
      if (!items) error(p, "join() needs a list");
      std::string r;
      const Array list = iterate(p, *items);
      for (size_t i = 0; i < list.size(); ++i) {
        if (i) r += s;
        r += list[i].to_output();
        if (r.size() > lim_.max_output_bytes) error(p, "join() result over the size limit");
      }
      return checked(p, std::move(r));
    }
    error(p, "strings have no method '" + name + "' here");
  }
  if (self.is_mapping()) {
    if (name == "items" || name == "keys" || name == "values") {
      Array r;
      for (const auto& [k, v] : self.object_items()) {
        if (name == "items") r.emplace_back(Array{Value(k), v});
        else if (name == "keys") r.emplace_back(k);
        else r.push_back(v);
      }
      return r;
    }
    if (name == "get") {
      const Value* key = arg(a, 0, kw, "key");
      if (!key) error(p, "get() needs a key");
      const Value v = key->is_string() ? self.get(key->as_string()) : Value();
      if (!v.is_undefined()) return v;
      const Value* def = arg(a, 1, kw, "default");
      return def ? *def : Value(None{});
    }
    error(p, "dicts have no method '" + name + "' here");
  }
  error(p, "lists have no method '" + name + "' here (templates cannot change values)");
}

int Interpreter::compare(Pos p, const Value& a, const Value& b) {
  const bool na = a.is_number() || a.kind() == Value::Kind::Bool, nb = b.is_number() || b.kind() == Value::Kind::Bool;
  if (na && nb) {
    if (a.kind() == Value::Kind::Int && b.kind() == Value::Kind::Int) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int();
    const double x = a.as_number(), y = b.as_number();
    return x < y ? -1 : x > y;
  }
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string()) < 0 ? -1 : a.as_string() != b.as_string();
  if (a.is_array() && b.is_array()) {
    const Array &x = a.array(), &y = b.array();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (int c = compare(p, x[i], y[i])) return c;
    return x.size() < y.size() ? -1 : x.size() > y.size();
  }
  error(p, "cannot order " + std::string(a.kind_name()) + " and " + std::string(b.kind_name()));
}

Value Interpreter::binary(const Expr& e) {
  const std::string& op = e.name;
  if (op == "and") {
    Value l = eval(*e.left);
    return l.truthy() ? eval(*e.right) : l;
  }
  if (op == "or") {
    Value l = eval(*e.left);
    return l.truthy() ? l : eval(*e.right);
  }
  const Value l = eval(*e.left), r = eval(*e.right);
  const Pos p = e.pos;
  if (op == "==") return l.equals(r);
  if (op == "!=") return !l.equals(r);
  if (op == "<") return compare(p, l, r) < 0;
  if (op == ">") return compare(p, l, r) > 0;
  if (op == "<=") return compare(p, l, r) <= 0;
  if (op == ">=") return compare(p, l, r) >= 0;
  if (op == "in" || op == "not in") {
    bool found = false;
    if (r.is_string()) {
      if (!l.is_string()) error(p, "'in <string>' needs a string on the left, not " + std::string(l.kind_name()));
      found = r.as_string().find(l.as_string()) != std::string::npos;
    } else if (r.is_array()) {
      for (const auto& item : r.array())
        if (item.equals(l)) {
          found = true;
          break;
        }
    } else if (r.is_mapping()) {
      found = l.is_string() && !r.get(l.as_string()).is_undefined();
    } else {
      error(p, "'in' needs a string, list or dict on the right, not " + std::string(r.kind_name()));
    }
    return op == "in" ? found : !found;
  }
  if (op == "~") return checked(p, l.to_output() + r.to_output());
  const bool nl = l.is_number() || l.kind() == Value::Kind::Bool, nr = r.is_number() || r.kind() == Value::Kind::Bool;
  if (op == "+") {
    if (l.is_string() && r.is_string()) return checked(p, l.as_string() + r.as_string());
    if (l.is_array() && r.is_array()) {
      Array c = l.array();
      c.insert(c.end(), r.array().begin(), r.array().end());
      charge(p, c.size());
      return c;
    }
  }
  if (op == "*" && ((l.is_string() || l.is_array()) && r.kind() == Value::Kind::Int)) {
    const int64_t n = std::max<int64_t>(0, r.as_int());
    const double size = double(n) * double(l.is_string() ? l.as_string().size() : l.array().size());
    if (size > double(lim_.max_output_bytes)) error(p, "repetition result over the size limit");
    charge(p, uint64_t(size));
    if (l.is_string()) {
      std::string s;
      for (int64_t i = 0; i < n; ++i) s += l.as_string();
      return checked(p, std::move(s));
    }
    Array c;
    for (int64_t i = 0; i < n; ++i) c.insert(c.end(), l.array().begin(), l.array().end());
    return c;
  }
  if (!nl || !nr)
    error(p, "cannot apply '" + op + "' to " + std::string(l.kind_name()) + " and " + std::string(r.kind_name()));
  const bool ints = l.kind() != Value::Kind::Float && r.kind() != Value::Kind::Float;
  const auto as_i = [](const Value& v) { return v.kind() == Value::Kind::Int ? v.as_int() : int64_t(v.as_number()); };
  if (ints && op != "/" && op != "**") {
    const int64_t x = as_i(l), y = as_i(r);
    int64_t z = 0;
    if (op == "+" && !__builtin_add_overflow(x, y, &z)) return z;
    if (op == "-" && !__builtin_sub_overflow(x, y, &z)) return z;
    if (op == "*" && !__builtin_mul_overflow(x, y, &z)) return z;
    if (op == "//" || op == "%") {
      if (y == 0) error(p, "division by zero");
      if (x == INT64_MIN && y == -1) error(p, "integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return op == "//" ? q : m;
    }
    if (op == "+" || op == "-" || op == "*") error(p, "integer overflow");
  }
  const double x = l.as_number(), y = r.as_number();
  if (op == "+") return x + y;
  if (op == "-") return x - y;
  if (op == "*") return x * y;
  if (op == "/") {
    if (y == 0) error(p, "division by zero");
    return x / y;
  }
  if (op == "//" || op == "%") {
    if (y == 0) error(p, "division by zero");
    const double q = std::floor(x / y);
    return op == "//" ? q : x - q * y;
  }
  if (op == "**") {
    if (ints && y >= 0 && y < 63) {
      int64_t z = 1, base = as_i(l);
      for (int64_t i = 0; i < int64_t(y); ++i)
        if (__builtin_mul_overflow(z, base, &z)) error(p, "integer overflow");
      return z;
    }
    return std::pow(x, y);
  }
  error(p, "unknown operator '" + op + "'");
}

Value Interpreter::attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t at = 0;
  for (;;) {
    const size_t dot = path.find('.', at);
    const std::string part = path.substr(at, dot == std::string::npos ? std::string::npos : dot - at);
    if (cur.is_mapping()) cur = cur.get(part);
    else if (cur.is_array() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit))
      cur = size_t(std::stoull(part.substr(0, 9))) < cur.array().size() ? cur.array()[std::stoull(part.substr(0, 9))] : Value();
    else return {};
    if (dot == std::string::npos) return cur;
    at = dot + 1;
  }
}

bool Interpreter::test(Pos p, const std::string& name, const Value& in, const std::vector<Value>& a) {
  using K = Value::Kind;
  const K k = in.kind();
  auto need = [&](size_t n) {
    if (a.size() < n) error(p, "test '" + name + "' needs an argument");
  };
  if (name == "defined") return k != K::Undefined;
  if (name == "undefined") return k == K::Undefined;
  if (name == "none") return k == K::None;
  if (name == "string") return k == K::String;
  if (name == "mapping") return in.is_mapping();
  if (name == "sequence" || name == "iterable") return k == K::String || k == K::Array || in.is_mapping();
  if (name == "number") return in.is_number() || k == K::Bool;
  if (name == "integer") return k == K::Int;
  if (name == "float") return k == K::Float;
  if (name == "boolean") return k == K::Bool;
  if (name == "true") return k == K::Bool && in.as_bool();
  if (name == "false") return k == K::Bool && !in.as_bool();
  if (name == "callable") return k == K::Callable;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return need(1), in.equals(a[0]);
  if (name == "ne" || name == "!=") return need(1), !in.equals(a[0]);
  if (name == "lt" || name == "lessthan") return need(1), compare(p, in, a[0]) < 0;
  if (name == "gt" || name == "greaterthan") return need(1), compare(p, in, a[0]) > 0;
  if (name == "le") return need(1), compare(p, in, a[0]) <= 0;
  if (name == "ge") return need(1), compare(p, in, a[0]) >= 0;
  if (name == "in") {
    need(1);
    if (a[0].is_string()) return in.is_string() && a[0].as_string().find(in.as_string()) != std::string::npos;
    if (a[0].is_array())
      return std::any_of(a[0].array().begin(), a[0].array().end(), [&](const Value& v) { return v.equals(in); });
    if (a[0].is_mapping()) return in.is_string() && !a[0].get(in.as_string()).is_undefined();
    return false;
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (k != K::Int) error(p, "test '" + name + "' needs an integer");
    if (name == "odd") return in.as_int() % 2 != 0;
    if (name == "even") return in.as_int() % 2 == 0;
    need(1);
    if (a[0].kind() != K::Int || a[0].as_int() == 0) error(p, "divisibleby needs a non-zero integer");
    return a[0].as_int() == -1 || in.as_int() % a[0].as_int() == 0;
  }
  if (name == "lower") return k == K::String && ascii_lower(in.as_string()) == in.as_string();
  if (name == "upper") return k == K::String && ascii_upper(in.as_string()) == in.as_string();
  error(p, "unknown test '" + name + "'");
}

Value Interpreter::filter(Pos p, const std::string& name, Value in, std::vector<Value>& a, Kwargs& kw) {
  using K = Value::Kind;
  auto need_string = [&]() -> const std::string& {
    if (!in.is_string()) error(p, "filter '" + name + "' needs a string, not " + std::string(in.kind_name()));
    return in.as_string();
  };
  if (name == "trim") {
    const std::string& s = need_string();
    return strip(s, string_arg(p, arg(a, 0, kw, "chars"), "trim() chars", std::string(kWhitespace)), true, true);
  }
  if (name == "length" || name == "count") {
    if (in.is_string()) return int64_t(code_points(in.as_string()).size() - 1);
    if (in.is_array()) return int64_t(in.array().size());
    if (in.is_mapping()) return int64_t(in.object_items().size());
    if (in.is_undefined()) return int64_t(0);
    error(p, "filter 'length' needs a string, list or dict, not " + std::string(in.kind_name()));
  }
  if (name == "tojson") {
    const Value* indent = arg(a, 0, kw, "indent");
    const int64_t n = int_arg(p, indent, "tojson indent", -1);
    if (n > 64) error(p, "tojson indent over 64");
    return checked(p, in.to_json(int(n)));
  }
  if (name == "default" || name == "d") {
    const Value* def = arg(a, 0, kw, "default_value");
    const Value* boolean = arg(a, 1, kw, "boolean");
    const bool use = in.is_undefined() || (boolean && boolean->truthy() && !in.truthy());
    return use ? (def ? *def : Value(std::string())) : in;
  }
  if (name == "upper") return ascii_upper(need_string());
  if (name == "lower") return ascii_lower(need_string());
  if (name == "capitalize") {
    std::string s = ascii_lower(need_string());
    if (!s.empty()) s[0] = ascii_upper(s.substr(0, 1))[0];
    return s;
  }
  if (name == "title") {
    std::string s = need_string();
    bool start = true;
    for (char& c : s) {
      const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (alpha) c = start ? ascii_upper(std::string(1, c))[0] : ascii_lower(std::string(1, c))[0];
      start = !alpha && !(c >= '0' && c <= '9');
    }
    return s;
  }
  if (name == "replace") {
    const std::string s = in.to_output();
    return checked(p, replace(p, s, string_arg(p, arg(a, 0, kw, "old"), "replace() old"),
                              string_arg(p, arg(a, 1, kw, "new"), "replace() new"),
                              int_arg(p, arg(a, 2, kw, "count"), "count", -1)));
  }
  if (name == "join") {
    const std::string sep = string_arg(p, arg(a, 0, kw, "d"), "join() separator");
    const Value* attr = arg(a, 1, kw, "attribute");
    const Array items = iterate(p, in);
    std::string r;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) r += sep;
      r += (attr ? attribute_path(items[i], attr->to_output()) : items[i]).to_output();
      if (r.size() > lim_.max_output_bytes) error(p, "join() result over the size limit");
    }
    return checked(p, std::move(r));
  }
  if (name == "string") return checked(p, in.to_output());
  if (name == "safe") return in;
  if (name == "int") {
    const int64_t def = int_arg(p, arg(a, 0, kw, "default"), "int() default", 0);
    if (k_is(in, K::Int)) return in;
    if (k_is(in, K::Bool)) return int64_t(in.as_bool());
    if (k_is(in, K::Float)) {
      const double d = in.as_number();
      return std::isfinite(d) && std::fabs(d) < 9.2e18 ? int64_t(d) : def;
    }
    if (in.is_string()) {
      const std::string s = strip(in.as_string(), kWhitespace, true, true);
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end && *end == '\0' && errno == 0) return int64_t(v);
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) return int64_t(d);
    }
    return def;
  }
  if (name == "float") {
    if (in.is_number() || k_is(in, K::Bool)) return in.as_number();
    if (in.is_string()) {
      char* end = nullptr;
      const double d = std::strtod(in.as_string().c_str(), &end);
      if (!in.as_string().empty() && end && *end == '\0') return d;
    }
    return 0.0;
  }
  if (name == "abs") {
    if (k_is(in, K::Int)) return in.as_int() == INT64_MIN ? Value(-double(INT64_MIN)) : Value(std::abs(in.as_int()));
    if (in.is_number()) return std::fabs(in.as_number());
    error(p, "filter 'abs' needs a number");
  }
  if (name == "round") {
    if (!in.is_number()) error(p, "filter 'round' needs a number");
    const int64_t digits = std::clamp<int64_t>(int_arg(p, arg(a, 0, kw, "precision"), "precision", 0), -20, 20);
    const double m = std::pow(10.0, double(digits));
    return std::round(in.as_number() * m) / m;
  }
  if (name == "first" || name == "last") {
    const Array items = iterate(p, in);
    if (items.empty()) return {};
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return iterate(p, in);
  if (name == "reverse") {
    if (in.is_string()) {
      Array chars = iterate(p, in);
      std::string r;
      for (size_t i = chars.size(); i-- > 0;) r += chars[i].as_string();
      return r;
    }
    Array items = iterate(p, in);
    std::reverse(items.begin(), items.end());
    return items;
  }
  if (name == "sort" || name == "dictsort" || name == "unique") {
    Array items = name == "dictsort" ? (in.is_mapping() ? method(p, in, "items", a, kw).array()
                                                        : (error(p, "dictsort needs a dict"), Array{}))
                                     : iterate(p, in);
    const Value* rev = name == "sort" ? arg(a, 0, kw, "reverse") : kwarg(kw, "reverse");
    const Value* attr = name == "sort" ? arg(a, 2, kw, "attribute") : nullptr;
    charge(p, items.size() * 8);
    if (name == "unique") {
      Array r;
      for (const auto& v : items)
        if (std::none_of(r.begin(), r.end(), [&](const Value& x) { return x.equals(v); })) r.push_back(v);
      charge(p, r.size() * items.size());
      return r;
    }
    auto key = [&](const Value& v) {
      if (name == "dictsort") return v.array()[0];
      return attr ? attribute_path(v, attr->to_output()) : v;
    };
    std::stable_sort(items.begin(), items.end(),
                     [&](const Value& x, const Value& y) { return compare(p, key(x), key(y)) < 0; });
    if (rev && rev->truthy()) std::reverse(items.begin(), items.end());
    return items;
  }
  if (name == "items") {
    if (!in.is_mapping()) error(p, "filter 'items' needs a dict");
    return method(p, in, "items", a, kw);
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool by_attr = name == "selectattr" || name == "rejectattr";
    const bool keep_if = name == "selectattr" || name == "select";
    size_t next = 0;
    std::string attr;
    if (by_attr) {
      if (a.empty() || !a[0].is_string()) error(p, name + " needs an attribute name");
      attr = a[0].as_string();
      next = 1;
    }
    std::string test_name;
    if (next < a.size()) {
      if (!a[next].is_string()) error(p, name + ": the test name must be a string");
      test_name = a[next].as_string();
    }
    const std::vector<Value> test_args(a.begin() + std::ptrdiff_t(std::min(a.size(), next + 1)), a.end());
    Array r;
    for (const auto& item : iterate(p, in)) {
      charge(p);
      const Value v = by_attr ? attribute_path(item, attr) : item;
      const bool pass = test_name.empty() ? v.truthy() : test(p, test_name, v, test_args);
      if (pass == keep_if) r.push_back(item);
    }
    return r;
  }
  if (name == "map") {
    Array r;
    const Value* attr = kwarg(kw, "attribute");
    const Value* def = kwarg(kw, "default");
    if (!attr && (a.empty() || !a[0].is_string())) error(p, "map needs attribute= or a filter name");
    std::vector<Value> rest(a.begin() + std::ptrdiff_t(std::min<size_t>(1, a.size())), a.end());
    Kwargs none;
    for (const auto& item : iterate(p, in)) {
      charge(p);
      if (attr) {
        Value v = attribute_path(item, attr->to_output());
        r.push_back(v.is_undefined() && def ? *def : v);
      } else {
        std::vector<Value> args = rest;
        r.push_back(filter(p, a[0].as_string(), item, args, none));
      }
    }
    return r;
  }
  if (name == "indent") {
    const std::string s = in.to_output();
    const Value* width = arg(a, 0, kw, "width");
    std::string pad = width && width->is_string() ? width->as_string()
                                                  : std::string(size_t(std::clamp<int64_t>(int_arg(p, width, "width", 4), 0, 256)), ' ');
    const Value* first = arg(a, 1, kw, "first");
    const Value* blank = arg(a, 2, kw, "blank");
    std::string r;
    size_t at = 0;
    bool first_line = true;
    while (at <= s.size()) {
      const size_t nl = s.find('\n', at);
      const std::string line = s.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      const bool indent_it = first_line ? (first && first->truthy()) : (!line.empty() || (blank && blank->truthy()));
      if (indent_it) r += pad;
      r += line;
      if (r.size() > lim_.max_output_bytes) error(p, "indent() result over the size limit");
      if (nl == std::string::npos) break;
      r += '\n';
      at = nl + 1;
      first_line = false;
    }
    return checked(p, std::move(r));
  }
  error(p, "unknown filter '" + name + "'");
}

}  // namespace

std::string render(const Program& program, const Value& context, const Limits& limits, Clock clock) {
  return Interpreter(limits, std::move(clock)).run(program, context);
}

}  // namespace tandem::jinja
