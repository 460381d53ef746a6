#include "placement/machine_portrait.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "runtime/core/error.h"

namespace tandem::placement {

using nlohmann::json;

double MachinePortrait::node_bandwidth(int node, int threads) const {
  if (node < 0 || size_t(node) >= read_gb_per_s.size()) return 0;
  const double diagonal = read_gb_per_s[size_t(node)][size_t(node)];
  const NodeScaling* s = nullptr;
  for (const NodeScaling& c : scaling)
    if (c.node == node) s = &c;
  if (!s) s = scaling.empty() ? nullptr : &scaling.front();  // nodes alike: node 0's curve
  if (!s || s->points.empty()) return diagonal;
  auto at = [&](int t) {
    const auto& pts = s->points;
    if (t <= pts.front().threads) return pts.front().gb_per_s * double(t) / double(std::max(pts.front().threads, 1));
    for (size_t i = 1; i < pts.size(); ++i)
      if (t <= pts[i].threads) {
        const double f = double(t - pts[i - 1].threads) / double(pts[i].threads - pts[i - 1].threads);
        return pts[i - 1].gb_per_s + f * (pts[i].gb_per_s - pts[i - 1].gb_per_s);
      }
    return pts.back().gb_per_s;
  };
  const double top = at(s->points.back().threads);
  const double curve = at(threads);
  return diagonal > 0 && top > 0 ? curve * diagonal / top : curve;
}

const KernelRate* MachinePortrait::kernel(const std::string& type) const {
  const KernelRate* best = nullptr;
  for (const KernelRate& k : kernels)
    if (k.type == type && (!best || k.gemv_gb_per_s > best->gemv_gb_per_s)) best = &k;
  return best;
}

Topology MachinePortrait::topology() const {
  Topology t;
  for (const PortraitNode& n : nodes) t.nodes.push_back({n.node, n.cores, n.memory_bytes});
  for (const PortraitGpu& g : gpus) t.gpus.push_back({g.index, g.name, g.device_local_bytes, g.software});
  return t;
}

namespace {

struct Reader {
  std::string source;

  [[noreturn]] void bad(const std::string& where, const std::string& what) const { fail(source, ": ", where, ": ", what); }

  const json& field(const json& j, const std::string& where, const char* key) const {
    if (!j.is_object()) bad(where, "expected an object");
    if (!j.contains(key)) bad(where, std::string("missing \"") + key + "\"");
    return j[key];
  }
  double rate(const json& j, const std::string& where, const char* key, bool required = true) const {
    if (!j.contains(key)) {
      if (required) bad(where, std::string("missing \"") + key + "\"");
      return 0;
    }
    const json& v = j[key];
    if (!v.is_number()) bad(where + "." + key, "expected a number (GB/s), got " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < 0 || x > 1e7) bad(where + "." + key, "rate " + v.dump() + " is not in 0..1e7");
    return x;
  }
  int64_t integer(const json& j, const std::string& where, const char* key, int64_t lo, int64_t hi) const {
    const json& v = field(j, where, key);
    if (!v.is_number_integer()) bad(where + "." + key, "expected an integer, got " + v.dump());
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) bad(where + "." + key, std::to_string(x) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
    return x;
  }
  std::string text(const json& j, const char* key) const {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
  }
};

}  // namespace

MachinePortrait parse_portrait(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse errors and numbers out of range alike
    fail(source, ": not a JSON machine portrait: ", e.what());
  }
  Reader r{source};
  if (!j.is_object() || !j.contains("format") || j["format"] != "tandem-machine-portrait")
    fail(source, ": not a tandem-machine-portrait file (\"format\" must be \"tandem-machine-portrait\"; write one with `tandem bench numa --json`)");
  const int64_t version = r.integer(j, "top level", "version", 0, 1 << 20);
  if (version != kPortraitVersion) fail(source, ": portrait version ", version, " (this tandem reads version ", kPortraitVersion, ")");
  MachinePortrait p;
  const json& m = r.field(j, "top level", "machine");
  p.host = r.text(m, "host"), p.cpu = r.text(m, "cpu"), p.isa = r.text(m, "isa");
  const json& nodes = r.field(m, "machine", "numa_nodes");
  if (!nodes.is_array() || nodes.empty() || nodes.size() > 1024) r.bad("machine.numa_nodes", "expected a list of 1..1024 nodes");
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string w = "machine.numa_nodes[" + std::to_string(i) + "]";
    PortraitNode n;
    n.node = int(r.integer(nodes[i], w, "node", int64_t(i), int64_t(i)));
    n.cores = int(r.integer(nodes[i], w, "cores", 1, 1 << 16));
    n.memory_bytes = uint64_t(r.integer(nodes[i], w, "memory_bytes", 1, int64_t(1) << 56));
    p.nodes.push_back(n);
  }
  const size_t n = p.nodes.size();
  const json& mat = r.field(j, "top level", "read_gb_per_s");
  if (!mat.is_array() || mat.size() != n) r.bad("read_gb_per_s", "expected " + std::to_string(n) + " rows (one per NUMA node)");
  for (size_t c = 0; c < n; ++c) {
    if (!mat[c].is_array() || mat[c].size() != n)
      r.bad("read_gb_per_s[" + std::to_string(c) + "]", "expected " + std::to_string(n) + " columns (one per NUMA node)");
    std::vector<double> row;
    for (size_t k = 0; k < n; ++k) {
      const json& v = mat[c][k];
      const std::string w = "read_gb_per_s[" + std::to_string(c) + "][" + std::to_string(k) + "]";
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0 || v.get<double>() > 1e6)
        r.bad(w, "expected a positive bandwidth in GB/s, got " + v.dump());
      row.push_back(v.get<double>());
    }
    p.read_gb_per_s.push_back(std::move(row));
  }
  if (j.contains("scaling")) {
    const json& s = j["scaling"];
    if (!s.is_array()) r.bad("scaling", "expected a list");
    for (size_t i = 0; i < s.size(); ++i) {
      const std::string w = "scaling[" + std::to_string(i) + "]";
      NodeScaling ns;
      ns.node = int(r.integer(s[i], w, "node", 0, int64_t(n) - 1));
      const json& pts = r.field(s[i], w, "points");
      if (!pts.is_array() || pts.empty()) r.bad(w + ".points", "expected a non-empty list of {threads, gb_per_s}");
      for (size_t k = 0; k < pts.size(); ++k) {
        const std::string wp = w + ".points[" + std::to_string(k) + "]";
        ScalingPoint pt{int(r.integer(pts[k], wp, "threads", 1, 1 << 16)), r.rate(pts[k], wp, "gb_per_s")};
        if (!ns.points.empty() && pt.threads <= ns.points.back().threads) r.bad(wp, "thread counts must ascend");
        ns.points.push_back(pt);
      }
      ns.saturates_at = s[i].contains("saturates_at") ? int(r.integer(s[i], w, "saturates_at", 1, 1 << 16)) : ns.points.back().threads;
      p.scaling.push_back(std::move(ns));
    }
  }
  p.interleaved_gb_per_s = r.rate(j, "top level", "interleaved_gb_per_s", false);
  p.bound_gb_per_s = r.rate(j, "top level", "bound_gb_per_s", false);
  if (j.contains("gpus")) {
    const json& g = j["gpus"];
    if (!g.is_array() || g.size() > 64) r.bad("gpus", "expected a list of at most 64 GPUs");
    for (size_t i = 0; i < g.size(); ++i) {
      const std::string w = "gpus[" + std::to_string(i) + "]";
      PortraitGpu pg;
      pg.index = int(r.integer(g[i], w, "index", int64_t(i), int64_t(i)));
      pg.name = r.text(g[i], "name");
      pg.device_local_bytes = uint64_t(r.integer(g[i], w, "device_local_bytes", 1, int64_t(1) << 56));
      pg.software = g[i].contains("software") && g[i]["software"].is_boolean() && g[i]["software"].get<bool>();
      pg.h2d_pinned = r.rate(g[i], w, "h2d_pinned_gb_per_s");
      pg.h2d_pageable = r.rate(g[i], w, "h2d_pageable_gb_per_s");
      pg.d2h_pinned = r.rate(g[i], w, "d2h_pinned_gb_per_s");
      pg.d2h_pageable = r.rate(g[i], w, "d2h_pageable_gb_per_s");
      pg.device_copy = r.rate(g[i], w, "device_copy_gb_per_s", false);
      if (pg.h2d_pinned <= 0) r.bad(w + ".h2d_pinned_gb_per_s", "must be positive (the tuner divides by it)");
      p.gpus.push_back(std::move(pg));
    }
  }
  if (j.contains("kernels")) {
    const json& k = j["kernels"];
    if (!k.is_array()) r.bad("kernels", "expected a list");
    for (size_t i = 0; i < k.size(); ++i) {
      const std::string w = "kernels[" + std::to_string(i) + "]";
      KernelRate kr;
      kr.type = r.text(k[i], "type"), kr.isa = r.text(k[i], "isa");
      if (kr.type.empty()) r.bad(w, "missing \"type\"");
      kr.threads = int(r.integer(k[i], w, "threads", 1, 1 << 20));
      kr.gemv_gb_per_s = r.rate(k[i], w, "gemv_gb_per_s");
      kr.gemm_gflops = r.rate(k[i], w, "gemm_gflops");
      kr.gemm_tokens = k[i].contains("gemm_tokens") ? int(r.integer(k[i], w, "gemm_tokens", 1, 1 << 20)) : 0;
      p.kernels.push_back(std::move(kr));
    }
  }
  return p;
}

MachinePortrait read_portrait_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read machine portrait ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_portrait(ss.str(), path);
}

json portrait_json(const MachinePortrait& p) {
  json nodes = json::array();
  for (const PortraitNode& n : p.nodes) nodes.push_back({{"node", n.node}, {"cores", n.cores}, {"memory_bytes", n.memory_bytes}});
  json scaling = json::array();
  for (const NodeScaling& s : p.scaling) {
    json pts = json::array();
    for (const ScalingPoint& pt : s.points) pts.push_back({{"threads", pt.threads}, {"gb_per_s", pt.gb_per_s}});
    scaling.push_back({{"node", s.node}, {"points", pts}, {"saturates_at", s.saturates_at}});
  }
  json gpus = json::array();
  for (const PortraitGpu& g : p.gpus)
    gpus.push_back({{"index", g.index}, {"name", g.name}, {"device_local_bytes", g.device_local_bytes}, {"software", g.software},
                    {"h2d_pinned_gb_per_s", g.h2d_pinned}, {"h2d_pageable_gb_per_s", g.h2d_pageable},
                    {"d2h_pinned_gb_per_s", g.d2h_pinned}, {"d2h_pageable_gb_per_s", g.d2h_pageable},
                    {"device_copy_gb_per_s", g.device_copy}});
  json kernels = json::array();
  for (const KernelRate& k : p.kernels)
    kernels.push_back({{"type", k.type}, {"isa", k.isa}, {"threads", k.threads}, {"gemv_gb_per_s", k.gemv_gb_per_s},
                       {"gemm_gflops", k.gemm_gflops}, {"gemm_tokens", k.gemm_tokens}});
  return {{"format", "tandem-machine-portrait"}, {"version", kPortraitVersion},
          {"machine", {{"host", p.host}, {"cpu", p.cpu}, {"isa", p.isa}, {"numa_nodes", nodes}}},
          {"read_gb_per_s", p.read_gb_per_s}, {"scaling", scaling}, {"interleaved_gb_per_s", p.interleaved_gb_per_s},
          {"bound_gb_per_s", p.bound_gb_per_s}, {"gpus", gpus}, {"kernels", kernels}};
}

std::string portrait_table(const MachinePortrait& p) {
  std::ostringstream o;
  char line[256];
  o << "machine: " << (p.host.empty() ? "?" : p.host) << ", " << (p.cpu.empty() ? "?" : p.cpu) << ", "
    << p.nodes.size() << " NUMA node(s), best ISA " << p.isa << "\n\n";
  o << "read bandwidth, GB/s (rows: cores of node, columns: memory of node)\n";
  std::snprintf(line, sizeof line, "%8s", "");
  o << line;
  for (size_t m = 0; m < p.nodes.size(); ++m) std::snprintf(line, sizeof line, " %10s", ("mem " + std::to_string(m)).c_str()), o << line;
  o << "\n";
  for (size_t c = 0; c < p.read_gb_per_s.size(); ++c) {
    std::snprintf(line, sizeof line, "cpu %-4zu", c);
    o << line;
    for (double v : p.read_gb_per_s[c]) std::snprintf(line, sizeof line, " %10.1f", v), o << line;
    o << "\n";
  }
  for (const NodeScaling& s : p.scaling) {
    o << "\nnode " << s.node << " by threads (saturates at " << s.saturates_at << "):";
    for (const ScalingPoint& pt : s.points) std::snprintf(line, sizeof line, " %d:%.1f", pt.threads, pt.gb_per_s), o << line;
    o << " GB/s\n";
  }
  std::snprintf(line, sizeof line, "\nall nodes at once: bound to their own node %.1f GB/s, interleaved %.1f GB/s\n",
                p.bound_gb_per_s, p.interleaved_gb_per_s);
  o << line;
  if (!p.gpus.empty()) {
    std::snprintf(line, sizeof line, "\n%-4s %-28s %10s %10s %10s %10s %10s  GB/s\n", "gpu", "name", "h2d pin", "h2d page",
                  "d2h pin", "d2h page", "on device");
    o << line;
    for (const PortraitGpu& g : p.gpus) {
      std::snprintf(line, sizeof line, "%-4d %-28.28s %10.2f %10.2f %10.2f %10.2f %10.2f%s\n", g.index, g.name.c_str(), g.h2d_pinned,
                    g.h2d_pageable, g.d2h_pinned, g.d2h_pageable, g.device_copy, g.software ? "  (software)" : "");
      o << line;
    }
  }
  if (!p.kernels.empty()) {
    std::snprintf(line, sizeof line, "\n%-8s %-8s %8s %14s %14s\n", "type", "isa", "threads", "GEMV GB/s", "GEMM GFLOP/s");
    o << line;
    for (const KernelRate& k : p.kernels) {
      std::snprintf(line, sizeof line, "%-8s %-8s %8d %14.2f %14.2f\n", k.type.c_str(), k.isa.c_str(), k.threads, k.gemv_gb_per_s,
                    k.gemm_gflops);
      o << line;
    }
  }
  return o.str();
}

std::string portrait_svg(const MachinePortrait& p) {
  // Plot area: threads on x (linear, 0..max threads), GB/s on y (0..max rate, rounded up).
  const double W = 720, H = 420, left = 70, right = 200, top = 40, bottom = 60;
  int max_threads = 1;
  double max_rate = 1;
  for (const NodeScaling& s : p.scaling)
    for (const ScalingPoint& pt : s.points) max_threads = std::max(max_threads, pt.threads), max_rate = std::max(max_rate, pt.gb_per_s);
  for (const auto& row : p.read_gb_per_s)
    for (double v : row) max_rate = std::max(max_rate, v);
  max_rate = std::max({max_rate, p.bound_gb_per_s, p.interleaved_gb_per_s});
  const double step = std::pow(10.0, std::floor(std::log10(max_rate)));
  max_rate = std::ceil(max_rate / step) * step;
  auto X = [&](double t) { return left + (W - left - right) * t / double(max_threads); };
  auto Y = [&](double r) { return H - bottom - (H - top - bottom) * r / max_rate; };
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
  std::ostringstream o;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
                "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                W, H);
  o << buf;
  auto esc = [](const std::string& s) {
    std::string out;
    for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : c == '"' ? "&quot;" : std::string(1, c);
    return out;
  };
  std::snprintf(buf, sizeof buf, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">Read bandwidth by threads per node: %s</text>\n", left,
                esc(p.host.empty() ? p.cpu : p.host).c_str());
  o << buf;
  for (int i = 0; i <= 5; ++i) {  // y grid
    const double r = max_rate * i / 5;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n",
                  left, Y(r), W - right, Y(r), left - 6, Y(r) + 4, r);
    o << buf;
  }
  const int xticks = std::min(max_threads, 8);
  for (int i = 0; i <= xticks; ++i) {
    const double t = double(max_threads) * i / xticks;
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", X(t), H - bottom + 18, t);
    o << buf;
  }
  std::snprintf(buf, sizeof buf,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">threads on the node</text>\n"
                "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">GB/s</text>\n"
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
                (left + W - right) / 2, H - 20, (top + H - bottom) / 2, (top + H - bottom) / 2, left, top, W - left - right, H - top - bottom);
  o << buf;
  double legend_y = top + 10;
  for (size_t i = 0; i < p.scaling.size(); ++i) {
    const NodeScaling& s = p.scaling[i];
    const char* c = colors[i % 8];
    std::string pts;
    for (const ScalingPoint& pt : s.points) {
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", X(pt.threads), Y(pt.gb_per_s));
      pts += buf;
    }
    std::snprintf(buf, sizeof buf, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", pts.c_str(), c);
    o << buf;
    for (const ScalingPoint& pt : s.points) {
      std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%d threads: %.1f GB/s</title></circle>\n",
                    X(pt.threads), Y(pt.gb_per_s), c, pt.threads, pt.gb_per_s);
      o << buf;
    }
    std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">node %d (saturates at %d)</text>\n", W - right + 10, legend_y,
                  c, s.node, s.saturates_at);
    o << buf;
    legend_y += 16;
  }
  auto hline = [&](double r, const std::string& label, const char* color) {
    if (r <= 0) return;
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"6 4\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">%s %.1f</text>\n",
                  left, Y(r), W - right, Y(r), color, W - right + 10, legend_y, color, esc(label).c_str(), r);
    o << buf;
    legend_y += 16;
  };
  hline(p.bound_gb_per_s, "all nodes, bound", "#555");
  hline(p.interleaved_gb_per_s, "all nodes, interleaved", "#999");
  for (const PortraitGpu& g : p.gpus) hline(g.h2d_pinned, "gpu " + std::to_string(g.index) + " h2d pinned", "#e377c2");
  o << "</svg>\n";
  return o.str();
}

}  // namespace tandem::placement
