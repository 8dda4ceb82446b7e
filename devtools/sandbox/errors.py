"""The error an operation raises; the server turns it into a status code and an error body."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, error_format: str, message_key: str = "") -> object:
        """`{ErrorCode, Message}` (the swagger) or `[{ErrorCode, ErrorMessage}]` (v4); `message_key` swaps the name."""
        if error_format == "array":
            return [{"ErrorCode": self.code, message_key or "ErrorMessage": self.message}]
        return {"ErrorCode": self.code, message_key or "Message": self.message}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)
