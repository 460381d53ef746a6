#include "runtime/tokenizer/special_token_matcher.h"

#include <algorithm>
#include <map>
#include <memory>

namespace tandem {

SpecialTokenMatcher::SpecialTokenMatcher(const BpeVocab& vocab) {
  // Build with a map-based trie first, then flatten it into sorted edge arrays.
  struct BuildNode {
    std::map<uint8_t, std::unique_ptr<BuildNode>> children;
    TokenId token = kNoToken;
    bool always = false;
  };
  BuildNode root;
  for (size_t i = 0; i < vocab.size(); ++i) {
    const TokenId id = TokenId(i);
    const TokenType t = vocab.type(id);
    if (t != TokenType::Control && t != TokenType::UserDefined && t != TokenType::Unknown) continue;
    const std::string& text = vocab.text(id);
    if (text.empty()) continue;
    BuildNode* n = &root;
    for (char c : text) {
      auto& child = n->children[uint8_t(c)];
      if (!child) child = std::make_unique<BuildNode>();
      n = child.get();
    }
    // With duplicate texts the later id wins, and user_defined beats control for that text.
    if (n->token == kNoToken || t == TokenType::UserDefined || !n->always) {
      n->token = id;
      n->always = t == TokenType::UserDefined;
    }
    first_byte_[uint8_t(text[0])] = true;
    ++patterns_;
  }
  // Breadth-first flattening keeps each node's children contiguous.
  std::vector<const BuildNode*> order{&root};
  nodes_.push_back(Node{0, 0, root.token, root.always});
  for (size_t k = 0; k < order.size(); ++k) {
    const BuildNode* b = order[k];
    nodes_[k].first_child = uint32_t(edges_.size());
    nodes_[k].child_count = uint16_t(b->children.size());
    for (const auto& [byte, child] : b->children) {
      edges_.push_back(Edge{byte, uint32_t(order.size())});
      order.push_back(child.get());
      nodes_.push_back(Node{0, 0, child->token, child->always});
    }
  }
}

size_t SpecialTokenMatcher::longest_at(std::string_view text, bool parse_special, TokenId& token) const {
  size_t best = 0;
  uint32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const Node& n = nodes_[node];
    const Edge* begin = edges_.data() + n.first_child;
    const Edge* end = begin + n.child_count;
    const uint8_t b = uint8_t(text[i]);
    const Edge* e = std::lower_bound(begin, end, b, [](const Edge& x, uint8_t v) { return x.byte < v; });
    if (e == end || e->byte != b) break;
    node = e->node;
    const Node& hit = nodes_[node];
    if (hit.token != kNoToken && (parse_special || hit.always)) {
      best = i + 1;
      token = hit.token;
    }
  }
  return best;
}

std::vector<SpecialTokenMatcher::Segment> SpecialTokenMatcher::split(std::string_view text,
                                                                     bool parse_special) const {
  std::vector<Segment> out;
  size_t plain_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    TokenId token = kNoToken;
    const size_t n = first_byte_[uint8_t(text[i])] ? longest_at(text.substr(i), parse_special, token) : 0;
    if (n == 0) {
      ++i;
      continue;
    }
    if (i > plain_start) out.push_back(Segment{text.substr(plain_start, i - plain_start), kNoToken});
    out.push_back(Segment{text.substr(i, n), token});
    i += n;
    plain_start = i;
  }
  if (i > plain_start) out.push_back(Segment{text.substr(plain_start, i - plain_start), kNoToken});
  return out;
}

}  // namespace tandem
