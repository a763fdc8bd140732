// Writes tiny random fixture model weights (tests/model/fixtures.cpp) into a folder, so the
// browser test (ui_test.mjs, which cannot link LibTorch) can give its daemon a model that
// trains in seconds. Usage: ui_fixture_weights DIR
#include "tests/model/fixtures.hpp"

#include <exception>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: ui_fixture_weights DIR\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(argv[1]);
    tuneloop::testing::write_fixture_weights(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "ui_fixture_weights: " << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
