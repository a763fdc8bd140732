// The dispatcher on its own: no socket, no daemon, the same rules every transport gets.
#include "rpc/dispatcher.hpp"
#include "rpc/errors.hpp"
#include "model/model_error.hpp"

#include <gtest/gtest.h>

using namespace tuneloop::rpc;
using nlohmann::json;

namespace {

struct DispatcherTest : ::testing::Test {
  CommandTable table;
  Session session{"test"};
  DispatcherTest() {
    table.add({"echo", {Param::req("text", JsonType::string), Param::opt("times", JsonType::integer).range(1, 3)},
               [](const Params& p, Session&) {
                 return json(std::string(static_cast<std::size_t>(p.value<std::int64_t>("times", 1)), '*') +
                             p.get<std::string>("text"));
               },
               "0.1", "Repeats the text."});
    table.add({"get", {Param::req("id", JsonType::integer)},
               [](const Params& p, Session&) { return json(p.get<std::int64_t>("id")); }, "0.1", "Echoes an id."});
    table.add({"fail", {}, [](const Params&, Session&) -> json { throw std::runtime_error("disk on fire"); },
               "0.1", "Always fails."});
    table.add({"paint", {}, [](const Params&, Session&) -> json {
                 throw tuneloop::model::ModelError("unknown tag 'plaid'; the model knows: low high");
               },
               "0.2", "Fails as the model does."});
  }
  json call(const std::string& line) { return Dispatcher(table).handle(std::string_view(line), session); }
};

}  // namespace

TEST_F(DispatcherTest, PositionalParamsAreMatchedInSchemaOrder) {
  json r = call(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":["hi",2]})");
  EXPECT_EQ(r["result"], "**hi");
}

TEST_F(DispatcherTest, AnUnknownParameterIsRejectedNamingIt) {
  json r = call(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","loud":true}})");
  EXPECT_EQ(r["error"]["code"], -32602);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'loud'"), std::string::npos);
}

TEST_F(DispatcherTest, AnOutOfRangeIntegerIsRejectedWithItsBounds) {
  json r = call(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","times":7}})");
  EXPECT_EQ(r["error"]["code"], -32602);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("between"), std::string::npos);
}

TEST_F(DispatcherTest, AnIntegerBeyondSixtyFourBitsIsRejectedNotWrapped) {
  EXPECT_EQ(call(R"({"jsonrpc":"2.0","id":1,"method":"get","params":{"id":3.0}})")["result"], 3);
  EXPECT_EQ(call(R"({"jsonrpc":"2.0","id":1,"method":"get","params":{"id":-9223372036854775808}})")["result"],
            INT64_MIN);
  EXPECT_EQ(call(R"({"jsonrpc":"2.0","id":1,"method":"get","params":{"id":9223372036854775807}})")["result"],
            INT64_MAX);
  for (const char* big : {"1e300", "-1e19", "9223372036854775808", "18446744073709551615", "-9223372036854775809",
                          "99999999999999999999999999999999999999999"}) {
    json r = call(std::string(R"({"jsonrpc":"2.0","id":1,"method":"get","params":{"id":)") + big + "}}");
    EXPECT_EQ(r["error"]["code"], -32602) << big << ": " << r.dump();
    EXPECT_NE(r.dump().find("out of range"), std::string::npos) << r.dump();
  }
}

TEST_F(DispatcherTest, AnUnexpectedExceptionBecomesAnInternalErrorNamingTheMethod) {
  json r = call(R"({"jsonrpc":"2.0","id":"x","method":"fail"})");
  EXPECT_EQ(r["id"], "x");
  EXPECT_EQ(r["error"]["code"], -32603);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("fail: internal error: disk on fire"),
            std::string::npos);
}

TEST_F(DispatcherTest, AModelErrorGetsTheModelErrorCodeNotAnInternalError) {
  json r = call(R"({"jsonrpc":"2.0","id":2,"method":"paint"})");
  EXPECT_EQ(r["error"]["code"], static_cast<int>(ErrorCode::model_error));
  EXPECT_EQ(r["error"]["code"], -32006);
  EXPECT_EQ(r["error"]["message"], "paint: unknown tag 'plaid'; the model knows: low high");
}

TEST_F(DispatcherTest, ANotificationGetsNoReplyButAnInvalidOneDoes) {
  EXPECT_TRUE(call(R"({"jsonrpc":"2.0","method":"echo","params":{"text":"a"}})").is_null());
  EXPECT_TRUE(call(R"({"jsonrpc":"2.0","method":"nope"})").is_null());
  EXPECT_EQ(call(R"({"jsonrpc":"1.0","method":"echo"})")["error"]["code"], -32600);
}

TEST_F(DispatcherTest, AnEmptyBatchIsAnInvalidRequest) {
  EXPECT_EQ(call("[]")["error"]["code"], -32600);
}

TEST_F(DispatcherTest, ABatchOfNotificationsGetsNoReply) {
  EXPECT_TRUE(call(R"([{"jsonrpc":"2.0","method":"echo","params":{"text":"a"}}])").is_null());
}

TEST_F(DispatcherTest, ParamsNestedSixtyThousandDeepAreRefusedWithoutCrashing) {
  const std::size_t levels = 60000;
  const std::string line = R"({"jsonrpc":"2.0","id":7,"method":"echo","params":)" + std::string(levels, '[') +
                           std::string(levels, ']') + "}";
  const json reply = call(line);
  EXPECT_EQ(reply["error"]["code"], -32600);
  EXPECT_NE(reply["error"]["message"].get<std::string>().find("at most 64"), std::string::npos);
  // The dispatcher is still usable afterwards.
  EXPECT_EQ(call(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a"}})")["result"], "*a");
}

TEST_F(DispatcherTest, BracketsInsideStringsDoNotCountAsNesting) {
  EXPECT_EQ(nesting_depth(R"({"text":"[[[[{{{{\"]]]"})"), 1u);
  EXPECT_EQ(nesting_depth(R"([[1],[[2]]])"), 3u);
  const std::string text = std::string(100, '[');
  EXPECT_EQ(call(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":")" + text + R"("}})")["result"],
            "*" + text);
}

TEST_F(DispatcherTest, ABatchOverTheCapIsRefusedAsAWhole) {
  std::string line = "[";
  for (std::size_t i = 0; i <= kMaxBatchCalls; ++i)
    line += std::string(i ? "," : "") + R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a"}})";
  line += "]";
  const json reply = call(line);
  ASSERT_TRUE(reply.is_object());
  EXPECT_EQ(reply["error"]["code"], -32600);
}

namespace {

// A method that answers later when it may (as songs.add does), else at once.
struct LaterTest : ::testing::Test {
  CommandTable table;
  std::vector<LaterReply> pending;
  std::vector<json> sent;
  LaterTest() {
    table.add({"slow", {Param::opt("fail", JsonType::boolean)},
               [this](const Params& p, Session& s) -> json {
                 if (auto later = s.defer()) {
                   pending.push_back(*later);
                   return nullptr;
                 }
                 if (p.value("fail", false)) throw std::runtime_error("no such file");
                 return "now";
               },
               "0.1", "Answers later when it may."});
  }
  Session sending() {
    return Session("test", [this](const json& j) { sent.push_back(j); });
  }
};

}  // namespace

TEST_F(LaterTest, ARequestIsAnsweredLaterThroughTheSessionWithItsId) {
  Session s = sending();
  EXPECT_TRUE(Dispatcher(table).handle(std::string_view(R"({"jsonrpc":"2.0","id":7,"method":"slow"})"), s).is_null());
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_TRUE(sent.empty());
  pending[0].result("later");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0], json({{"jsonrpc", "2.0"}, {"id", 7}, {"result", "later"}}));
  EXPECT_EQ(s.deferred_calls(), 1);
}

TEST_F(LaterTest, ALaterErrorIsMappedAsTheDispatcherMapsAThrownOne) {
  Session s = sending();
  Dispatcher(table).handle(std::string_view(R"({"jsonrpc":"2.0","id":"a","method":"slow"})"), s);
  ASSERT_EQ(pending.size(), 1u);
  pending[0].error(std::make_exception_ptr(std::runtime_error("disk on fire")));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["id"], "a");
  EXPECT_EQ(sent[0]["error"]["code"], -32603);
  EXPECT_NE(sent[0]["error"]["message"].get<std::string>().find("slow: internal error: disk on fire"),
            std::string::npos);
}

TEST_F(LaterTest, BatchesNotificationsAndSessionsThatCannotSendAreAnsweredAtOnce) {
  Session s = sending();
  const json batch = Dispatcher(table).handle(
      std::string_view(R"([{"jsonrpc":"2.0","id":1,"method":"slow"},{"jsonrpc":"2.0","id":2,"method":"slow"}])"), s);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0]["result"], "now");
  EXPECT_TRUE(Dispatcher(table).handle(std::string_view(R"({"jsonrpc":"2.0","method":"slow"})"), s).is_null());
  Session mute("mute");
  EXPECT_EQ(Dispatcher(table).handle(std::string_view(R"({"jsonrpc":"2.0","id":3,"method":"slow"})"), mute)["result"],
            "now");
  EXPECT_TRUE(pending.empty());
  EXPECT_TRUE(sent.empty());
  // The next single request may defer again.
  Dispatcher(table).handle(std::string_view(R"({"jsonrpc":"2.0","id":4,"method":"slow"})"), s);
  EXPECT_EQ(pending.size(), 1u);
}

TEST_F(LaterTest, AReplyForASessionThatHasGoneIsDropped) {
  {
    Session s = sending();
    Dispatcher(table).handle(std::string_view(R"({"jsonrpc":"2.0","id":1,"method":"slow"})"), s);
  }
  ASSERT_EQ(pending.size(), 1u);
  pending[0].result("too late");
  EXPECT_TRUE(sent.empty());
}
