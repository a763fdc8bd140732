#include "rpc/errors.hpp"

#include "config/config.hpp"
#include "audio/audio.hpp"
#include "model/model_error.hpp"
#include "player/player.hpp"
#include "store/store.hpp"

namespace tuneloop::rpc {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::parse_error: return "parse error";
    case ErrorCode::invalid_request: return "invalid request";
    case ErrorCode::method_not_found: return "method not found";
    case ErrorCode::invalid_params: return "invalid params";
    case ErrorCode::internal_error: return "internal error";
    case ErrorCode::not_found: return "not found";
    case ErrorCode::invalid_audio: return "invalid audio file";
    case ErrorCode::storage_error: return "storage error";
    case ErrorCode::busy: return "busy";
    case ErrorCode::no_audio_device: return "no audio device";
    case ErrorCode::model_error: return "model error";
    case ErrorCode::unauthorised: return "unauthorised";
  }
  return "unknown error";
}

nlohmann::json error_object(ErrorCode code, const std::string& message,
                            const nlohmann::json& data) {
  nlohmann::json e = {{"code", static_cast<int>(code)}, {"message", message}};
  if (!data.is_null()) e["data"] = data;
  return e;
}

nlohmann::json error_from_exception(std::exception_ptr error, std::string_view method) noexcept {
  const std::string where = method.empty() ? std::string() : std::string(method) + ": ";
  try {
    try {
      std::rethrow_exception(error);
    } catch (const RpcError& e) {
      return error_object(e.code(), where + e.what(), e.data());
    } catch (const store::NotFoundError& e) {
      return error_object(ErrorCode::not_found, where + e.what());
    } catch (const store::InvalidValueError& e) {
      return error_object(ErrorCode::invalid_params, where + e.what());
    } catch (const store::StoreError& e) {
      return error_object(ErrorCode::storage_error, where + e.what());
    } catch (const audio::AudioError& e) {
      return error_object(ErrorCode::invalid_audio, where + e.what());
    } catch (const player::DecodeError& e) {
      return error_object(ErrorCode::invalid_audio, where + e.what());
    } catch (const player::DeviceError& e) {
      return error_object(ErrorCode::no_audio_device, where + e.what());
    } catch (const model::ModelError& e) {
      return error_object(ErrorCode::model_error, where + e.what());
    } catch (const config::ConfigError& e) {
      return error_object(ErrorCode::invalid_params, where + e.what());
    } catch (const nlohmann::json::exception& e) {
      return error_object(ErrorCode::invalid_params, where + e.what());
    } catch (const std::filesystem::filesystem_error& e) {
      return error_object(ErrorCode::storage_error, where + e.what());
    } catch (const std::exception& e) {
      return error_object(ErrorCode::internal_error, where + "internal error: " + e.what());
    } catch (...) {
      return error_object(ErrorCode::internal_error, where + "internal error: unknown exception");
    }
  } catch (...) {
    // Building the error object itself failed (out of memory): a fixed object then.
    return nlohmann::json::object();
  }
}

}  // namespace tuneloop::rpc
