#include "cli/loop_cli.hpp"

#include "client/client.hpp"
#include "cli/cli_socket.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

namespace tuneloop::cli {

namespace fs = std::filesystem;
using client::CallError;
using client::Client;
using client::NotRunningError;
using nlohmann::json;

namespace {

struct Options {
  CLI::App* root = nullptr;
  std::string action = "list";
  std::int64_t id = 0;
  bool force = false;
};

// Connects, calls, prints; failures become a message and an exit status (3 = no daemon).
json call(const CLI::App& root, const std::string& method, const json& params) {
  try {
    Client c = Client::connect_unix(cli_socket_path(root));
    return c.call(method, params);
  } catch (const NotRunningError& e) {
    std::cerr << e.what() << "\n";
    throw CLI::RuntimeError(3);
  } catch (const CallError& e) {
    std::cerr << "tuneloop: " << e.what() << " (error " << e.code() << ")\n";
    throw CLI::RuntimeError(1);
  } catch (const std::exception& e) {
    std::cerr << "tuneloop: " << e.what() << "\n";
    throw CLI::RuntimeError(1);
  }
}

std::string num(const json& v, const char* fmt) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v.get<double>());
  return buf;
}

void print_iterations(const json& list) {
  if (list.empty()) {
    std::cout << "no iterations\n";
    return;
  }
  std::printf("%6s  %4s  %-10s  %6s  %7s  %10s  %10s  %6s  %6s  %7s\n", "id", "#", "status",
              "active", "dataset", "train loss", "reward acc", "tracks", "rating", "heard");
  for (const auto& i : list) {
    const json& m = i["metrics"];
    std::printf("%6lld  %4d  %-10s  %6s  %7s  %10s  %10s  %6d  %6s  %7s\n",
                static_cast<long long>(i["id"].get<std::int64_t>()), i["number"].get<int>(),
                i["status"].get<std::string>().c_str(), i["active"].get<bool>() ? "*" : "",
                num(m.value("dataset_size", json()), "%.0f").c_str(),
                num(m.value("final_train_loss", json()), "%.4f").c_str(),
                num(m.value("reward_accuracy", json()), "%.2f").c_str(), i["tracks"].get<int>(),
                num(i["mean_rating"], "%.2f").c_str(),
                i["mean_listen_fraction"].is_number()
                    ? (num(i["mean_listen_fraction"].get<double>() * 100, "%.0f") + "%").c_str()
                    : "-");
  }
}

void print_loop(const json& l) { std::cout << "loop: " << l.value("text", "") << "\n"; }

}  // namespace

void add_loop_cli_commands(CLI::App& app) {
  auto o = std::make_shared<Options>();
  o->root = &app;

  auto* it = app.add_subcommand("iterate", "start the next iteration now (fine-tune + new tracks)");
  it->add_flag("--force", o->force, "start even with less feedback than schedule.min_feedback");
  it->callback([o] {
    const json r = call(*o->root, "iterate", {{"force", o->force}});
    if (cli_json_output(*o->root)) {
      std::cout << r.dump(2) << "\n";
    } else if (r.value("started", false)) {
      std::cout << "started iteration " << r["iteration_id"] << " (job " << r["job_id"] << "): "
                << r.value("reason", "") << "\n";
    } else {
      std::cout << "not started: " << r.value("reason", "") << "\n";
    }
    if (!r.value("started", false)) throw CLI::RuntimeError(1);
  });

  auto* its = app.add_subcommand("iterations", "list, show, activate (roll back to) or delete iterations");
  its->add_option("action", o->action, "list | show | activate | delete")
      ->check(CLI::IsMember({"list", "show", "activate", "delete"}))
      ->capture_default_str();
  its->add_option("id", o->id, "iteration id (for show, activate, delete)");
  its->callback([o] {
    if (o->action != "list" && o->id <= 0) {
      std::cerr << "tuneloop: iterations " << o->action << " needs an iteration id\n";
      throw CLI::RuntimeError(2);
    }
    const std::string method = "iterations." + o->action;
    const json r = call(*o->root, method, o->action == "list" ? json(nullptr) : json{{"id", o->id}});
    if (cli_json_output(*o->root) || o->action == "show") {
      std::cout << r.dump(2) << "\n";
    } else if (o->action == "list") {
      print_iterations(r);
    } else if (o->action == "activate") {
      std::cout << "iteration " << r["number"] << " (id " << r["active"] << ") is active\n";
    } else {
      std::cout << "deleted iteration " << r["deleted"] << "\n";
    }
  });

  auto* job = app.add_subcommand("job", "the loop's running job: status or cancel");
  auto action = std::make_shared<std::string>("status");
  job->add_option("action", *action, "status | cancel")
      ->check(CLI::IsMember({"status", "cancel"}))
      ->capture_default_str();
  job->callback([o, action] {
    const json r = call(*o->root, "job." + *action, nullptr);
    if (cli_json_output(*o->root)) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    if (*action == "cancel") {
      std::cout << (r.value("cancelled", false) ? "cancelling job " + r["job_id"].dump() : "no job running")
                << "\n";
      return;
    }
    if (r["job"].is_object()) {
      const json& j = r["job"];
      std::cout << "job " << j["id"] << " (" << j.value("kind", "") << ") " << j.value("state", "")
                << " " << static_cast<int>(j.value("progress", 0.0) * 100 + 0.5) << "%  "
                << j.value("message", "");
      if (!j.value("error", "").empty()) std::cout << "  error: " << j.value("error", "");
      std::cout << "\n";
    } else {
      std::cout << "no jobs yet\n";
    }
    print_loop(r["loop"]);
  });
}

}  // namespace tuneloop::cli
