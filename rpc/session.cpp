#include "rpc/session.hpp"

#include "rpc/dispatcher.hpp"
#include "rpc/errors.hpp"

namespace tuneloop::rpc {

void LaterReply::result(nlohmann::json result) const {
  if (const auto send = send_.lock())
    (*send)({{"jsonrpc", "2.0"}, {"id", id_}, {"result", std::move(result)}});
}

void LaterReply::error(std::exception_ptr error) const {
  if (const auto send = send_.lock()) (*send)(error_reply(id_, error_from_exception(error, method_)));
}

}  // namespace tuneloop::rpc
