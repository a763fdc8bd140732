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
