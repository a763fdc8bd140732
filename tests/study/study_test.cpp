#include "study/study.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

using namespace tuneloop::study;

namespace {

const char* kValid = R"(name: tiny
seed: 3
iterations: 2
tracks_per_iteration: 4
eval_tracks_per_iteration: 3
design: within_subject
scale: {min: 1, max: 5, step: 1}
output: out/tiny
parallel: 2
feature_scale: {tempo_bpm: 25}
daemon_config:
  model: {steps: 10}
participants:
  - name: ada
    taste:
      tempo_bpm: {target: 150, weight: 2}
      brightness: 3000
    bias: 0.5
    noise: 0.3
    skip_tendency: 0.8
    drift: {brightness: 0.25}
  - name: bo
    kind: human
)";

// Replaces the participants with `participants` (a YAML list, indented by two).
std::string with_participants(const std::string& participants) {
  return "iterations: 2\nparticipants:\n" + participants;
}

void expect_error(const std::string& yaml, const std::string& where, const std::string& what) {
  try {
    parse_study(yaml, "dir/study.yaml");
    FAIL() << "no error for:\n" << yaml;
  } catch (const StudyError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(where), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  }
}

}  // namespace

TEST(StudyFile, AValidStudyIsReadWithEveryField) {
  const PilotStudy s = parse_study(kValid, "dir/study.yaml");
  EXPECT_EQ(s.name, "tiny");
  EXPECT_EQ(s.seed, 3u);
  EXPECT_EQ(s.iterations, 2);
  EXPECT_EQ(s.tracks_per_iteration, 4);
  EXPECT_EQ(s.eval_tracks_per_iteration, 3);
  EXPECT_EQ(s.design, Design::within_subject);
  EXPECT_EQ(s.scale.step, 1.0);
  EXPECT_EQ(s.output, std::filesystem::path("dir/out/tiny"));
  EXPECT_EQ(s.parallel, 2);
  EXPECT_EQ(s.feature_scale.at("tempo_bpm"), 25.0);
  EXPECT_EQ(s.feature_scale.at("brightness"), default_feature_scale().at("brightness"));
  EXPECT_NE(s.daemon_config_yaml.find("steps"), std::string::npos);
  ASSERT_EQ(s.participants.size(), 2u);
  const Participant& a = s.participants[0];
  EXPECT_EQ(a.kind, Participant::Kind::simulated);
  EXPECT_EQ(a.taste.target.at("tempo_bpm"), 150.0);
  EXPECT_EQ(a.taste.weight.at("tempo_bpm"), 2.0);
  EXPECT_EQ(a.taste.target.at("brightness"), 3000.0);
  EXPECT_EQ(a.taste.weight.count("brightness"), 0u);
  EXPECT_EQ(a.bias, 0.5);
  EXPECT_EQ(a.noise, 0.3);
  EXPECT_EQ(a.skip_tendency, 0.8);
  EXPECT_EQ(a.drift.at("brightness"), 0.25);
  EXPECT_EQ(s.participants[1].kind, Participant::Kind::human);
}

TEST(StudyFile, TheShippedDefaultStudyHasEightDifferentSimulatedListenersAndThreeIterations) {
  const PilotStudy s = load_study(std::string(TUNELOOP_SOURCE_DIR) + "/studies/default.yaml");
  EXPECT_GE(s.iterations, 3);
  int simulated = 0;
  std::set<std::map<std::string, double>> tastes;
  for (const auto& p : s.participants) {
    simulated += p.kind == Participant::Kind::simulated;
    tastes.insert(p.taste.target);
  }
  EXPECT_GE(simulated, 8);
  EXPECT_EQ(tastes.size(), s.participants.size());
}

TEST(StudyFile, ParallelMustBeAPositiveCount) {
  EXPECT_EQ(parse_study(with_participants("  - {name: a, taste: {tempo_bpm: 100}}\n")).parallel, 1) << "one at a time by default";
  expect_error("parallel: 0\n" + with_participants("  - {name: a, taste: {tempo_bpm: 100}}\n"), ":1: parallel", "must be between 1 and 64");
}

TEST(StudyFile, AMissingFileIsNamed) {
  try {
    load_study("/nonexistent/study.yaml");
    FAIL();
  } catch (const StudyError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/study.yaml"), std::string::npos);
  }
}

TEST(StudyFile, BrokenYamlIsReportedWithItsLine) {
  expect_error("iterations: 2\nparticipants: [\n  - {name: a\n",
               "dir/study.yaml:", "not valid YAML");
}

TEST(StudyFile, AnUnknownTopLevelKeyIsReportedWithFileLineAndKey) {
  expect_error("iterations: 2\niteratoins: 3\n", "dir/study.yaml:2: iteratoins", "unknown key");
}

TEST(StudyFile, ATopLevelThatIsNotAMappingIsRejected) {
  expect_error("- a\n- b\n", "(top level)", "expected a mapping");
}

TEST(StudyFile, ParticipantsAreRequiredAndMustNotBeEmpty) {
  expect_error("iterations: 2\n", "participants", "is required");
  expect_error("participants: []\n", "dir/study.yaml:1: participants", "non-empty list");
}

TEST(StudyFile, NumbersOutOfRangeOrOfTheWrongTypeAreRejected) {
  expect_error(with_participants("  - {name: a, kind: human}\n") + "tracks_per_iteration: 1\n",
               ":4: tracks_per_iteration", "between 2 and 256");
  expect_error("iterations: 0\nparticipants: [{name: a, kind: human}]\n", ":1: iterations",
               "between 1 and 50");
  expect_error("iterations: two\nparticipants: [{name: a, kind: human}]\n", ":1: iterations",
               "expected a number");
  expect_error("iterations: 1.5\nparticipants: [{name: a, kind: human}]\n", ":1: iterations",
               "whole number");
  expect_error("seed: -1\nparticipants: [{name: a, kind: human}]\n", ":1: seed", "between");
  expect_error("eval_tracks_per_iteration: [1]\nparticipants: [{name: a, kind: human}]\n",
               ":1: eval_tracks_per_iteration", "expected a number");
}

TEST(StudyFile, TheRatingScaleMustFitTheDaemonsStars) {
  const std::string p = "participants: [{name: a, kind: human}]\n";
  expect_error("scale: {step: 0.3}\n" + p, ":1: scale.step", "0.5 or 1");
  expect_error("scale: {max: 6}\n" + p, ":1: scale.max", "between 1 and 5");
  expect_error("scale: {min: 4, max: 3}\n" + p, ":1: scale", "min must be below max");
  expect_error("scale: {min: 1.5, step: 1}\n" + p, ":1: scale", "multiples of the step");
  expect_error("scale: {min: 1, steps: 1}\n" + p, ":1: scale.steps", "unknown key");
}

TEST(StudyFile, AnUnknownDesignIsRejected) {
  expect_error("design: crossover\nparticipants: [{name: a, kind: human}]\n", ":1: design",
               "within_subject or ab_pairs");
}

TEST(StudyFile, ParticipantNamesAreRequiredSafeAndUnique) {
  expect_error(with_participants("  - {kind: human}\n"), "participants[0].name", "is required");
  expect_error(with_participants("  - {name: ../x, kind: human}\n"), ":3: participants[0].name",
               "letters, digits");
  expect_error(with_participants("  - {name: a, kind: human}\n  - {name: a, kind: human}\n"),
               ":4: participants[1].name", "used twice");
  expect_error(with_participants("  - {name: a, kind: robot}\n"), ":3: participants[0].kind",
               "simulated or human");
  expect_error(with_participants("  - {name: a, kind: human, age: 3}\n"), ":3: participants[0].age",
               "unknown key");
}

TEST(StudyFile, ASimulatedParticipantNeedsATasteOverKnownFeatures) {
  expect_error(with_participants("  - {name: a}\n"), "participants[0].taste", "is required");
  expect_error(with_participants("  - {name: a, taste: {}}\n"), ":3: participants[0].taste",
               "names no feature");
  expect_error(with_participants("  - name: a\n    taste:\n      tempo: 120\n"),
               ":5: participants[0].taste.tempo", "unknown audio feature 'tempo'");
  expect_error(with_participants("  - name: a\n    taste:\n      tempo_bpm: {weight: 2}\n"),
               "participants[0].taste.tempo_bpm.target", "is required");
  expect_error(
      with_participants("  - name: a\n    taste:\n      tempo_bpm: {target: 120, weight: 0}\n"),
      ":5: participants[0].taste.tempo_bpm.weight", "greater than 0");
  expect_error(
      with_participants("  - name: a\n    taste:\n      tempo_bpm: {target: 120, wieght: 1}\n"),
      ":5: participants[0].taste.tempo_bpm.wieght", "unknown key");
  expect_error(with_participants("  - name: a\n    taste:\n      tempo_bpm: fast\n"),
               ":5: participants[0].taste.tempo_bpm", "expected a number");
}

TEST(StudyFile, ListenerParametersAreCheckedForRange) {
  const std::string head = "  - name: a\n    taste: {tempo_bpm: 120}\n";
  expect_error(with_participants(head + "    noise: -1\n"), ":5: participants[0].noise",
               "between 0 and 4");
  expect_error(with_participants(head + "    skip_tendency: 1.5\n"),
               ":5: participants[0].skip_tendency", "between 0 and 1");
  expect_error(with_participants(head + "    bias: 9\n"), ":5: participants[0].bias",
               "between -4 and 4");
  expect_error(with_participants(head + "    tolerance: 0\n"), ":5: participants[0].tolerance",
               "greater than 0");
  expect_error(with_participants(head + "    drift: {loudness: 1}\n"),
               ":5: participants[0].drift.loudness", "unknown audio feature");
}

TEST(StudyFile, HumanParticipantsTakeNoSimulationSettings) {
  expect_error(with_participants("  - {name: a, kind: human, noise: 1}\n"),
               ":3: participants[0].noise", "simulated participants only");
}

TEST(StudyFile, FeatureScalesMustBePositiveAndDaemonConfigAMapping) {
  const std::string p = "participants: [{name: a, kind: human}]\n";
  expect_error("feature_scale: {brightness: 0}\n" + p, ":1: feature_scale.brightness",
               "greater than 0");
  expect_error("daemon_config: [1, 2]\n" + p, ":1: daemon_config", "expected a mapping");
  expect_error("output: ''\n" + p, ":1: output", "must not be empty");
}

TEST(StudyFile, ADaemonConfigIsKeptAsYamlForTheDaemonToValidate) {
  const PilotStudy s = parse_study(
      "daemon_config:\n  training: {steps: 20}\nparticipants: [{name: a, kind: human}]\n");
  EXPECT_NE(s.daemon_config_yaml.find("training"), std::string::npos);
  EXPECT_EQ(s.design, Design::within_subject);
  EXPECT_EQ(s.scale.min, 1.0);
  EXPECT_EQ(s.scale.max, 5.0);
}
