#include <gtest/gtest.h>

#include <set>

#include <torch/torch.h>

#include "adapters/lora.hpp"
#include "adapters/tensor_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace tuneloop::adapters {
namespace {

using tuneloop::testing::TempDir;

// A tiny net with every LoRA layer type, nested one level like a real UNet block.
struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    conv = register_module("conv", LoraConv2d(torch::nn::Conv2dOptions(4, 4, 3).stride(2).padding(1)));
    norm = register_module("norm", torch::nn::GroupNorm(2, 4));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::silu(norm(conv(x))); }
  LoraConv2d conv{nullptr};
  torch::nn::GroupNorm norm{nullptr};
};
TORCH_MODULE(Block);

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    stem = register_module("stem", LoraConv2d(torch::nn::Conv2dOptions(2, 4, 3).padding(1)));
    down = register_module("down", Block());
    proj = register_module("proj", LoraConv1d(torch::nn::Conv1dOptions(4, 3, 3).padding(1)));
    head = register_module("head", LoraLinear(torch::nn::LinearOptions(3, 5)));
    register_buffer("scale", torch::full({1}, 0.5));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = down(torch::relu(stem(x)));       // [N, 4, 4, 4]
    h = proj(h.mean(2));                         // [N, 3, 4]
    return head(h.transpose(1, 2)) * named_buffers()["scale"];  // [N, 4, 5]
  }
  LoraConv2d stem{nullptr};
  Block down{nullptr};
  LoraConv1d proj{nullptr};
  LoraLinear head{nullptr};
};
TORCH_MODULE(TinyNet);

torch::Tensor input() {
  torch::manual_seed(7);
  return torch::randn({3, 2, 8, 8});
}

// Gives every B factor of the adapter non-zero values so it actually changes outputs.
void randomize(TinyNet& net, const std::string& name, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : adapter_parameters(*net, name)) p.normal_(0, 0.3);
}

std::map<std::string, torch::Tensor> clone_state(const TinyNet& net) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : base_state_dict(*net)) out[k] = v.detach().clone();
  return out;
}

bool same_state(const std::map<std::string, torch::Tensor>& a,
                const std::map<std::string, torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (auto& [k, v] : a)
    if (!b.count(k) || !torch::equal(v, b.at(k))) return false;
  return true;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Lora, ModelsBuiltFromLoraLayersKeepPlainStateDictNames) {
  TinyNet net;
  add_adapter(*net, "a", {});
  auto names = base_state_dict(*net);
  std::set<std::string> keys;
  for (auto& [k, v] : names) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"stem.weight", "stem.bias", "down.conv.weight",
                                         "down.conv.bias", "down.norm.weight", "down.norm.bias",
                                         "proj.weight", "proj.bias", "head.weight", "head.bias",
                                         "scale"}));
}

TEST(Lora, FreshAdapterLeavesOutputsUnchanged) {
  TinyNet net;
  auto x = input();
  auto before = net(x);
  add_adapter(*net, "fresh", {.rank = 2, .alpha = 16});
  set_active_adapter(*net, "fresh");
  EXPECT_EQ(active_adapter(*net), "fresh");
  EXPECT_TRUE(torch::equal(net(x), before));
}

TEST(Lora, NoActiveAdapterGivesExactlyTheBaseOutput) {
  TinyNet net;
  auto x = input();
  auto before = net(x);
  add_adapter(*net, "a", {});
  randomize(net, "a", 1);
  set_active_adapter(*net, "a");
  EXPECT_FALSE(torch::allclose(net(x), before));
  set_active_adapter(*net, "");
  EXPECT_TRUE(torch::equal(net(x), before));
}

TEST(Lora, TargetsSelectModulesByTheirDottedPath) {
  TinyNet net;
  add_adapter(*net, "convs", {.targets = {"stem", "down\\..*"}});
  EXPECT_TRUE(net->stem->has_adapter("convs"));
  EXPECT_TRUE(net->down->conv->has_adapter("convs"));
  EXPECT_FALSE(net->proj->has_adapter("convs"));
  EXPECT_FALSE(net->head->has_adapter("convs"));
  EXPECT_EQ(adapter_parameters(*net, "convs").size(), 4u);
  EXPECT_NE(error_of([&] { add_adapter(*net, "none", {.targets = {"decoder.*"}}); })
                .find("match none"),
            std::string::npos);
  EXPECT_THROW(add_adapter(*net, "bad", {.targets = {"("}}), std::invalid_argument);
  EXPECT_THROW(add_adapter(*net, "convs", {}), std::logic_error);
  EXPECT_THROW(add_adapter(*net, "has.dot", {}), std::invalid_argument);
  EXPECT_EQ(adapter_names(*net), std::vector<std::string>{"convs"});
}

TEST(Lora, FreezeBaseLeavesOnlyLoraFactorsTrainable) {
  TinyNet net;
  add_adapter(*net, "a", {.rank = 2});
  freeze_base(*net);
  auto factors = adapter_parameters(*net, "a");
  EXPECT_EQ(factors.size(), 8u);  // A and B on 4 layers
  std::set<const void*> ids;
  for (auto& f : factors) ids.insert(f.unsafeGetTensorImpl());
  for (auto& item : net->named_parameters()) {
    const bool is_factor = ids.count(item.value().unsafeGetTensorImpl()) != 0;
    EXPECT_EQ(item.value().requires_grad(), is_factor) << item.key();
    EXPECT_EQ(is_factor, item.key().find(".lora_") != std::string::npos) << item.key();
  }
  EXPECT_EQ(net->stem->lora_A("a").sizes(), (std::vector<int64_t>{2, 2, 3, 3}));
  EXPECT_EQ(net->stem->lora_B("a").sizes(), (std::vector<int64_t>{4, 2, 1, 1}));
  EXPECT_EQ(net->head->lora_A("a").sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(net->head->lora_B("a").sizes(), (std::vector<int64_t>{5, 2}));
}

TEST(Lora, MergedForwardEqualsUnmergedAndUnmergeRestoresBaseWeights) {
  TinyNet net;
  net->eval();
  auto x = input();
  auto base_state = clone_state(net);
  add_adapter(*net, "a", {.rank = 3, .alpha = 6});
  randomize(net, "a", 2);
  set_active_adapter(*net, "a");
  auto unmerged = net(x);
  merge_adapter(*net, "a");
  EXPECT_FALSE(torch::equal(net->stem->base_weight(), base_state.at("stem.weight")));
  EXPECT_TRUE(torch::allclose(net(x), unmerged, 1e-5, 1e-5));
  // The merged model without the adapter active still computes the base model.
  set_active_adapter(*net, "");
  EXPECT_TRUE(torch::allclose(net(x), net(x)));
  auto base_out_while_merged = net(x);
  set_active_adapter(*net, "a");
  EXPECT_THROW(merge_adapter(*net, "a"), std::logic_error);
  unmerge_adapter(*net, "a");
  EXPECT_TRUE(same_state(clone_state(net), base_state));
  EXPECT_TRUE(torch::allclose(net(x), unmerged, 1e-5, 1e-5));
  set_active_adapter(*net, "");
  EXPECT_TRUE(torch::allclose(net(x), base_out_while_merged, 1e-5, 1e-5));
}

TEST(Lora, MergingAtAStrengthScalesTheWeightChangeAndUnmergesExactly) {
  TinyNet net;
  net->eval();
  auto base_state = clone_state(net);
  add_adapter(*net, "a", {.rank = 2, .alpha = 4});
  randomize(net, "a", 6);
  const auto delta = net->head->delta_weight("a");
  merge_adapter(*net, "a", 2.5);
  EXPECT_TRUE(torch::allclose(net->head->base_weight(), base_state.at("head.weight") + 2.5 * delta,
                              1e-5, 1e-6));
  // Strength 0 leaves the base model's outputs.
  unmerge_adapter(*net, "a");
  EXPECT_TRUE(same_state(clone_state(net), base_state));
  auto x = input();
  auto base_out = net(x);
  merge_adapter(*net, "a", 0.0);
  EXPECT_TRUE(torch::allclose(net(x), base_out, 1e-5, 1e-5));
  unmerge_adapter(*net, "a");
  // While merged at a strength, another active adapter still sees the plain base.
  add_adapter(*net, "b", {});
  randomize(net, "b", 7);
  set_active_adapter(*net, "b");
  auto b_only = net(x);
  merge_adapter(*net, "a", 1.7);
  EXPECT_TRUE(torch::allclose(net(x), b_only, 1e-5, 1e-5));
  unmerge_adapter(*net, "a");
  EXPECT_TRUE(torch::allclose(net(x), b_only, 1e-5, 1e-5));
}

TEST(Lora, WhileOneAdapterIsMergedAnotherCanBeActive) {
  TinyNet net;
  auto x = input();
  add_adapter(*net, "a", {});
  add_adapter(*net, "b", {});
  randomize(net, "a", 3);
  randomize(net, "b", 4);
  set_active_adapter(*net, "b");
  auto b_only = net(x);
  merge_adapter(*net, "a");
  EXPECT_TRUE(torch::allclose(net(x), b_only, 1e-5, 1e-5));
}

TEST(Lora, ModelHashIgnoresAdaptersAndMergingButNotBaseWeights) {
  TinyNet net;
  const auto h = model_hash(*net);
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(model_hash(*net), h);
  add_adapter(*net, "a", {});
  randomize(net, "a", 5);
  EXPECT_EQ(model_hash(*net), h);
  merge_adapter(*net, "a");
  EXPECT_EQ(model_hash(*net), h);
  unmerge_adapter(*net, "a");
  {
    torch::NoGradGuard no_grad;
    net->head->base_weight()[0][0] += 1e-3;
  }
  EXPECT_NE(model_hash(*net), h);
  EXPECT_NE(model_hash(*TinyNet()), model_hash(*TinyNet()));  // different random init
}

TEST(Lora, SavedAdapterLoadsIntoACopyOfTheBaseWithIdenticalOutputs) {
  TempDir dir("tuneloop-adapters");
  TinyNet net;
  auto x = input();
  add_adapter(*net, "style", {.rank = 2, .alpha = 4, .dropout = 0.1, .targets = {"stem", "head"}});
  randomize(net, "style", 6);
  set_active_adapter(*net, "style");
  net->eval();
  auto expected = net(x);
  const std::string hash = model_hash(*net);
  save_state_dict(*net, dir.file("base.safetensors"));
  save_adapter(*net, "style", dir.file("style.safetensors"), hash);

  auto meta = adapter_metadata(dir.file("style.safetensors"));
  EXPECT_EQ(meta.at("format"), "tuneloop-lora");
  EXPECT_EQ(meta.at("rank"), "2");
  EXPECT_EQ(meta.at("alpha"), "4");
  EXPECT_EQ(meta.at("dropout"), "0.10000000000000001");
  EXPECT_EQ(meta.at("targets"), R"(["stem","head"])");
  EXPECT_EQ(meta.at("base_model_hash"), hash);
  auto names = SafetensorsFile::read(dir.file("style.safetensors")).names();
  EXPECT_EQ(names, (std::vector<std::string>{"head.lora_A.weight", "head.lora_B.weight",
                                             "stem.lora_A.weight", "stem.lora_B.weight"}));

  TinyNet copy;
  load_state_dict(*copy, dir.file("base.safetensors"));
  EXPECT_EQ(model_hash(*copy), hash);
  EXPECT_EQ(load_adapter(*copy, dir.file("style.safetensors"), model_hash(*copy)), "style");
  EXPECT_EQ(active_adapter(*copy), "");
  set_active_adapter(*copy, "style");
  copy->eval();
  EXPECT_TRUE(torch::equal(copy(x), expected));
  EXPECT_EQ(copy->head->adapter_config("style").targets, (std::vector<std::string>{"stem", "head"}));
  EXPECT_DOUBLE_EQ(copy->head->adapter_config("style").dropout, 0.1);
  EXPECT_FALSE(copy->proj->has_adapter("style"));

  // Loading under another name keeps both.
  EXPECT_EQ(load_adapter(*copy, dir.file("style.safetensors"), hash, "again"), "again");
  EXPECT_EQ(adapter_names(*copy), (std::vector<std::string>{"again", "style"}));
}

TEST(Lora, AdapterMadeForAnotherBaseModelIsRefused) {
  TempDir dir("tuneloop-adapters");
  TinyNet net, other;
  add_adapter(*net, "a", {});
  save_adapter(*net, "a", dir.file("a.safetensors"), model_hash(*net));
  const std::string msg =
      error_of([&] { load_adapter(*other, dir.file("a.safetensors"), model_hash(*other)); });
  EXPECT_NE(msg.find("was made for base model " + model_hash(*net)), std::string::npos) << msg;
  EXPECT_NE(msg.find("this model is " + model_hash(*other)), std::string::npos) << msg;
  EXPECT_TRUE(adapter_names(*other).empty());
}

// A net with the same module names but other channel counts.
struct WideNetImpl : torch::nn::Module {
  WideNetImpl() {
    stem = register_module("stem", LoraConv2d(torch::nn::Conv2dOptions(2, 8, 3).padding(1)));
  }
  LoraConv2d stem{nullptr};
};
TORCH_MODULE(WideNet);

TEST(Lora, AdapterWhoseKeysOrShapesDoNotFitIsRefusedWithoutChangingTheModel) {
  TempDir dir("tuneloop-adapters");
  TinyNet net;
  add_adapter(*net, "a", {});
  save_adapter(*net, "a", dir.file("a.safetensors"), "");

  WideNet wide;
  add_adapter(*wide, "keep", {});
  std::string msg = error_of([&] { load_adapter(*wide, dir.file("a.safetensors"), ""); });
  EXPECT_NE(msg.find("not LoRA factors of this model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("head.lora_A.weight"), std::string::npos) << msg;

  // Same keys, wrong shape.
  WideNet wide2;
  add_adapter(*wide2, "w", {.targets = {"stem"}});
  save_adapter(*wide2, "w", dir.file("w.safetensors"), "");
  TinyNet tiny;
  msg = error_of([&] { load_adapter(*tiny, dir.file("w.safetensors"), ""); });
  EXPECT_NE(msg.find("stem.lora_B.weight is [8, 8, 1, 1], the layer needs [4, 8, 1, 1]"),
            std::string::npos)
      << msg;
  EXPECT_TRUE(adapter_names(*tiny).empty());

  // A plain tensor file is not an adapter.
  save_tensors(dir.file("plain.safetensors"), {{"stem.lora_A.weight", torch::zeros({1})}});
  msg = error_of([&] { load_adapter(*tiny, dir.file("plain.safetensors"), ""); });
  EXPECT_NE(msg.find("not a tuneloop adapter"), std::string::npos) << msg;
  EXPECT_THROW(load_adapter(*tiny, dir.file("missing.safetensors"), ""), ModelFileError);
}

TEST(Lora, SwitchingTheActiveAdapterSwitchesTheOutput) {
  TinyNet net;
  auto x = input();
  auto base = net(x);
  add_adapter(*net, "bright", {});
  add_adapter(*net, "dark", {.rank = 4});
  randomize(net, "bright", 8);
  randomize(net, "dark", 9);
  set_active_adapter(*net, "bright");
  auto bright = net(x);
  set_active_adapter(*net, "dark");
  auto dark = net(x);
  EXPECT_FALSE(torch::allclose(bright, dark));
  EXPECT_FALSE(torch::allclose(bright, base));
  set_active_adapter(*net, "bright");
  EXPECT_TRUE(torch::equal(net(x), bright));
  EXPECT_THROW(set_active_adapter(*net, "unknown"), std::logic_error);

  remove_adapter(*net, "bright");
  EXPECT_EQ(active_adapter(*net), "");
  EXPECT_TRUE(torch::equal(net(x), base));
  for (auto& item : net->named_parameters())
    EXPECT_EQ(item.key().find("bright"), std::string::npos) << item.key();
}

TEST(Lora, TrainingLoraFactorsLowersTheLossAndLeavesBaseWeightsBitIdentical) {
  torch::manual_seed(11);
  TinyNet net, teacher;
  auto x = input();
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    target = teacher(x);
  }
  auto base_state = clone_state(net);
  add_adapter(*net, "ft", {.rank = 4, .alpha = 8});
  set_active_adapter(*net, "ft");
  freeze_base(*net);
  net->train();
  torch::optim::Adam opt(adapter_parameters(*net, "ft"), torch::optim::AdamOptions(2e-2));
  auto loss_of = [&] { return torch::mse_loss(net(x), target); };
  const double first = loss_of().item<double>();
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    auto loss = loss_of();
    loss.backward();
    opt.step();
  }
  const double last = loss_of().item<double>();
  EXPECT_LT(last, 0.7 * first) << "first " << first << ", last " << last;
  EXPECT_TRUE(same_state(clone_state(net), base_state));
}

// A frozen Conv2d computes its base output and the adapter's A factor as one convolution
// (with a hand-written backward); gradients must be those of the two separate convolutions.
TEST(Lora, AFrozenConvGivesTheSameOutputsAndGradientsAsSeparateConvolutions) {
  TinyNet net;
  add_adapter(*net, "ft", {.rank = 3, .alpha = 6});
  randomize(net, "ft", 12);
  set_active_adapter(*net, "ft");
  net->train();
  const auto factors = adapter_parameters(*net, "ft");
  auto run = [&] {
    auto x = input().requires_grad_(true);
    auto y = net(x);
    auto grads = torch::autograd::grad({(y * y).sum()}, [&] {
      std::vector<torch::Tensor> wrt{x};
      wrt.insert(wrt.end(), factors.begin(), factors.end());
      return wrt;
    }());
    return std::pair{y.detach(), grads};
  };
  freeze_base(*net);  // frozen: the shared convolution
  {
    auto x = input().requires_grad_(true);
    auto stem = net->stem(x);
    ASSERT_TRUE(stem.grad_fn());
    // The backward graph a few nodes deep must hold the shared convolution's node.
    std::string names;
    std::function<void(const torch::autograd::Node*, int)> visit = [&](const torch::autograd::Node* node, int depth) {
      names += node->name() + " ";
      if (depth > 0)
        for (const auto& edge : node->next_edges())
          if (edge.function) visit(edge.function.get(), depth - 1);
    };
    visit(stem.grad_fn().get(), 3);
    EXPECT_NE(names.find("FrozenConvWithDown"), std::string::npos) << names;
  }
  const auto [shared_y, shared_grads] = run();
  for (auto& p : net->parameters()) p.set_requires_grad(true);  // trainable base: two convolutions
  const auto [separate_y, separate_grads] = run();
  EXPECT_TRUE(torch::allclose(shared_y, separate_y, 1e-5, 1e-6));
  ASSERT_EQ(shared_grads.size(), separate_grads.size());
  for (size_t i = 0; i < shared_grads.size(); ++i) {
    ASSERT_TRUE(shared_grads[i].defined() && separate_grads[i].defined()) << i;
    EXPECT_TRUE(torch::allclose(shared_grads[i], separate_grads[i], 1e-4, 1e-5))
        << "gradient " << i << " differs by " << (shared_grads[i] - separate_grads[i]).abs().max().item<double>();
  }
}

TEST(Lora, DropoutActsOnlyInTraining) {
  TinyNet net;
  auto x = input();
  add_adapter(*net, "d", {.dropout = 0.5});
  randomize(net, "d", 10);
  set_active_adapter(*net, "d");
  net->eval();
  EXPECT_TRUE(torch::equal(net(x), net(x)));
  net->train();
  torch::manual_seed(1);
  auto a = net(x);
  torch::manual_seed(2);
  EXPECT_FALSE(torch::allclose(a, net(x)));
}

TEST(StateDict, SaveLoadRoundTripsParametersAndBuffers) {
  TempDir dir("tuneloop-adapters");
  TinyNet a, b;
  {
    torch::NoGradGuard no_grad;
    a->named_buffers()["scale"].fill_(2.0);
  }
  save_state_dict(*a, dir.file("m.safetensors"), {{"kind", "tiny"}});
  std::map<std::string, std::string> meta;
  load_tensors(dir.file("m.safetensors"), &meta);
  EXPECT_EQ(meta.at("kind"), "tiny");
  auto report = load_state_dict(*b, dir.file("m.safetensors"));
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(same_state(clone_state(a), clone_state(b)));
  auto x = input();
  EXPECT_TRUE(torch::equal(a(x), b(x)));
}

TEST(StateDict, StrictLoadListsMissingUnexpectedAndMismatchedKeys) {
  TempDir dir("tuneloop-adapters");
  TinyNet net;
  auto state = base_state_dict(*net);
  state.erase("head.bias");
  state["extra.weight"] = torch::zeros({1});
  save_tensors(dir.file("s.safetensors"), state);
  std::string msg = error_of([&] { load_state_dict(*net, dir.file("s.safetensors")); });
  EXPECT_NE(msg.find("missing keys: head.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected keys: extra.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("s.safetensors"), std::string::npos) << msg;

  auto report = load_state_dict(*net, dir.file("s.safetensors"), /*strict=*/false);
  EXPECT_EQ(report.missing, std::vector<std::string>{"head.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"extra.weight"});

  state = base_state_dict(*net);
  state["head.weight"] = torch::zeros({5, 4});
  save_tensors(dir.file("m.safetensors"), state);
  msg = error_of([&] { load_state_dict(*net, dir.file("m.safetensors"), false); });
  EXPECT_NE(msg.find("head.weight is [5, 4] in the file, [5, 3] in the model"), std::string::npos)
      << msg;
}

}  // namespace
}  // namespace tuneloop::adapters

namespace tuneloop::adapters {
namespace {

TEST(AdapterNameFromPath, KeepsTheFileNameWithoutItsSuffixAndReplacesOtherCharacters) {
  EXPECT_EQ(adapter_name_from_path("/tmp/x/my.song lora.safetensors"), "my_song_lora");
  EXPECT_EQ(adapter_name_from_path("iteration-3.safetensors"), "iteration-3");
  EXPECT_EQ(adapter_name_from_path("plain"), "plain");
  EXPECT_EQ(adapter_name_from_path(".safetensors"), "_safetensors");
  EXPECT_EQ(adapter_name_from_path(""), "adapter");
  EXPECT_EQ(adapter_name_from_path(std::string(100, 'a') + ".safetensors").size(), 64u);
}

}  // namespace
}  // namespace tuneloop::adapters
