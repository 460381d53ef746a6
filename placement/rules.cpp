#include "placement/rules.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "placement/expert_stats.h"
#include "placement/ktransformers_rules.h"
#include "runtime/core/error.h"

namespace tandem::placement {

namespace fs = std::filesystem;

bool IndexRanges::contains(int64_t i) const {
  for (const Interval& v : intervals)
    if (i >= v.first && (v.last < 0 || i <= v.last)) return true;
  return false;
}

std::string IndexRanges::str() const {
  std::string out;
  for (const Interval& v : intervals) {
    if (!out.empty()) out += ",";
    out += std::to_string(v.first);
    if (v.last < 0) out += "-";
    else if (v.last != v.first) out += "-" + std::to_string(v.last);
  }
  return out;
}

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool parse_number(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 12) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0;
}

}  // namespace

IndexRanges parse_index_ranges(const std::string& text, const std::string& where) {
  IndexRanges r;
  std::stringstream in(text);
  std::string item;
  if (trim(text).empty()) fail(where, ": empty range \"", text, "\"");
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (item.empty()) fail(where, ": empty item in range \"", text, "\"");
    IndexRanges::Interval v;
    size_t dash = item.find('-');
    if (dash == std::string::npos) {
      if (!parse_number(item, v.first)) fail(where, ": bad number \"", item, "\" in range \"", text, "\"");
      v.last = v.first;
    } else {
      std::string a = trim(item.substr(0, dash)), b = trim(item.substr(dash + 1));
      if (!parse_number(a, v.first)) fail(where, ": bad range start \"", a, "\" in \"", text, "\"");
      if (b.empty()) {
        v.last = -1;
      } else {
        if (!parse_number(b, v.last)) fail(where, ": bad range end \"", b, "\" in \"", text, "\"");
        if (v.last < v.first) fail(where, ": reversed range \"", item, "\"");
      }
    }
    r.intervals.push_back(v);
  }
  if (!text.empty() && text.back() == ',') fail(where, ": empty item in range \"", text, "\"");
  return r;
}

const char* kind_name(TensorKind k) {
  switch (k) {
    case TensorKind::TokenEmbd: return "token_embd";
    case TensorKind::Attention: return "attention";
    case TensorKind::DenseFfn: return "dense_ffn";
    case TensorKind::Router: return "router";
    case TensorKind::SharedExperts: return "shared_experts";
    case TensorKind::RoutedExperts: return "routed_experts";
    case TensorKind::Output: return "output";
  }
  return "?";
}

std::optional<TensorKind> kind_from_name(const std::string& s) {
  for (TensorKind k : {TensorKind::TokenEmbd, TensorKind::Attention, TensorKind::DenseFfn, TensorKind::Router,
                       TensorKind::SharedExperts, TensorKind::RoutedExperts, TensorKind::Output})
    if (s == kind_name(k)) return k;
  return std::nullopt;
}

Place parse_place(const std::string& text, const std::string& where) {
  Place p;
  int64_t n = 0;
  if (text == "gpu") {
    p.device = Device::gpu(0);
    p.any_gpu = true;
  } else if (text.rfind("gpu:", 0) == 0) {
    if (!parse_number(text.substr(4), n) || n > 1024) fail(where, ": bad GPU index in place \"", text, "\"");
    p.device = Device::gpu(static_cast<int>(n));
  } else if (text == "cpu") {
    p.device = Device::cpu();
  } else if (text == "cpu:replicate") {
    p.device = Device::cpu(Device::kAllNodes, true);
  } else if (text.rfind("cpu:numa", 0) == 0) {
    if (!parse_number(text.substr(8), n) || n > 4096) fail(where, ": bad NUMA node in place \"", text, "\"");
    p.device = Device::cpu(static_cast<int>(n));
  } else {
    fail(where, ": unknown place \"", text, "\" (gpu, gpu:N, cpu, cpu:numaK, cpu:replicate)");
  }
  return p;
}

bool full_match(const std::string& regex, const std::string& name) {
  return std::regex_match(name, std::regex(regex, std::regex::ECMAScript));
}

bool is_hot_experts(const std::string& text) { return trim(text).rfind("hot(", 0) == 0; }

std::vector<IndexRanges> parse_hot_experts(const std::string& text, const std::string& where, const std::string& base_dir) {
  const std::string t = trim(text);
  const size_t comma = t.rfind(',');
  if (!is_hot_experts(t) || t.back() != ')' || comma == std::string::npos || comma < 4)
    fail(where, ": bad hot experts \"", text, "\" (expected hot(STATS.json, N))");
  const std::string path = trim(t.substr(4, comma - 4)), count = trim(t.substr(comma + 1, t.size() - comma - 2));
  int64_t n = 0;
  if (path.empty()) fail(where, ": hot(): empty statistics file name");
  if (!parse_number(count, n) || n < 1) fail(where, ": hot(): bad expert count \"", count, "\" (a positive integer)");
  const fs::path p = fs::path(path).is_absolute() || base_dir.empty() ? fs::path(path) : fs::path(base_dir) / path;
  ExpertStats stats;
  try {
    stats = read_expert_stats_file(p.string());
  } catch (const Error& e) {
    fail(where, ": hot(): ", e.what());
  }
  std::vector<IndexRanges> out(size_t(stats.n_layer));
  for (const LayerExpertCounts& l : stats.layers)
    for (int64_t e : hottest_experts(l, n)) out[size_t(l.layer)].intervals.push_back({e, e});
  return out;
}

namespace {

struct Parser {
  std::vector<std::string> stack;  // canonical paths being parsed, for include cycles
  Rules out;

  static std::string at(const std::string& file, const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    if (m.is_null()) return file;
    return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  static std::string line_of(const std::string& file, const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    return file + ":" + std::to_string(m.is_null() ? 0 : m.line + 1);
  }

  static std::string scalar(const std::string& file, const YAML::Node& n, const char* what) {
    if (!n.IsScalar()) fail(at(file, n), ": ", what, " must be a string");
    return n.Scalar();
  }

  static void check_keys(const std::string& file, const YAML::Node& map, const char* what,
                         std::initializer_list<const char*> allowed) {
    if (!map.IsMap()) fail(at(file, map), ": ", what, " must be a mapping");
    for (const auto& kv : map) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
      bool ok = false;
      for (const char* a : allowed) ok = ok || key == a;
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        fail(at(file, kv.first), ": unknown key \"", key, "\" in ", what, " (allowed: ", list, ")");
      }
    }
  }

  Place place_of(const std::string& file, const YAML::Node& node, const YAML::Node& parent, const char* what) {
    Place p = parse_place(scalar(file, node, "place"), at(file, node));
    if (const YAML::Node layout = parent["layout"]) {
      const std::string l = scalar(file, layout, "layout");
      if (l == "repacked") p.layout = ExpertLayout::Repacked;
      else if (l == "gguf") p.layout = ExpertLayout::Gguf;
      else fail(at(file, layout), ": unknown layout \"", l, "\" (repacked, gguf)");
      if (!p.device.is_cpu()) fail(at(file, layout), ": layout applies to CPU places only, not ", p.device.str());
    }
    if (const YAML::Node fill = parent["fill"]) {
      bool v = false;
      if (!fill.IsScalar() || !YAML::convert<bool>::decode(fill, v)) fail(at(file, fill), ": fill must be true or false");
      if (v && !p.device.is_gpu()) fail(at(file, fill), ": fill applies to GPU places only, not ", p.device.str());
      p.fill = v;
    }
    (void)what;
    return p;
  }

  void parse_rule(const std::string& file, const YAML::Node& r, const std::string& base_dir) {
    check_keys(file, r, "rule", {"match", "place", "layout", "fill"});
    Rule rule;
    rule.origin = line_of(file, r);
    const YAML::Node m = r["match"];
    if (!m) fail(at(file, r), ": rule without match");
    check_keys(file, m, "match", {"kind", "name", "layers", "experts"});
    if (const YAML::Node k = m["kind"]) {
      const std::string s = scalar(file, k, "kind");
      rule.match.kind = kind_from_name(s);
      if (!rule.match.kind)
        fail(at(file, k), ": unknown kind \"", s,
             "\" (token_embd, attention, dense_ffn, router, shared_experts, routed_experts, output)");
    }
    if (const YAML::Node n = m["name"]) {
      const std::string s = scalar(file, n, "name");
      if (s.size() > 4096) fail(at(file, n), ": name regex too long");
      try {
        std::regex check(s, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail(at(file, n), ": bad name regex \"", s, "\": ", e.what());
      }
      rule.match.name = s;
    }
    if (const YAML::Node l = m["layers"]) rule.match.layers = parse_index_ranges(scalar(file, l, "layers"), at(file, l));
    if (const YAML::Node e = m["experts"]) {
      const std::string text = scalar(file, e, "experts");
      if (is_hot_experts(text)) rule.match.experts_per_layer = parse_hot_experts(text, at(file, e), base_dir);
      else rule.match.experts = parse_index_ranges(text, at(file, e));
      if (rule.match.kind && *rule.match.kind != TensorKind::RoutedExperts)
        fail(at(file, e), ": experts applies to kind routed_experts only");
    }
    const YAML::Node p = r["place"];
    if (!p) fail(at(file, r), ": rule without place");
    rule.place = place_of(file, p, r, "rule");
    out.rules.push_back(std::move(rule));
  }

  void parse_document(const YAML::Node& doc, const std::string& file, const std::string& base_dir) {
    if (doc.IsNull()) return;
    check_keys(file, doc, "rules file", {"include", "rules", "defaults", "kv_cache", "prefill"});
    if (const YAML::Node inc = doc["include"]) {
      std::vector<YAML::Node> items;
      if (inc.IsScalar()) items.push_back(inc);
      else if (inc.IsSequence()) for (const auto& i : inc) items.push_back(i);
      else fail(at(file, inc), ": include must be a file name or a list of them");
      for (const YAML::Node& i : items) {
        const std::string name = scalar(file, i, "include");
        if (base_dir.empty()) fail(at(file, i), ": include \"", name, "\" needs a rules file on disk");
        parse_path((fs::path(base_dir) / name).string(), at(file, i));
      }
    }
    if (const YAML::Node rules = doc["rules"]) {
      if (!rules.IsSequence()) fail(at(file, rules), ": rules must be a list");
      for (const auto& r : rules) parse_rule(file, r, base_dir);
    }
    if (const YAML::Node d = doc["defaults"]) {
      check_keys(file, d, "defaults", {"place", "layout"});
      const YAML::Node p = d["place"];
      if (!p) fail(at(file, d), ": defaults without place");
      out.defaults = place_of(file, p, d, "defaults");
      out.defaults_origin = line_of(file, d);
    }
    if (const YAML::Node kv = doc["kv_cache"]) {
      check_keys(file, kv, "kv_cache", {"type"});
      if (const YAML::Node t = kv["type"]) {
        const std::string s = scalar(file, t, "type");
        if (s != "f16" && s != "bf16") fail(at(file, t), ": unknown kv_cache type \"", s, "\" (f16, bf16)");
        out.kv_cache_type = s;
      }
    }
    if (const YAML::Node pf = doc["prefill"]) {
      check_keys(file, pf, "prefill", {"experts_on_gpu_from_tokens"});
      if (const YAML::Node t = pf["experts_on_gpu_from_tokens"]) {
        int64_t v = 0;
        if (!t.IsScalar() || !parse_number(t.Scalar(), v))
          fail(at(file, t), ": experts_on_gpu_from_tokens must be a non-negative integer");
        out.experts_on_gpu_from_tokens = v;
      }
    }
  }

  void parse_text(const std::string& text, const std::string& file, const std::string& base_dir) {
    YAML::Node doc;
    try {
      doc = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      fail(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg);
    }
    try {
      if (looks_like_ktransformers_rules(doc)) {
        if (stack.size() > 1) fail(file, ": a KTransformers rule file cannot be included");
        Rules kt = translate_ktransformers_rules(doc, file);
        for (Rule& r : kt.rules) out.rules.push_back(std::move(r));
        for (std::string& w : kt.warnings) out.warnings.push_back(std::move(w));
        if (!out.defaults) out.defaults = kt.defaults, out.defaults_origin = kt.defaults_origin;
      } else {
        parse_document(doc, file, base_dir);
      }
    } catch (const YAML::Exception& e) {
      fail(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg);
    }
  }

  void parse_path(const std::string& path, const std::string& from) {
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(path, ec);
    const std::string key = ec ? path : canon.string();
    for (const std::string& s : stack)
      if (s == key) fail(from.empty() ? path : from, ": include cycle through ", path);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(from.empty() ? "" : from + ": ", "cannot read rules file ", path);
    std::stringstream ss;
    ss << in.rdbuf();
    stack.push_back(key);
    parse_text(ss.str(), path, fs::path(path).parent_path().string().empty() ? "." : fs::path(path).parent_path().string());
    stack.pop_back();
  }
};

}  // namespace

Rules parse_rules_file(const std::string& path) {
  Parser p;
  p.parse_path(path, "");
  return std::move(p.out);
}

Rules parse_rules_text(const std::string& text, const std::string& filename, const std::string& base_dir) {
  Parser p;
  p.parse_text(text, filename, base_dir);
  return std::move(p.out);
}

}  // namespace tandem::placement
