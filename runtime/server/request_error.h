// The error a client's request earns: an HTTP status and the OpenAI-style error object
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// `param` names the offending field as a path into the body ("messages[1].content"), or is
// empty when no single field is to blame.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace tandem::server {

class RequestError : public std::runtime_error {
 public:
  RequestError(int status, std::string type, std::string param, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)),
        code_(std::move(code)) {}

  // 400 invalid_request_error for `param`.
  static RequestError invalid(std::string param, const std::string& message, std::string code = "") {
    return RequestError(400, "invalid_request_error", std::move(param), std::move(code), message);
  }

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_;
  std::string param_;
  std::string code_;
};

// {"error": {...}} with null for an empty param or code.
nlohmann::json error_json(const std::string& message, const std::string& type, const std::string& param,
                          const std::string& code);

}  // namespace tandem::server
