#include "runtime/server/request_error.h"

namespace tandem::server {

nlohmann::json error_json(const std::string& message, const std::string& type, const std::string& param,
                          const std::string& code) {
  nlohmann::json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  e["code"] = code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code);
  return nlohmann::json{{"error", std::move(e)}};
}

nlohmann::json RequestError::to_json() const { return error_json(what(), type_, param_, code_); }

}  // namespace tandem::server
