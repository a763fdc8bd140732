#include "loop/variation_sources.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <unordered_map>

namespace tuneloop::loop {

namespace {

// The first track of `id`'s lineage. A cycle (only a corrupted database could make one)
// is one lineage, named by its smallest id whichever track the walk starts from.
std::int64_t root_of(std::int64_t id, const std::unordered_map<std::int64_t, std::int64_t>& parent) {
  std::set<std::int64_t> seen{id};
  for (auto it = parent.find(id); it != parent.end(); it = parent.find(id)) {
    if (!seen.insert(it->second).second) {
      std::int64_t smallest = it->second;  // walk the cycle once from where it closes
      for (std::int64_t at = parent.at(it->second); at != it->second; at = parent.at(at))
        smallest = std::min(smallest, at);
      return smallest;
    }
    id = it->second;
  }
  return id;
}

}  // namespace

std::vector<LikedSource> order_for_variation(std::vector<LikedSource> liked,
                                            const std::vector<TrackOrigin>& history) {
  std::unordered_map<std::int64_t, std::int64_t> parent;
  for (const auto& t : history)
    if (t.variation_of) parent[t.id] = *t.variation_of;
  std::map<std::int64_t, int> varied;  // lineage root -> variations made in it
  for (const auto& t : history)
    if (t.variation_of) ++varied[root_of(*t.variation_of, parent)];

  std::vector<std::int64_t> roots;
  roots.reserve(liked.size());
  for (const auto& l : liked) roots.push_back(root_of(l.id, parent));

  // Repeatedly the best track of the lineage varied least often; each lineage once.
  std::vector<LikedSource> out;
  std::set<std::int64_t> given;
  for (;;) {
    std::size_t best = liked.size();
    for (std::size_t i = 0; i < liked.size(); ++i) {
      if (given.count(roots[i])) continue;
      if (best == liked.size()) {
        best = i;
        continue;
      }
      const int vi = varied[roots[i]], vb = varied[roots[best]];
      if (vi < vb || (vi == vb && liked[i].score > liked[best].score)) best = i;
    }
    if (best == liked.size()) return out;
    given.insert(roots[best]);
    out.push_back(liked[best]);
  }
}

std::optional<std::int64_t> variation_of(const std::string& params_json) {
  const auto j = nlohmann::json::parse(params_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find("variation_of");
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

}  // namespace tuneloop::loop
